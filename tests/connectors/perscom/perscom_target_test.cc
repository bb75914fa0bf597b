// The PERSCOM target over loopback HTTP against the PERSCOM test server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "connectors/targets/perscom/perscom_target.h"
#include "tests/support/perscom_test_server.h"

namespace dirsync::targets {
namespace {

using core::Change;
using core::Op;
using core::OutcomeKind;
using nlohmann::json;
using std::chrono::milliseconds;
using testing::ErrorStyle;
using testing::Fault;
using testing::PerscomTestServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

Change create(const std::string& name, const std::string& email, json extra = json::object()) {
  Change c;
  c.op = Op::kCreate;
  c.key = email;
  c.payload = {{"name", name}, {"email", email}};
  c.payload.update(extra);
  return c;
}

Change update(std::int64_t id, json payload, std::vector<std::string> changed, bool resync = false) {
  Change c;
  c.op = Op::kUpdate;
  c.key = "k" + std::to_string(id);
  c.target_id = std::to_string(id);
  c.payload = std::move(payload);
  c.changed_fields = std::move(changed);
  c.resync = resync;
  return c;
}

Change detach(std::int64_t id) {
  Change c;
  c.op = Op::kDetach;
  c.key = "k" + std::to_string(id);
  c.target_id = std::to_string(id);
  return c;
}

class PerscomTargetTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.start(); }

  config::PerscomTargetSettings settings(const std::string& token = "test-token") {
    config::PerscomTargetSettings s;
    s.base_url = server_.base_url();
    s.api_version = "v2";
    s.token = core::Secret(token, "${env:PERSCOM_TOKEN}");
    s.batch_size = 100;
    s.http.connect_timeout = milliseconds(2000);
    s.http.timeout = milliseconds(5000);
    s.http.max_attempts = 4;
    return s;
  }

  std::unique_ptr<PerscomTarget> target(config::PerscomTargetSettings s) {
    return std::make_unique<PerscomTarget>(
        std::move(s), [this](milliseconds d) { sleeps_.push_back(d); }, nullptr, [] { return 0.5; });
  }
  std::unique_ptr<PerscomTarget> target() { return target(settings()); }

  std::size_t count(const std::string& method) const {
    std::size_t n = 0;
    // Batch requests only (adopting a taken email also searches).
    for (const auto& r : server_.request_log()) n += r.method == method && r.path.find("/users/batch") != std::string::npos;
    return n;
  }

  PerscomTestServer server_;
  std::vector<milliseconds> sleeps_;
};

TEST_F(PerscomTargetTest, CreatesABatchAndReturnsTheIdsPerscomGave) {
  server_.add_user({{"name", "Existing"}, {"email", "old@x.org"}});  // so that ids do not start at 1
  const std::vector<Change> batch = {create("Ann", "Ann@X.org", {{"rank_id", 3}}), create("Bob", "bob@x.org")};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->size(), 2u);
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(result.value()[0].target_id, "2");
  EXPECT_EQ(result.value()[1].target_id, "3");
  EXPECT_EQ(server_.find_user_by_email("ann@x.org")["rank_id"], 3);
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(PerscomTargetTest, StopsWithAnAuthenticationErrorWhenTheTokenIsRefused) {
  auto result = target(settings("wrong-token-value"))->apply(std::vector<Change>{create("Ann", "ann@x.org")});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, core::ErrorKind::kAuth);
  EXPECT_EQ(result.error().message, "PERSCOM refused the token (HTTP 401): Unauthenticated.");
  EXPECT_THAT(result.error().message, Not(HasSubstr("wrong-token-value")));
  EXPECT_EQ(server_.request_count(), 1u) << "no retry of a 401";
}

