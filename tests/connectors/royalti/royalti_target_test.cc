// The Royalti target over loopback HTTP against the Royalti test server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/targets/royalti/royalti_target.h"
#include "tests/support/royalti_test_server.h"

namespace dirsync::targets {
namespace {

using core::Change;
using core::Op;
using core::OutcomeKind;
using nlohmann::json;
using std::chrono::milliseconds;
using testing::RoyaltiFault;
using testing::RoyaltiTestServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kToken = "royalti-test-token-Xy71";

Change create(const std::string& first, const std::string& last, const std::string& email, json extra = json::object()) {
  Change c;
  c.op = Op::kCreate;
  c.key = "key-" + email;
  c.payload = {{"firstName", first}, {"lastName", last}, {"email", email}};
  c.payload.update(extra);
  return c;
}

class RoyaltiTargetTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.start(); }

  config::RoyaltiTargetSettings settings(const std::string& token = kToken) {
    config::RoyaltiTargetSettings s;
    s.base_url = server_.base_url();
    s.token = core::Secret(token, "${env:ROYALTI_TOKEN}");
    s.batch_size = 100;
    s.http.connect_timeout = milliseconds(2000);
    s.http.timeout = milliseconds(5000);
    s.http.max_attempts = 3;
    return s;
  }

  std::unique_ptr<RoyaltiTarget> target(config::RoyaltiTargetSettings s) {
    return std::make_unique<RoyaltiTarget>(
        std::move(s), [this](milliseconds d) { sleeps_.push_back(d); }, nullptr, [] { return 0.5; });
  }
  std::unique_ptr<RoyaltiTarget> target() { return target(settings()); }

  std::vector<json> posted_bodies() const {
    std::vector<json> out;
    for (const auto& r : server_.request_log()) out.push_back(json::parse(r.body));
    return out;
  }

  RoyaltiTestServer server_{testing::RoyaltiServerOptions{kToken, testing::ProcessedCount::kSeed, false, true}};
  std::vector<milliseconds> sleeps_;
};

TEST_F(RoyaltiTargetTest, DeclaresItselfCreateOnlyAndDescribesItselfWithoutTheToken) {
  auto t = target();
  EXPECT_TRUE(t->capabilities().create);
  EXPECT_FALSE(t->capabilities().update);
  EXPECT_FALSE(t->capabilities().detach);
  EXPECT_FALSE(t->capabilities().full_set);
  EXPECT_EQ(t->capabilities().max_batch, 1000u);
  EXPECT_EQ(t->describe(), "royalti " + server_.base_url());
  EXPECT_TRUE(t->rate_limits().empty()) << "Royalti documents no limits";
  auto s = settings();
  s.batch_size = 5000;
  EXPECT_EQ(target(s)->batch_size(), 1000u);
  EXPECT_EQ(server_.request_count(), 0u) << "construction does no I/O";
}

TEST_F(RoyaltiTargetTest, CreatesUsersWithoutInvitingAnyone) {
  const std::vector<Change> batch = {create("Ann", "Lee", "ann@x.org", {{"country", "NG"}}),
                                     create("Bo", "Li", "bo@x.org", {{"phone", ""}})};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->size(), 2u);
  for (const auto& o : result.value()) {
    EXPECT_EQ(o.kind, OutcomeKind::kApplied);
    EXPECT_EQ(o.target_id, "");
  }
  EXPECT_EQ(server_.find_user_by_email("ann@x.org")["country"], "NG");
  EXPECT_FALSE(server_.find_user_by_email("bo@x.org").contains("phone"));
  ASSERT_EQ(server_.request_count(), 1u);
  const auto log = server_.request_log();
  EXPECT_EQ(log[0].method, "POST");
  EXPECT_EQ(log[0].path, "/user/bulk");
  EXPECT_EQ(log[0].status, 201);
  EXPECT_EQ(json::parse(log[0].body)["sendEmail"], false);
  EXPECT_TRUE(server_.invitations().empty()) << "Royalti invites by default; dirsync must say no";
}

TEST_F(RoyaltiTargetTest, InvitesCreatedUsersOnlyWhenTheJobAsksWithItsRedirectAndMessage) {
  server_.add_user({{"firstName", "Old"}, {"lastName", "Timer"}, {"email", "old@x.org"}});
  auto s = settings();
  s.send_email = true;
  s.redirect_url = "https://app.example/welcome";
  s.message = "Welcome to the label";
  auto result = target(s)->apply(std::vector<Change>{create("Ann", "Lee", "ann@x.org"), create("Old", "Timer", "old@x.org")});
  ASSERT_TRUE(result.ok());
  const auto invited = server_.invitations();
  ASSERT_EQ(invited.size(), 1u) << "an existing user is not invited again";
  EXPECT_EQ(invited[0].email, "ann@x.org");
  EXPECT_EQ(invited[0].redirect_url, "https://app.example/welcome");
  EXPECT_EQ(invited[0].message, "Welcome to the label");
}

