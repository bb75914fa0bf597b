#include "connectors/http/rate_limiter.h"

#include <algorithm>

namespace dirsync::http {
namespace {

using std::chrono::milliseconds;

std::vector<config::RateWindow> meaningful(std::vector<config::RateWindow> windows) {
  std::erase_if(windows, [](const config::RateWindow& w) { return w.requests == 0 || w.per <= milliseconds(0); });
  return windows;
}

// The earliest start >= `now` that keeps every window within its limit, given
// the previous starts (non-decreasing). A window of n allows a start at t when
// the n-th most recent start is at least `per` (+ margin) before t.
template <typename TimePoint>
TimePoint earliest_start(const std::deque<TimePoint>& starts, const std::vector<config::RateWindow>& windows,
                         milliseconds margin, TimePoint now) {
  TimePoint t = now;
  // Never before a slot someone already reserved: keeps the log sorted and the order FIFO.
  if (!starts.empty()) t = std::max(t, starts.back());
  for (const auto& w : windows) {
    if (starts.size() < w.requests) continue;
    const TimePoint nth_latest = starts[starts.size() - w.requests];
    t = std::max(t, nth_latest + w.per + margin);
  }
  return t;
}

// Drops starts that no window can count any more: beyond the largest count, or
// older than the longest window before `t`.
template <typename TimePoint>
void trim(std::deque<TimePoint>& starts, std::size_t keep, milliseconds longest, TimePoint t) {
  while (starts.size() > keep) starts.pop_front();
  while (!starts.empty() && starts.front() + longest <= t) starts.pop_front();
}

std::string with_thousands(std::size_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// The alone-time of one window: the last of `requests` starts happens after
// floor((requests - 1) / n) full windows.
milliseconds alone(std::size_t requests, const config::RateWindow& w) {
  if (requests == 0) return milliseconds(0);
  return w.per * static_cast<long long>((requests - 1) / w.requests);
}

std::string human(milliseconds d) {
  const long long s = (d.count() + 999) / 1000;  // round up: "~1 s", never "~0 s"
  if (s < 90) return "~" + std::to_string(s) + " s";
  if (s < 90 * 60) return "~" + std::to_string((s + 30) / 60) + " min";
  if (s < 48 * 3600) {
    const long long minutes = (s + 30) / 60;
    const long long h = minutes / 60;
    const long long m = minutes % 60;
    return "~" + std::to_string(h) + " h" + (m ? " " + std::to_string(m) + " min" : "");
  }
  const long long hours = (s + 1800) / 3600;
  const long long days = hours / 24;
  const long long h = hours % 24;
  return "~" + std::to_string(days) + " d" + (h ? " " + std::to_string(h) + " h" : "");
}

}  // namespace

RateLimiter::RateLimiter(std::vector<config::RateWindow> windows, Sleeper sleeper, Clock clock, milliseconds margin)
    : windows_(meaningful(std::move(windows))),
      sleeper_(std::move(sleeper)),
      clock_(std::move(clock)),
      margin_(std::max(margin, milliseconds(0))) {
  for (const auto& w : windows_) {
    keep_ = std::max(keep_, w.requests);
    longest_ = std::max(longest_, w.per + margin_);
  }
}

RateLimiter::TimePoint RateLimiter::reserve_locked(TimePoint now) {
  const TimePoint t = earliest_start(starts_, windows_, margin_, now);
  starts_.push_back(t);
  trim(starts_, keep_, longest_, t);
  return t;
}

RateLimiter::TimePoint RateLimiter::reserve() {
  if (windows_.empty()) return clock_();
  std::lock_guard lock(mu_);
  return reserve_locked(clock_());
}

RateLimiter::TimePoint RateLimiter::acquire() {
  if (windows_.empty()) return clock_();
  TimePoint slot;
  TimePoint now;
  {
    std::lock_guard lock(mu_);
    now = clock_();
    slot = reserve_locked(now);
  }
  // Wait outside the lock: others reserve later slots meanwhile. Rounded up so
  // that a real sleep never ends before the slot.
  if (slot > now && sleeper_) sleeper_(std::chrono::ceil<milliseconds>(slot - now));
  return slot;
}

std::size_t RateLimiter::log_size() {
  std::lock_guard lock(mu_);
  return starts_.size();
}

std::vector<config::RateWindow> effective_rate_limits(const std::optional<std::vector<config::RateWindow>>& configured,
                                                      std::vector<config::RateWindow> defaults) {
  return configured ? *configured : std::move(defaults);
}

std::shared_ptr<RateLimiter> make_rate_limiter(const std::vector<config::RateWindow>& windows, Sleeper sleeper,
                                               RateLimiter::Clock clock, milliseconds margin) {
  auto limiter = std::make_shared<RateLimiter>(windows, std::move(sleeper), std::move(clock), margin);
  if (!limiter->limited()) return nullptr;
  return limiter;
}

milliseconds pace(std::size_t requests, const std::vector<config::RateWindow>& raw) {
  const std::vector<config::RateWindow> windows = meaningful(raw);
  if (windows.empty() || requests == 0) return milliseconds(0);
  constexpr std::size_t kExactUpTo = 5'000'000;
  if (requests > kExactUpTo) {
    milliseconds slowest{0};
    for (const auto& w : windows) slowest = std::max(slowest, alone(requests, w));
    return slowest;
  }
  // Replay the limiter's schedule on a clock that starts at 0 and jumps to each slot.
  using TimePoint = std::chrono::time_point<std::chrono::steady_clock, milliseconds>;
  std::size_t keep = 0;
  milliseconds longest{0};
  for (const auto& w : windows) {
    keep = std::max(keep, w.requests);
    longest = std::max(longest, w.per);
  }
  std::deque<TimePoint> starts;
  TimePoint t{};
  for (std::size_t i = 0; i < requests; ++i) {
    t = earliest_start(starts, windows, milliseconds(0), t);
    starts.push_back(t);
    trim(starts, keep, longest, t);
  }
  return t.time_since_epoch();
}

std::string describe_window(const config::RateWindow& w) {
  using namespace std::chrono_literals;
  const std::string n = with_thousands(w.requests);
  if (w.per == 1s) return n + "/s";
  if (w.per == 1min) return n + "/min";
  if (w.per == 1h) return n + "/h";
  if (w.per == 24h) return n + "/d";
  if (w.per % 1000 == 0ms) return n + "/" + std::to_string(w.per.count() / 1000) + " s";
  return n + "/" + std::to_string(w.per.count()) + " ms";
}

std::size_t batch_requests(std::size_t changes, std::size_t batch) {
  batch = std::max<std::size_t>(1, batch);
  return (changes + batch - 1) / batch;
}

std::string describe_pace(std::size_t requests, const std::vector<config::RateWindow>& raw) {
  const std::vector<config::RateWindow> windows = meaningful(raw);
  const milliseconds total = pace(requests, windows);
  if (total <= milliseconds(0)) return "";
  const config::RateWindow* dominant = nullptr;
  milliseconds most{-1};
  for (const auto& w : windows) {
    const milliseconds a = alone(requests, w);
    if (a > most || (a == most && dominant && w.per > dominant->per)) {
      most = a;
      dominant = &w;
    }
  }
  return human(total) + " at " + describe_window(*dominant);
}

}  // namespace dirsync::http
