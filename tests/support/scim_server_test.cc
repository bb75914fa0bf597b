// The loopback SCIM server answers as RFC 7644 says (so that the source tests
// test the source, not the server's mistakes).
#include <gtest/gtest.h>

#include "connectors/http/http_client.h"
#include "tests/support/scim_test_server.h"

namespace dirsync::testing {
namespace {

using nlohmann::json;

class ScimServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ScimServerOptions o;
    o.token = "tok";
    o.max_page_size = 3;
    server_ = std::make_unique<ScimTestServer>(o);
    for (int i = 1; i <= 5; ++i) {
      server_->add_user({{"id", "u" + std::to_string(i)},
                         {"userName", "User" + std::to_string(i) + "@Example.com"},
                         {"active", i % 2 == 1}});
    }
    server_->start();
  }

  http::Response get(const std::string& path_and_query, const char* token = "tok") {
    http::Request r;
    r.url = server_->base_url() + path_and_query;
    if (token) r.bearer = core::Secret(token, "(test)");
    return client_.send(r);
  }
  static json body(const http::Response& r) { return json::parse(r.body); }
  static std::vector<std::string> ids(const json& list) {
    std::vector<std::string> out;
    for (const auto& u : list.value("Resources", json::array())) out.push_back(u["id"]);
    return out;
  }

  std::unique_ptr<ScimTestServer> server_;
  http::HttpClient client_{config::HttpSettings{}};
};

TEST_F(ScimServerTest, ListsFromIndexOneWithTheServersPageSizeByDefault) {
  auto r = get("/Users");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "application/scim+json");
  EXPECT_EQ(body(r), json::parse(R"({"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
    "totalResults":5,"itemsPerPage":3,"startIndex":1,"Resources":[
    {"id":"u1","userName":"User1@Example.com","active":true},
    {"id":"u2","userName":"User2@Example.com","active":false},
    {"id":"u3","userName":"User3@Example.com","active":true}]})"));
}

TEST_F(ScimServerTest, PagesByStartIndexAndCount) {
  EXPECT_EQ(ids(body(get("/Users?startIndex=4&count=10"))), (std::vector<std::string>{"u4", "u5"}));
  EXPECT_EQ(ids(body(get("/Users?startIndex=2&count=2"))), (std::vector<std::string>{"u2", "u3"}));
  EXPECT_EQ(ids(body(get("/Users?startIndex=0&count=1"))), std::vector<std::string>{"u1"});  // below 1 means 1
  EXPECT_EQ(ids(body(get("/Users?startIndex=9"))), std::vector<std::string>{});
  const json none = body(get("/Users?count=-4"));  // negative means 0
  EXPECT_EQ(none["itemsPerPage"], 0);
  EXPECT_EQ(none["totalResults"], 5);
  auto bad = get("/Users?startIndex=x");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(body(bad)["scimType"], "invalidValue");
}

TEST_F(ScimServerTest, FiltersByEqualityAndRejectsOtherFilters) {
  EXPECT_EQ(ids(body(get("/Users?filter=userName%20eq%20%22user2%40example.com%22"))), std::vector<std::string>{"u2"});
  EXPECT_EQ(ids(body(get("/Users?filter=active+eq+true"))), (std::vector<std::string>{"u1", "u3", "u5"}));
  const json page2 = body(get("/Users?filter=active%20eq%20true&startIndex=3"));
  EXPECT_EQ(page2["totalResults"], 3);
  EXPECT_EQ(ids(page2), std::vector<std::string>{"u5"});
  auto bad = get("/Users?filter=userName%20sw%20%22u%22");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(body(bad), json::parse(R"({"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400",
    "scimType":"invalidFilter","detail":"The specified filter syntax was invalid: userName sw \"u\""})"));
}

TEST_F(ScimServerTest, RequiresTheBearerToken) {
  for (const char* token : {static_cast<const char*>(nullptr), "other"}) {
    auto r = get("/Users", token);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.header("www-authenticate"), "Bearer realm=\"scim\"");
    EXPECT_EQ(body(r)["status"], "401");
  }
}

TEST_F(ScimServerTest, ServesOneUserAndAnswers404ElseWhere) {
  EXPECT_EQ(body(get("/Users/u4"))["userName"], "User4@Example.com");
  EXPECT_EQ(get("/Users/u9").status, 404);
  EXPECT_EQ(get("/Groups").status, 404);
}

TEST_F(ScimServerTest, FaultsAndChangesHitTheNumberedRequests) {
  server_->fail_request(2, ScimFault::k500);
  server_->fail_request(3, ScimFault::kMalformedJson);
  server_->fail_request(4, ScimFault::kDrop);
  server_->before_request(5, [](std::vector<json>& users) { users.pop_back(); });
  EXPECT_EQ(get("/Users").status, 200);
  EXPECT_EQ(get("/Users").status, 500);
  auto malformed = get("/Users");
  EXPECT_EQ(malformed.status, 200);
  EXPECT_TRUE(json::parse(malformed.body, nullptr, false).is_discarded());
  auto dropped = get("/Users");
  EXPECT_NE(dropped.failure, http::TransportFailure::kNone);
  EXPECT_EQ(body(get("/Users"))["totalResults"], 4);
  const auto log = server_->request_log();
  ASSERT_GE(log.size(), 5u);
  EXPECT_EQ(log[1].status, 500);
  EXPECT_EQ(log[3].status, 0);
}

}  // namespace
}  // namespace dirsync::testing
