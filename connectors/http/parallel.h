#pragma once
// ParallelSender: sends independent requests with at most N in flight, over N
// reused connections — for single-user APIs (auth_sync_user), where one
// request per user would otherwise be bounded by round trips, not bandwidth.
//
// Design: N Transports (HttpClients: one reused connection each) and, per
// `send_all`, up to N worker threads that take the next request index from an
// atomic counter. Each request goes through `send_with_retry` with its own
// retry state; the RetryOptions (and its RateLimiter, which is thread-safe)
// are shared. Why threads and not curl's multi interface: the retry loop
// (backoff sleeps, Retry-After, rate-limit waits) is a blocking function the
// other targets already use; one blocking worker per connection keeps that
// logic in one place, and N is small (≤ 256).
//
// Thread safety: one `send_all` at a time per sender (the transports are
// reused between calls, so connections stay open across batches). The
// sleeper and jitter in RetryOptions are called from several threads: the
// defaults (sleep_for, a per-thread PRNG) are safe; test doubles must be too.
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "connectors/http/http_client.h"
#include "connectors/http/retry.h"

namespace dirsync::http {

class ParallelSender {
 public:
  using TransportFactory = std::function<std::unique_ptr<Transport>()>;

  // `max_in_flight` < 1 is treated as 1. The factory is called lazily, at most
  // `max_in_flight` times over the sender's life.
  ParallelSender(std::size_t max_in_flight, TransportFactory factory, RetryOptions options);

  // One Exchange per request, in the order of `requests`. Failures are data
  // (send_with_retry never throws for them); an exception from a Transport
  // (e.g. bad_alloc) stops the remaining requests and is rethrown here after
  // every worker has finished — never from a worker thread.
  std::vector<Exchange> send_all(const std::vector<Request>& requests);

  std::size_t max_in_flight() const { return transports_.size(); }

 private:
  TransportFactory factory_;
  RetryOptions options_;
  std::vector<std::unique_ptr<Transport>> transports_;  // slot i belongs to worker i
};

}  // namespace dirsync::http
