// The loopback Royalti's own tests: it must behave as the seed document says
// (results by display name only, sendEmail defaulting to true, the seed's
// example answer), or the target's tests prove nothing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "connectors/http/http_client.h"
#include "tests/support/royalti_test_server.h"

namespace dirsync::testing {
namespace {

using nlohmann::json;

json user(const std::string& first, const std::string& last, const std::string& email) {
  return {{"firstName", first}, {"lastName", last}, {"email", email}};
}

class RoyaltiServerTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.start(); }

  http::Response send(const std::string& method, const std::string& path, const json& body,
                      std::optional<std::string> token = std::string("test-token")) {
    http::Request req;
    req.method = method;
    req.url = server_.base_url() + path;
    if (!body.is_null()) req.body = body.dump();
    if (token) req.bearer = core::Secret(*token, "(test)");
    // A fresh connection per request: libcurl then never re-sends one whose
    // connection an injected fault closed.
    req.idempotent = false;
    return client_.send(req);
  }
  http::Response bulk(const json& body) { return send("POST", "/user/bulk", body); }

  // Without sockets, for the cases the client cannot produce.
  ServerResponse raw(const std::string& body, const std::string& content_type = "application/json") {
    ServerRequest r;
    r.method = "POST";
    r.target = "/user/bulk";
    r.headers = {{"authorization", "Bearer test-token"}, {"content-type", content_type}};
    r.body = body;
    return server_.handle(r);
  }

  static json parse(const http::Response& r) { return json::parse(r.body); }

  RoyaltiTestServer server_;
  http::HttpClient client_{config::HttpSettings{}};
};

