// The loopback PERSCOM's own tests: it must behave as the seed document and
// Laravel Orion say, or the target's tests prove nothing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "connectors/http/http_client.h"
#include "tests/support/perscom_test_server.h"

namespace dirsync::testing {
namespace {

using nlohmann::json;

class PerscomServerTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.start(); }

  http::Response send(const std::string& method, const std::string& path, const json& body,
                      std::optional<std::string> token = std::string("test-token")) {
    http::Request req;
    req.method = method;
    req.url = server_.base_url() + path;
    if (!body.is_null()) req.body = body.dump();
    if (token) req.bearer = core::Secret(*token, "(test)");
    req.idempotent = method != "POST";
    return client_.send(req);
  }

  static json parse(const http::Response& r) { return json::parse(r.body); }

  PerscomTestServer server_;
  http::HttpClient client_{config::HttpSettings{}};
};

json user(const std::string& name, const std::string& email) { return {{"name", name}, {"email", email}}; }

TEST_F(PerscomServerTest, RefusesARequestWithoutTheBearerToken) {
  const auto r = send("POST", "/v2/users/batch", {{"resources", json::array({user("A", "a@x.org")})}}, std::nullopt);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(parse(r), json({{"message", "Unauthenticated."}}));
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(PerscomServerTest, RefusesAWrongToken) {
  const auto r = send("POST", "/v2/users/batch", {{"resources", json::array({user("A", "a@x.org")})}}, "nope");
  EXPECT_EQ(r.status, 401);
}

TEST_F(PerscomServerTest, AnswersNotFoundForAnUnknownVersionOrPath) {
  EXPECT_EQ(send("POST", "/v3/users/batch", {{"resources", json::array()}}).status, 404);
  EXPECT_EQ(send("POST", "/v2/people/batch", {{"resources", json::array()}}).status, 404);
  EXPECT_EQ(send("PUT", "/v1/users/batch", {{"resources", json::array()}}).status, 405);
}

TEST_F(PerscomServerTest, CreatesUsersAndReturnsThemWithIds) {
  const auto r = send("POST", "/v1/users/batch",
                      {{"resources", json::array({user("Ann", "ann@x.org"),
                                                  {{"name", "Bob"}, {"email", "bob@x.org"}, {"rank_id", 4},
                                                   {"approved", true}, {"phone_number", nullptr}}})}});
  ASSERT_EQ(r.status, 200);
  const json data = parse(r)["data"];
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[0]["id"], 1);
  EXPECT_EQ(data[0]["email"], "ann@x.org");
  EXPECT_EQ(data[1]["id"], 2);
  EXPECT_EQ(data[1]["rank_id"], 4);
  EXPECT_TRUE(data[1]["created_at"].is_string());
  EXPECT_EQ(server_.users().size(), 2u);
  EXPECT_EQ(server_.find_user_by_email("BOB@x.org")["name"], "Bob");
}

TEST_F(PerscomServerTest, RejectsTheWholeBatchWhenOneRecordIsInvalid) {
  server_.add_user(user("Old", "taken@x.org"));
  const auto r = send("POST", "/v2/users/batch",
                      {{"resources", json::array({user("Ok", "ok@x.org"), user("Bad", "not-an-email"),
                                                  user("Dup", "taken@x.org"), {{"email", "n@x.org"}}})}});
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(parse(r), json({{"error",
                             {{"message", "The resources.1.email field must be a valid email address. (and 2 more errors)"},
                              {"type", "ValidationException"}}}}));
  EXPECT_EQ(server_.users().size(), 1u) << "one transaction: nothing of the batch is written";
}

TEST_F(PerscomServerTest, NamesEveryErrorInLaravelStyle) {
  server_.set_error_style(ErrorStyle::kLaravel);
  server_.add_user(user("Old", "taken@x.org"));
  const auto r = send("POST", "/v2/users/batch",
                      {{"resources", json::array({user("Ok", "ok@x.org"), user("Dup", "taken@x.org"),
                                                  {{"name", 5}, {"email", "c@x.org"}, {"unit_id", "x"}}})}});
  ASSERT_EQ(r.status, 422);
  const json body = parse(r);
  EXPECT_EQ(body["message"], "The resources.1.email has already been taken. (and 2 more errors)");
  EXPECT_EQ(body["errors"], json({{"resources.1.email", {"The resources.1.email has already been taken."}},
                                  {"resources.2.name", {"The resources.2.name field must be a string."}},
                                  {"resources.2.unit_id", {"The resources.2.unit_id field must be an integer."}}}));
}

