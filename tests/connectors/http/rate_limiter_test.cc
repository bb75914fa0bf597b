// http::RateLimiter on a fake clock, describe_pace, the limiter inside
// send_with_retry, and the PERSCOM target against a server that answers 429
// past its limits.
#include "connectors/http/rate_limiter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <thread>

#include "connectors/targets/perscom/perscom_target.h"
#include "tests/support/loopback_http_server.h"
#include "tests/support/perscom_test_server.h"

namespace dirsync::http {
namespace {

using config::RateWindow;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using TimePoint = RateLimiter::TimePoint;

// Time moves only when a sleeper says so. Thread safe.
class FakeClock {
 public:
  TimePoint now() const {
    std::lock_guard lock(mu_);
    return now_;
  }
  // Moves to `now() + d` (never backwards); records `d`.
  void sleep(milliseconds d) {
    std::lock_guard lock(mu_);
    now_ += d;
    sleeps_.push_back(d);
  }
  std::vector<milliseconds> sleeps() const {
    std::lock_guard lock(mu_);
    return sleeps_;
  }
  RateLimiter::Clock clock() {
    return [this] { return now(); };
  }
  Sleeper sleeper() {
    return [this](milliseconds d) { sleep(d); };
  }
  // Offsets from the clock's start, in ms.
  long long at(TimePoint t) const { return std::chrono::duration_cast<milliseconds>(t - TimePoint{}).count(); }