TEST_F(PerscomTargetTest, IsolatesInvalidRecordsAndPushesTheRest) {
  server_.add_user({{"name", "Old"}, {"email", "taken@x.org"}});
  const std::vector<Change> batch = {create("A", "a@x.org"),     create("B", "taken@x.org"),
                                     create("C", "c@x.org"),     create("D", "not-an-email"),
                                     create("E", "e@x.org"),     create("F", "f@x.org", {{"unit_id", "ten"}}),
                                     create("G", "g@x.org")};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  const auto& o = result.value();
  ASSERT_EQ(o.size(), 7u);
  for (std::size_t i : {0u, 2u, 4u, 6u}) EXPECT_EQ(o[i].kind, OutcomeKind::kApplied) << i;
  EXPECT_EQ(o[1].kind, OutcomeKind::kApplied) << "the taken email's user is adopted";
  EXPECT_EQ(o[1].target_id, "1");
  EXPECT_EQ(o[1].current, json({{"name", "Old"}, {"email", "taken@x.org"}}));
  EXPECT_EQ(o[3].kind, OutcomeKind::kRejected);
  EXPECT_EQ(o[3].message, "The resources.2.email field must be a valid email address.")
      << "PERSCOM numbers the records of the request it was sent: the re-sent rest";
  EXPECT_EQ(o[5].kind, OutcomeKind::kRejected);
  EXPECT_EQ(o[5].message, "The resources.3.unit_id field must be an integer.");
  EXPECT_EQ(server_.users().size(), 5u);
  for (const char* email : {"a@x.org", "c@x.org", "e@x.org", "g@x.org"}) {
    EXPECT_FALSE(server_.find_user_by_email(email).is_null()) << email;
  }
  EXPECT_EQ(count("POST"), 4u) << "PERSCOM names one error per answer: one round per invalid record";
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

TEST_F(PerscomTargetTest, KeepsWhatLandedWhenTheTokenIsRefusedHalfwayThroughABatch) {
  // A 422 that names no record splits the batch; the first half lands; then
  // the token is refused. The first half must still reach the snapshot.
  std::vector<http::Response> script = {
      ScriptedTransport::answer(422, R"({"message":"The given data was invalid."})"),
      ScriptedTransport::answer(200, R"({"data":[{"id":7,"email":"a@x.org"},{"id":8,"email":"b@x.org"}]})"),
      ScriptedTransport::answer(401, R"({"message":"Unauthenticated."})"),
  };
  PerscomTarget t(settings(), [](milliseconds) {}, std::make_unique<ScriptedTransport>(script), [] { return 0.5; });
  const std::vector<Change> batch = {create("A", "a@x.org"), create("B", "b@x.org"), create("C", "c@x.org"),
                                     create("D", "d@x.org")};
  auto result = t.apply(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  const auto& o = result.value();
  ASSERT_EQ(o.size(), 4u);
  EXPECT_EQ(o[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(o[0].target_id, "7");
  EXPECT_EQ(o[1].target_id, "8");
  EXPECT_EQ(o[2].kind, OutcomeKind::kRetry);
  EXPECT_EQ(o[3].kind, OutcomeKind::kRetry);
  EXPECT_EQ(o[2].message, "PERSCOM refused the token (HTTP 401): Unauthenticated.");
}

TEST_F(PerscomTargetTest, IsolatesEveryNamedRecordInOneRoundWithLaravelErrors) {
  server_.set_error_style(ErrorStyle::kLaravel);
  server_.add_user({{"name", "Old"}, {"email", "taken@x.org"}});
  const std::vector<Change> batch = {create("A", "a@x.org"), create("B", "taken@x.org"), create("C", "c@x.org"),
                                     create("D", "not-an-email")};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(result.value()[1].kind, OutcomeKind::kApplied) << "adopted";
  EXPECT_THAT(result.value()[1].message, HasSubstr("adopted"));
  EXPECT_EQ(result.value()[2].kind, OutcomeKind::kApplied);
  EXPECT_EQ(result.value()[3].message, "The resources.3.email field must be a valid email address.");
  EXPECT_EQ(count("POST"), 2u);
}

TEST_F(PerscomTargetTest, RejectsBothUsersThatShareAnEmailAndPushesTheOthers) {
  server_.set_error_style(ErrorStyle::kLaravel);
  const std::vector<Change> batch = {create("A", "same@x.org"), create("B", "b@x.org"), create("C", "SAME@x.org")};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kRejected);
  EXPECT_EQ(result.value()[1].kind, OutcomeKind::kApplied);
  EXPECT_EQ(result.value()[2].kind, OutcomeKind::kRejected);
  EXPECT_THAT(result.value()[2].message, HasSubstr("duplicate value"));
}

TEST_F(PerscomTargetTest, PatchesOnlyTheChangedFieldsSoTheUsersOwnEmailIsNotRefused) {
  const auto id = server_.add_user({{"name", "Ann"}, {"email", "ann@x.org"}, {"rank_id", 1}});
  auto result = target()->apply(
      std::vector<Change>{update(id, {{"name", "Ann B"}, {"email", "ann@x.org"}, {"rank_id", 2}}, {"name", "rank_id"})});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied) << result.value()[0].message;
  EXPECT_EQ(result.value()[0].target_id, std::to_string(id));
  EXPECT_EQ(server_.users()[0]["name"], "Ann B");
  EXPECT_EQ(server_.users()[0]["rank_id"], 2);
  EXPECT_EQ(json::parse(server_.request_log()[0].body),
            json({{"resources", {{std::to_string(id), {{"name", "Ann B"}, {"rank_id", 2}}}}}}));
}

TEST_F(PerscomTargetTest, ResyncsEveryFieldButTheEmail) {
  const auto id = server_.add_user({{"name", "Drifted"}, {"email", "ann@x.org"}, {"rank_id", 9}});
  auto result =
      target()->apply(std::vector<Change>{update(id, {{"name", "Ann"}, {"email", "ann@x.org"}, {"rank_id", 2}}, {}, true)});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied) << result.value()[0].message;
  EXPECT_EQ(server_.users()[0]["name"], "Ann");
  EXPECT_EQ(server_.users()[0]["rank_id"], 2);
}

TEST_F(PerscomTargetTest, RejectsAnEmailChangeToAnotherUsersEmailAndUpdatesTheRest) {
  const auto ann = server_.add_user({{"name", "Ann"}, {"email", "ann@x.org"}});
  const auto bob = server_.add_user({{"name", "Bob"}, {"email", "bob@x.org"}});
  auto result = target()->apply(std::vector<Change>{update(ann, {{"name", "Ann"}, {"email", "bob@x.org"}}, {"email"}),
                                                    update(bob, {{"name", "Bobby"}, {"email", "bob@x.org"}}, {"name"})});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kRejected);
  EXPECT_EQ(result.value()[0].message, "The resources." + std::to_string(ann) + ".email has already been taken.");
  EXPECT_EQ(result.value()[1].kind, OutcomeKind::kApplied);
  EXPECT_EQ(server_.find_user_by_email("bob@x.org")["name"], "Bobby");
}

