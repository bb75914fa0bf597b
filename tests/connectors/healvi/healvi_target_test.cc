// The Healvi target over loopback HTTP against the Healvi test server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/targets/healvi/healvi_target.h"
#include "tests/support/healvi_test_server.h"

namespace dirsync::targets {
namespace {

using core::Change;
using core::Op;
using core::OutcomeKind;
using nlohmann::json;
using std::chrono::milliseconds;
using testing::healvi::Fault;
using testing::healvi::HealviTestServer;
using ::testing::HasSubstr;
using ::testing::Not;
using Ids = std::set<std::int64_t>;

constexpr std::int64_t kCustomer = 7;
constexpr const char* kToken = "tok-healvi-target-9f3k";

Change create(const std::string& key, json user_id) {
  Change c;
  c.op = Op::kCreate;
  c.key = key;
  c.payload = {{"user_id", std::move(user_id)}};
  return c;
}

Change update(const std::string& key, std::int64_t from, std::int64_t to, bool resync = false) {
  Change c;
  c.op = Op::kUpdate;
  c.key = key;
  c.previous = {{"user_id", from}};
  c.payload = {{"user_id", to}};
  c.target_id = std::to_string(from);
  if (from != to) c.changed_fields = {"user_id"};
  c.resync = resync;
  return c;
}

Change detach(const std::string& key, std::int64_t from) {
  Change c;
  c.op = Op::kDetach;
  c.key = key;
  c.previous = {{"user_id", from}};
  c.target_id = std::to_string(from);
  return c;
}

class HealviTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.set_options({kToken, false, false, testing::healvi::UnknownIds::k422, false});
    server_.start();
    server_.add_customer(kCustomer);
    server_.add_users(20);
  }

  config::HealviTargetSettings settings(const std::string& token = kToken) {
    config::HealviTargetSettings s;
    s.base_url = server_.base_url();
    s.token = core::Secret(token, "${env:HEALVI_TOKEN}");
    s.customer_id = kCustomer;
    s.http.connect_timeout = milliseconds(2000);
    s.http.timeout = milliseconds(5000);
    s.http.max_attempts = 3;
    return s;
  }

  std::unique_ptr<HealviTarget> target(config::HealviTargetSettings s) {
    return std::make_unique<HealviTarget>(
        std::move(s), [this](milliseconds d) { sleeps_.push_back(d); }, nullptr, [] { return 0.5; });
  }
  std::unique_ptr<HealviTarget> target() { return target(settings()); }

  std::vector<Ids> posted_lists() const {
    std::vector<Ids> out;
    for (const auto& r : server_.request_log()) {
      if (r.method != "POST") continue;
      Ids ids;
      const json body = json::parse(r.body);
      for (const auto& id : body["user_ids"]) ids.insert(id.get<std::int64_t>());
      out.push_back(ids);
    }
    return out;
  }

  static std::vector<OutcomeKind> kinds(const std::vector<core::Outcome>& outcomes) {
    std::vector<OutcomeKind> out;
    for (const auto& o : outcomes) out.push_back(o.kind);
    return out;
  }

  HealviTestServer server_;
  std::vector<milliseconds> sleeps_;
};

using K = OutcomeKind;

TEST_F(HealviTargetTest, DeclaresAFullSetTargetWithoutSecretsInItsDescription) {
  auto t = target();
  EXPECT_TRUE(t->capabilities().full_set);
  EXPECT_TRUE(t->capabilities().create && t->capabilities().update && t->capabilities().detach);
  EXPECT_EQ(t->capabilities().max_batch, SIZE_MAX);
  EXPECT_EQ(t->describe(), "healvi " + server_.base_url() + " customer 7");
  EXPECT_THAT(t->describe(), Not(HasSubstr(kToken)));
}