TEST_F(RoyaltiServerTest, RefusesARequestWithoutTheRightBearerToken) {
  const json body = {{"users", {user("Ann", "Lee", "ann@x.org")}}, {"sendEmail", false}};
  for (const auto& token : std::vector<std::optional<std::string>>{std::nullopt, std::string("nope")}) {
    const auto r = send("POST", "/user/bulk", body, token);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(parse(r), json({{"statusCode", 401}, {"message", "Unauthorized"}}));
  }
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(RoyaltiServerTest, AnswersNotFoundForAnyOtherRoute) {
  const auto r = send("POST", "/users/bulk", {{"users", json::array()}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(parse(r), json({{"statusCode", 404}, {"message", "Cannot POST /users/bulk"}, {"error", "Not Found"}}));
  EXPECT_EQ(send("GET", "/user/bulk", nullptr).status, 404);
  EXPECT_EQ(send("POST", "/user/bulk?x=1", {{"users", json::array()}, {"sendEmail", false}}).status, 201);
}

TEST_F(RoyaltiServerTest, ReproducesTheSeedsExampleAnswer) {
  server_.add_user(user("Jane", "Doe", "jane@x.org"));
  const auto r = bulk({{"users",
                        {user("John", "Doe", "john@x.org"), user("Jericho", "Doe", "jericho@x.org"),
                         user("Jane", "Doe", "jane@x.org"), user("Jacob", "Doe", "jacob@x"),
                         user("Jake", "Doe", "jake.x.org")}}});
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(parse(r), json::parse(R"({"message":"Done.","createdUsers":["John Doe","Jericho Doe"],
      "processedCount":3,"errors":["User Jane Doe already associated with workspace!",
      "Invalid email format for Jacob Doe","Invalid email format for Jake Doe"]})"));
  EXPECT_EQ(server_.users().size(), 3u);
}

TEST_F(RoyaltiServerTest, InvitesByDefaultWhenSendEmailIsLeftOut) {
  ASSERT_EQ(bulk({{"users", {user("Ann", "Lee", "ann@x.org")}}}).status, 201);
  ASSERT_EQ(bulk({{"users", {user("Bo", "Li", "bo@x.org")}}, {"sendEmail", false}}).status, 201);
  ASSERT_EQ(bulk({{"users", {user("Cy", "Ng", "cy@x.org")}}, {"sendEmail", true}, {"redirect_url", "https://r"},
                  {"message", "Hi"}})
                .status,
            201);
  const auto invited = server_.invitations();
  ASSERT_EQ(invited.size(), 2u);
  EXPECT_EQ(invited[0].email, "ann@x.org");
  EXPECT_EQ(invited[0].name, "Ann Lee");
  EXPECT_EQ(invited[1].email, "cy@x.org");
  EXPECT_EQ(invited[1].redirect_url, "https://r");
  EXPECT_EQ(invited[1].message, "Hi");
}

TEST_F(RoyaltiServerTest, ReportsTwoUsersWithOneDisplayNameAmbiguouslyAsTheRealApiWould) {
  const auto r = bulk({{"users", {user("John", "Doe", "john1@x.org"), user("John", "Doe", "john2@")}},
                       {"sendEmail", false}});
  EXPECT_EQ(parse(r)["createdUsers"], json({"John Doe"}));
  EXPECT_EQ(parse(r)["errors"], json({"Invalid email format for John Doe"}));
}

TEST_F(RoyaltiServerTest, MatchesExistingUsersByEmailWithinARequestToo) {
  const auto r = bulk({{"users", {user("Ann", "Lee", "ann@x.org"), user("Annie", "Lee", "ANN@x.org")}},
                       {"sendEmail", false}});
  EXPECT_EQ(parse(r)["createdUsers"], json({"Ann Lee"}));
  EXPECT_EQ(parse(r)["errors"], json({"User Annie Lee already associated with workspace!"}));
  EXPECT_EQ(server_.users().size(), 1u);
}

TEST_F(RoyaltiServerTest, RejectsABodyOfTheWrongShapeWithoutProcessingAnything) {
  json bad_user = user("Ann", "Lee", "ann@x.org");
  bad_user["phone"] = 5;
  bad_user["shoeSize"] = "9";
  const auto r = bulk({{"users", {user("Bo", "Li", "bo@x.org"), bad_user, {{"firstName", 1}}}}, {"sendEmail", "no"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(parse(r)["message"], json({"users.1.phone must be a string", "users.1.property shoeSize should not exist",
                                       "users.2.firstName must be a string", "users.2.lastName must be a string",
                                       "users.2.email must be a string", "sendEmail must be a boolean value"}));
  EXPECT_TRUE(server_.users().empty());
  EXPECT_EQ(bulk({{"sendEmail", false}}).status, 400);
  EXPECT_EQ(raw(R"({"users":[)").status, 400);
  EXPECT_EQ(raw(json({{"users", json::array()}}).dump(), "text/plain").status, 400) << "not parsed: users is missing";

  server_.set_reject_unknown_fields(false);
  json extra = user("Ann", "Lee", "ann@x.org");
  extra["shoeSize"] = "9";
  EXPECT_EQ(bulk({{"users", {extra}}, {"sendEmail", false}}).status, 201);
}

TEST_F(RoyaltiServerTest, CreatesAgainAUserAnAdministratorRemoved) {
  server_.add_user(user("Ann", "Lee", "ann@x.org"));
  EXPECT_TRUE(server_.remove_user("ANN@x.org"));
  EXPECT_FALSE(server_.remove_user("ann@x.org"));
  const auto r = bulk({{"users", {user("Ann", "Lee", "ann@x.org")}}, {"sendEmail", false}});
  EXPECT_EQ(parse(r)["createdUsers"], json({"Ann Lee"}));
}

TEST_F(RoyaltiServerTest, ProcessedCountIsAsUnreliableAsTheSwitchSays) {
  server_.add_user(user("Old", "Timer", "old@x.org"));
  const json body = {{"users", {user("A", "A", "a@x.org"), user("B", "B", "b@"), user("Old", "Timer", "old@x.org")}},
                     {"sendEmail", false}};
  EXPECT_EQ(parse(bulk(body))["processedCount"], 2);
  server_.set_processed_count(ProcessedCount::kSent);
  EXPECT_EQ(parse(bulk(body))["processedCount"], 3);
  server_.set_processed_count(ProcessedCount::kZero);
  EXPECT_EQ(parse(bulk(body))["processedCount"], 0);
}

TEST_F(RoyaltiServerTest, CanReportResultsInReverseOrder) {
  server_.set_reverse_results(true);
  const auto r = bulk({{"users", {user("A", "A", "a@x.org"), user("B", "B", "b@x.org"), user("C", "C", "c@")}},
                       {"sendEmail", false}});
  EXPECT_EQ(parse(r)["createdUsers"], json({"B B", "A A"}));
}

TEST_F(RoyaltiServerTest, ReportsAnInternalFailureWithAMessageThatNamesNobody) {
  server_.fail_user("b@x.org", "Request failed with status code 502");
  server_.fail_user("c@x.org", "Something went wrong", /*created_anyway=*/true);
  const auto r = bulk({{"users", {user("A", "A", "a@x.org"), user("B", "B", "b@x.org"), user("C", "C", "c@x.org")}},
                       {"sendEmail", true}});
  EXPECT_EQ(parse(r)["createdUsers"], json({"A A"}));
  EXPECT_EQ(parse(r)["errors"], json({"Request failed with status code 502", "Something went wrong"}));
  EXPECT_TRUE(server_.find_user_by_email("b@x.org").is_null());
  EXPECT_FALSE(server_.find_user_by_email("c@x.org").is_null());
  EXPECT_EQ(server_.invitations().size(), 1u);
}

TEST_F(RoyaltiServerTest, FaultsFailAsInjectedAndAreLogged) {
  const json body = {{"users", {user("A", "A", "a@x.org")}}, {"sendEmail", false}};
  server_.inject(RoyaltiFault::k429, 1, 9);
  auto r = bulk(body);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("retry-after"), "9");
  server_.inject(RoyaltiFault::k503);
  EXPECT_EQ(bulk(body).status, 503);
  server_.inject(RoyaltiFault::k500);
  EXPECT_EQ(bulk(body).status, 500);
  server_.inject(RoyaltiFault::kClose);
  EXPECT_EQ(bulk(body).failure, http::TransportFailure::kAfterSend);
  EXPECT_TRUE(server_.users().empty()) << "none of those processed anything";

  server_.inject(RoyaltiFault::k500AfterApplying);
  EXPECT_EQ(bulk(body).status, 500);
  EXPECT_EQ(server_.users().size(), 1u);
  server_.inject(RoyaltiFault::kCloseAfterApplying);
  EXPECT_EQ(bulk({{"users", {user("B", "B", "b@x.org")}}, {"sendEmail", false}}).failure,
            http::TransportFailure::kAfterSend);
  EXPECT_EQ(server_.users().size(), 2u);
  server_.inject(RoyaltiFault::kMalformedJson);
  r = bulk({{"users", {user("C", "C", "c@x.org")}}, {"sendEmail", false}});
  EXPECT_EQ(r.status, 201);
  EXPECT_TRUE(json::parse(r.body, nullptr, false).is_discarded());
  EXPECT_EQ(server_.users().size(), 3u);

  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 7u);
  EXPECT_EQ(log[3].status, 0);
  EXPECT_EQ(log[5].status, 0);
  EXPECT_EQ(log[0].path, "/user/bulk");
  EXPECT_EQ(log[0].body, body.dump());
  bool has_auth = false;
  for (const auto& [name, value] : log[0].headers) has_auth |= name == "authorization" && value == "Bearer test-token";
  EXPECT_TRUE(has_auth);
  server_.clear_log();
  EXPECT_EQ(server_.request_count(), 0u);
}

}  // namespace
}  // namespace dirsync::testing
