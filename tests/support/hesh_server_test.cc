// The loopback Hesh's own tests: it must behave as the seed document (and the
// Hesh docs issue 3 quotes) say, or the target's tests prove nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "connectors/http/http_client.h"
#include "tests/support/hesh_test_server.h"

namespace dirsync::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* kTenant = "40dd0c53-2fa7-4193-82ae-14d4e62c20fb";

class HeshServerTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.start(); }

  http::Response post(const json& body, std::optional<std::string> tenant = std::string(kTenant),
                      std::optional<std::string> key = std::nullopt, const std::string& path = kPathUnderTest) {
    http::Request req;
    req.method = "POST";
    req.url = server_.base_url() + path;
    req.body = body.dump();
    if (tenant) req.secret_headers.emplace_back("x-tenant-id", core::Secret(*tenant, "(test)"));
    if (key) req.secret_headers.emplace_back("x-api-key", core::Secret(*key, "(test)"));
    req.idempotent = true;
    return client_.send(req);
  }
  http::Response post_users(const json& users) { return post({{"users", users}}); }

  static json parse(const http::Response& r) { return json::parse(r.body); }

  static constexpr const char* kPathUnderTest = "/api/v1/public/users/batch";
  HeshTestServer server_;
  http::HttpClient client_{config::HttpSettings{}};
};

json user(const std::string& ext, const std::string& email, json extra = json::object()) {
  json u = {{"external_user_id", ext}, {"email", email}};
  u.update(extra);
  return u;
}

TEST_F(HeshServerTest, CreatesUsersAndAnswersWithTheSeedsFieldsAndItsEchoBug) {
  const auto r = post_users(json::array(
      {user("vova@x.org", "Vova@X.org", {{"first_name", "Vova"}, {"last_name", "Smith"}, {"phone", "38000"}})}));
  ASSERT_EQ(r.status, 200) << r.body;
  const json body = parse(r);
  ASSERT_TRUE(body.is_array());
  ASSERT_EQ(body.size(), 1u);
  const json& u = body[0];
  for (const char* field : {"id", "email", "avatar_image_url", "first_name", "last_name", "external_user_id",
                            "full_name", "phone", "status", "created_at", "userVacations"}) {
    EXPECT_TRUE(u.contains(field)) << field;
  }
  EXPECT_TRUE(HeshTestServer::is_uuid_v4(u["id"].get<std::string>())) << u["id"];
  EXPECT_EQ(u["external_user_id"], u["id"]) << "the seed's example echoes the id";
  EXPECT_EQ(u["email"], "Vova@X.org");
  EXPECT_EQ(u["full_name"], "Vova Smith");
  EXPECT_EQ(u["status"], "Active");
  EXPECT_EQ(u["userVacations"], json::array());
  EXPECT_EQ(server_.users()[0]["external_user_id"], "vova@x.org") << "the stored user keeps what was sent";
}

TEST_F(HeshServerTest, EchoesTheSentExternalIdWhenTheEchoBugIsOff) {
  server_.set_echo_bug(false);
  const auto r = post_users(json::array({user("E1", "a@x.org")}));
  EXPECT_EQ(parse(r)[0]["external_user_id"], "E1");
}

TEST_F(HeshServerTest, SkipsUsersThatExistByEmailOrPhoneAndReturnsOnlyTheCreated) {
  ASSERT_EQ(post_users(json::array({user("E1", "a@x.org", {{"phone", "111"}})})).status, 200);
  const auto r = post_users(json::array({user("E2", "A@x.org"), user("E3", "c@x.org", {{"phone", "111"}}),
                                         user("E4", "d@x.org", {{"phone", "222"}})}));
  ASSERT_EQ(r.status, 200);
  const json body = parse(r);
  ASSERT_EQ(body.size(), 1u);
  EXPECT_EQ(body[0]["email"], "d@x.org");
  EXPECT_EQ(server_.users().size(), 2u);
  EXPECT_EQ(server_.request_log().back().skipped, 2u);
  EXPECT_EQ(server_.request_log().back().created, 1u);
}

TEST_F(HeshServerTest, AnswersAnEmptyArrayToASecondPostOfTheSameUsers) {
  const json users = json::array({user("E1", "a@x.org"), user("E2", "b@x.org")});
  ASSERT_EQ(parse(post_users(users)).size(), 2u);
  const auto again = post_users(users);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(parse(again), json::array());
  EXPECT_EQ(server_.users().size(), 2u);
}

