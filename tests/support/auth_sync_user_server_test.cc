// The loopback auth_sync_user service's own tests: it must behave as the seed
// document and FastAPI say, or the target's tests prove nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "connectors/http/http_client.h"
#include "tests/support/auth_sync_user_test_server.h"

namespace dirsync::testing {
namespace {

using nlohmann::json;

constexpr const char* kPath = "/auth/sync/user";

// The seed's example request body.
json seed_user(const std::string& id = "12345") {
  return {{"id", id},
          {"password", "securepassword"},
          {"email", "user@example.com"},
          {"organization_id", "org123"},
          {"role_id", "role123"},
          {"first_name", "John"},
          {"last_name", "Doe"},
          {"phone_number", "1234567890"},
          {"phone_country_code", "+1"},
          {"image_url", "https://example.com/image.jpg"},
          {"device_id", "device123"},
          {"google_id", "google123"},
          {"google_image_url", "https://example.com/google_image.jpg"}};
}

json missing(const char* field) {
  return {{"loc", {"body", field}}, {"msg", "Field required"}, {"type", "missing"}};
}
json not_a_string(const char* field) {
  return {{"loc", {"body", field}}, {"msg", "Input should be a valid string"}, {"type", "string_type"}};
}
json bad_email() {
  return {{"loc", {"body", "email"}}, {"msg", "value is not a valid email address"}, {"type", "value_error"}};
}

class AuthSyncServerTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.start(); }

  http::Request request(const std::string& method, const std::string& path, std::string body) const {
    http::Request req;
    req.method = method;
    req.url = server_.base_url() + path;
    req.body = std::move(body);
    return req;
  }

  http::Response post(const json& body) { return client_.send(request("POST", kPath, body.dump())); }

  static json parse(const http::Response& r) { return json::parse(r.body); }

  AuthSyncUserTestServer server_;
  http::HttpClient client_{config::HttpSettings{}};
};

TEST_F(AuthSyncServerTest, AnswersTheSeedsExampleWith201AndABareJsonString) {
  const auto r = post(seed_user());
  ASSERT_EQ(r.status, 201);
  EXPECT_EQ(r.body, "\"User batch synced successfully.\"");
  EXPECT_EQ(parse(r), json("User batch synced successfully."));
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(server_.user("12345"), seed_user());
}

TEST_F(AuthSyncServerTest, StoresAbsentOptionalFieldsAsNullAndDropsUnknownOnes) {
  json u = seed_user("u1");
  for (const char* f : {"image_url", "device_id", "google_id", "google_image_url"}) u.erase(f);
  u["shoe_size"] = 9;
  u["device_id"] = nullptr;
  ASSERT_EQ(post(u).status, 201);
  const json stored = server_.user("u1");
  EXPECT_FALSE(stored.contains("shoe_size"));
  EXPECT_TRUE(stored["image_url"].is_null());
  EXPECT_TRUE(stored["device_id"].is_null());
  EXPECT_EQ(stored.size(), 13u);
}

TEST_F(AuthSyncServerTest, ReplacesTheUserWithTheSameIdAndKeepsOthers) {
  ASSERT_EQ(post(seed_user("a")).status, 201);
  ASSERT_EQ(post(seed_user("b")).status, 201);
  json update = seed_user("a");
  update["first_name"] = "Johnny";
  update.erase("device_id");
  ASSERT_EQ(post(update).status, 201);
  const json users = server_.users();
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users["a"]["first_name"], "Johnny");
  EXPECT_TRUE(users["a"]["device_id"].is_null()) << "an upsert replaces the whole user";
  EXPECT_EQ(users["a"]["password"], "securepassword");
  EXPECT_EQ(users["b"]["first_name"], "John");
}

