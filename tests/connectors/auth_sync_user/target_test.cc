// The auth_sync_user target over loopback HTTP against its test server: one
// user per request, concurrent within max_in_flight over reused connections,
// the derived password, FastAPI's 422 details, the bare-string 201, and the
// failures real services produce.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>
#include <set>

#include "connectors/targets/auth_sync_user/auth_sync_user_target.h"
#include "tests/support/auth_sync_user_test_server.h"

namespace dirsync::targets {
namespace {

using auth_sync_user::derive_password;
using core::Change;
using core::Op;
using core::OutcomeKind;
using nlohmann::json;
using std::chrono::milliseconds;
using testing::AuthSyncFault;
using testing::AuthSyncUserTestServer;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kSecret = "pw-secret-target-test-9Zq";

Change create(const std::string& key, json extra = json::object()) {
  Change c;
  c.op = Op::kCreate;
  c.key = key;
  c.payload = {{"id", "u-" + key},          {"email", "user" + key + "@example.com"},
               {"organization_id", "org1"}, {"role_id", "role1"},
               {"first_name", "First" + key}, {"last_name", "Last" + key},
               {"phone_number", "555" + key}, {"phone_country_code", "+1"}};
  c.payload.update(extra);
  return c;
}

Change update(const std::string& key, json changes) {
  Change c = create(key);
  c.op = Op::kUpdate;
  c.previous = c.payload;
  c.target_id = "u-" + key;
  for (const auto& [field, value] : changes.items()) c.changed_fields.push_back(field);
  c.payload.update(changes);
  return c;
}

std::vector<Change> creates(int n) {
  std::vector<Change> out;
  for (int i = 1; i <= n; ++i) out.push_back(create(std::to_string(i)));
  return out;
}

// Called from the sender's worker threads: it must be thread safe.
class RecordingSleeper {
 public:
  http::Sleeper sleeper() {
    return [this](milliseconds d) {
      std::lock_guard lock(mu_);
      sleeps_.push_back(d);
    };
  }
  std::vector<milliseconds> sleeps() const {
    std::lock_guard lock(mu_);
    return sleeps_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<milliseconds> sleeps_;
};

class AuthSyncUserTargetTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.start(); }

  config::AuthSyncUserTargetSettings settings(std::size_t max_in_flight = 0) const {
    config::AuthSyncUserTargetSettings s;
    s.base_url = server_.base_url();
    s.password_secret = core::Secret(kSecret, "${env:AUTH_PASSWORD_SECRET}");
    s.http.max_in_flight = max_in_flight;
    s.http.connect_timeout = milliseconds(2000);
    s.http.timeout = milliseconds(5000);
    s.http.max_attempts = 3;
    return s;
  }

  std::unique_ptr<AuthSyncUserTarget> target(config::AuthSyncUserTargetSettings s,
                                             http::ParallelSender::TransportFactory transports = nullptr) {
    return std::make_unique<AuthSyncUserTarget>(std::move(s), sleeper_.sleeper(), std::move(transports),
                                                [] { return 0.5; });
  }
  std::unique_ptr<AuthSyncUserTarget> target() { return target(settings()); }

  static std::vector<core::Outcome> apply_ok(core::Target& t, const std::vector<Change>& batch) {
    auto r = t.apply(batch);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    if (!r.ok()) return {};
    EXPECT_EQ(r.value().size(), batch.size());
    return std::move(r).value();
  }

  static std::string password_for(const std::string& key, const std::string& secret = kSecret) {
    return derive_password(core::Secret(secret, "x"), key);
  }

