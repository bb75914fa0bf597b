// The Hesh target over loopback HTTP against the Hesh test server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/targets/hesh/hesh_target.h"
#include "tests/support/hesh_test_server.h"

namespace dirsync::targets {
namespace {

using core::Change;
using core::Op;
using core::OutcomeKind;
using nlohmann::json;
using std::chrono::milliseconds;
using testing::HeshFault;
using testing::HeshTestServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kOtherTenant = "9b2f3c1d-5e6a-4b7c-8d9e-0f1a2b3c4d5e";

Change create(const std::string& key, const std::string& email, json extra = json::object()) {
  Change c;
  c.op = Op::kCreate;
  c.key = key;
  c.payload = {{"external_user_id", key}, {"email", email}, {"first_name", "F" + key}, {"last_name", "L" + key}};
  c.payload.update(extra);
  return c;
}

class HeshTargetTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.start(); }

  config::HeshTargetSettings settings(const std::string& tenant = {}) {
    config::HeshTargetSettings s;
    s.base_url = server_.base_url();
    s.tenant_id = core::Secret(tenant.empty() ? server_.tenant() : tenant, "${env:HESH_TENANT_ID}");
    s.batch_size = 100;
    s.http.connect_timeout = milliseconds(2000);
    s.http.timeout = milliseconds(5000);
    s.http.max_attempts = 4;
    return s;
  }

  std::unique_ptr<HeshTarget> target(config::HeshTargetSettings s) {
    return std::make_unique<HeshTarget>(
        std::move(s), [this](milliseconds d) { sleeps_.push_back(d); }, nullptr, [] { return 0.5; });
  }
  std::unique_ptr<HeshTarget> target() { return target(settings()); }

  std::size_t posts() const { return server_.request_log().size(); }

  HeshTestServer server_;
  std::vector<milliseconds> sleeps_;
};

TEST_F(HeshTargetTest, CreatesABatchAndStoresTheIdsHeshGaveDespiteTheEchoBug) {
  const std::vector<Change> batch = {create("E1", "Ann@X.org", {{"phone", "+1 555 0101"}}), create("E2", "bob@x.org")};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->size(), 2u);
  const json ann = server_.find_user_by_email("ann@x.org");
  const json bob = server_.find_user_by_email("bob@x.org");
  ASSERT_FALSE(ann.is_null());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(result.value()[0].target_id, ann["id"]);
  EXPECT_EQ(result.value()[1].target_id, bob["id"]);
  EXPECT_NE(result.value()[0].target_id, result.value()[1].target_id);
  EXPECT_EQ(ann["external_user_id"], "E1");
  EXPECT_EQ(ann["phone"], "+1 555 0101");
  // The server answered with the echo bug on (its default): only the email could match.
  ASSERT_EQ(posts(), 1u);
  EXPECT_EQ(server_.request_log()[0].created, 2u);
}

TEST_F(HeshTargetTest, RecordsUsersHeshSkippedAsAlreadyExisting) {
  server_.add_user({{"email", "ann@x.org"}, {"external_user_id", "old-1"}});
  server_.add_user({{"email", "someone@x.org"}, {"phone", "38000"}});
  const std::vector<Change> batch = {create("E1", "ANN@x.org"), create("E2", "bob@x.org"),
                                     create("E3", "carl@x.org", {{"phone", "38000"}})};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  const auto& o = result.value();
  EXPECT_EQ(o[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(o[0].target_id, "");
  EXPECT_EQ(o[0].message, "already existed (skipped by Hesh)") << "matched by email";
  EXPECT_EQ(o[1].kind, OutcomeKind::kApplied);
  EXPECT_EQ(o[1].target_id, server_.find_user_by_email("bob@x.org")["id"]);
  EXPECT_EQ(o[2].message, "already existed (skipped by Hesh)") << "matched by phone";
  EXPECT_EQ(server_.users().size(), 3u);
  EXPECT_EQ(server_.request_log()[0].skipped, 2u);
}

TEST_F(HeshTargetTest, ResendingTheSameUsersCreatesNobodyTwice) {
  const std::vector<Change> batch = {create("E1", "ann@x.org"), create("E2", "bob@x.org")};
  ASSERT_TRUE(target()->apply(batch).ok());
  auto again = target()->apply(batch);
  ASSERT_TRUE(again.ok());
  for (const auto& o : again.value()) EXPECT_EQ(o.message, hesh::kSkippedNote);
  EXPECT_EQ(server_.users().size(), 2u);
}

TEST_F(HeshTargetTest, SendsTheTenantIdAsTheXTenantIdHeader) {
  server_.add_tenant(kOtherTenant);
  auto result = target(settings(kOtherTenant))->apply(std::vector<Change>{create("E1", "ann@x.org")});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(server_.users(kOtherTenant).size(), 1u);
  EXPECT_TRUE(server_.users().empty()) << "the user belongs to the tenant the header named";
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].path, "/api/v1/public/users/batch");
  bool found = false;
  for (const auto& [name, value] : log[0].headers) found |= name == "x-tenant-id" && value == kOtherTenant;
  EXPECT_TRUE(found);
}