TEST_F(PerscomServerTest, FlagsEveryDuplicateEmailWithinABatch) {
  server_.set_error_style(ErrorStyle::kLaravel);
  const auto r = send("POST", "/v2/users/batch",
                      {{"resources", json::array({user("A", "same@x.org"), user("B", "SAME@x.org")})}});
  ASSERT_EQ(r.status, 422);
  const json errors = parse(r)["errors"];
  EXPECT_TRUE(errors.contains("resources.0.email"));
  EXPECT_TRUE(errors.contains("resources.1.email"));
}

TEST_F(PerscomServerTest, RejectsUnknownFieldsAndLongNames) {
  const auto r = send("POST", "/v2/users/batch",
                      {{"resources", json::array({{{"name", std::string(256, 'n')}, {"email", "a@x.org"}},
                                                  {{"name", "B"}, {"email", "b@x.org"}, {"shoe_size", 9}}})}});
  ASSERT_EQ(r.status, 422);
  EXPECT_EQ(parse(r)["error"]["message"],
            "The resources.0.name field must not be greater than 255 characters. (and 1 more error)");
}

TEST_F(PerscomServerTest, RefusesAnEmailEvenWhenPatchingItsOwnUser) {
  const auto id = server_.add_user(user("Ann", "ann@x.org"));
  const auto r = send("PATCH", "/v2/users/batch",
                      {{"resources", {{std::to_string(id), {{"name", "Ann B"}, {"email", "ann@x.org"}}}}}});
  ASSERT_EQ(r.status, 422);
  EXPECT_EQ(parse(r)["error"]["message"], "The resources." + std::to_string(id) + ".email has already been taken.");
  EXPECT_EQ(server_.users()[0]["name"], "Ann") << "nothing written";
}

TEST_F(PerscomServerTest, PatchesKnownIdsAndSkipsUnknownOnesSilently) {
  const auto id = server_.add_user(user("Ann", "ann@x.org"));
  const auto r = send("PATCH", "/v2/users/batch",
                      {{"resources", {{std::to_string(id), {{"name", "Ann B"}}}, {"999", {{"name", "Ghost"}}}}}});
  ASSERT_EQ(r.status, 200);
  const json data = parse(r)["data"];
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0]["id"], id);
  EXPECT_EQ(server_.users()[0]["name"], "Ann B");
  EXPECT_EQ(server_.users()[0]["email"], "ann@x.org");
}

TEST_F(PerscomServerTest, DeletesKnownIdsAndSkipsUnknownOnesSilently) {
  const auto a = server_.add_user(user("Ann", "ann@x.org"));
  server_.add_user(user("Bob", "bob@x.org"));
  const auto r = send("DELETE", "/v2/users/batch", {{"resources", {a, 999}}});
  ASSERT_EQ(r.status, 200);
  const json data = parse(r)["data"];
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0]["id"], a);
  ASSERT_EQ(server_.users().size(), 1u);
  EXPECT_EQ(server_.users()[0]["name"], "Bob");
}

TEST_F(PerscomServerTest, ReadsNoBodyThatIsNotDeclaredAsJson) {
  http::Request req;
  req.method = "POST";
  req.url = server_.base_url() + "/v2/users/batch";
  req.body = json({{"resources", json::array({user("A", "a@x.org")})}}).dump();
  req.content_type = "text/plain";
  req.bearer = core::Secret("test-token", "(test)");
  const auto r = client_.send(req);
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(parse(r)["error"]["message"], "The resources field is required.");
}