  AuthSyncUserTestServer server_;
  RecordingSleeper sleeper_;
};

TEST_F(AuthSyncUserTargetTest, DeclaresCreateAndUpdateButNoDetach) {
  auto t = target();
  EXPECT_TRUE(t->capabilities().create);
  EXPECT_TRUE(t->capabilities().update);
  EXPECT_FALSE(t->capabilities().detach);
  EXPECT_FALSE(t->capabilities().full_set);
  EXPECT_EQ(t->capabilities().max_batch, 1000u);
  EXPECT_EQ(t->batch_size(), 100u);
  EXPECT_EQ(t->max_in_flight(), 8u) << "max_in_flight 0 means the target's default";
  EXPECT_EQ(t->describe(), "auth_sync_user " + server_.base_url() + "/auth/sync/user");
  EXPECT_TRUE(server_.request_log().empty()) << "construction does no I/O";
}

TEST_F(AuthSyncUserTargetTest, SyncsEachUserInItsOwnRequestWithItsDerivedPassword) {
  auto t = target();
  const auto batch = creates(3);
  const auto outcomes = apply_ok(*t, batch);
  ASSERT_EQ(outcomes.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(outcomes[i].kind, OutcomeKind::kApplied) << outcomes[i].message;
    EXPECT_EQ(outcomes[i].target_id, batch[i].payload["id"]) << "the outcome's id is the payload's id";
  }
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 3u);
  std::set<std::string> ids;
  for (const auto& r : log) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/auth/sync/user");
    EXPECT_EQ(r.status, 201);
    const json body = json::parse(r.body);
    ASSERT_TRUE(body.is_object());
    EXPECT_FALSE(body.contains("users")) << "one user object per request, not a batch";
    ids.insert(body["id"].get<std::string>());
  }
  EXPECT_EQ(ids, (std::set<std::string>{"u-1", "u-2", "u-3"}));
  const json stored = server_.user("u-2");
  ASSERT_FALSE(stored.is_null());
  for (const auto& [field, value] : batch[1].payload.items()) EXPECT_EQ(stored[field], value) << field;
  EXPECT_EQ(stored["password"], password_for("2"));
  EXPECT_TRUE(stored["image_url"].is_null()) << "optional fields not mapped are not sent";
}

TEST_F(AuthSyncUserTargetTest, SendsOptionalFieldsWithAValueAndLeavesEmptyOnesOut) {
  auto t = target();
  const auto outcomes =
      apply_ok(*t, {create("1", {{"device_id", "dev-1"}, {"google_id", ""}, {"image_url", nullptr}})});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kApplied) << outcomes[0].message;
  const json sent = json::parse(server_.request_log().at(0).body);
  EXPECT_EQ(sent["device_id"], "dev-1");
  EXPECT_FALSE(sent.contains("google_id"));
  EXPECT_FALSE(sent.contains("image_url"));
}

TEST_F(AuthSyncUserTargetTest, ResendsTheSamePasswordWhenAProfileIsUpdated) {
  auto t = target();
  ASSERT_EQ(apply_ok(*t, {create("7")}).at(0).kind, OutcomeKind::kApplied);
  const std::string first = server_.user("u-7")["password"];

  // A later run: a fresh target, as the next process would build it.
  auto later = target();
  const auto outcomes = apply_ok(*later, {update("7", {{"last_name", "Renamed"}})});
  ASSERT_EQ(outcomes.at(0).kind, OutcomeKind::kApplied) << outcomes.at(0).message;
  EXPECT_EQ(outcomes.at(0).target_id, "u-7");
  const json stored = server_.user("u-7");
  EXPECT_EQ(stored["last_name"], "Renamed");
  EXPECT_EQ(stored["password"], first) << "a profile update must not reset the password";
  EXPECT_EQ(server_.users().size(), 1u) << "an upsert keyed by id";
}