 private:
  mutable std::mutex mu_;
  TimePoint now_{};
  std::vector<milliseconds> sleeps_;
};

// The largest number of `starts` (sorted) that any interval [t - per, t] of length `per` holds.
std::size_t busiest(std::vector<TimePoint> starts, milliseconds per) {
  std::sort(starts.begin(), starts.end());
  std::size_t most = 0;
  std::size_t first = 0;
  for (std::size_t last = 0; last < starts.size(); ++last) {
    while (starts[last] - starts[first] >= per) ++first;
    most = std::max(most, last - first + 1);
  }
  return most;
}

std::vector<long long> offsets(const FakeClock& clock, const std::vector<TimePoint>& starts) {
  std::vector<long long> out;
  for (auto t : starts) out.push_back(clock.at(t));
  return out;
}

TEST(RateLimiter, LetsABurstUpToTheLimitGoThenStartsOneMoreAsEachSlotExpires) {
  FakeClock clock;
  RateLimiter limiter({{3, seconds(1)}}, clock.sleeper(), clock.clock(), milliseconds(0));
  std::vector<TimePoint> starts;
  for (int i = 0; i < 7; ++i) starts.push_back(limiter.acquire());
  EXPECT_THAT(offsets(clock, starts), ElementsAre(0, 0, 0, 1000, 1000, 1000, 2000));
  EXPECT_THAT(clock.sleeps(), ElementsAre(milliseconds(1000), milliseconds(1000)));
}

TEST(RateLimiter, CountsASlidingWindowNotAFixedOne) {
  FakeClock clock;
  RateLimiter limiter({{3, seconds(1)}}, clock.sleeper(), clock.clock(), milliseconds(0));
  std::vector<TimePoint> starts;
  starts.push_back(limiter.acquire());  // at 0
  clock.sleep(milliseconds(600));
  starts.push_back(limiter.acquire());  // at 600
  starts.push_back(limiter.acquire());  // at 600
  // The window is full until the start at 0 is a full second old; then the
  // two at 600 hold the next slot until 1600.
  starts.push_back(limiter.acquire());
  starts.push_back(limiter.acquire());
  EXPECT_THAT(offsets(clock, starts), ElementsAre(0, 600, 600, 1000, 1600));
}

TEST(RateLimiter, DoesNotWaitWhenTheWindowHasEmptiedOnItsOwn) {
  FakeClock clock;
  RateLimiter limiter({{2, seconds(1)}}, clock.sleeper(), clock.clock(), milliseconds(0));
  limiter.acquire();
  limiter.acquire();
  clock.sleep(seconds(5));
  const TimePoint t = limiter.acquire();
  EXPECT_EQ(clock.at(t), 5000);
  EXPECT_THAT(clock.sleeps(), ElementsAre(milliseconds(5000))) << "only the test's own sleep";
}

TEST(RateLimiter, HoldsThreeWindowsAtOnce) {
  FakeClock clock;
  const std::vector<RateWindow> windows = {{2, milliseconds(100)}, {5, seconds(1)}, {8, seconds(10)}};
  RateLimiter limiter(windows, clock.sleeper(), clock.clock(), milliseconds(0));
  std::vector<TimePoint> starts;
  for (int i = 0; i < 11; ++i) starts.push_back(limiter.acquire());
  // 2/100ms paces the first five, 5/s holds the sixth to 1000, 8/10s the ninth to 10000.
  EXPECT_THAT(offsets(clock, starts), ElementsAre(0, 0, 100, 100, 200, 1000, 1000, 1100, 10000, 10000, 10100));
  for (const auto& w : windows) EXPECT_LE(busiest(starts, w.per), w.requests);
  EXPECT_EQ(pace(11, windows), milliseconds(10100)) << "pace() replays the same schedule";
}

TEST(RateLimiter, WidensEveryWindowByTheMargin) {
  FakeClock clock;
  RateLimiter limiter({{1, milliseconds(100)}}, clock.sleeper(), clock.clock(), milliseconds(10));
  std::vector<TimePoint> starts;
  for (int i = 0; i < 3; ++i) starts.push_back(limiter.acquire());
  EXPECT_THAT(offsets(clock, starts), ElementsAre(0, 110, 220));
}

TEST(RateLimiter, RoundsAWaitUpToAWholeMillisecond) {
  std::vector<milliseconds> sleeps;
  TimePoint now = TimePoint{} + std::chrono::microseconds(300);
  RateLimiter limiter({{1, milliseconds(100)}}, [&](milliseconds d) { sleeps.push_back(d); }, [&] { return now; },
                      milliseconds(0));
  limiter.acquire();
  now += std::chrono::microseconds(500);
  limiter.acquire();
  EXPECT_THAT(sleeps, ElementsAre(milliseconds(100))) << "99.5 ms left: a real sleep of 99 would start too early";
}

TEST(RateLimiter, ReserveHandsOutSlotsWithoutWaiting) {
  FakeClock clock;
  RateLimiter limiter({{1, seconds(1)}}, clock.sleeper(), clock.clock(), milliseconds(0));
  EXPECT_EQ(clock.at(limiter.reserve()), 0);
  EXPECT_EQ(clock.at(limiter.reserve()), 1000);
  EXPECT_EQ(clock.at(limiter.reserve()), 2000);
  EXPECT_THAT(clock.sleeps(), IsEmpty());
}

TEST(RateLimiter, RemembersNoMoreStartsThanTheLargestWindowCounts) {
  FakeClock clock;
  RateLimiter limiter({{3, seconds(1)}, {7, minutes(1)}}, clock.sleeper(), clock.clock(), milliseconds(0));
  for (int i = 0; i < 100; ++i) {
    limiter.acquire();
    EXPECT_LE(limiter.log_size(), 7u);
  }
  clock.sleep(hours(1));
  limiter.acquire();
  EXPECT_EQ(limiter.log_size(), 1u) << "starts older than the longest window are forgotten";
}

TEST(RateLimiter, IgnoresWindowsThatLimitNothingAndThenNeverWaits) {
  FakeClock clock;
  RateLimiter limiter({{0, seconds(1)}, {5, milliseconds(0)}}, clock.sleeper(), clock.clock());
  EXPECT_FALSE(limiter.limited());
  for (int i = 0; i < 1000; ++i) limiter.acquire();
  EXPECT_THAT(clock.sleeps(), IsEmpty());
}

TEST(RateLimiter, KeepsEveryWindowWhenEightThreadsShareIt) {
  FakeClock clock;
  const std::vector<RateWindow> windows = {{5, milliseconds(100)}, {20, seconds(1)}};
  RateLimiter limiter(windows, clock.sleeper(), clock.clock(), milliseconds(0));
  constexpr int kThreads = 8;
  constexpr int kEach = 50;
  std::mutex mu;
  std::vector<TimePoint> all;
  std::atomic<int> early{0};
  std::atomic<int> out_of_order{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      TimePoint previous{};
      for (int i = 0; i < kEach; ++i) {
        const TimePoint slot = limiter.acquire();
        if (clock.now() < slot) ++early;  // returned before its slot
        if (slot < previous) ++out_of_order;
        previous = slot;
        std::lock_guard lock(mu);
        all.push_back(slot);
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach));
  for (const auto& w : windows) EXPECT_LE(busiest(all, w.per), w.requests) << w.requests;
  EXPECT_EQ(early, 0);
  EXPECT_EQ(out_of_order, 0);
  EXPECT_GE(*std::max_element(all.begin(), all.end()) - TimePoint{}, pace(all.size(), windows));
}

TEST(RateLimiter, ChoosesTheConfiguredLimitsOverTheDefaultsAndOffOverBoth) {
  const std::vector<RateWindow> defaults = {{60, minutes(1)}};
  EXPECT_EQ(effective_rate_limits(std::nullopt, defaults), defaults);
  EXPECT_THAT(effective_rate_limits(std::vector<RateWindow>{}, defaults), IsEmpty());
  const std::vector<RateWindow> mine = {{5, seconds(1)}};
  EXPECT_EQ(effective_rate_limits(mine, defaults), mine);
  EXPECT_EQ(make_rate_limiter({}), nullptr);
  ASSERT_NE(make_rate_limiter(mine), nullptr);
  EXPECT_EQ(make_rate_limiter(mine)->windows(), mine);
}

// --- describe_pace -------------------------------------------------------------

const std::vector<RateWindow> kHesh = {{15, seconds(1)}, {300, minutes(1)}, {4000, hours(1)}};

TEST(DescribePace, IsEmptyWhenTheLimitsDoNotSlowTheRun) {
  EXPECT_EQ(describe_pace(100'000, {}), "");
  EXPECT_EQ(describe_pace(0, kHesh), "");
  EXPECT_EQ(describe_pace(15, kHesh), "") << "all fit in the first burst";
}

TEST(DescribePace, NamesTheWindowThatDominatesForThatManyRequests) {
  EXPECT_EQ(describe_pace(16, kHesh), "~1 s at 15/s");
  EXPECT_EQ(describe_pace(601, kHesh), "~2 min at 300/min");
  EXPECT_EQ(describe_pace(6001, {{4000, hours(1)}}), "~60 min at 4,000/h");
  EXPECT_EQ(describe_pace(8001, {{4000, hours(1)}}), "~2 h at 4,000/h");
  // 4,000 an hour, each hour's 4,000 paced by 300/min and 15/s: the 10,000th
  // starts 2 h + 6 min 13 s in.
  EXPECT_EQ(pace(10'000, kHesh), hours(2) + minutes(6) + seconds(13));
  EXPECT_EQ(describe_pace(10'000, kHesh), "~2 h 6 min at 4,000/h");
}

TEST(DescribePace, RoundsForHumans) {
  EXPECT_EQ(describe_pace(2, {{1, milliseconds(200)}}), "~1 s at 1/200 ms") << "never ~0 s";
  EXPECT_EQ(describe_pace(3, {{1, seconds(45)}}), "~2 min at 1/45 s");
  EXPECT_EQ(describe_pace(2, {{1, seconds(89)}}), "~89 s at 1/89 s");
  EXPECT_EQ(describe_pace(4, {{1, minutes(30)}}), "~1 h 30 min at 1/1800 s");
  EXPECT_EQ(describe_pace(3, {{1, hours(24)}}), "~2 d at 1/d");
  EXPECT_EQ(describe_pace(2, {{1, hours(49)}}), "~2 d 1 h at 1/176400 s");
}

TEST(DescribePace, PrefersTheLongerWindowOnATie) {
  EXPECT_EQ(describe_pace(61, {{1, minutes(1)}, {60, hours(1)}}), "~60 min at 60/h");
}

TEST(DescribePace, CountsTheWindowsTogetherNotJustTheSlowestAlone) {
  // Alone, 2/s takes 2 s and 3/2s takes 2 s for 6 requests; together the
  // sixth has to wait for both: 0, 0, 1, 2, 2, 3.
  EXPECT_EQ(pace(6, {{2, seconds(1)}, {3, seconds(2)}}), seconds(3));
}

TEST(DescribeWindow, WritesCountsWithThousandsSeparatorsAndShortUnits) {
  EXPECT_EQ(describe_window({4000, hours(1)}), "4,000/h");
  EXPECT_EQ(describe_window({300, minutes(1)}), "300/min");
  EXPECT_EQ(describe_window({15, seconds(1)}), "15/s");
  EXPECT_EQ(describe_window({1'000'000, hours(24)}), "1,000,000/d");
  EXPECT_EQ(describe_window({5, milliseconds(200)}), "5/200 ms");
  EXPECT_EQ(describe_window({10, seconds(30)}), "10/30 s");
}

// --- send_with_retry ------------------------------------------------------------

// Answers from a script, then 200.
class ScriptedTransport : public Transport {
 public:
  explicit ScriptedTransport(std::deque<Response> script) : script_(std::move(script)) {}
  Response send(const Request&) override {
    ++sent_;
    if (script_.empty()) {
      Response ok;
      ok.status = 200;
      return ok;
    }
    Response r = std::move(script_.front());
    script_.pop_front();
    return r;
  }
  int sent_ = 0;

 private:
  std::deque<Response> script_;
};

TEST(SendWithRetry, WaitsForARateLimitSlotBeforeEveryAttemptRetriesIncluded) {
  Response too_many;
  too_many.status = 429;
  ScriptedTransport transport({too_many, too_many});
  FakeClock clock;
  RetryOptions options;
  std::vector<milliseconds> backoffs;
  options.sleeper = [&](milliseconds d) { backoffs.push_back(d); };  // does not move the fake clock
  options.jitter = [] { return 0.0; };
  options.rate_limiter = std::make_shared<RateLimiter>(std::vector<RateWindow>{{1, seconds(1)}}, clock.sleeper(),
                                                       clock.clock(), milliseconds(0));
  Request request;
  request.url = "http://127.0.0.1:1/x";
  const Exchange ex = send_with_retry(transport, request, options);
  EXPECT_EQ(ex.attempts, 3);
  EXPECT_EQ(transport.sent_, 3);
  EXPECT_THAT(clock.sleeps(), ElementsAre(milliseconds(1000), milliseconds(1000)))
      << "the second and third attempts each waited for a slot";
  EXPECT_EQ(backoffs.size(), 2u);
}

TEST(SendWithRetry, SendsAtOnceWithoutARateLimiter) {
  ScriptedTransport transport({});
  RetryOptions options;
  options.sleeper = [](milliseconds) { ADD_FAILURE() << "nothing to wait for"; };
  Request request;
  request.url = "http://127.0.0.1:1/x";
  EXPECT_EQ(send_with_retry(transport, request, options).attempts, 1);
}

}  // namespace
}  // namespace dirsync::http

// --- the PERSCOM target ------------------------------------------------------------

namespace dirsync::targets {
namespace {

using config::RateWindow;
using core::Change;
using core::OutcomeKind;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

Change create(int i) {
  Change c;
  c.op = core::Op::kCreate;
  c.key = "user" + std::to_string(i);
  c.payload = {{"name", "User " + std::to_string(i)}, {"email", "user" + std::to_string(i) + "@x.org"}};
  return c;
}

config::PerscomTargetSettings perscom_settings(const std::string& base_url) {
  config::PerscomTargetSettings s;
  s.base_url = base_url;
  s.api_version = "v2";
  s.token = core::Secret("test-token", "${env:PERSCOM_TOKEN}");
  s.batch_size = 100;
  s.http.connect_timeout = milliseconds(2000);
  s.http.timeout = milliseconds(5000);
  s.http.max_attempts = 1;  // a 429 must show as a retry outcome, not be retried away
  return s;
}

TEST(PerscomRateLimit, DefaultsToSixtyRequestsAMinuteAndYieldsToTheConfiguredLimits) {
  auto s = perscom_settings("http://127.0.0.1:1");
  EXPECT_THAT(PerscomTarget(s).rate_limits(), ElementsAre(RateWindow{60, minutes(1)}));
  s.http.rate_limits = std::vector<RateWindow>{{5, seconds(1)}, {100, minutes(1)}};
  EXPECT_THAT(PerscomTarget(s).rate_limits(), ElementsAre(RateWindow{5, seconds(1)}, RateWindow{100, minutes(1)}));
  s.http.rate_limits = std::vector<RateWindow>{};
  EXPECT_THAT(PerscomTarget(s).rate_limits(), IsEmpty());
}

class PerscomRateLimitTest : public ::testing::Test {
 protected:
  void SetUp() override { perscom_.start(); }

  // 61 single-user creates, one request each; returns the sleeps asked for.
  std::vector<milliseconds> sixty_one_creates(config::PerscomTargetSettings s) {
    std::vector<milliseconds> sleeps;
    const auto frozen = std::chrono::steady_clock::now();  // a clock that never moves
    PerscomTarget target(
        std::move(s), [&](milliseconds d) { sleeps.push_back(d); }, nullptr, [] { return 0.5; },
        [frozen] { return frozen; });
    for (int i = 0; i < 61; ++i) {
      auto result = target.apply(std::vector<Change>{create(i)});
      EXPECT_TRUE(result.ok());
    }
    return sleeps;
  }

  testing::PerscomTestServer perscom_;
};

TEST_F(PerscomRateLimitTest, HoldsTheSixtyFirstRequestOfAMinuteByDefault) {
  EXPECT_THAT(sixty_one_creates(perscom_settings(perscom_.base_url())),
              ElementsAre(milliseconds(60'000) + http::RateLimiter::kDefaultMargin));
  EXPECT_EQ(perscom_.request_count(), 61u);
}

TEST_F(PerscomRateLimitTest, NeverWaitsWhenRateLimitsAreOff) {
  auto s = perscom_settings(perscom_.base_url());
  s.http.rate_limits = std::vector<RateWindow>{};
  EXPECT_THAT(sixty_one_creates(s), IsEmpty());
  EXPECT_EQ(perscom_.request_count(), 61u);
}

// PERSCOM behind a gate that answers 429 to a request that would make more
// than `limit` within the last `per` (a sliding window over arrivals).
class RateLimitedPerscom {
 public:
  RateLimitedPerscom(std::size_t limit, milliseconds per)
      : limit_(limit), per_(per), http_([this](const testing::ServerRequest& r) { return handle(r); }) {
    http_.start();
  }
  std::string base_url() const { return http_.base_url(); }
  int too_many() const { return too_many_; }
  std::size_t stored() const { return perscom_.users().size(); }

 private:
  testing::ServerResponse handle(const testing::ServerRequest& request) {
    {
      std::lock_guard lock(mu_);
      const auto now = std::chrono::steady_clock::now();
      while (!arrivals_.empty() && now - arrivals_.front() >= per_) arrivals_.pop_front();
      if (arrivals_.size() >= limit_) {
        ++too_many_;
        testing::ServerResponse r;
        r.status = 429;
        r.headers = {{"Retry-After", "1"}};
        r.body = R"({"message":"Too Many Attempts."})";
        return r;
      }
      arrivals_.push_back(now);
    }
    return perscom_.handle(request);
  }

  std::size_t limit_;
  milliseconds per_;
  std::mutex mu_;
  std::deque<std::chrono::steady_clock::time_point> arrivals_;
  std::atomic<int> too_many_{0};
  testing::PerscomTestServer perscom_;  // used without its sockets: only its handler
  testing::LoopbackHttpServer http_;
};

TEST(PerscomRateLimit, SeesNo429FromAServerThatEnforcesTheConfiguredLimit) {
  RateLimitedPerscom server(5, milliseconds(250));
  auto s = perscom_settings(server.base_url());
  s.http.rate_limits = std::vector<RateWindow>{{5, milliseconds(250)}};
  PerscomTarget target(s);  // the real clock and sleeper: this test really paces its requests
  int applied = 0;
  for (int i = 0; i < 18; ++i) {
    auto result = target.apply(std::vector<Change>{create(i)});
    ASSERT_TRUE(result.ok()) << result.error().message;
    applied += result.value()[0].kind == OutcomeKind::kApplied;
  }
  EXPECT_EQ(server.too_many(), 0);
  EXPECT_EQ(applied, 18);
  EXPECT_EQ(server.stored(), 18u);
}

TEST(PerscomRateLimit, MeetsA429FromThatServerWhenRateLimitsAreOff) {
  // The control: the gate does bite. A long window so that no pause of the
  // machine lets the burst slip under it.
  RateLimitedPerscom server(5, seconds(30));
  auto s = perscom_settings(server.base_url());
  s.http.rate_limits = std::vector<RateWindow>{};
  PerscomTarget target(s, [](milliseconds) {});
  int retry = 0;
  for (int i = 0; i < 8; ++i) {
    auto result = target.apply(std::vector<Change>{create(i)});
    ASSERT_TRUE(result.ok()) << result.error().message;
    retry += result.value()[0].kind == OutcomeKind::kRetry;
  }
  EXPECT_EQ(server.too_many(), 3);
  EXPECT_EQ(retry, 3);
  EXPECT_EQ(server.stored(), 5u);
}

}  // namespace
}  // namespace dirsync::targets

namespace dirsync::http {
namespace {

TEST(BatchRequests, CountsOneRequestPerStartedBatch) {
  EXPECT_EQ(batch_requests(0, 100), 0u);
  EXPECT_EQ(batch_requests(1, 100), 1u);
  EXPECT_EQ(batch_requests(100, 100), 1u);
  EXPECT_EQ(batch_requests(101, 100), 2u);
  EXPECT_EQ(batch_requests(5, 0), 5u);  // a batch size of 0 counts as 1
}

}  // namespace
}  // namespace dirsync::http