TEST_F(PerscomServerTest, RequiresTheConfiguredPerscomId) {
  server_.require_perscom_id("42");
  EXPECT_EQ(send("GET", "/v2/users", nullptr).status, 401);
  http::Request req;
  req.url = server_.base_url() + "/v2/users";
  req.bearer = core::Secret("test-token", "(test)");
  req.secret_headers.emplace_back("X-Perscom-Id", core::Secret("42", "(test)"));
  EXPECT_EQ(client_.send(req).status, 200);
}

TEST_F(PerscomServerTest, AnswersInjectedFaultsInOrderThenRecovers) {
  server_.inject(Fault::k429, 1, 7);
  server_.inject(Fault::k503, 1, 3);
  server_.inject(Fault::k500);
  auto r = send("GET", "/v2/users", nullptr);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("Retry-After"), "7");
  r = send("GET", "/v2/users", nullptr);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.header("retry-after"), "3");
  EXPECT_EQ(send("GET", "/v2/users", nullptr).status, 500);
  EXPECT_EQ(send("GET", "/v2/users", nullptr).status, 200);
  EXPECT_EQ(server_.request_count(), 4u);
}

TEST_F(PerscomServerTest, ClosesTheConnectionWithoutAnsweringWhenAsked) {
  server_.inject(Fault::kClose);
  const auto r = send("POST", "/v2/users/batch", {{"resources", json::array({user("A", "a@x.org")})}});
  EXPECT_EQ(r.failure, http::TransportFailure::kAfterSend);
  EXPECT_TRUE(server_.users().empty()) << "kClose processes nothing";
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].status, 0);
}

TEST_F(PerscomServerTest, CanApplyARequestAndStillDropTheAnswer) {
  server_.inject(Fault::kCloseAfterApplying);
  const auto r = send("POST", "/v2/users/batch", {{"resources", json::array({user("A", "a@x.org")})}});
  EXPECT_EQ(r.failure, http::TransportFailure::kAfterSend);
  EXPECT_EQ(server_.users().size(), 1u);
}

TEST_F(PerscomServerTest, CanAnswerWithMalformedJson) {
  server_.inject(Fault::kMalformedJson);
  const auto r = send("POST", "/v2/users/batch", {{"resources", json::array({user("A", "a@x.org")})}});
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(json::parse(r.body, nullptr, false).is_discarded());
}

TEST_F(PerscomServerTest, LogsMethodPathStatusBodyAndHeaders) {
  send("POST", "/v2/users/batch", {{"resources", json::array({user("A", "a@x.org")})}});
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].method, "POST");
  EXPECT_EQ(log[0].path, "/v2/users/batch");
  EXPECT_EQ(log[0].status, 200);
  EXPECT_EQ(json::parse(log[0].body)["resources"][0]["name"], "A");
  bool saw_agent = false;
  for (const auto& [name, value] : log[0].headers) saw_agent |= name == "user-agent" && value == http::user_agent();
  EXPECT_TRUE(saw_agent);
}

TEST_F(PerscomServerTest, KeepsConnectionsAliveAcrossRequests) {
  for (int i = 0; i < 3; ++i) ASSERT_EQ(send("GET", "/v2/users", nullptr).status, 200);
  EXPECT_EQ(server_.connections_accepted(), 1u);
}

TEST(PerscomServerHandler, WorksWithoutSockets) {
  PerscomTestServer server;
  ServerRequest req{"POST", "/v2/users/batch",
                    {{"authorization", "Bearer test-token"}, {"content-type", "application/json"}},
                    json({{"resources", json::array({user("A", "a@x.org")})}}).dump()};
  const ServerResponse r = server.handle(req);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(server.users().size(), 1u);
}

TEST(PerscomServerLifecycle, StopsCleanlyWithAnIdleKeepAliveConnectionOpen) {
  PerscomTestServer server;
  server.start();
  http::HttpClient client{config::HttpSettings{}};
  http::Request req;
  req.url = server.base_url() + "/v2/users";
  req.bearer = core::Secret("test-token", "(test)");
  ASSERT_EQ(client.send(req).status, 200);
  server.stop();  // must not hang on the connection the client keeps open
  SUCCEED();
}

}  // namespace
}  // namespace dirsync::testing