TEST_F(HeshTargetTest, StopsWithAnAuthErrorWhenTheTenantIdIsRefused) {
  auto result = target(settings(kOtherTenant))->apply(std::vector<Change>{create("E1", "ann@x.org")});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, core::ErrorKind::kAuth);
  EXPECT_EQ(result.error().message,
            "Hesh refused the tenant id (HTTP 401): Missing or incorrect x-tenant-id; check tenant_id "
            "(${env:HESH_TENANT_ID})");
  EXPECT_THAT(result.error().message, Not(HasSubstr(kOtherTenant)));
  EXPECT_EQ(posts(), 1u) << "no retry of a 401";
}

TEST_F(HeshTargetTest, SendsTheApiKeyHeshsNewerDocsRequire) {
  server_.require_api_key("key-123");
  auto refused = target()->apply(std::vector<Change>{create("E1", "ann@x.org")});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, core::ErrorKind::kAuth);
  EXPECT_THAT(refused.error().message, HasSubstr("Invalid or missing x-api-key"));
  auto s = settings();
  s.api_key = core::Secret("key-123", "${env:HESH_API_KEY}");
  auto result = target(s)->apply(std::vector<Change>{create("E1", "ann@x.org")});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(server_.users().size(), 1u);
}

TEST_F(HeshTargetTest, RejectsInvalidRecordsAndCreatesTheRest) {
  const std::vector<Change> batch = {create("E1", "a@x.org"), create("E2", "not-an-email"), create("E3", "c@x.org"),
                                     create("E4", "d@"), create("E5", "e@x.org")};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  const auto& o = result.value();
  for (std::size_t i : {0u, 2u, 4u}) EXPECT_EQ(o[i].kind, OutcomeKind::kApplied) << i;
  EXPECT_EQ(o[1].kind, OutcomeKind::kRejected);
  EXPECT_EQ(o[1].message, "users.1.email must be an email");
  EXPECT_EQ(o[3].message, "users.3.email must be an email");
  EXPECT_EQ(server_.users().size(), 3u);
  ASSERT_EQ(posts(), 2u) << "one 400 naming both, then the rest";
  EXPECT_EQ(server_.request_log()[0].status, 400);
  EXPECT_EQ(json::parse(server_.request_log()[1].body)["users"].size(), 3u);
}

TEST_F(HeshTargetTest, SendsUsersSharingAnEmailInSeparateRequests) {
  const std::vector<Change> batch = {create("E1", "same@x.org"), create("E2", "b@x.org"), create("E3", "SAME@x.org")};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok());
  const auto& o = result.value();
  EXPECT_EQ(o[0].target_id, server_.find_user_by_email("same@x.org")["id"]);
  EXPECT_EQ(o[1].kind, OutcomeKind::kApplied);
  EXPECT_EQ(o[2].kind, OutcomeKind::kApplied);
  EXPECT_EQ(o[2].message, hesh::kSkippedNote) << "Hesh skips the second user with that email";
  EXPECT_EQ(posts(), 2u);
  EXPECT_EQ(server_.users().size(), 2u);
}

