#include "connectors/http/parallel.h"

#include <algorithm>
#include <atomic>
#include <thread>

namespace dirsync::http {

ParallelSender::ParallelSender(std::size_t max_in_flight, TransportFactory factory, RetryOptions options)
    : factory_(std::move(factory)), options_(std::move(options)), transports_(std::max<std::size_t>(1, max_in_flight)) {}

std::vector<Exchange> ParallelSender::send_all(const std::vector<Request>& requests) {
  std::vector<Exchange> results(requests.size());
  if (requests.empty()) return results;
  const std::size_t workers = std::min(transports_.size(), requests.size());
  for (std::size_t w = 0; w < workers; ++w) {
    if (!transports_[w]) transports_[w] = factory_();
  }
  std::atomic<std::size_t> next{0};
  auto work = [&](std::size_t w) {
    for (std::size_t i = next.fetch_add(1); i < requests.size(); i = next.fetch_add(1)) {
      results[i] = send_with_retry(*transports_[w], requests[i], options_);
    }
  };
  if (workers == 1) {
    work(0);  // no thread for the common small case
    return results;
  }
  std::vector<std::thread> threads;
  threads.reserve(workers);
  for (std::size_t w = 0; w < workers; ++w) threads.emplace_back(work, w);
  for (auto& t : threads) t.join();
  return results;
}

}  // namespace dirsync::http