TEST_F(PerscomTargetTest, ReportsAPatchOfAnIdPerscomDoesNotHave) {
  const auto id = server_.add_user({{"name", "Ann"}, {"email", "ann@x.org"}});
  auto result = target()->apply(
      std::vector<Change>{update(id, {{"name", "A"}}, {"name"}), update(4242, {{"name", "Ghost"}}, {"name"})});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(result.value()[1].kind, OutcomeKind::kRejected);
  EXPECT_EQ(result.value()[1].message, "user id 4242 does not exist in PERSCOM");
}

TEST_F(PerscomTargetTest, ResyncCreatesAgainAUserPerscomNoLongerHas) {
  const auto kept = server_.add_user({{"name", "Kept"}, {"email", "kept@x.org"}});
  const std::vector<Change> batch = {
      update(kept, {{"name", "Kept"}, {"email", "kept@x.org"}}, {"email", "name"}, /*resync=*/true),
      update(4242, {{"name", "Gone"}, {"email", "gone@x.org"}}, {"email", "name"}, /*resync=*/true)};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->size(), 2u);
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(result.value()[1].kind, OutcomeKind::kApplied);
  const auto recreated = server_.find_user_by_email("gone@x.org");
  ASSERT_TRUE(recreated.is_object());
  EXPECT_EQ(result.value()[1].target_id, std::to_string(recreated["id"].get<std::int64_t>()));
  EXPECT_EQ(result.value()[1].message, "PERSCOM no longer had user id 4242: created again");
  EXPECT_EQ(count("POST"), 1u);
}

