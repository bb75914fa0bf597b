// The loopback Healvi's own tests: it must behave as the seed and Healvi's
// docs say, or the target's tests prove nothing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "connectors/http/http_client.h"
#include "tests/support/healvi_test_server.h"

namespace dirsync::testing::healvi {
namespace {

using nlohmann::json;
using Ids = std::set<std::int64_t>;

class HealviServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.start();
    server_.add_customer(7);
  }

  http::Response send(const std::string& method, const std::string& path, const json& body = nullptr,
                      std::optional<std::string> token = std::string("test-token")) {
    http::Request req;
    req.method = method;
    req.url = server_.base_url() + path;
    if (!body.is_null()) req.body = body.dump();
    if (token) req.bearer = core::Secret(*token, "(test)");
    // A POST on a fresh connection: libcurl never re-sends it by itself, so
    // the faults below reach the client as they happened.
    req.idempotent = method != "POST";
    return client_.send(req);
  }
  http::Response sync(const json& ids, std::int64_t customer = 7) {
    return send("POST", "/customers/" + std::to_string(customer) + "/users", {{"user_ids", ids}});
  }

  static json parse(const http::Response& r) { return json::parse(r.body); }
  static Ids ids_of(const http::Response& r) {
    Ids out;
    const json body = parse(r);
    for (const auto& u : body["data"]) out.insert(u["id"].get<std::int64_t>());
    return out;
  }

  HealviTestServer server_;
  http::HttpClient client_{config::HttpSettings{}};
};

TEST_F(HealviServerTest, BaseUrlCarriesTheThirdPartyPrefix) {
  EXPECT_EQ(server_.base_url(), "http://127.0.0.1:" + std::to_string(server_.port()) + "/third-party/v1");
}

TEST_F(HealviServerTest, RefusesAMissingOrWrongBearerToken) {
  EXPECT_EQ(send("GET", "/customers/7/users", nullptr, std::nullopt).status, 401);
  const auto r = send("POST", "/customers/7/users", {{"user_ids", json::array()}}, "nope");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(parse(r), json({{"message", "Unauthenticated."}}));
}

TEST_F(HealviServerTest, AnswersNotFoundForAnUnknownCustomerOrPath) {
  const auto r = send("GET", "/customers/8/users");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(parse(r)["message"], "No query results for model [App\\Models\\Customer] 8");
  EXPECT_EQ(send("GET", "/customers/x/users").status, 404);
  EXPECT_EQ(send("GET", "/customer/7/users").status, 404);
  http::Request bare;
  bare.url = "http://127.0.0.1:" + std::to_string(server_.port()) + "/customers/7/users";
  bare.bearer = core::Secret("test-token", "(t)");
  EXPECT_EQ(client_.send(bare).status, 404)
      << "the /third-party/v1 prefix is part of every path";
  EXPECT_EQ(send("PUT", "/customers/7/users", {{"user_ids", json::array()}}).status, 405);
}

TEST_F(HealviServerTest, PostReplacesTheAttachedSetAndAnswersWithTheAttachedUsers) {
  server_.add_users(5);
  server_.attach(7, 1);
  server_.attach(7, 2);
  const auto r = sync({2, 3, 4});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(ids_of(r), (Ids{2, 3, 4}));
  EXPECT_EQ(server_.attached(7), (Ids{2, 3, 4})) << "1 was detached because it was not listed";
  const auto again = sync({2, 3, 4});
  EXPECT_EQ(ids_of(again), (Ids{2, 3, 4})) << "the same list twice leaves the same state";
}

TEST_F(HealviServerTest, GetListsAttachedUsersWithoutAdmins) {
  server_.add_users(2);
  const auto admin = server_.add_user("Boss", "boss@example.com", /*admin=*/true);
  for (std::int64_t id : {1, 2}) server_.attach(7, id);
  server_.attach(7, admin);
  const auto r = send("GET", "/customers/7/users");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(ids_of(r), (Ids{1, 2}));
  EXPECT_EQ(server_.attached(7), (Ids{1, 2, admin}));
}

TEST_F(HealviServerTest, SyncDetachesAnUnlistedAdminUnlessSwitchedToKeepAdmins) {
  server_.add_users(2);
  const auto admin = server_.add_user("Boss", nullptr, true);
  server_.attach(7, admin);
  ASSERT_EQ(sync({1}).status, 200);
  EXPECT_EQ(server_.attached(7), (Ids{1})) << "the docs: the list determines what to attach or detach";

  server_.attach(7, admin);
  auto o = server_.options();
  o.sync_keeps_admins = true;
  server_.set_options(o);
  ASSERT_EQ(sync({2}).status, 200);
  EXPECT_EQ(server_.attached(7), (Ids{2, admin}));
}

TEST_F(HealviServerTest, PostAnswerLeavesAdminsOutUnlessSwitched) {
  const auto admin = server_.add_user("Boss", nullptr, true);
  EXPECT_EQ(ids_of(sync({admin})), Ids{});
  EXPECT_EQ(server_.attached(7), (Ids{admin}));
  auto o = server_.options();
  o.admins_in_post_response = true;
  server_.set_options(o);
  EXPECT_EQ(ids_of(sync({admin})), (Ids{admin}));
}