TEST_F(AuthSyncServerTest, ListsEveryMissingRequiredFieldInTableOrder) {
  const auto r = post(json::object({{"id", "x"}, {"email", "x@example.com"}, {"unknown", 1}}));
  ASSERT_EQ(r.status, 422);
  EXPECT_EQ(parse(r), json({{"detail",
                             {missing("password"), missing("organization_id"), missing("role_id"),
                              missing("first_name"), missing("last_name"), missing("phone_number"),
                              missing("phone_country_code")}}}));
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(AuthSyncServerTest, RejectsNonStringFieldsIncludingNullForRequiredOnes) {
  json u = seed_user();
  u["phone_number"] = 1234567890;
  u["role_id"] = nullptr;
  u["google_id"] = 7;
  const auto r = post(u);
  ASSERT_EQ(r.status, 422);
  EXPECT_EQ(parse(r), json({{"detail", {not_a_string("role_id"), not_a_string("phone_number"),
                                        not_a_string("google_id")}}}));
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(AuthSyncServerTest, RejectsInvalidEmailAddresses) {
  for (const char* email : {"not-an-email", "user@localhost", "@example.com", "a@b@example.com", "user@example.", ""}) {
    json u = seed_user();
    u["email"] = email;
    const auto r = post(u);
    ASSERT_EQ(r.status, 422) << email;
    EXPECT_EQ(parse(r), json({{"detail", {bad_email()}}})) << email;
  }
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(AuthSyncServerTest, CombinesDifferentErrorsInOneAnswer) {
  json u = seed_user();
  u.erase("id");
  u["email"] = "nobody";
  u["last_name"] = false;
  const auto r = post(u);
  ASSERT_EQ(r.status, 422);
  EXPECT_EQ(parse(r), json({{"detail", {missing("id"), bad_email(), not_a_string("last_name")}}}));
}

TEST_F(AuthSyncServerTest, CanWriteRequiredFieldErrorsTheWayTheSeedsExampleDoes) {
  server_.set_pydantic_messages(false);
  json u = seed_user();
  u.erase("email");
  u["first_name"] = "";
  u["role_id"] = nullptr;
  u["last_name"] = 5;
  const auto r = post(u);
  ASSERT_EQ(r.status, 422);
  EXPECT_EQ(parse(r),
            json({{"detail",
                   {{{"loc", {"query", "email"}}, {"msg", "Email is required."}, {"type", "value_error"}},
                    {{"loc", {"query", "role_id"}}, {"msg", "Role id is required."}, {"type", "value_error"}},
                    {{"loc", {"query", "first_name"}}, {"msg", "First name is required."}, {"type", "value_error"}},
                    not_a_string("last_name")}}}));
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(AuthSyncServerTest, AnswersAJsonDecodeErrorForABodyThatIsNotJson) {
  const auto r = client_.send(request("POST", kPath, "{\"id\": "));
  ASSERT_EQ(r.status, 422);
  EXPECT_EQ(parse(r), json({{"detail", {{{"loc", {"body"}}, {"msg", "JSON decode error"}, {"type", "json_invalid"}}}}}));
}

TEST_F(AuthSyncServerTest, AnswersFastApisErrorsForAnEmptyOrNonObjectBody) {
  auto r = client_.send(request("POST", kPath, ""));
  ASSERT_EQ(r.status, 422);
  EXPECT_EQ(parse(r), json({{"detail", {{{"loc", {"body"}}, {"msg", "Field required"}, {"type", "missing"}}}}}));

  const json not_an_object = {
      {"detail",
       {{{"loc", {"body"}},
         {"msg", "Input should be a valid dictionary or object to extract fields from"},
         {"type", "model_attributes_type"}}}}};
  r = post(json::array({seed_user()}));
  ASSERT_EQ(r.status, 422) << "one user per request, not a list";
  EXPECT_EQ(parse(r), not_an_object);

  auto req = request("POST", kPath, seed_user().dump());
  req.content_type = "text/plain";
  r = client_.send(req);
  ASSERT_EQ(r.status, 422) << "FastAPI reads a body not declared as JSON as raw bytes";
  EXPECT_EQ(parse(r), not_an_object);

  req.content_type = "application/vnd.sync+json; charset=utf-8";
  EXPECT_EQ(client_.send(req).status, 201);
}

TEST_F(AuthSyncServerTest, AnswersNotFoundForOtherPathsAndMethodNotAllowedForOtherMethods) {
  auto r = client_.send(request("POST", "/auth/sync/users", seed_user().dump()));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(parse(r), json({{"detail", "Not Found"}}));
  for (const char* method : {"GET", "PUT", "PATCH", "DELETE"}) {
    r = client_.send(request(method, kPath, method == std::string("GET") ? "" : seed_user().dump()));
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_EQ(parse(r), json({{"detail", "Method Not Allowed"}})) << method;
    EXPECT_EQ(r.header("allow"), "POST");
  }
  EXPECT_EQ(client_.send(request("POST", std::string(kPath) + "?x=1", seed_user().dump())).status, 201)
      << "a query string is ignored";
  EXPECT_TRUE(server_.user("12345").is_object());
  EXPECT_EQ(server_.users().size(), 1u);
}

TEST_F(AuthSyncServerTest, AcceptsAnyCallerUntilABearerIsRequired) {
  EXPECT_EQ(post(seed_user("a")).status, 201);
  server_.require_bearer("s3cret");
  auto r = post(seed_user("b"));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(parse(r), json({{"detail", "Not authenticated"}}));
  EXPECT_EQ(r.header("www-authenticate"), "Bearer");

  auto req = request("POST", kPath, seed_user("b").dump());
  req.bearer = core::Secret("wrong", "(test)");
  EXPECT_EQ(client_.send(req).status, 401);
  req.bearer = core::Secret("s3cret", "(test)");
  EXPECT_EQ(client_.send(req).status, 201);
  EXPECT_EQ(server_.users().size(), 2u);

  server_.require_bearer(std::nullopt);
  EXPECT_EQ(post(seed_user("c")).status, 201);
}

TEST_F(AuthSyncServerTest, RequiresTheConfiguredApiKeyHeader) {
  server_.require_header("X-API-Key", "k-123");
  auto r = post(seed_user("a"));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(parse(r), json({{"detail", "Not authenticated"}}));

  auto req = request("POST", kPath, seed_user("a").dump());
  req.secret_headers.emplace_back("x-api-key", core::Secret("other", "(test)"));
  EXPECT_EQ(client_.send(req).status, 401);
  req.secret_headers.clear();
  req.secret_headers.emplace_back("X-Api-Key", core::Secret("k-123", "(test)"));
  EXPECT_EQ(client_.send(req).status, 201);
  EXPECT_EQ(server_.users().size(), 1u);

  server_.require_header("X-API-Key", std::nullopt);
  EXPECT_EQ(post(seed_user("b")).status, 201);
  server_.require_api_key(std::make_pair(std::string("x-other-key"), std::string("v")));
  EXPECT_EQ(post(seed_user("c")).status, 401);
  server_.require_api_key(std::nullopt);
  EXPECT_EQ(post(seed_user("c")).status, 201);
}

TEST_F(AuthSyncServerTest, ChecksAuthBeforeTheBody) {
  server_.require_bearer("s3cret");
  EXPECT_EQ(post(json::object()).status, 401);
}

TEST_F(AuthSyncServerTest, AnswersInjectedErrorsInOrderWithoutProcessingThenRecovers) {
  server_.inject(AuthSyncFault::k429, 1, 7);
  server_.inject(AuthSyncFault::k400);
  server_.inject(AuthSyncFault::k500);
  auto r = post(seed_user());
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("Retry-After"), "7");
  EXPECT_EQ(parse(r), json({{"detail", "Too Many Requests"}}));
  r = post(seed_user());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(parse(r), json({{"detail", "Bad Request"}}));
  r = post(seed_user());
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "Internal Server Error");
  EXPECT_TRUE(server_.users().empty()) << "none of those faults processes the request";
  EXPECT_EQ(post(seed_user()).status, 201);
  EXPECT_EQ(server_.users().size(), 1u);
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].status, 429);
  EXPECT_EQ(log[1].status, 400);
  EXPECT_EQ(log[2].status, 500);
  EXPECT_EQ(log[3].status, 201);
}

