#include "connectors/http/retry.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <thread>

#include "connectors/http/rate_limiter.h"

namespace dirsync::http {
namespace {

using std::chrono::milliseconds;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string with_status(const Response& r) { return "HTTP " + std::to_string(r.status) + ": " + server_message(r); }

}  // namespace

const char* to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::kSuccess: return "success";
    case Verdict::kRetry: return "retry";
    case Verdict::kAuth: return "authentication refused";
    case Verdict::kRejected: return "rejected";
    case Verdict::kUnknown: return "outcome unknown";
  }
  return "?";
}

std::optional<milliseconds> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); })) {
    // Saturate instead of overflowing: the caller caps it anyway.
    if (value.size() > 9) return milliseconds(999'999'999'000LL);
    return milliseconds(std::stoll(std::string(value)) * 1000);
  }
  // An HTTP-date names a weekday or a month: demand a letter so that "-5" or
  // "1.5" are not read as dates by the lenient parser.
  if (!std::any_of(value.begin(), value.end(), [](unsigned char c) { return std::isalpha(c); })) return std::nullopt;
  const std::string text(value);
  const time_t when = curl_getdate(text.c_str(), nullptr);
  if (when == static_cast<time_t>(-1)) return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(when);
  if (at <= now) return milliseconds(0);
  return std::chrono::duration_cast<milliseconds>(at - now);
}

Classification classify(const Response& response, std::chrono::system_clock::time_point now) {
  Classification c;
  switch (response.failure) {
    case TransportFailure::kNothingSent:
      c.verdict = Verdict::kRetry;
      c.message = response.error;
      return c;
    case TransportFailure::kAfterSend:
      c.verdict = Verdict::kUnknown;
      c.message = response.error;
      return c;
    case TransportFailure::kNone:
      break;
  }
  const int s = response.status;
  if (s >= 200 && s < 300) {
    c.verdict = Verdict::kSuccess;
    return c;
  }
  c.message = with_status(response);
  if (s == 429 || s == 503) {
    c.verdict = Verdict::kRetry;
    const std::string ra = response.header("retry-after");
    if (!ra.empty()) c.retry_after = parse_retry_after(ra, now);
  } else if (s == 401 || s == 403) {
    c.verdict = Verdict::kAuth;
  } else if (s >= 400 && s < 500) {
    c.verdict = Verdict::kRejected;
  } else {
    // Other 5xx, and statuses a JSON API never answers with (1xx, 3xx): the
    // server may or may not have acted.
    c.verdict = Verdict::kUnknown;
  }
  return c;
}

RetryPolicy RetryPolicy::from(const config::HttpSettings& settings) {
  RetryPolicy p;
  p.max_attempts = settings.max_attempts;
  p.backoff_initial = settings.backoff_initial;
  p.backoff_max = settings.backoff_max;
  p.retry_after_max = settings.retry_after_max;
  return p;
}

Jitter random_jitter() {
  return [] {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  };
}

milliseconds backoff_delay(int attempt, const RetryPolicy& policy, double jitter) {
  const long long initial = std::max<long long>(0, policy.backoff_initial.count());
  const long long max = std::max<long long>(0, policy.backoff_max.count());
  long long cap = initial;
  for (int i = 1; i < attempt && cap < max; ++i) cap *= 2;  // stops doubling at the cap: no overflow
  cap = std::min(cap, max);
  jitter = std::clamp(jitter, 0.0, 1.0);
  return milliseconds(static_cast<long long>(static_cast<double>(cap) * jitter));
}

milliseconds retry_delay(int attempt, const Classification& c, const RetryPolicy& policy, double jitter) {
  if (c.retry_after) {
    return std::clamp(*c.retry_after, milliseconds(0), std::max(milliseconds(0), policy.retry_after_max));
  }
  return backoff_delay(attempt, policy, jitter);
}

Sleeper real_sleeper() {
  return [](milliseconds d) { std::this_thread::sleep_for(d); };
}

Exchange send_with_retry(Transport& transport, const Request& request, const RetryOptions& options) {
  const int max_attempts = std::max(1, options.policy.max_attempts);
  Exchange ex;
  for (int attempt = 1;; ++attempt) {
    if (options.rate_limiter) options.rate_limiter->acquire();
    ex.response = transport.send(request);
    ex.attempts = attempt;
    ex.classification = classify(ex.response, options.clock());
    const Verdict v = ex.classification.verdict;
    const bool repeatable = v == Verdict::kRetry || (v == Verdict::kUnknown && request.idempotent);
    if (!repeatable || attempt >= max_attempts) return ex;
    const double jitter = options.jitter ? options.jitter() : 1.0;
    if (options.sleeper) options.sleeper(retry_delay(attempt, ex.classification, options.policy, jitter));
  }
}

}  // namespace dirsync::http