TEST_F(HealviServerTest, UsersCarryTheSchemasEmailOddity) {
  server_.add_users(3);
  for (std::int64_t id : {1, 2, 3}) server_.attach(7, id);
  const auto data = parse(send("GET", "/customers/7/users"))["data"];
  ASSERT_EQ(data.size(), 3u);
  EXPECT_TRUE(data[0]["email"].is_string());
  EXPECT_TRUE(data[1]["email"].is_number_integer());
  EXPECT_TRUE(data[2]["email"].is_null());
  for (const auto& u : data) {
    for (const char* field : {"id", "name", "email", "roles", "permissions", "created_at", "updated_at"}) {
      EXPECT_TRUE(u.contains(field)) << field;
    }
  }
}

TEST_F(HealviServerTest, ValidatesTheListLikeLaravelAndWritesNothing) {
  server_.add_users(2);
  server_.attach(7, 1);
  auto r = sync({1, 99, "two", 98});
  ASSERT_EQ(r.status, 422);
  EXPECT_EQ(parse(r), json::parse(R"j({"message":"The selected user_ids.1 is invalid. (and 2 more errors)",
      "errors":{"user_ids.1":["The selected user_ids.1 is invalid."],
                "user_ids.2":["The user_ids.2 field must be an integer."],
                "user_ids.3":["The selected user_ids.3 is invalid."]}})j"));
  EXPECT_EQ(server_.attached(7), (Ids{1}));

  r = send("POST", "/customers/7/users", {{"ids", {1}}});
  EXPECT_EQ(parse(r), json::parse(R"({"message":"The user_ids field is required.",
      "errors":{"user_ids":["The user_ids field is required."]}})"));
  EXPECT_EQ(send("POST", "/customers/7/users", {{"user_ids", 1}}).status, 422);
}

TEST_F(HealviServerTest, UnknownIdsCanBeIgnoredInsteadOfRefused) {
  server_.add_users(1);
  auto o = server_.options();
  o.unknown_ids = UnknownIds::kIgnore;
  server_.set_options(o);
  const auto r = sync({1, 50});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(ids_of(r), (Ids{1}));
}

TEST_F(HealviServerTest, AnEmptyListDetachesEveryoneUnlessSwitchedToRequireOne) {
  server_.add_users(2);
  server_.attach(7, 1);
  server_.attach(7, 2);
  auto o = server_.options();
  o.reject_empty_list = true;
  server_.set_options(o);
  EXPECT_EQ(sync(json::array()).status, 422);
  EXPECT_EQ(server_.attached(7), (Ids{1, 2}));
  o.reject_empty_list = false;
  server_.set_options(o);
  EXPECT_EQ(sync(json::array()).status, 200);
  EXPECT_EQ(server_.attached(7), Ids{});
}

TEST_F(HealviServerTest, IgnoresABodyNotSentAsJson) {
  server_.add_users(1);
  http::Request req;
  req.method = "POST";
  req.url = server_.base_url() + "/customers/7/users";
  req.body = R"({"user_ids":[1]})";
  req.content_type = "text/plain";
  req.bearer = core::Secret("test-token", "(t)");
  EXPECT_EQ(client_.send(req).status, 422);
  EXPECT_TRUE(server_.attached(7).empty());
}

TEST_F(HealviServerTest, InjectedFaultsFollowTheirMethodAndOrder) {
  server_.add_users(2);
  server_.inject(Fault::k500, 1, 1, "POST");
  server_.inject(Fault::k429, 1, 7);
  auto r = send("GET", "/customers/7/users");
  EXPECT_EQ(r.status, 429) << "the POST-only fault waits for a POST";
  EXPECT_EQ(r.header("retry-after"), "7");
  EXPECT_EQ(sync({1}).status, 500);
  EXPECT_TRUE(server_.attached(7).empty()) << "a 500 processes nothing";

  server_.inject(Fault::kClose);
  r = sync({1});
  EXPECT_EQ(r.failure, http::TransportFailure::kAfterSend);
  EXPECT_TRUE(server_.attached(7).empty());

  server_.inject(Fault::kCloseAfterApplying);
  r = sync({1, 2});
  EXPECT_EQ(r.failure, http::TransportFailure::kAfterSend);
  EXPECT_EQ(server_.attached(7), (Ids{1, 2}));

  server_.inject(Fault::kMalformedJson);
  r = sync({2});
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(json::parse(r.body, nullptr, false).is_discarded());
  EXPECT_EQ(server_.attached(7), (Ids{2}));

  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 5u);
  EXPECT_EQ(log[0].status, 429);
  EXPECT_EQ(log[2].status, 0);
  EXPECT_EQ(log[4].body, R"({"user_ids":[2]})");
}

}  // namespace
}  // namespace dirsync::testing::healvi