TEST_F(AuthSyncServerTest, CanAnswerNotFoundAsAProxyInFrontWould) {
  server_.inject(AuthSyncFault::k404);
  const auto r = post(seed_user());
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(parse(r), json({{"detail", "Not Found"}}));
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(AuthSyncServerTest, CanStoreTheUserAndStillAnswer500) {
  server_.inject(AuthSyncFault::k500AfterProcessing);
  const auto r = post(seed_user());
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(server_.users().size(), 1u);
}

TEST_F(AuthSyncServerTest, ClosesTheConnectionWithoutProcessingWhenAsked) {
  server_.inject(AuthSyncFault::kClose);
  const auto r = post(seed_user());
  EXPECT_EQ(r.failure, http::TransportFailure::kAfterSend);
  EXPECT_TRUE(server_.users().empty());
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].status, 0);
}

TEST_F(AuthSyncServerTest, CanStoreTheUserAndStillDropTheAnswer) {
  server_.inject(AuthSyncFault::kCloseAfterProcessing);
  const auto r = post(seed_user());
  EXPECT_EQ(r.failure, http::TransportFailure::kAfterSend);
  EXPECT_EQ(server_.users().size(), 1u);
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].status, 0);
}

TEST_F(AuthSyncServerTest, CanStoreTheUserAndAnswerMalformedJson) {
  server_.inject(AuthSyncFault::kMalformedJson);
  const auto r = post(seed_user());
  EXPECT_EQ(r.status, 201);
  EXPECT_TRUE(json::parse(r.body, nullptr, false).is_discarded());
  EXPECT_EQ(server_.users().size(), 1u);
}