TEST_F(PerscomTargetTest, SaysHowLongItsRateLimitMakesALargePush) {
  auto t = target();  // batches of 100, PERSCOM's 60 requests/min
  EXPECT_EQ(t->pace(100, 0, 0), "");  // one request: nothing to wait for
  const std::string pace = t->pace(20'000, 5'000, 0);  // 250 requests
  EXPECT_THAT(pace, HasSubstr("at 60/min"));
  EXPECT_EQ(pace.rfind("~", 0), 0u) << pace;
}

TEST_F(PerscomTargetTest, SendsSeveralBatchesAtOnceWithMaxInFlight) {
  auto s = settings();
  s.batch_size = 10;
  s.http.max_in_flight = 4;
  s.http.rate_limits = std::vector<config::RateWindow>{};
  auto t = target(s);
  EXPECT_EQ(t->batch_size(), 40u);  // four requests' worth per engine batch
  std::vector<Change> batch;
  for (int i = 0; i < 40; ++i) batch.push_back(create("U" + std::to_string(i), "u" + std::to_string(i) + "@x.org"));
  batch[13] = create("Bad", "not-an-email");
  auto result = t->apply(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->size(), 40u);
  std::set<std::string> ids;
  for (std::size_t i = 0; i < 40; ++i) {
    if (i == 13) {
      EXPECT_EQ(result.value()[i].kind, OutcomeKind::kRejected);
      continue;
    }
    EXPECT_EQ(result.value()[i].kind, OutcomeKind::kApplied) << i;
    ids.insert(result.value()[i].target_id);
    // Outcomes stay in the order of the changes.
    EXPECT_EQ(server_.find_user_by_email("u" + std::to_string(i) + "@x.org")["id"].get<std::int64_t>(),
              std::stoll(result.value()[i].target_id));
  }
  EXPECT_EQ(ids.size(), 39u);
  EXPECT_EQ(server_.users().size(), 39u);
  EXPECT_EQ(count("POST"), 5u);  // four requests, and one more for the rest of the 422'd one
}

TEST_F(PerscomTargetTest, PlainUpdateOfAMissingIdIsRejectedNotRecreated) {
  const std::vector<Change> batch = {update(4242, {{"name", "Gone"}, {"email", "gone@x.org"}}, {"name"})};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kRejected);
  EXPECT_EQ(count("POST"), 0u);
}

TEST_F(PerscomTargetTest, DeletesUsersAndCountsAMissingOneAsAlreadyAbsent) {
  const auto ann = server_.add_user({{"name", "Ann"}, {"email", "ann@x.org"}});
  server_.add_user({{"name", "Bob"}, {"email", "bob@x.org"}});
  auto result = target()->apply(std::vector<Change>{detach(ann), detach(4242)});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(result.value()[1].kind, OutcomeKind::kApplied);
  EXPECT_EQ(result.value()[1].message, "already absent");
  ASSERT_EQ(server_.users().size(), 1u);
  EXPECT_EQ(server_.users()[0]["email"], "bob@x.org");
  EXPECT_EQ(json::parse(server_.request_log()[0].body), json({{"resources", {ann, 4242}}}));
}

