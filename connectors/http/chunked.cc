#include "connectors/http/chunked.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

namespace dirsync::http {

ChunkedSender::ChunkedSender(std::size_t max_in_flight, std::size_t chunk_size, std::unique_ptr<Transport> first,
                             TransportFactory factory)
    : chunk_size_(std::max<std::size_t>(1, chunk_size)), factory_(std::move(factory)) {
  transports_.resize(first ? 1 : std::max<std::size_t>(1, max_in_flight));
  transports_[0] = first ? std::move(first) : factory_();
}

core::Result<std::vector<core::Outcome>> ChunkedSender::apply(std::span<const core::Change> batch, const ChunkFn& fn) {
  if (transports_.size() == 1 || batch.size() <= chunk_size_) return fn(batch, *transports_[0]);

  std::vector<std::span<const core::Change>> chunks;
  for (std::size_t i = 0; i < batch.size(); i += chunk_size_) {
    chunks.push_back(batch.subspan(i, std::min(chunk_size_, batch.size() - i)));
  }
  const std::size_t workers = std::min(transports_.size(), chunks.size());
  for (std::size_t w = 0; w < workers; ++w) {
    if (!transports_[w]) transports_[w] = factory_();
  }
  std::vector<std::optional<core::Result<std::vector<core::Outcome>>>> results(chunks.size());
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> threads;
  threads.reserve(workers);
  for (std::size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      for (std::size_t c = next.fetch_add(1); c < chunks.size(); c = next.fetch_add(1)) {
        results[c].emplace(fn(chunks[c], *transports_[w]));
      }
    });
  }
  for (auto& t : threads) t.join();

  bool any_applied = false;
  const core::Error* error = nullptr;
  for (const auto& r : results) {
    if (!r->ok()) {
      if (!error) error = &r->error();
      continue;
    }
    for (const auto& o : r->value()) any_applied |= o.kind == core::OutcomeKind::kApplied;
  }
  if (error && !any_applied) return *error;
  std::vector<core::Outcome> out;
  out.reserve(batch.size());
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    if (results[c]->ok()) {
      for (auto& o : results[c]->value()) out.push_back(std::move(o));
    } else {
      for (std::size_t k = 0; k < chunks[c].size(); ++k) {
        out.push_back(core::Outcome::retry(results[c]->error().message));
      }
    }
  }
  return out;
}

}  // namespace dirsync::http
