#pragma once
// What an HTTP answer means for the caller, and the retry loop.
//
//   answer                                         verdict     what happens
//   2xx                                            kSuccess    the target decodes the body
//   nothing sent (DNS, connect, TLS handshake),    kRetry      retried with backoff; after the
//     429, 503                                                 last attempt returned as kRetry
//   401, 403                                       kAuth       stop the job: fix the credentials
//   other 4xx                                      kRejected   the records are refused, with the
//                                                              server's message
//   other 5xx, timeout/reset/empty reply after     kUnknown    the server may have acted. Retried
//     the request went out                                     only when the request is idempotent;
//                                                              otherwise returned at once: never a
//                                                              second copy of a create.
//
// Backoff: capped exponential with full jitter — before attempt n+1 the loop
// sleeps uniform[0, min(backoff_max, backoff_initial * 2^(n-1))]. A server's
// Retry-After (delta-seconds or an HTTP-date) replaces that delay, capped at
// `retry_after_max`.
//
// Every function here is pure except `send_with_retry`, which sends through the
// given Transport and sleeps only through the given Sleeper and the optional
// RateLimiter's own sleeper (tests pass recording no-ops or fake clocks: no
// test waits on the wall clock).
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "connectors/http/http_client.h"

namespace dirsync::http {

class RateLimiter;  // rate_limiter.h

enum class Verdict { kSuccess, kRetry, kAuth, kRejected, kUnknown };
const char* to_string(Verdict verdict);

struct Classification {
  Verdict verdict = Verdict::kUnknown;
  // The server's Retry-After as a delay from `now`, uncapped; nullopt when
  // absent or unparsable.
  std::optional<std::chrono::milliseconds> retry_after;
  // Operator-readable: "HTTP 422: <server message>" or the transport error.
  // Never contains header values.
  std::string message;
};

// Pure: the verdict for a response. `now` is only used for an HTTP-date Retry-After.
Classification classify(const Response& response,
                        std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// Pure: a Retry-After value as a delay from `now`: "120" → 120 s, an HTTP-date
// (IMF-fixdate, RFC 850 or asctime) → the time until then, 0 if it has passed.
// nullopt for anything else (negative numbers, garbage).
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::chrono::system_clock::time_point now);

struct RetryPolicy {
  int max_attempts = 5;  // first try included; < 1 is treated as 1
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30'000};
  std::chrono::milliseconds retry_after_max{120'000};

  static RetryPolicy from(const config::HttpSettings& settings);
};

// A number uniformly drawn from [0, 1]. The default draws from a per-thread PRNG.
using Jitter = std::function<double()>;
Jitter random_jitter();

// Pure: the delay before attempt `attempt + 1` after attempt `attempt` (1-based)
// failed: `jitter` (clamped to [0, 1]) times the exponential cap. Never
// negative, never above `backoff_max`, no overflow for large attempts.
std::chrono::milliseconds backoff_delay(int attempt, const RetryPolicy& policy, double jitter);

// Pure: the delay to use: the capped Retry-After when the server sent one,
// else backoff_delay.
std::chrono::milliseconds retry_delay(int attempt, const Classification& c, const RetryPolicy& policy,
                                      double jitter);

using Sleeper = std::function<void(std::chrono::milliseconds)>;
Sleeper real_sleeper();  // std::this_thread::sleep_for

struct Exchange {
  Response response;               // the last answer
  Classification classification;   // of the last answer
  int attempts = 0;                // requests sent (or tried), >= 1
};

// Sends `request` until its verdict is final or `max_attempts` is reached:
// kRetry verdicts are retried; kUnknown ones only when `request.idempotent`.
// With a `rate_limiter`, every attempt (retries included: the server counts
// them too) first waits for a slot from it.
struct RetryOptions {
  RetryPolicy policy;
  Sleeper sleeper = real_sleeper();
  Jitter jitter = random_jitter();
  std::function<std::chrono::system_clock::time_point()> clock = [] { return std::chrono::system_clock::now(); };
  // Shared by every worker of one target; null: no rate limit.
  std::shared_ptr<RateLimiter> rate_limiter;
};
Exchange send_with_retry(Transport& transport, const Request& request, const RetryOptions& options);

}  // namespace dirsync::http
