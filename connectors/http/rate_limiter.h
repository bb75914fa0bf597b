#pragma once
// Client-side rate limits over several windows at once, and how long they make a run.
//
// A `RateLimiter` holds windows such as {15 per 1 s, 300 per 1 min, 4,000 per
// 1 h}. `acquire()` returns once a request may START without any window
// counting more than its limit of starts: for every window (n, per), no
// interval of length `per + margin` holds more than n starts.
//
// Why a log of start times (exact sliding windows) and not GCRA or a token
// bucket per window: GCRA with a burst of n releases the (n+1)-th request
// per/n after a burst, so a window of length `per` can see nearly 2n requests.
// A server that counts the way it documents ("300 requests per minute") would
// answer 429 to that. The log allows exactly what a sliding window allows:
// bursts up to each limit, then one start per expired slot. It is also what a
// fixed-window server accepts, since every fixed window is one of the sliding ones.
// Memory: ONE log for all windows (a window of n needs only the n most recent
// starts), trimmed to the largest n and to the longest window: at most
// max(n) time points (4,000 × 8 bytes for Hesh).
//
// `margin` widens every window a little: the limiter sees when a request
// starts, the server when it arrives, and the time between the two varies
// (a new connection, TLS, scheduling). Without a margin, a slow first request
// and a fast (n+1)-th could arrive closer than `per` even though they started
// `per` apart.
//
// Slots are reserved in FIFO order: `acquire()` takes the next free slot
// under the lock, then waits for it outside the lock, so waiting callers do not
// block one another and never start out of the order they reserved in.
// A reserved slot counts even if the caller then does not send (it is spent).
//
// Thread safety: every member may be called from any thread at once; one
// limiter is shared by every worker of a target.
//
// Time comes from the injected clock, waiting goes through the injected
// sleeper (called once per acquire that must wait, with the time left until
// the slot, rounded up to a millisecond). Tests pass a fake clock and a sleeper
// that advances it: no test waits on the wall clock.
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "connectors/http/retry.h"

namespace dirsync::http {

class RateLimiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Clock = std::function<TimePoint()>;

  // The default margin: small next to a window of a second or more, larger
  // than the start-to-arrival jitter seen on loaded loopback and LAN links.
  static constexpr std::chrono::milliseconds kDefaultMargin{50};

  // Windows with 0 requests or a non-positive length are ignored; no windows
  // left means no limit (acquire() never waits).
  explicit RateLimiter(std::vector<config::RateWindow> windows, Sleeper sleeper = real_sleeper(),
                       Clock clock = [] { return std::chrono::steady_clock::now(); },
                       std::chrono::milliseconds margin = kDefaultMargin);
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Reserves the earliest start that keeps every window within its limit,
  // waits until then (through the sleeper) and returns that start.
  TimePoint acquire();

  // Reserves like acquire() but does not wait: returns the time at which the
  // caller may start (possibly already past). For schedulers that wait their own way.
  TimePoint reserve();

  // The windows in force (after dropping meaningless ones).
  const std::vector<config::RateWindow>& windows() const { return windows_; }
  bool limited() const { return !windows_.empty(); }
  std::chrono::milliseconds margin() const { return margin_; }
  // How many starts the limiter remembers now: never more than the largest
  // window's count (what bounds its memory).
  std::size_t log_size();

 private:
  TimePoint reserve_locked(TimePoint now);

  std::vector<config::RateWindow> windows_;
  Sleeper sleeper_;
  Clock clock_;
  std::chrono::milliseconds margin_;
  std::size_t keep_ = 0;                  // the largest window count: how many starts matter
  std::chrono::milliseconds longest_{0};  // the longest window (+ margin): older starts never matter
  std::mutex mu_;
  std::deque<TimePoint> starts_;  // reserved starts, non-decreasing
};

// The limits a target uses: `configured` when set (empty = `rate_limits: off`),
// else the target's documented `defaults`.
std::vector<config::RateWindow> effective_rate_limits(const std::optional<std::vector<config::RateWindow>>& configured,
                                                      std::vector<config::RateWindow> defaults);

// A limiter for `windows`, or null when they impose no limit (so that
// RetryOptions::rate_limiter stays null and costs nothing).
std::shared_ptr<RateLimiter> make_rate_limiter(const std::vector<config::RateWindow>& windows,
                                               Sleeper sleeper = real_sleeper(),
                                               RateLimiter::Clock clock = [] { return std::chrono::steady_clock::now(); },
                                               std::chrono::milliseconds margin = RateLimiter::kDefaultMargin);

// Pure: the least time the windows make `requests` requests take, from the
// first start to the last (zero when they all fit in the first burst). Exact
// (it replays the limiter's schedule, without margin) up to 5,000,000 requests;
// beyond that, the slowest window alone (the difference is then negligible).
std::chrono::milliseconds pace(std::size_t requests, const std::vector<config::RateWindow>& windows);

// Pure: "4,000/h", "300/min", "15/s", "2/d", "5/200 ms".
std::string describe_window(const config::RateWindow& window);

// Pure: "~42 min at 4,000/h" — pace() rounded for humans, and the window that
// dominates for that many requests (the one that alone would take longest;
// the longer window on a tie). "" when the windows do not slow such a run
// (no windows, 0 requests, or everything fits in the first burst).
std::string describe_pace(std::size_t requests, const std::vector<config::RateWindow>& windows);
// Pure: requests needed to send `changes` changes in requests of `batch` each
// (at least 1 per request): ceil(changes / batch).
std::size_t batch_requests(std::size_t changes, std::size_t batch);

}  // namespace dirsync::http
