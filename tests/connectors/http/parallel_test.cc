// ParallelSender over real loopback HTTP: bounded concurrency, input order,
// reused connections.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "connectors/http/parallel.h"
#include "tests/support/loopback_http_server.h"

namespace dirsync::http {
namespace {

using std::chrono::milliseconds;

// Answers with the request's path after a short pause, counting how many
// requests are being handled at once.
class CountingServer {
 public:
  CountingServer()
      : server_([this](const testing::ServerRequest& req) {
          const int now = ++active_;
          {
            std::lock_guard lock(mu_);
            max_active_ = std::max(max_active_, now);
          }
          // Long enough for other workers to arrive; the assertion is on
          // concurrency, never on time.
          std::this_thread::sleep_for(milliseconds(20));
          --active_;
          testing::ServerResponse r;
          r.status = 200;
          r.body = "\"" + req.target + "\"";
          return r;
        }) {
    server_.start();
  }
  int max_active() {
    std::lock_guard lock(mu_);
    return max_active_;
  }
  testing::LoopbackHttpServer& server() { return server_; }

 private:
  std::atomic<int> active_{0};
  std::mutex mu_;
  int max_active_ = 0;
  testing::LoopbackHttpServer server_;
};

std::vector<Request> requests_for(const std::string& base, int n) {
  std::vector<Request> out;
  for (int i = 0; i < n; ++i) {
    Request r;
    r.method = "GET";
    r.url = base + "/r" + std::to_string(i);
    r.idempotent = true;
    out.push_back(std::move(r));
  }
  return out;
}

ParallelSender sender(std::size_t n) {
  RetryOptions options;
  options.sleeper = [](milliseconds) {};
  return ParallelSender(n, [] { return std::make_unique<HttpClient>(config::HttpSettings{}); }, options);
}

TEST(ParallelSender, KeepsAtMostMaxInFlightRequestsAtOnceAndReachesIt) {
  CountingServer counting;
  auto s = sender(4);
  const auto results = s.send_all(requests_for(counting.server().base_url(), 24));
  ASSERT_EQ(results.size(), 24u);
  EXPECT_LE(counting.max_active(), 4);
  EXPECT_EQ(counting.max_active(), 4);
}

TEST(ParallelSender, ReturnsExchangesInTheOrderOfTheRequests) {
  CountingServer counting;
  auto s = sender(8);
  const auto results = s.send_all(requests_for(counting.server().base_url(), 30));
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(results[static_cast<std::size_t>(i)].response.status, 200);
    EXPECT_EQ(results[static_cast<std::size_t>(i)].response.body, "\"/r" + std::to_string(i) + "\"");
  }
}

TEST(ParallelSender, ReusesItsConnectionsAcrossCalls) {
  CountingServer counting;
  auto s = sender(3);
  for (int round = 0; round < 4; ++round) s.send_all(requests_for(counting.server().base_url(), 12));
  EXPECT_LE(counting.server().connections_accepted(), 3u);
}

TEST(ParallelSender, SendsOneRequestWithoutSpareConnections) {
  CountingServer counting;
  auto s = sender(8);
  const auto results = s.send_all(requests_for(counting.server().base_url(), 1));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].response.status, 200);
  EXPECT_EQ(counting.server().connections_accepted(), 1u);
  EXPECT_TRUE(s.send_all({}).empty());
}

class ThrowingTransport final : public Transport {
 public:
  Response send(const Request& request) override {
    if (request.url == "http://x/r5") throw std::runtime_error("transport broke");
    Response r;
    r.status = 200;
    return r;
  }
};

TEST(ParallelSender, RethrowsATransportExceptionOnTheCallersThread) {
  RetryOptions options;
  options.sleeper = [](milliseconds) {};
  ParallelSender s(4, [] { return std::make_unique<ThrowingTransport>(); }, options);
  EXPECT_THROW(s.send_all(requests_for("http://x", 20)), std::runtime_error);
  EXPECT_EQ(s.send_all(requests_for("http://x", 3)).size(), 3u) << "the sender stays usable";
}

}  // namespace
}  // namespace dirsync::http