TEST_F(AuthSyncUserTargetTest, ADifferentSecretOrUserGivesADifferentPassword) {
  ASSERT_EQ(apply_ok(*target(), {create("1"), create("2")}).at(0).kind, OutcomeKind::kApplied);
  const std::string one = server_.user("u-1")["password"];
  EXPECT_NE(one, server_.user("u-2")["password"].get<std::string>());

  auto s = settings();
  s.password_secret = core::Secret("a-rotated-secret", "${env:AUTH_PASSWORD_SECRET}");
  ASSERT_EQ(apply_ok(*target(s), {update("1", {{"role_id", "role2"}})}).at(0).kind, OutcomeKind::kApplied);
  EXPECT_NE(server_.user("u-1")["password"].get<std::string>(), one);
  EXPECT_EQ(server_.user("u-1")["password"], password_for("1", "a-rotated-secret"));
}

TEST_F(AuthSyncUserTargetTest, NeverPutsThePasswordIntoTheChangesItWasGiven) {
  auto t = target();
  const auto batch = creates(2);
  ASSERT_EQ(apply_ok(*t, batch).size(), 2u);
  for (const auto& c : batch) EXPECT_FALSE(c.payload.contains("password"));
  for (const auto& f : t->fields()) EXPECT_NE(f.name, "password") << "the password is not mappable";
}

TEST_F(AuthSyncUserTargetTest, RejectsAUserWithFastApisMessagesPerFieldAndAppliesTheOthers) {
  auto t = target();
  Change missing = create("2");
  missing.payload.erase("phone_number");
  const auto outcomes = apply_ok(*t, {create("1"), create("3", {{"email", "not-an-address"}}), missing});
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kRejected);
  EXPECT_EQ(outcomes[1].message, "HTTP 422: email: value is not a valid email address");
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::kRejected);
  EXPECT_EQ(outcomes[2].message, "HTTP 422: phone_number: Field required");
  EXPECT_EQ(server_.users().size(), 1u);
  EXPECT_EQ(server_.request_count(), 3u) << "a 422 is final: not retried";
}

TEST_F(AuthSyncUserTargetTest, TakesTheBareString201AsAppliedAndAnythingElseAsUnknown) {
  auto t = target();
  server_.inject(AuthSyncFault::kMalformedJson);
  const auto outcomes = apply_ok(*t, {create("1")});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kUnknown);
  EXPECT_THAT(outcomes[0].message, HasSubstr("not the documented JSON string"));
  EXPECT_EQ(server_.request_count(), 1u);

  const auto again = apply_ok(*t, {create("1")});
  EXPECT_EQ(again.at(0).kind, OutcomeKind::kApplied) << "the documented answer";
  EXPECT_EQ(server_.request_log().back().status, 201);
}

TEST_F(AuthSyncUserTargetTest, KeepsAtMostMaxInFlightRequestsAtOnceOverReusedConnections) {
  server_.set_delay(milliseconds(30));  // lets requests overlap; nothing asserts on time
  auto t = target(settings(4));
  const auto batch = creates(24);
  const auto outcomes = apply_ok(*t, batch);
  ASSERT_EQ(outcomes.size(), 24u);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ(outcomes[i].kind, OutcomeKind::kApplied);
    EXPECT_EQ(outcomes[i].target_id, batch[i].payload["id"]) << "outcomes in the order of the batch";
  }
  EXPECT_LE(server_.max_concurrent(), 4u);
  EXPECT_EQ(server_.max_concurrent(), 4u) << "the requests do go out concurrently";
  const auto second = apply_ok(*t, creates(12));
  EXPECT_EQ(second.size(), 12u);
  EXPECT_LE(server_.connections_accepted(), 4u) << "connections are reused across requests and batches";
  EXPECT_EQ(server_.users().size(), 24u);
}

TEST_F(AuthSyncUserTargetTest, SendsEightRequestsAtOnceByDefault) {
  server_.set_delay(milliseconds(30));
  auto t = target();
  ASSERT_EQ(apply_ok(*t, creates(32)).size(), 32u);
  EXPECT_EQ(server_.max_concurrent(), 8u);
  EXPECT_LE(server_.connections_accepted(), 8u);
}