TEST_F(HeshServerTest, SkipsTheSecondUserWithOneEmailInTheSameBatch) {
  const auto r = post_users(json::array({user("E1", "a@x.org"), user("E2", "a@x.org")}));
  EXPECT_EQ(parse(r).size(), 1u);
}

TEST_F(HeshServerTest, DoesNotMatchUsersWithoutAPhoneByPhone) {
  ASSERT_EQ(post_users(json::array({user("E1", "a@x.org")})).status, 200);
  EXPECT_EQ(parse(post_users(json::array({user("E2", "b@x.org")}))).size(), 1u);
}

TEST_F(HeshServerTest, RefusesAMissingMalformedOrUnknownTenantId) {
  const json body = {{"users", json::array({user("E1", "a@x.org")})}};
  const json expected = {{"statusCode", 401}, {"message", "Missing or incorrect x-tenant-id"}, {"error", "Unauthorized"}};
  for (const std::optional<std::string>& tenant :
       {std::optional<std::string>(), std::optional<std::string>("not-a-uuid"),
        std::optional<std::string>("40dd0c53-2fa7-1193-82ae-14d4e62c20fb"),  // version 1
        std::optional<std::string>("9b2f3c1d-5e6a-4b7c-8d9e-0f1a2b3c4d5e")}) {
    const auto r = post(body, tenant);
    EXPECT_EQ(r.status, 401) << tenant.value_or("(none)");
    EXPECT_EQ(parse(r), expected);
  }
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(HeshServerTest, KeepsEachTenantsUsersApart) {
  const std::string other = "9b2f3c1d-5e6a-4b7c-8d9e-0f1a2b3c4d5e";
  server_.add_tenant(other);
  ASSERT_EQ(post_users(json::array({user("E1", "a@x.org")})).status, 200);
  const auto r = post({{"users", json::array({user("E1", "a@x.org")})}}, other);
  EXPECT_EQ(parse(r).size(), 1u) << "a@x.org exists only in the first tenant";
  EXPECT_EQ(server_.users(other).size(), 1u);
}

TEST_F(HeshServerTest, RequiresTheApiKeyWhenSwitchedOn) {
  server_.require_api_key("k-1");
  const json body = {{"users", json::array({user("E1", "a@x.org")})}};
  EXPECT_EQ(post(body).status, 401);
  EXPECT_EQ(parse(post(body, std::string(kTenant), "wrong"))["message"], "Invalid or missing x-api-key");
  EXPECT_EQ(post(body, std::string(kTenant), "k-1").status, 200);
  server_.require_api_key(std::nullopt);
  EXPECT_EQ(post(body).status, 200);
}

TEST_F(HeshServerTest, RejectsInvalidUsersWith400AndWritesNothing) {
  const auto r = post_users(json::array({user("E1", "a@x.org"), user("E2", "nope"),
                                         {{"email", "c@x.org"}, {"phone", 38000}, {"title", "Dr"}}}));
  ASSERT_EQ(r.status, 400);
  EXPECT_EQ(parse(r), json({{"statusCode", 400},
                            {"message",
                             {"users.1.email must be an email", "users.2.external_user_id should not be empty",
                              "users.2.phone must be a string", "users.2.property title should not exist"}},
                            {"error", "Bad Request"}}));
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(HeshServerTest, RejectsABodyWithoutAUsersArray) {
  const auto r = post({{"people", json::array()}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(parse(r)["message"], json::array({"users must be an array"}));
}

TEST_F(HeshServerTest, ReadsNoBodyThatIsNotDeclaredAsJson) {
  ServerRequest req;
  req.method = "POST";
  req.target = "/api/v1/public/users/batch";
  req.headers = {{"x-tenant-id", kTenant}, {"content-type", "text/plain"}};
  req.body = json{{"users", json::array({user("E1", "a@x.org")})}}.dump();
  EXPECT_EQ(server_.handle(req).status, 400);
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(HeshServerTest, AnswersNotFoundForOtherPathsAndMethods) {
  const json body = {{"users", json::array()}};
  const auto r = post(body, std::string(kTenant), std::nullopt, "/api/v1/public/users");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(parse(r)["message"], "Cannot POST /api/v1/public/users");
  ServerRequest get;
  get.method = "GET";
  get.target = "/api/v1/public/users/batch";
  EXPECT_EQ(server_.handle(get).status, 404);
}

TEST_F(HeshServerTest, InjectsA429WithRetryAfterAndProcessesNothing) {
  server_.inject(HeshFault::k429, 1, 9);
  const auto r = post_users(json::array({user("E1", "a@x.org")}));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("retry-after"), "9");
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(HeshServerTest, InjectsA500BeforeOrAfterProcessing) {
  server_.inject(HeshFault::k500);
  EXPECT_EQ(post_users(json::array({user("E1", "a@x.org")})).status, 500);
  EXPECT_TRUE(server_.users().empty());
  server_.inject(HeshFault::k500AfterApplying);
  EXPECT_EQ(post_users(json::array({user("E1", "a@x.org")})).status, 500);
  EXPECT_EQ(server_.users().size(), 1u);
}

TEST_F(HeshServerTest, DropsTheConnectionBeforeOrAfterProcessing) {
  server_.inject(HeshFault::kClose);
  auto r = post_users(json::array({user("E1", "a@x.org")}));
  EXPECT_NE(r.failure, http::TransportFailure::kNone);
  EXPECT_TRUE(server_.users().empty());
  server_.inject(HeshFault::kCloseAfterApplying);
  r = post_users(json::array({user("E1", "a@x.org")}));
  EXPECT_NE(r.failure, http::TransportFailure::kNone);
  EXPECT_EQ(server_.users().size(), 1u);
  const auto log = server_.request_log();
  ASSERT_GE(log.size(), 2u);
  EXPECT_EQ(log.back().status, 0);
}

TEST_F(HeshServerTest, AnswersMalformedJsonAfterProcessing) {
  server_.inject(HeshFault::kMalformedJson);
  const auto r = post_users(json::array({user("E1", "a@x.org")}));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(json::parse(r.body, nullptr, false).is_discarded());
  EXPECT_EQ(server_.users().size(), 1u);
}

TEST_F(HeshServerTest, Answers429PastItsConfiguredRateLimits) {
  server_.set_rate_limits({{100, milliseconds(1000)}, {2, milliseconds(3'600'000)}});
  EXPECT_EQ(post_users(json::array()).status, 200);
  EXPECT_EQ(post_users(json::array()).status, 200);
  const auto r = post_users(json::array({user("E1", "a@x.org")}));
  EXPECT_EQ(r.status, 429);
  const int retry_after = std::stoi(r.header("retry-after"));
  EXPECT_GT(retry_after, 3000) << "the hour window frees its slot in about an hour";
  EXPECT_LE(retry_after, 3600);
  EXPECT_EQ(server_.throttled_count(), 1u);
  EXPECT_TRUE(server_.users().empty());
  server_.set_rate_limits({});
  EXPECT_EQ(post_users(json::array()).status, 200);
}

TEST_F(HeshServerTest, LogsEveryRequestWithItsHeaders) {
  post_users(json::array({user("E1", "a@x.org")}));
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].method, "POST");
  EXPECT_EQ(log[0].path, "/api/v1/public/users/batch");
  EXPECT_EQ(log[0].status, 200);
  EXPECT_EQ(json::parse(log[0].body)["users"][0]["email"], "a@x.org");
  bool tenant = false;
  for (const auto& [name, value] : log[0].headers) tenant |= name == "x-tenant-id" && value == kTenant;
  EXPECT_TRUE(tenant);
}

TEST_F(HeshServerTest, CreatesAUserAgainOnceItWasRemovedInHesh) {
  const json users = json::array({user("E1", "a@x.org")});
  ASSERT_EQ(parse(post_users(users)).size(), 1u);
  EXPECT_TRUE(server_.remove_user_by_email("A@x.org"));
  EXPECT_FALSE(server_.remove_user_by_email("a@x.org"));
  EXPECT_EQ(parse(post_users(users)).size(), 1u);
}

TEST(HeshServerUuid, RecognisesOnlyVersion4Uuids) {
  EXPECT_TRUE(HeshTestServer::is_uuid_v4("40dd0c53-2fa7-4193-82ae-14d4e62c20fb"));
  EXPECT_TRUE(HeshTestServer::is_uuid_v4("40DD0C53-2FA7-4193-B2AE-14D4E62C20FB"));
  EXPECT_FALSE(HeshTestServer::is_uuid_v4("40dd0c53-2fa7-5193-82ae-14d4e62c20fb"));
  EXPECT_FALSE(HeshTestServer::is_uuid_v4("40dd0c53-2fa7-4193-c2ae-14d4e62c20fb"));
  EXPECT_FALSE(HeshTestServer::is_uuid_v4("40dd0c532fa7-4193-82ae-14d4e62c20fb0"));
  EXPECT_FALSE(HeshTestServer::is_uuid_v4(""));
}

}  // namespace
}  // namespace dirsync::testing
