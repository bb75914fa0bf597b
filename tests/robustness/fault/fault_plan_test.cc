// The fault layer every loopback test server inherits (FaultPlan in
// tests/support/loopback_http_server.h), seen through the real HTTP client:
// a fault BEFORE the handler leaves it untouched, one AFTER lets it act and
// then spoils the answer, each the way the header says.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "connectors/http/http_client.h"
#include "tests/support/loopback_http_server.h"

namespace dirsync::testing {
namespace {

using std::chrono::milliseconds;

class FaultPlanTest : public ::testing::Test {
 protected:
  FaultPlanTest()
      : server_([this](const ServerRequest& r) {
          ++handled_;
          ServerResponse out;
          out.status = 201;
          out.body = R"({"data":[{"id":1},{"id":2},{"id":3},{"id":4}],"meta":{"total":4}})";
          if (r.method == "GET") out.body = R"([1,2,3])";
          return out;
        }) {
    server_.start();
  }

  http::Response send(const std::string& method = "POST", milliseconds timeout = milliseconds(5000)) {
    config::HttpSettings settings;
    settings.timeout = timeout;
    http::HttpClient client(settings);
    http::Request req;
    req.method = method;
    req.url = server_.base_url() + "/users";
    if (method != "GET") req.body = R"({"users":[]})";
    return client.send(req);
  }

  FaultSpec spec(FaultKind kind, FaultPhase phase) {
    FaultSpec f;
    f.kind = kind;
    f.phase = phase;
    return f;
  }