TEST_F(HealviTargetTest, ReadsTheCurrentSetThenSendsItWithTheNewUsers) {
  server_.attach(kCustomer, 15);  // someone else's user
  auto result = target()->apply(std::vector<Change>{create("a", 1), create("b", 2), create("c", 3)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(kinds(result.value()), (std::vector<K>{K::kApplied, K::kApplied, K::kApplied}));
  EXPECT_EQ(result.value()[1].target_id, "2");
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, 2, 3, 15}));
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].method, "GET");
  EXPECT_EQ(log[0].path, "/third-party/v1/customers/7/users");
  EXPECT_EQ(log[1].method, "POST");
  EXPECT_EQ(log[1].body, R"({"user_ids":[1,2,3,15]})");
  for (const auto& r : log) {
    bool bearer = false;
    for (const auto& [name, value] : r.headers) bearer |= name == "authorization" && value == std::string("Bearer ") + kToken;
    EXPECT_TRUE(bearer);
  }
}

TEST_F(HealviTargetTest, UsersAttachedBySomeoneElseStayAttachedWhenOursAreDetached) {
  for (std::int64_t id : {1, 2, 3, 15, 16}) server_.attach(kCustomer, id);  // 15, 16: not ours
  auto result = target()->apply(std::vector<Change>{detach("a", 1), detach("b", 2), create("d", 4)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(kinds(result.value()), (std::vector<K>{K::kApplied, K::kApplied, K::kApplied}));
  EXPECT_EQ(server_.attached(kCustomer), (Ids{3, 4, 15, 16}));
}

TEST_F(HealviTargetTest, NeverSendsAnEmptyListUnlessAllowed) {
  server_.attach(kCustomer, 1);
  server_.attach(kCustomer, 2);
  const std::vector<Change> batch = {detach("a", 1), detach("b", 2)};
  auto result = target()->apply(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(kinds(result.value()), (std::vector<K>{K::kRejected, K::kRejected}));
  EXPECT_EQ(result.value()[0].message,
            "not sent: the user list for Healvi customer 7 would be empty, and Healvi detaches every user missing "
            "from the list; set allow_empty: true on the target to allow it");
  EXPECT_EQ(server_.count("POST"), 0u);
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, 2}));

  auto s = settings();
  s.allow_empty = true;
  result = target(s)->apply(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(kinds(result.value()), (std::vector<K>{K::kApplied, K::kApplied}));
  EXPECT_EQ(posted_lists(), (std::vector<Ids>{Ids{}}));
  EXPECT_TRUE(server_.attached(kCustomer).empty());
}

TEST_F(HealviTargetTest, AfterAnIncompletePullOnlyAddsUsers) {
  // The engine sends no detaches after an incomplete pull: users it did not see
  // this run (1, 2: unchanged or unseen) are in the current set and stay.
  server_.attach(kCustomer, 1);
  server_.attach(kCustomer, 2);
  auto result = target()->apply(std::vector<Change>{create("c", 3), create("d", 4)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(posted_lists(), (std::vector<Ids>{Ids{1, 2, 3, 4}}));
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, 2, 3, 4}));
}

TEST_F(HealviTargetTest, AChangedIdDetachesTheOldUserAndAttachesTheNewOne) {
  for (std::int64_t id : {1, 2, 3}) server_.attach(kCustomer, id);
  auto result = target()->apply(std::vector<Change>{update("b", 2, 12)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->size(), 1u);
  EXPECT_EQ(result.value()[0].kind, K::kApplied);
  EXPECT_EQ(result.value()[0].target_id, "12");
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, 3, 12}));
}

TEST_F(HealviTargetTest, ResyncReattachesUsersSomeoneDetached) {
  for (std::int64_t id : {1, 3, 15}) server_.attach(kCustomer, id);  // 2 was detached in Healvi's UI
  auto result = target()->apply(
      std::vector<Change>{update("a", 1, 1, true), update("b", 2, 2, true), update("c", 3, 3, true)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(kinds(result.value()), (std::vector<K>{K::kApplied, K::kApplied, K::kApplied}));
  EXPECT_EQ(posted_lists(), (std::vector<Ids>{Ids{1, 2, 3, 15}}));
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, 2, 3, 15}));
}