TEST_F(AuthSyncServerTest, ClearsPendingFaults) {
  server_.inject(AuthSyncFault::k500, 3);
  server_.clear_faults();
  EXPECT_EQ(post(seed_user()).status, 201);
}

TEST_F(AuthSyncServerTest, LogsMethodPathStatusBodyAndLowerCasedHeaders) {
  server_.require_bearer("s3cret");
  auto req = request("POST", kPath, seed_user().dump());
  req.bearer = core::Secret("s3cret", "(test)");
  req.headers.push_back({"X-Trace-Id", "t1"});
  ASSERT_EQ(client_.send(req).status, 201);
  post(seed_user());  // unauthenticated
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].method, "POST");
  EXPECT_EQ(log[0].path, kPath);
  EXPECT_EQ(log[0].status, 201);
  EXPECT_EQ(json::parse(log[0].body), seed_user());
  bool saw_trace = false, saw_auth = false;
  for (const auto& [name, value] : log[0].headers) {
    saw_trace |= name == "x-trace-id" && value == "t1";
    saw_auth |= name == "authorization" && value == "Bearer s3cret";
  }
  EXPECT_TRUE(saw_trace);
  EXPECT_TRUE(saw_auth);
  EXPECT_EQ(log[1].status, 401);
  EXPECT_EQ(server_.request_count(), 2u);
  server_.clear_log();
  EXPECT_EQ(server_.request_count(), 0u);
  EXPECT_EQ(server_.users().size(), 1u) << "clear_log keeps the users";
}

TEST_F(AuthSyncServerTest, LogsWhetherARequestCreatedOrReplacedItsUser) {
  ASSERT_EQ(post(seed_user("a")).status, 201);
  ASSERT_EQ(post(seed_user("a")).status, 201);
  json bad = seed_user("b");
  bad["email"] = "nope";
  ASSERT_EQ(post(bad).status, 422);
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_TRUE(log[0].created);
  EXPECT_FALSE(log[0].updated);
  EXPECT_FALSE(log[1].created);
  EXPECT_TRUE(log[1].updated);
  EXPECT_FALSE(log[2].created || log[2].updated);
  EXPECT_EQ(server_.user_count(), 1u);
}