TEST_F(HeshTargetTest, WaitsOutA429ForItsRetryAfterThroughTheInjectedSleeper) {
  server_.inject(HeshFault::k429, 1, 7);
  auto result = target()->apply(std::vector<Change>{create("E1", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_THAT(sleeps_, ElementsAre(milliseconds(7000)));
  EXPECT_EQ(posts(), 2u);
  EXPECT_EQ(server_.users().size(), 1u);
}

TEST_F(HeshTargetTest, AsksToRetryLaterWhenRateLimitsOutlastTheAttempts) {
  server_.inject(HeshFault::k429, 10, 1);
  auto result = target()->apply(std::vector<Change>{create("E1", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kRetry);
  EXPECT_EQ(posts(), 4u);
  EXPECT_EQ(sleeps_.size(), 3u);
}

TEST_F(HeshTargetTest, HonoursTheServersRateLimitWindowThroughRetryAfter) {
  server_.set_rate_limits({{1, milliseconds(3'600'000)}});
  ASSERT_TRUE(target()->apply(std::vector<Change>{create("E1", "a@x.org")}).ok());
  auto result = target()->apply(std::vector<Change>{create("E2", "b@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kRetry);
  EXPECT_EQ(server_.throttled_count(), 4u);
  ASSERT_EQ(sleeps_.size(), 3u);
  // Retry-After says about an hour; the policy caps it at retry_after_max (2 min).
  EXPECT_EQ(sleeps_[0], milliseconds(120'000));
}

// Re-sending a create is safe on Hesh: a copy of a request that was already
// processed is answered by skipping the users it created.
TEST_F(HeshTargetTest, RetriesACreateAfterA500BecauseHeshSkipsExistingUsers) {
  server_.inject(HeshFault::k500);
  auto result = target()->apply(std::vector<Change>{create("E1", "ann@x.org"), create("E2", "bob@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(result.value()[0].target_id, server_.find_user_by_email("ann@x.org")["id"]);
  EXPECT_EQ(posts(), 2u) << "the server's log shows the POST sent twice";
  EXPECT_THAT(sleeps_, ElementsAre(milliseconds(250)));
}

TEST_F(HeshTargetTest, ResentCreateWhoseFirstCopyLandedCreatesNoDuplicate) {
  server_.inject(HeshFault::k500AfterApplying);
  auto result = target()->apply(std::vector<Change>{create("E1", "ann@x.org"), create("E2", "bob@x.org")});
  ASSERT_TRUE(result.ok());
  for (const auto& o : result.value()) {
    EXPECT_EQ(o.kind, OutcomeKind::kApplied);
    EXPECT_EQ(o.message, hesh::kSkippedNote);
  }
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].created, 2u);
  EXPECT_EQ(log[1].skipped, 2u);
  EXPECT_EQ(server_.users().size(), 2u);
}

TEST_F(HeshTargetTest, RetriesACreateWhoseConnectionDropped) {
  server_.inject(HeshFault::kClose);
  server_.inject(HeshFault::kCloseAfterApplying);
  auto result = target()->apply(std::vector<Change>{create("E1", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(result.value()[0].message, hesh::kSkippedNote) << "the second copy was processed, its answer lost";
  EXPECT_EQ(posts(), 3u);
  EXPECT_EQ(server_.users().size(), 1u);
}

TEST_F(HeshTargetTest, ReportsUnknownWhenEveryAttemptAnswers500) {
  server_.inject(HeshFault::k500, 10);
  auto result = target()->apply(std::vector<Change>{create("E1", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kUnknown);
  EXPECT_THAT(result.value()[0].message, HasSubstr("after 4 attempts: HTTP 500: Internal server error"));
  EXPECT_EQ(posts(), 4u);
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(HeshTargetTest, CallsAnUnreadableAnswerUnknown) {
  server_.inject(HeshFault::kMalformedJson);
  auto result = target()->apply(std::vector<Change>{create("E1", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kUnknown);
  EXPECT_EQ(posts(), 1u);
}

TEST_F(HeshTargetTest, StopsWithATargetErrorWhenHeshIsUnreachable) {
  auto s = settings();
  server_.stop();
  auto result = target(s)->apply(std::vector<Change>{create("E1", "ann@x.org")});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, core::ErrorKind::kTarget);
  EXPECT_THAT(result.error().message, HasSubstr("Hesh is unreachable after 4 attempts"));
  EXPECT_THAT(result.error().message, Not(HasSubstr(server_.tenant())));
}

TEST_F(HeshTargetTest, RejectsAChangeMissingItsEmailWithoutSendingIt) {
  Change c = create("E1", "");
  auto result = target()->apply(std::vector<Change>{c});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kRejected);
  EXPECT_EQ(posts(), 0u);
}

// Answers from a script, in order, for the cases a live server cannot stage.
class ScriptedTransport : public http::Transport {
 public:
  explicit ScriptedTransport(std::vector<http::Response> answers) : answers_(std::move(answers)) {}
  http::Response send(const http::Request&) override {
    if (next_ >= answers_.size()) return answer(500, R"({"message":"script exhausted"})");
    return answers_[next_++];
  }
  static http::Response answer(int status, std::string body) {
    http::Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }

 private:
  std::vector<http::Response> answers_;
  std::size_t next_ = 0;
};

TEST_F(HeshTargetTest, KeepsWhatLandedWhenTheTenantIsRefusedHalfwayThroughABatch) {
  // Two users share an email: two requests. The first lands, the second is refused.
  std::vector<http::Response> script = {
      ScriptedTransport::answer(200, R"([{"id":"u-1","email":"a@x.org","external_user_id":"u-1"}])"),
      ScriptedTransport::answer(401, R"({"statusCode":401,"message":"Missing or incorrect x-tenant-id"})"),
  };
  HeshTarget t(settings(), [](milliseconds) {}, std::make_unique<ScriptedTransport>(script), [] { return 0.5; });
  auto result = t.apply(std::vector<Change>{create("E1", "a@x.org"), create("E2", "A@x.org")});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(result.value()[0].target_id, "u-1");
  EXPECT_EQ(result.value()[1].kind, OutcomeKind::kRetry);
  EXPECT_THAT(result.value()[1].message, HasSubstr("Hesh refused the tenant id (HTTP 401)"));
}

TEST_F(HeshTargetTest, CallsAnAnswerAboutOtherUsersUnknown) {
  std::vector<http::Response> script = {
      ScriptedTransport::answer(200, R"([{"id":"u-9","email":"zed@x.org","external_user_id":"u-9"}])")};
  HeshTarget t(settings(), [](milliseconds) {}, std::make_unique<ScriptedTransport>(script), [] { return 0.5; });
  auto result = t.apply(std::vector<Change>{create("E1", "a@x.org"), create("E2", "b@x.org")});
  ASSERT_TRUE(result.ok());
  for (const auto& o : result.value()) EXPECT_EQ(o.kind, OutcomeKind::kUnknown);
}

TEST_F(HeshTargetTest, DeclaresItsCapabilitiesAndClampsTheBatchSize) {
  auto s = settings();
  s.batch_size = 5000;
  s.base_url += "/";
  auto t = target(s);
  EXPECT_EQ(t->batch_size(), 1000u);
  EXPECT_TRUE(t->capabilities().create);
  EXPECT_FALSE(t->capabilities().update);
  EXPECT_FALSE(t->capabilities().detach);
  EXPECT_FALSE(t->capabilities().full_set);
  EXPECT_EQ(t->capabilities().max_batch, 1000u);
  EXPECT_EQ(t->describe(), "hesh " + server_.base_url());
  EXPECT_THAT(t->describe(), Not(HasSubstr(server_.tenant())));
}

TEST_F(HeshTargetTest, UsesTheConfiguredRateLimitsOrHeshsDocumentedOnes) {
  EXPECT_EQ(target()->rate_limits(), HeshTarget::default_rate_limits());
  auto s = settings();
  s.http.rate_limits = std::vector<config::RateWindow>{};
  EXPECT_TRUE(target(s)->rate_limits().empty()) << "rate_limits: off";
  s.http.rate_limits = std::vector<config::RateWindow>{{5, milliseconds(1000)}};
  EXPECT_THAT(target(s)->rate_limits(), ElementsAre(config::RateWindow{5, milliseconds(1000)}));
}

// Answers every request with `[]` (all users already existed) and counts them.
class SkippingTransport : public http::Transport {
 public:
  explicit SkippingTransport(std::size_t* count) : count_(count) {}
  http::Response send(const http::Request&) override {
    ++*count_;
    http::Response r;
    r.status = 200;
    r.body = "[]";
    return r;
  }

 private:
  std::size_t* count_;
};

TEST_F(HeshTargetTest, PacesRequestsToHeshsDocumentedLimitsOnAFakeClock) {
  using Clock = std::chrono::steady_clock;
  Clock::time_point now{};  // a fake clock that moves only when the limiter sleeps
  std::size_t sent = 0;
  HeshTarget t(
      settings(),
      [&](milliseconds d) {
        sleeps_.push_back(d);
        now += d;
      },
      std::make_unique<SkippingTransport>(&sent), [] { return 0.5; }, [&] { return now; });
  for (int i = 0; i < 16; ++i) {
    auto r = t.apply(std::vector<Change>{create("E" + std::to_string(i), "u" + std::to_string(i) + "@x.org")});
    ASSERT_TRUE(r.ok());
  }
  EXPECT_EQ(sent, 16u);
  // 15 per second: the 16th waits out the second (plus the limiter's margin).
  EXPECT_THAT(sleeps_, ElementsAre(milliseconds(1000) + http::RateLimiter::kDefaultMargin));
}

TEST(HeshTargetFactory, BuildsATargetWithoutAnyIo) {
  config::HeshTargetSettings s;
  s.tenant_id = core::Secret("40dd0c53-2fa7-4193-82ae-14d4e62c20fb", "(literal)");
  auto t = make_hesh_target(s);
  EXPECT_EQ(t->describe(), "hesh https://api.hesh.app");
  EXPECT_EQ(t->batch_size(), 100u);
}

}  // namespace
}  // namespace dirsync::targets