TEST_F(HealviTargetTest, SendsNothingWhenTheServerAlreadyHoldsEveryChange) {
  for (std::int64_t id : {1, 2, 3}) server_.attach(kCustomer, id);
  auto result = target()->apply(std::vector<Change>{update("a", 1, 1, true), create("b", 2), detach("z", 9)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(kinds(result.value()), (std::vector<K>{K::kApplied, K::kApplied, K::kApplied}));
  EXPECT_EQ(server_.count("GET"), 1u);
  EXPECT_EQ(server_.count("POST"), 0u);
}

TEST_F(HealviTargetTest, AnAdminAttachedBySomeoneElseIsInvisibleAndSparedWhenNothingChanges) {
  const auto admin = server_.add_user("Boss", "boss@example.com", /*admin=*/true);
  server_.attach(kCustomer, 1);
  server_.attach(kCustomer, admin);
  auto result = target()->apply(std::vector<Change>{update("a", 1, 1, true)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(server_.count("POST"), 0u);
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, admin}));

  // A real change must send the list, which cannot name the admin: Healvi's
  // sync detaches it (harmless: admins see every customer), or keeps it when
  // the server keeps admins.
  result = target()->apply(std::vector<Change>{create("b", 2)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, 2}));
  auto o = server_.options();
  o.sync_keeps_admins = true;
  server_.set_options(o);
  server_.attach(kCustomer, admin);
  result = target()->apply(std::vector<Change>{create("c", 3)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, 2, 3, admin}));
}

TEST_F(HealviTargetTest, AnAdminTheJobManagesIsReportedBecauseHealviNeverListsIt) {
  const auto admin = server_.add_user("Boss", nullptr, true);
  auto result = target()->apply(std::vector<Change>{create("boss", admin), create("a", 1)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(kinds(result.value()), (std::vector<K>{K::kRejected, K::kApplied}));
  EXPECT_THAT(result.value()[0].message, HasSubstr("Healvi leaves admins out of its listings"));
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, admin}));

  auto o = server_.options();
  o.admins_in_post_response = true;
  server_.set_options(o);
  result = target()->apply(std::vector<Change>{create("boss", admin), create("b", 2)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(kinds(result.value()), (std::vector<K>{K::kApplied, K::kApplied}));
}

TEST_F(HealviTargetTest, AUserIdHealviDoesNotKnowIsRejectedAndTheRestSentAgain) {
  auto result = target()->apply(std::vector<Change>{create("a", 1), create("ghost", 999), create("c", 3)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(kinds(result.value()), (std::vector<K>{K::kApplied, K::kRejected, K::kApplied}));
  EXPECT_EQ(result.value()[1].message, "Healvi refused user id 999: The selected user_ids.2 is invalid.");
  EXPECT_EQ(posted_lists(), (std::vector<Ids>{Ids{1, 3, 999}, Ids{1, 3}}));
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, 3}));
}