TEST_F(AuthSyncUserTargetTest, SendsTheOptionalBearerTokenAndApiKey) {
  server_.require_bearer("tok-target-test");
  server_.require_header("X-Gateway-Key", "key-target-test");
  auto s = settings();
  s.token = core::Secret("tok-target-test", "${env:AUTH_TOKEN}");
  s.api_key = core::Secret("key-target-test", "${env:AUTH_KEY}");
  s.api_key_header = "X-Gateway-Key";
  const auto outcomes = apply_ok(*target(s), {create("1")});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kApplied) << outcomes[0].message;
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_THAT(log[0].headers, Contains(std::pair<std::string, std::string>("authorization", "Bearer tok-target-test")));
  EXPECT_THAT(log[0].headers, Contains(std::pair<std::string, std::string>("x-gateway-key", "key-target-test")));
}

TEST_F(AuthSyncUserTargetTest, StopsTheJobWhenTheCredentialsAreRefused) {
  server_.require_bearer("the-right-token");
  auto s = settings();
  s.token = core::Secret("wrong-token-Kq7", "${env:AUTH_TOKEN}");
  auto t = target(s);
  const auto r = t->apply(creates(3));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, core::ErrorKind::kAuth);
  EXPECT_THAT(r.error().message, HasSubstr("refused the credentials (HTTP 401)"));
  EXPECT_THAT(r.error().message, Not(HasSubstr("wrong-token-Kq7")));
  EXPECT_THAT(r.error().message, Not(HasSubstr(kSecret)));
  EXPECT_EQ(server_.request_count(), 3u) << "a 401 is not retried";
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(AuthSyncUserTargetTest, WaitsForRetryAfterOn429ThroughTheInjectedSleeper) {
  server_.inject(AuthSyncFault::k429, 1, 7);
  const auto outcomes = apply_ok(*target(), {create("1")});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kApplied) << outcomes[0].message;
  EXPECT_EQ(sleeper_.sleeps(), std::vector<milliseconds>{milliseconds(7000)});
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].status, 429);
  EXPECT_EQ(log[1].status, 201);
}

TEST_F(AuthSyncUserTargetTest, RetriesA500BecauseTheSyncIsAnUpsert) {
  server_.inject(AuthSyncFault::k500AfterProcessing);
  const auto outcomes = apply_ok(*target(), {create("1")});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kApplied) << outcomes[0].message;
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].status, 500);
  EXPECT_EQ(log[1].status, 201);
  EXPECT_EQ(log[0].body, log[1].body) << "the same upsert, the same password";
  EXPECT_EQ(server_.users().size(), 1u) << "the second copy replaced the first";
}

TEST_F(AuthSyncUserTargetTest, ReportsUnknownWhenEveryAttemptAnswers500) {
  server_.inject(AuthSyncFault::k500, 3);
  const auto outcomes = apply_ok(*target(), {create("1")});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kUnknown);
  EXPECT_THAT(outcomes[0].message, HasSubstr("HTTP 500"));
  EXPECT_EQ(server_.request_count(), 3u) << "max_attempts, then unknown";
  EXPECT_EQ(sleeper_.sleeps().size(), 2u);
}

TEST_F(AuthSyncUserTargetTest, RetriesADroppedConnection) {
  server_.inject(AuthSyncFault::kClose);
  auto t = target();
  auto outcomes = apply_ok(*t, {create("1")});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kApplied) << outcomes[0].message;
  auto log = server_.request_log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].status, 0);
  EXPECT_EQ(log[1].status, 201);

  server_.clear_log();
  server_.inject(AuthSyncFault::kCloseAfterProcessing);
  outcomes = apply_ok(*t, {create("2")});
  EXPECT_EQ(outcomes.at(0).kind, OutcomeKind::kApplied) << outcomes.at(0).message;
  EXPECT_EQ(server_.request_count(), 2u);
  EXPECT_EQ(server_.users().size(), 2u) << "no duplicate: the same id";
}