TEST_F(RoyaltiTargetTest, ReportsExistingUsersAsAppliedAndInvalidEmailsAsRejected) {
  server_.add_user({{"firstName", "Jane"}, {"lastName", "Doe"}, {"email", "jane@x.org"}});
  const std::vector<Change> batch = {create("John", "Doe", "john@x.org"), create("Jane", "Doe", "JANE@x.org"),
                                     create("Jacob", "Doe", "jacob@"), create("Jericho", "Doe", "jericho@x.org"),
                                     create("Jake", "Doe", "jake at x.org")};
  for (bool reverse : {false, true}) {
    SCOPED_TRACE(reverse ? "results in reverse order" : "results in request order");
    server_.set_reverse_results(reverse);
    auto result = target()->apply(batch);
    ASSERT_TRUE(result.ok());
    const auto& o = result.value();
    ASSERT_EQ(o.size(), 5u);
    EXPECT_EQ(o[1].kind, OutcomeKind::kApplied);
    EXPECT_EQ(o[1].message, "already associated with the workspace");
    EXPECT_EQ(o[2].kind, OutcomeKind::kRejected);
    EXPECT_EQ(o[2].message, "Invalid email format for Jacob Doe");
    EXPECT_EQ(o[4].kind, OutcomeKind::kRejected);
    EXPECT_EQ(o[4].message, "Invalid email format for Jake Doe");
    EXPECT_EQ(o[0].kind, OutcomeKind::kApplied);
    EXPECT_EQ(o[3].kind, OutcomeKind::kApplied);
    if (!reverse) {
      EXPECT_EQ(o[0].message, "");
    } else {
      EXPECT_EQ(o[0].message, "already associated with the workspace") << "created by the first round";
    }
  }
  EXPECT_EQ(server_.users().size(), 3u);
}

