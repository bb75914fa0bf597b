#include "connectors/http/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
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
  std::mutex failure_mu;
  std::exception_ptr failure;
  auto work = [&](std::size_t w) {
    try {
      for (std::size_t i = next.fetch_add(1); i < requests.size(); i = next.fetch_add(1)) {
        results[i] = send_with_retry(*transports_[w], requests[i], options_);
      }
    } catch (...) {
      // An exception escaping a std::thread would terminate the process: keep
      // the first, stop handing out work, rethrow on the caller's thread.
      next.store(requests.size());
      std::lock_guard lock(failure_mu);
      if (!failure) failure = std::current_exception();
    }
  };
  if (workers == 1) {
    work(0);  // no thread for the common small case
  } else {
    std::vector<std::thread> threads;
    threads.reserve(workers);
    for (std::size_t w = 0; w < workers; ++w) threads.emplace_back(work, w);
    for (auto& t : threads) t.join();
  }
  if (failure) std::rethrow_exception(failure);
  return results;
}

}  // namespace dirsync::http