TEST_F(AuthSyncServerTest, SeedsAndRemovesUsersDirectly) {
  server_.add_user({{"id", "seeded"}, {"email", "s@example.com"}});
  EXPECT_EQ(server_.user("seeded")["email"], "s@example.com");
  EXPECT_TRUE(server_.user("nobody").is_null());
  EXPECT_TRUE(server_.remove_user("seeded"));
  EXPECT_FALSE(server_.remove_user("seeded"));
  EXPECT_TRUE(server_.users().empty());
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(AuthSyncServerTest, ReusesAKeptAliveConnectionForRequestsMarkedIdempotent) {
  // An upsert keyed by id is safe to repeat, so a target may mark it idempotent,
  // and HttpClient then reuses its connection.
  for (int i = 0; i < 3; ++i) {
    auto req = request("POST", kPath, seed_user("u" + std::to_string(i)).dump());
    req.idempotent = true;
    ASSERT_EQ(client_.send(req).status, 201);
  }
  EXPECT_EQ(server_.connections_accepted(), 1u);
}

TEST_F(AuthSyncServerTest, CountsOneRequestAtATimeWhenRequestsAreSequential) {
  server_.set_delay(std::chrono::milliseconds(5));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(post(seed_user("u" + std::to_string(i))).status, 201);
  EXPECT_EQ(server_.max_concurrent(), 1u);
  EXPECT_EQ(server_.in_flight(), 0u);
}

TEST_F(AuthSyncServerTest, HandlesRequestsOnSeveralConnectionsConcurrently) {
  // Each client holds its request in the server for the delay; with four
  // clients started together, their requests overlap inside the server.
  server_.set_delay(std::chrono::milliseconds(400));
  constexpr int kClients = 4;
  std::atomic<int> ready{0};
  std::vector<int> statuses(kClients, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      http::HttpClient client{config::HttpSettings{}};
      auto req = request("POST", kPath, seed_user("u" + std::to_string(i)).dump());
      ++ready;
      while (ready < kClients) std::this_thread::yield();
      statuses[i] = client.send(req).status;
    });
  }
  for (auto& t : threads) t.join();
  for (int s : statuses) EXPECT_EQ(s, 201);
  EXPECT_GE(server_.max_concurrent(), 2u);
  EXPECT_LE(server_.max_concurrent(), static_cast<std::size_t>(kClients));
  EXPECT_EQ(server_.in_flight(), 0u);
  EXPECT_EQ(server_.users().size(), static_cast<std::size_t>(kClients));
  EXPECT_EQ(server_.connections_accepted(), static_cast<std::size_t>(kClients));
  server_.clear_log();
  EXPECT_EQ(server_.max_concurrent(), 0u) << "clear_log resets the counter to what is in flight";
}

TEST(AuthSyncServerHandler, WorksWithoutSockets) {
  AuthSyncUserTestServer server;
  const ServerRequest req{"POST", kPath, {{"content-type", "application/json"}}, seed_user().dump()};
  const ServerResponse r = server.handle(req);
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, AuthSyncUserTestServer::kSuccessBody);
  EXPECT_EQ(server.user("12345")["password"], "securepassword");
  EXPECT_EQ(server.request_count(), 1u);

  const ServerResponse bad = server.handle({"POST", kPath, {}, "{}"});
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(json::parse(bad.body)["detail"].size(), 9u);
}

TEST(AuthSyncServerHandler, CountsOverlappingCallsToHandle) {
  AuthSyncUserTestServer server;
  server.set_delay(std::chrono::milliseconds(300));
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready < 3) std::this_thread::yield();
      server.handle({"POST", kPath, {}, seed_user("h" + std::to_string(i)).dump()});
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GE(server.max_concurrent(), 2u);
  EXPECT_EQ(server.in_flight(), 0u);
  EXPECT_EQ(server.users().size(), 3u);
}

TEST(AuthSyncServerEmail, FollowsTheDocumentedRule) {
  EXPECT_TRUE(AuthSyncUserTestServer::is_valid_email("user@example.com"));
  EXPECT_TRUE(AuthSyncUserTestServer::is_valid_email("a.b+c@sub.example.org"));
  EXPECT_FALSE(AuthSyncUserTestServer::is_valid_email("user@example"));
  EXPECT_FALSE(AuthSyncUserTestServer::is_valid_email("user.example.com"));
  EXPECT_FALSE(AuthSyncUserTestServer::is_valid_email("us er@example.com"));
  EXPECT_FALSE(AuthSyncUserTestServer::is_valid_email("user@.example.com"));
}

TEST(AuthSyncServerLifecycle, StopsCleanlyWithAnIdleKeepAliveConnectionOpen) {
  AuthSyncUserTestServer server;
  server.start();
  http::HttpClient client{config::HttpSettings{}};
  http::Request req;
  req.method = "POST";
  req.url = server.base_url() + kPath;
  req.body = seed_user().dump();
  req.idempotent = true;
  ASSERT_EQ(client.send(req).status, 201);
  server.stop();  // must not hang on the connection the client keeps open
  EXPECT_EQ(server.users().size(), 1u);
}

}  // namespace
}  // namespace dirsync::testing
