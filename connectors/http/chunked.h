#pragma once
// ChunkedSender: lets a batch API send several requests at once
// (`max_in_flight`). The engine hands the target up to N requests' worth of
// changes; they are cut into consecutive chunks of one request's worth, and up
// to N chunks go out at once, each over its own reused connection. Outcomes
// come back in the order of the batch.
//
// Only for APIs whose requests are independent of each other (PERSCOM: Orion
// runs each batch in its own transaction; Hesh and Royalti: each request
// stands alone). Never for a full-set API.
//
// A job-stopping Error in one chunk does not drop what the others landed: if
// any chunk applied something, the failed chunk's changes become "retry" (the
// next batch meets the same error and stops the job); otherwise the Error is
// returned.
//
// Thread safety: one `apply` at a time; `fn` runs on several threads at once,
// each with its own Transport, and must not share mutable state (the retry
// options and the rate limiter are safe to share).
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "connectors/http/http_client.h"
#include "core/change.h"
#include "core/result.h"

namespace dirsync::http {

class ChunkedSender {
 public:
  using TransportFactory = std::function<std::unique_ptr<Transport>()>;
  using ChunkFn =
      std::function<core::Result<std::vector<core::Outcome>>(std::span<const core::Change>, Transport&)>;

  // `first`: the first connection, or null to make it with `factory`. An
  // injected transport (tests) is a single connection, so it means one request
  // at a time whatever `max_in_flight` says.
  ChunkedSender(std::size_t max_in_flight, std::size_t chunk_size, std::unique_ptr<Transport> first,
                TransportFactory factory);

  std::size_t chunk_size() const { return chunk_size_; }
  std::size_t max_in_flight() const { return transports_.size(); }
  // What the target should report as its batch size: N requests' worth.
  std::size_t batch_size() const { return chunk_size_ * transports_.size(); }

  core::Result<std::vector<core::Outcome>> apply(std::span<const core::Change> batch, const ChunkFn& fn);

 private:
  std::size_t chunk_size_;
  TransportFactory factory_;
  std::vector<std::unique_ptr<Transport>> transports_;  // created lazily
};

}  // namespace dirsync::http