  std::atomic<int> handled_{0};
  LoopbackHttpServer server_;
};

TEST_F(FaultPlanTest, AnswersNormallyWithoutFaultsAndLogsEveryRequest) {
  const auto r = send();
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(handled_, 1);
  const auto log = server_.fault_plan().log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_FALSE(log[0].fault.has_value());
  EXPECT_TRUE(log[0].handler_ran);
  EXPECT_EQ(log[0].handler_status, 201);
  EXPECT_EQ(log[0].sent_status, 201);
  EXPECT_EQ(log[0].request_body, R"({"users":[]})");
}

TEST_F(FaultPlanTest, A429BeforeTheHandlerCarriesRetryAfterAndHasNoEffect) {
  auto f = spec(FaultKind::k429, FaultPhase::kBefore);
  f.retry_after_seconds = 7;
  server_.fault_plan().add(f);
  const auto r = send();
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("retry-after"), "7");
  EXPECT_EQ(handled_, 0);
  EXPECT_EQ(send().status, 201) << "the fault was consumed";
}

TEST_F(FaultPlanTest, A500AfterTheHandlerHidesAnEffectThatHappened) {
  server_.fault_plan().add(spec(FaultKind::k500, FaultPhase::kAfter));
  EXPECT_EQ(send().status, 500);
  EXPECT_EQ(handled_, 1);
  const auto log = server_.fault_plan().log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_TRUE(log[0].handler_ran);
  EXPECT_EQ(log[0].handler_status, 201);
  EXPECT_EQ(log[0].sent_status, 500);
}

TEST_F(FaultPlanTest, AClosedConnectionIsAFailureAfterSendingEitherWay) {
  server_.fault_plan().add(spec(FaultKind::kClose, FaultPhase::kBefore));
  server_.fault_plan().add(spec(FaultKind::kClose, FaultPhase::kAfter));
  EXPECT_EQ(send().failure, http::TransportFailure::kAfterSend);
  EXPECT_EQ(handled_, 0);
  EXPECT_EQ(send().failure, http::TransportFailure::kAfterSend);
  EXPECT_EQ(handled_, 1);
  EXPECT_EQ(server_.fault_plan().log()[1].sent_status, 0);
}

TEST_F(FaultPlanTest, MalformedJsonIsACompleteAnswerThatDoesNotParse) {
  server_.fault_plan().add(spec(FaultKind::kMalformedJson, FaultPhase::kAfter));
  const auto r = send();
  EXPECT_EQ(r.status, 201);
  EXPECT_FALSE(r.body.empty());
  EXPECT_TRUE(nlohmann::json::parse(r.body, nullptr, false).is_discarded()) << r.body;
  EXPECT_EQ(handled_, 1);
}

TEST_F(FaultPlanTest, ATruncatedBodyEndsTheConnectionBeforeTheLengthPromised) {
  server_.fault_plan().add(spec(FaultKind::kTruncatedBody, FaultPhase::kBefore));
  const auto r = send();
  EXPECT_EQ(r.failure, http::TransportFailure::kAfterSend) << r.error;
  EXPECT_EQ(handled_, 0);
  EXPECT_EQ(send().status, 201) << "the next connection is served";
}

TEST_F(FaultPlanTest, AWrongShapeIsValidJsonIn2xx) {
  server_.fault_plan().add(spec(FaultKind::kWrongShape, FaultPhase::kBefore));
  const auto r = send();
  EXPECT_EQ(r.status, 200);
  const auto body = nlohmann::json::parse(r.body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << r.body;
  EXPECT_FALSE(body.contains("data"));
  EXPECT_EQ(handled_, 0);
}

TEST_F(FaultPlanTest, PartialResultsDropTheSecondHalfOfTheFirstArray) {
  server_.fault_plan().add(spec(FaultKind::kPartialResults, FaultPhase::kAfter));
  server_.fault_plan().add(spec(FaultKind::kPartialResults, FaultPhase::kBefore));  // after all the same
  const auto object = nlohmann::json::parse(send().body);
  EXPECT_EQ(object["data"], nlohmann::json::parse(R"([{"id":1},{"id":2}])"));
  EXPECT_EQ(object["meta"]["total"], 4) << "only the array is cut";
  EXPECT_EQ(nlohmann::json::parse(send("GET").body), nlohmann::json::parse("[1]"));
  EXPECT_EQ(handled_, 2);
}

TEST_F(FaultPlanTest, ADelayBeyondTheTimeoutIsAFailureAfterSending) {
  auto before = spec(FaultKind::kDelay, FaultPhase::kBefore);
  before.delay = milliseconds(300);
  auto after = before;
  after.phase = FaultPhase::kAfter;
  server_.fault_plan().add(before);
  server_.fault_plan().add(after);
  EXPECT_EQ(send("POST", milliseconds(100)).failure, http::TransportFailure::kAfterSend);
  EXPECT_EQ(send("POST", milliseconds(100)).failure, http::TransportFailure::kAfterSend);
  // The delayed requests finish on the server's side before it is stopped.
  server_.stop();
  EXPECT_EQ(handled_, 1) << "only the AFTER delay ran the handler";
}

TEST_F(FaultPlanTest, FaultsGoOnlyToTheMethodTheyName) {
  auto f = spec(FaultKind::k500, FaultPhase::kBefore);
  f.method = "POST";
  server_.fault_plan().add(f);
  EXPECT_EQ(send("GET").status, 201);
  EXPECT_EQ(server_.fault_plan().queued(), 1u);
  EXPECT_EQ(send("POST").status, 500);
  EXPECT_EQ(server_.fault_plan().queued(), 0u);
}

TEST_F(FaultPlanTest, IntermittentFaultsHitEveryNthRequestUntilCleared) {
  server_.fault_plan().every(3, spec(FaultKind::k500, FaultPhase::kBefore));
  std::string seen;
  for (int i = 0; i < 7; ++i) seen += send().status == 500 ? 'F' : '.';
  EXPECT_EQ(seen, "F..F..F");
  server_.fault_plan().clear();
  EXPECT_EQ(send().status, 201);
  EXPECT_EQ(send().status, 201);
  EXPECT_EQ(server_.fault_plan().faults_applied(), 3u);
}

TEST(FaultPlanScope, GivesItsPlanToServersBuiltWhileItLives) {
  auto plan = std::make_shared<FaultPlan>();
  auto handler = [](const ServerRequest&) { return ServerResponse{}; };
  std::unique_ptr<LoopbackHttpServer> inside;
  {
    FaultPlanScope scope(plan);
    inside = std::make_unique<LoopbackHttpServer>(handler);
  }
  LoopbackHttpServer outside(handler);
  inside->start();
  outside.start();
  EXPECT_EQ(&inside->fault_plan(), plan.get());
  EXPECT_NE(&outside.fault_plan(), plan.get());
  ASSERT_EQ(plan->server_urls().size(), 1u);
  EXPECT_EQ(plan->server_urls()[0], inside->base_url());
}

}  // namespace
}  // namespace dirsync::testing