TEST_F(HealviTargetTest, AUserIdHealviIgnoresIsCaughtByCheckingTheAnswer) {
  auto o = server_.options();
  o.unknown_ids = testing::healvi::UnknownIds::kIgnore;
  server_.set_options(o);
  auto result = target()->apply(std::vector<Change>{create("a", 1), create("ghost", 999)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(kinds(result.value()), (std::vector<K>{K::kApplied, K::kRejected}));
  EXPECT_THAT(result.value()[1].message, HasSubstr("does not list user id 999"));
}

TEST_F(HealviTargetTest, ANonIntegerUserIdIsRejectedAndTheOthersGoOut) {
  auto result = target()->apply(std::vector<Change>{create("a", "HV-17"), create("b", 2)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(kinds(result.value()), (std::vector<K>{K::kRejected, K::kApplied}));
  EXPECT_EQ(result.value()[0].message, "user_id must be a positive integer (Healvi's user id), got \"HV-17\"");
  EXPECT_EQ(posted_lists(), (std::vector<Ids>{Ids{2}}));
}

TEST_F(HealviTargetTest, StopsWithAnAuthenticationErrorWhenTheTokenIsRefused) {
  auto result = target(settings("wrong-token-value"))->apply(std::vector<Change>{create("a", 1)});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, core::ErrorKind::kAuth);
  EXPECT_EQ(result.error().message, "Healvi refused the token (HTTP 401): Unauthenticated.");
  EXPECT_THAT(result.error().message, Not(HasSubstr("wrong-token-value")));
  EXPECT_EQ(server_.request_count(), 1u) << "no retry of a 401, no POST";
}

TEST_F(HealviTargetTest, StopsWhenTheCustomerDoesNotExist) {
  auto s = settings();
  s.customer_id = 8;
  auto result = target(s)->apply(std::vector<Change>{create("a", 1)});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, core::ErrorKind::kTarget);
  EXPECT_THAT(result.error().message, HasSubstr("Healvi has no customer 8"));
  EXPECT_EQ(server_.count("POST"), 0u);
}

TEST_F(HealviTargetTest, WaitsForRetryAfterOn429ThroughTheInjectedSleeper) {
  server_.inject(Fault::k429, 1, 3, "POST");
  auto result = target()->apply(std::vector<Change>{create("a", 1)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value()[0].kind, K::kApplied);
  EXPECT_EQ(sleeps_, (std::vector<milliseconds>{milliseconds(3000)}));
  EXPECT_EQ(server_.count("POST"), 2u);
}

TEST_F(HealviTargetTest, RetriesTheSyncAfterA500BecauseTheFullListIsIdempotent) {
  server_.inject(Fault::k500, 1, 1, "POST");
  auto result = target()->apply(std::vector<Change>{create("a", 1)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value()[0].kind, K::kApplied);
  const auto lists = posted_lists();
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0], lists[1]) << "the same list again";
  EXPECT_EQ(sleeps_.size(), 1u);
}

TEST_F(HealviTargetTest, PersistentServerErrorsLeaveTheOutcomeUnknown) {
  server_.inject(Fault::k500, 3, 1, "POST");
  auto result = target()->apply(std::vector<Change>{create("a", 1), detach("b", 2)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(kinds(result.value()), (std::vector<K>{K::kUnknown, K::kUnknown}));
  EXPECT_THAT(result.value()[0].message, HasSubstr("after 3 attempts"));
  EXPECT_EQ(server_.count("POST"), 3u);
}

TEST_F(HealviTargetTest, ResendsTheListAfterADroppedConnection) {
  server_.inject(Fault::kClose, 1, 1, "POST");             // dropped before processing
  server_.inject(Fault::kCloseAfterApplying, 1, 1, "POST");  // processed, answer lost
  auto result = target()->apply(std::vector<Change>{create("a", 1), create("b", 2)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(kinds(result.value()), (std::vector<K>{K::kApplied, K::kApplied}));
  EXPECT_EQ(server_.count("POST"), 3u);
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, 2}));
}

TEST_F(HealviTargetTest, AFailedListingSendsNothing) {
  server_.inject(Fault::k500, 3, 1, "GET");
  auto result = target()->apply(std::vector<Change>{create("a", 1)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value()[0].kind, K::kRetry);
  EXPECT_EQ(server_.count("GET"), 3u) << "a GET is idempotent: retried";
  EXPECT_EQ(server_.count("POST"), 0u) << "never a list built without the current set";
}

TEST_F(HealviTargetTest, AnUnreadableAnswerToTheSyncIsUnknown) {
  server_.inject(Fault::kMalformedJson, 1, 1, "POST");
  auto result = target()->apply(std::vector<Change>{create("a", 1)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value()[0].kind, K::kUnknown);
  EXPECT_EQ(server_.count("POST"), 1u);
}

TEST_F(HealviTargetTest, HonoursTheJobsRateLimitsBetweenTheListingAndTheSync) {
  auto s = settings();
  s.http.rate_limits = std::vector<config::RateWindow>{{1, std::chrono::hours(1)}};
  auto result = target(s)->apply(std::vector<Change>{create("a", 1)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value()[0].kind, K::kApplied);
  ASSERT_EQ(sleeps_.size(), 1u) << "the POST waited for the window through the injected sleeper";
  EXPECT_GT(sleeps_[0], std::chrono::minutes(59));
  sleeps_.clear();
  result = target()->apply(std::vector<Change>{create("b", 2)});
  EXPECT_TRUE(sleeps_.empty()) << "Healvi documents no limit: none by default";
}

TEST_F(HealviTargetTest, AnEmptyBatchSendsNothing) {
  auto result = target()->apply(std::vector<Change>{});
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->empty());
  EXPECT_EQ(server_.request_count(), 0u);
}

}  // namespace
}  // namespace dirsync::targets