TEST_F(PerscomTargetTest, WaitsOutA429ForItsRetryAfterThroughTheInjectedSleeper) {
  server_.inject(Fault::k429, 1, 7);
  auto result = target()->apply(std::vector<Change>{create("Ann", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_THAT(sleeps_, ElementsAre(milliseconds(7000)));
  EXPECT_EQ(count("POST"), 2u);
  EXPECT_EQ(server_.users().size(), 1u);
}

TEST_F(PerscomTargetTest, CapsAnExcessiveRetryAfter) {
  auto s = settings();
  s.http.retry_after_max = milliseconds(30'000);
  server_.inject(Fault::k503, 1, 3600);
  auto result = target(s)->apply(std::vector<Change>{detach(1)});
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(sleeps_, ElementsAre(milliseconds(30'000)));
}

TEST_F(PerscomTargetTest, AsksToRetryLaterWhenRateLimitsOutlastTheAttempts) {
  server_.inject(Fault::k429, 10, 1);
  auto result = target()->apply(std::vector<Change>{create("Ann", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kRetry);
  EXPECT_EQ(count("POST"), 4u);
  EXPECT_EQ(sleeps_.size(), 3u);
}

TEST_F(PerscomTargetTest, NeverResendsACreateAfterA500) {
  server_.inject(Fault::k500);
  auto result = target()->apply(std::vector<Change>{create("Ann", "ann@x.org"), create("Bob", "bob@x.org")});
  ASSERT_TRUE(result.ok());
  for (const auto& o : result.value()) {
    EXPECT_EQ(o.kind, OutcomeKind::kUnknown);
    EXPECT_THAT(o.message, HasSubstr("not re-sent"));
  }
  EXPECT_EQ(count("POST"), 1u) << "the server's log shows one POST";
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(PerscomTargetTest, NeverResendsACreateWhoseAnswerWasLost) {
  server_.inject(Fault::kCloseAfterApplying);
  auto result = target()->apply(std::vector<Change>{create("Ann", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kUnknown);
  EXPECT_EQ(count("POST"), 1u);
  EXPECT_EQ(server_.users().size(), 1u) << "it was created: a re-send would have made a duplicate";
}

TEST_F(PerscomTargetTest, CallsAnUnreadableCreateAnswerUnknown) {
  server_.inject(Fault::kMalformedJson);
  auto result = target()->apply(std::vector<Change>{create("Ann", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kUnknown);
  EXPECT_EQ(count("POST"), 1u);
}

TEST_F(PerscomTargetTest, RetriesAPatchAfterA500) {
  const auto id = server_.add_user({{"name", "Ann"}, {"email", "ann@x.org"}});
  server_.inject(Fault::k500, 2);
  auto result = target()->apply(std::vector<Change>{update(id, {{"name", "Ann B"}}, {"name"})});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(count("PATCH"), 3u);
  EXPECT_THAT(sleeps_, ElementsAre(milliseconds(250), milliseconds(500))) << "half of the cap: jitter fixed at 0.5";
}

TEST_F(PerscomTargetTest, RetriesADeleteWhoseConnectionDropped) {
  const auto id = server_.add_user({{"name", "Ann"}, {"email", "ann@x.org"}});
  server_.inject(Fault::kClose);
  auto result = target()->apply(std::vector<Change>{detach(id)});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(PerscomTargetTest, SendsTheTenantHeaderWhenConfigured) {
  server_.require_perscom_id("77");
  auto refused = target()->apply(std::vector<Change>{create("Ann", "ann@x.org")});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, core::ErrorKind::kAuth);
  auto s = settings();
  s.perscom_id = core::Secret("77", "(literal)");
  auto result = target(s)->apply(std::vector<Change>{create("Ann", "ann@x.org")});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kApplied);
}

TEST_F(PerscomTargetTest, StopsWithATargetErrorWhenPerscomIsUnreachable) {
  auto s = settings();
  server_.stop();
  auto result = target(s)->apply(std::vector<Change>{create("Ann", "ann@x.org")});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, core::ErrorKind::kTarget);
  EXPECT_THAT(result.error().message, HasSubstr("PERSCOM is unreachable after 4 attempts"));
  EXPECT_THAT(result.error().message, Not(HasSubstr("test-token")));
  EXPECT_EQ(sleeps_.size(), 3u) << "nothing was sent, so even a create is retried";
}

TEST_F(PerscomTargetTest, UsesTheConfiguredApiVersion) {
  auto s = settings();
  s.api_version = "v1";
  ASSERT_TRUE(target(s)->apply(std::vector<Change>{create("Ann", "ann@x.org")}).ok());
  EXPECT_EQ(server_.request_log()[0].path, "/v1/users/batch");
}

TEST_F(PerscomTargetTest, RejectsAChangeWithoutAnIdWithoutSendingIt) {
  Change c = detach(1);
  c.target_id.clear();
  auto result = target()->apply(std::vector<Change>{c});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value()[0].kind, OutcomeKind::kRejected);
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(PerscomTargetTest, DeclaresItsCapabilitiesAndClampsTheBatchSize) {
  auto s = settings();
  s.batch_size = 5000;
  auto t = target(s);
  EXPECT_EQ(t->batch_size(), 1000u);
  EXPECT_TRUE(t->capabilities().create);
  EXPECT_TRUE(t->capabilities().update);
  EXPECT_TRUE(t->capabilities().detach);
  EXPECT_FALSE(t->capabilities().full_set);
  EXPECT_EQ(t->capabilities().max_batch, 1000u);
  EXPECT_EQ(t->describe(), "perscom " + server_.base_url() + "/v2");
}

TEST(PerscomTargetFactory, BuildsATargetWithoutAnyIo) {
  config::PerscomTargetSettings s;
  s.base_url = "https://api.perscom.io";
  s.token = core::Secret("t", "(literal)");
  auto t = make_perscom_target(s);
  EXPECT_EQ(t->describe(), "perscom https://api.perscom.io/v2");
  EXPECT_EQ(t->batch_size(), 100u);
}

TEST_F(PerscomTargetTest, AdoptsTheUserPerscomAlreadyHasForATakenEmailInsteadOfCreatingItTwice) {
  const auto id = server_.add_user({{"name", "Legacy Name"}, {"email", "Ann@X.org"}});
  auto result = target()->apply(std::vector<Change>{create("Ann", "ann@x.org")});
  ASSERT_TRUE(result.ok()) << result.error().message;
  const auto& o = result.value().at(0);
  EXPECT_EQ(o.kind, OutcomeKind::kApplied);
  EXPECT_EQ(o.target_id, std::to_string(id));
  EXPECT_EQ(o.current, json({{"name", "Legacy Name"}, {"email", "ann@x.org"}}))
      << "PERSCOM's fields, with the email as sent (it differs only in case, and must never be PATCHed)";
  EXPECT_EQ(server_.users().size(), 1u);
  EXPECT_EQ(server_.search_count(), 1u);
}

TEST_F(PerscomTargetTest, LooksCreatesUpByEmailInChunksOfOneHundred) {
  std::vector<Change> creates;
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 150; ++i) {
    const std::string email = "u" + std::to_string(i) + "@x.org";
    if (i % 10 != 3) ids.push_back(server_.add_user({{"name", "U"}, {"email", email}}));
    else ids.push_back(0);
    creates.push_back(create("U", email));
  }
  auto found = target()->lookup(creates);
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_EQ(found.value().size(), 150u);
  for (int i = 0; i < 150; ++i) {
    if (i % 10 == 3) {
      EXPECT_FALSE(found.value()[i]) << i;
    } else {
      ASSERT_TRUE(found.value()[i]) << i;
      EXPECT_EQ(found.value()[i]->target_id, std::to_string(ids[i]));
    }
  }
  EXPECT_EQ(server_.search_count(), 2u);
}

TEST_F(PerscomTargetTest, ALookupWithARefusedTokenIsAnAuthenticationError) {
  auto found = target(settings("wrong-token-value"))->lookup(std::vector<Change>{create("A", "a@x.org")});
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.error().kind, core::ErrorKind::kAuth);
  EXPECT_THAT(found.error().message, Not(HasSubstr("wrong-token-value")));
}

}  // namespace
}  // namespace dirsync::targets