TEST_F(RoyaltiTargetTest, NeverSendsTwoUsersWithOneDisplayNameInARequest) {
  // The server can only say "John Doe" was created and "Invalid email format
  // for John Doe": in one request nobody could tell which John that was.
  const std::vector<Change> batch = {create("John", "Doe", "john1@x.org"), create("Ann", "Lee", "ann@x.org"),
                                     create("John", "Doe", "john2@"),      create("john", " DOE", "john3@x.org"),
                                     create("Bo", "Li", "bo@x.org")};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok());
  const auto& o = result.value();
  EXPECT_EQ(o[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(o[1].kind, OutcomeKind::kApplied);
  EXPECT_EQ(o[2].kind, OutcomeKind::kRejected);
  EXPECT_EQ(o[2].message, "Invalid email format for John Doe");
  EXPECT_EQ(o[3].kind, OutcomeKind::kApplied);
  EXPECT_EQ(o[4].kind, OutcomeKind::kApplied);
  const auto bodies = posted_bodies();
  ASSERT_EQ(bodies.size(), 3u);
  std::vector<std::vector<std::string>> emails;
  for (const auto& b : bodies) {
    std::vector<std::string> e;
    for (const auto& u : b["users"]) e.push_back(u["email"]);
    emails.push_back(e);
  }
  EXPECT_THAT(emails[0], ElementsAre("john1@x.org", "ann@x.org", "bo@x.org"));
  EXPECT_THAT(emails[1], ElementsAre("john2@"));
  EXPECT_THAT(emails[2], ElementsAre("john3@x.org"));
  EXPECT_FALSE(server_.find_user_by_email("john3@x.org").is_null());
}

TEST_F(RoyaltiTargetTest, AnInternalErrorThatNamesNobodyLeavesItsUserUnknownAndTheOthersApplied) {
  server_.fail_user("bo@x.org", "Request failed with status code 502", /*created_anyway=*/true);
  const std::vector<Change> batch = {create("Ann", "Lee", "ann@x.org"), create("Bo", "Li", "bo@x.org"),
                                     create("Cy", "Ng", "cy@x.org")};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(result.value()[1].kind, OutcomeKind::kUnknown);
  EXPECT_THAT(result.value()[1].message, HasSubstr("\"Request failed with status code 502\""));
  EXPECT_EQ(result.value()[2].kind, OutcomeKind::kApplied);

  // Royalti did store Bo: the next run's create is answered "already associated".
  auto again = target()->apply(std::vector<Change>{batch[1]});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(again.value()[0].message, "already associated with the workspace");
  EXPECT_EQ(server_.users().size(), 3u);
}

TEST_F(RoyaltiTargetTest, StopsWithAnAuthenticationErrorWhenTheTokenIsRefused) {
  auto result = target(settings("wrong-token-value-Q8"))->apply(std::vector<Change>{create("Ann", "Lee", "ann@x.org")});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, core::ErrorKind::kAuth);
  EXPECT_EQ(result.error().message, "Royalti refused the token (HTTP 401): Unauthorized");
  EXPECT_THAT(result.error().message, Not(HasSubstr("wrong-token-value-Q8")));
  EXPECT_EQ(server_.request_count(), 1u) << "no retry of a 401";
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(RoyaltiTargetTest, WaitsForRetryAfterWhenThrottled) {
  server_.inject(RoyaltiFault::k429, 1, /*retry_after_seconds=*/7);
  auto result = target()->apply(std::vector<Change>{create("Ann", "Lee", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_THAT(sleeps_, ElementsAre(milliseconds(7000)));
  EXPECT_EQ(server_.request_count(), 2u);
  EXPECT_EQ(server_.request_log()[0].status, 429);
}

TEST_F(RoyaltiTargetTest, StillThrottledAfterEveryAttemptLeavesTheUsersForTheNextRun) {
  server_.inject(RoyaltiFault::k429, 3);
  auto result = target()->apply(std::vector<Change>{create("Ann", "Lee", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kRetry);
  EXPECT_THAT(result.value()[0].message, HasSubstr("Royalti asked to retry later after 3 attempts (HTTP 429"));
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(RoyaltiTargetTest, RetriesAServerErrorBecauseARepeatedCreateCannotDuplicate) {
  server_.inject(RoyaltiFault::k500);
  auto result = target()->apply(std::vector<Change>{create("Ann", "Lee", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(result.value()[0].message, "");
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].status, 500);
  EXPECT_EQ(log[1].status, 201);
  EXPECT_EQ(log[0].body, log[1].body) << "the same request, re-sent";
  EXPECT_EQ(server_.users().size(), 1u);
}

TEST_F(RoyaltiTargetTest, AServerErrorAfterTheWorkWasDoneIsSettledByAlreadyAssociated) {
  auto s = settings();
  s.send_email = true;
  server_.inject(RoyaltiFault::k500AfterApplying);
  auto result = target(s)->apply(std::vector<Change>{create("Ann", "Lee", "ann@x.org"), create("Bo", "Li", "bo@x.org")});
  ASSERT_TRUE(result.ok());
  for (const auto& o : result.value()) {
    EXPECT_EQ(o.kind, OutcomeKind::kApplied);
    EXPECT_THAT(o.message, HasSubstr("already associated with the workspace (the request was sent 2 times"));
  }
  EXPECT_EQ(server_.request_count(), 2u);
  EXPECT_EQ(server_.users().size(), 2u) << "nobody created twice";
  EXPECT_EQ(server_.invitations().size(), 2u) << "nobody invited twice";
}

TEST_F(RoyaltiTargetTest, ADroppedConnectionIsRetriedWithoutDuplicatingAnyone) {
  server_.inject(RoyaltiFault::kClose);               // not processed
  server_.inject(RoyaltiFault::kCloseAfterApplying);  // processed, answer lost
  auto result = target()->apply(std::vector<Change>{create("Ann", "Lee", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_THAT(result.value()[0].message, HasSubstr("already associated with the workspace"));
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[0].status, 0);
  EXPECT_EQ(log[1].status, 0);
  EXPECT_EQ(log[2].status, 201);
  EXPECT_EQ(server_.users().size(), 1u);
}

TEST_F(RoyaltiTargetTest, AServerErrorOnEveryAttemptLeavesTheUsersUnknown) {
  server_.inject(RoyaltiFault::k500, 3);
  auto result = target()->apply(std::vector<Change>{create("Ann", "Lee", "ann@x.org"), create("Bo", "Li", "bo@x.org")});
  ASSERT_TRUE(result.ok());
  for (const auto& o : result.value()) {
    EXPECT_EQ(o.kind, OutcomeKind::kUnknown);
    EXPECT_THAT(o.message, HasSubstr("outcome unknown after 3 attempts: HTTP 500: Internal server error"));
  }
  EXPECT_EQ(server_.request_count(), 3u) << "max_attempts bounds the re-sends";
}

TEST_F(RoyaltiTargetTest, AnUnreadableAnswerIsUnknownAndTheNextRunSettlesIt) {
  server_.inject(RoyaltiFault::kMalformedJson);
  const std::vector<Change> batch = {create("Ann", "Lee", "ann@x.org")};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kUnknown);
  EXPECT_THAT(result.value()[0].message, HasSubstr("with a body dirsync cannot read"));
  EXPECT_EQ(server_.request_count(), 1u) << "a 2xx is final: not re-sent in the same run";
  auto again = target()->apply(batch);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(again.value()[0].message, "already associated with the workspace");
  EXPECT_EQ(server_.users().size(), 1u);
}

TEST_F(RoyaltiTargetTest, AWrongBaseUrlRejectsTheUsersWithRoyaltisWords) {
  auto s = settings();
  s.base_url = server_.base_url() + "/v9";
  auto result = target(s)->apply(std::vector<Change>{create("Ann", "Lee", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kRejected);
  EXPECT_EQ(result.value()[0].message, "Royalti rejected the request (HTTP 404: Cannot POST /v9/user/bulk)");
}

TEST_F(RoyaltiTargetTest, AnUnreachableServerStopsTheJob) {
  auto s = settings();
  server_.stop();  // nothing listens on that port any more
  s.http.max_attempts = 2;
  auto result = target(s)->apply(std::vector<Change>{create("Ann", "Lee", "ann@x.org")});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, core::ErrorKind::kTarget);
  EXPECT_THAT(result.error().message, HasSubstr("Royalti is unreachable after 2 attempts"));
  EXPECT_EQ(sleeps_.size(), 1u);
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

TEST_F(RoyaltiTargetTest, KeepsWhatLandedWhenTheTokenIsRefusedBetweenTheRequestsOfABatch) {
  std::vector<http::Response> script = {
      ScriptedTransport::answer(201, R"({"message":"Done.","createdUsers":["John Doe","Ann Lee"],"errors":[]})"),
      ScriptedTransport::answer(401, R"({"statusCode":401,"message":"Unauthorized"})"),
  };
  RoyaltiTarget t(settings(), [](milliseconds) {}, std::make_unique<ScriptedTransport>(script), [] { return 0.5; });
  const std::vector<Change> batch = {create("John", "Doe", "a@x.org"), create("John", "Doe", "b@x.org"),
                                     create("Ann", "Lee", "c@x.org")};
  auto result = t.apply(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  const auto& o = result.value();
  EXPECT_EQ(o[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(o[2].kind, OutcomeKind::kApplied);
  EXPECT_EQ(o[1].kind, OutcomeKind::kRetry);
  EXPECT_EQ(o[1].message, "Royalti refused the token (HTTP 401): Unauthorized");
}

TEST_F(RoyaltiTargetTest, RejectsLocallyWhatRoyaltiCouldNotReportOnAndSendsTheRest) {
  const std::vector<Change> batch = {create("", " ", "nameless@x.org"), create("Ann", "Lee", "ann@x.org")};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kRejected);
  EXPECT_EQ(result.value()[1].kind, OutcomeKind::kApplied);
  ASSERT_EQ(server_.request_count(), 1u);
  EXPECT_EQ(posted_bodies()[0]["users"].size(), 1u);
}

TEST_F(RoyaltiTargetTest, PacesRequestsOnlyToTheLimitsTheJobConfigures) {
  // Three Johns: three requests, since one request may hold only one of them.
  const std::vector<Change> johns = {create("John", "Doe", "j1@x.org"), create("John", "Doe", "j2@x.org"),
                                     create("John", "Doe", "j3@x.org")};
  using Clock = std::chrono::steady_clock;
  Clock::time_point now{};  // a fake clock that moves only when the limiter sleeps
  auto make = [&](config::RoyaltiTargetSettings s) {
    return RoyaltiTarget(
        std::move(s),
        [&](milliseconds d) {
          sleeps_.push_back(d);
          now += d;
        },
        nullptr, [] { return 0.5; }, [&] { return now; });
  };
  auto unlimited = make(settings());
  ASSERT_TRUE(unlimited.apply(johns).ok());
  EXPECT_TRUE(sleeps_.empty()) << "Royalti documents no limits: nothing waits by default";

  auto s = settings();
  s.http.rate_limits = std::vector<config::RateWindow>{{2, milliseconds(1000)}};
  auto limited = make(s);
  EXPECT_THAT(limited.rate_limits(), ElementsAre(config::RateWindow{2, milliseconds(1000)}));
  auto result = limited.apply(johns);
  ASSERT_TRUE(result.ok());
  for (const auto& o : result.value()) EXPECT_EQ(o.kind, OutcomeKind::kApplied);
  EXPECT_EQ(server_.request_count(), 6u);
  // 2 per second: the third request waits out the second (plus the limiter's margin).
  EXPECT_THAT(sleeps_, ElementsAre(milliseconds(1000) + http::RateLimiter::kDefaultMargin));
}

TEST(RoyaltiTargetFactory, BuildsATargetWithoutAnyIo) {
  config::RoyaltiTargetSettings s;
  s.base_url = "https://server26-dot-royalti-project.uc.r.appspot.com/";
  s.token = core::Secret("factory-token-7", "(literal)");
  auto t = make_royalti_target(s);
  EXPECT_EQ(t->describe(), "royalti https://server26-dot-royalti-project.uc.r.appspot.com");
  EXPECT_EQ(t->batch_size(), 100u);
  EXPECT_EQ(t->fields().size(), 9u);
}

}  // namespace
}  // namespace dirsync::targets