TEST_F(AuthSyncUserTargetTest, Rejects400And404WithTheServersReason) {
  server_.inject(AuthSyncFault::k400);
  auto outcomes = apply_ok(*target(), {create("1")});
  EXPECT_EQ(outcomes.at(0).kind, OutcomeKind::kRejected);
  EXPECT_EQ(outcomes.at(0).message, "HTTP 400: Bad Request");
  EXPECT_EQ(server_.request_count(), 1u) << "not retried";

  auto s = settings();
  s.base_url = server_.base_url() + "/wrong-prefix";
  outcomes = apply_ok(*target(s), {create("2")});
  EXPECT_EQ(outcomes.at(0).kind, OutcomeKind::kRejected);
  EXPECT_EQ(outcomes.at(0).message, "HTTP 404: Not Found");
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(AuthSyncUserTargetTest, StopsTheJobWhenTheTargetIsUnreachable) {
  auto s = settings();
  server_.stop();
  const auto r = target(s)->apply(creates(2));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, core::ErrorKind::kTarget);
  EXPECT_THAT(r.error().message, HasSubstr("cannot reach auth_sync_user at " + s.base_url + "/auth/sync/user"));
}

TEST_F(AuthSyncUserTargetTest, RejectsADetachWithoutSendingAnything) {
  Change d;
  d.op = Op::kDetach;
  d.key = "1";
  d.target_id = "u-1";
  const auto outcomes = apply_ok(*target(), {d, create("2")});
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kRejected);
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kApplied);
  EXPECT_EQ(server_.request_count(), 1u);
}

// FastAPI's stock 422 echoes the request body under "input" — password
// included — and error pages may quote it too: none of it may reach an outcome.
class EchoingTransport final : public http::Transport {
 public:
  http::Response send(const http::Request& request) override {
    const json body = json::parse(request.body);
    http::Response r;
    const std::string id = body["id"];
    if (id == "u-1") {
      r.status = 422;
      r.body = json({{"detail", json::array({{{"type", "missing"},
                                              {"loc", {"body", "role_id"}},
                                              {"msg", "Field required"},
                                              {"input", body}}})}})
                   .dump();
    } else if (id == "u-2") {
      r.status = 400;
      r.body = json({{"detail", "password " + body["password"].get<std::string>() + " is too weak"}}).dump();
    } else {
      // A long error page quoting the body, cut by the client's 300-byte
      // limit in the middle of the password.
      const std::string lead = "Traceback: sync failed for ";
      const std::size_t at = request.body.find(body["password"].get<std::string>());
      const std::size_t pad = 280 - lead.size() - at;
      r.status = 500;
      r.body = lead + std::string(pad, '.') + request.body;
    }
    return r;
  }
};

TEST_F(AuthSyncUserTargetTest, NeverPutsThePasswordIntoAnOutcomeEvenWhenTheServerEchoesIt) {
  auto t = target(settings(2), [] { return std::make_unique<EchoingTransport>(); });
  const auto outcomes = apply_ok(*t, creates(3));
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kRejected);
  EXPECT_EQ(outcomes[0].message, "HTTP 422: role_id: Field required");
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kRejected);
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::kUnknown);
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const std::string pw = password_for(std::to_string(i + 1));
    EXPECT_THAT(outcomes[i].message, Not(HasSubstr(pw))) << i;
    EXPECT_THAT(outcomes[i].message, Not(HasSubstr(kSecret))) << i;
  }
  EXPECT_THAT(outcomes[1].message, HasSubstr("[redacted]"));
  const std::string cut = password_for("3").substr(0, 20);
  EXPECT_THAT(outcomes[2].message, Not(HasSubstr(cut.substr(4)))) << "not even the part before the cut";
  EXPECT_THAT(outcomes[2].message, HasSubstr("[redacted]..."));
}

}  // namespace
}  // namespace dirsync::targets
