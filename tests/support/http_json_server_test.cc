// The http_json test server answers as the API styles it imitates do: the
// source's tests rely on it, so its paging and checks are pinned here.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "connectors/http/http_client.h"
#include "tests/support/http_json_test_server.h"

namespace dirsync::testing::http_json {
namespace {

using nlohmann::json;

class HttpJsonServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.add_users(25);
    server_.start();
  }

  http::Response get(const std::string& target, std::vector<http::Header> headers = {}) {
    http::Request request;
    request.url = server_.base_url() + target;
    request.headers = std::move(headers);
    return client_.send(request);
  }

  HttpJsonTestServer server_;
  http::HttpClient client_{config::HttpSettings{}};
};

TEST_F(HttpJsonServerTest, PageStyleServesTheAskedSliceThenAnEmptyPage) {
  auto third = get("/api/users?page=3&per_page=10");
  ASSERT_EQ(third.status, 200);
  auto body = json::parse(third.body);
  ASSERT_EQ(body["data"].size(), 5u);
  EXPECT_EQ(body["data"][0]["id"], "u21");
  EXPECT_EQ(json::parse(get("/api/users?page=4&per_page=10").body)["data"], json::array());
  EXPECT_EQ(get("/api/users?page=0").status, 400);
}

TEST_F(HttpJsonServerTest, CursorStyleHandsOutACursorThatNeedsEncodingAndNullAtTheEnd) {
  auto options = server_.options();
  options.style = Style::kCursor;
  server_.set_options(options);
  auto first = json::parse(get("/api/users").body);
  EXPECT_EQ(first["meta"]["next_cursor"], "after/10=+ x");
  auto second = json::parse(get("/api/users?cursor=after%2F20%3D%2B%20x").body);
  EXPECT_EQ(second["data"].size(), 5u);
  EXPECT_TRUE(second["meta"]["next_cursor"].is_null());
  // Undecoded, '+' reads as a space: the cursor is no longer the one handed out.
  EXPECT_EQ(get("/api/users?cursor=after/20=+%20x").status, 400);
}

TEST_F(HttpJsonServerTest, LinkHeaderListsSeveralLinksWithNextNeitherFirstNorAlone) {
  auto options = server_.options();
  options.style = Style::kLinkHeader;
  options.several_links = true;
  server_.set_options(options);
  auto second = get("/api/users?page=2");
  const std::string base = server_.users_url();
  EXPECT_EQ(second.header("link"), "<" + base + "?page=3>; rel=\"last\", <" + base + "?page=1>; rel=prev, <" + base +
                                       "?page=3>; rel=\"next\", <" + base +
                                       "?page=1>; rel=\"first\"; title=\"First, page; one\"");
  auto last = get("/api/users?page=3");
  EXPECT_EQ(last.header("link").find("rel=\"next\""), std::string::npos);
}

TEST_F(HttpJsonServerTest, RefusesAWrongBasicPasswordWith401) {
  auto options = server_.options();
  options.auth = Auth::kBasic;
  server_.set_options(options);
  // "reader:pä55:word" in UTF-8, base64.
  EXPECT_EQ(get("/api/users", {{"Authorization", "Basic cmVhZGVyOnDDpDU1OndvcmQ="}}).status, 200);
  auto refused = get("/api/users", {{"Authorization", "Basic cmVhZGVyOnBhc3M="}});
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.header("www-authenticate"), "Basic realm=\"api\"");
}

TEST_F(HttpJsonServerTest, InjectedFaultsHitTheirPageOnlyAndAreLogged) {
  server_.inject(1, Fault::k503, 2);
  EXPECT_EQ(get("/api/users?page=1&per_page=10").status, 200);
  EXPECT_EQ(get("/api/users?page=2&per_page=10").status, 503);
  EXPECT_EQ(get("/api/users?page=2&per_page=10").status, 503);
  EXPECT_EQ(get("/api/users?page=2&per_page=10").status, 200);
  auto log = server_.request_log();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[1].target, "/api/users?page=2&per_page=10");
  EXPECT_EQ(log[1].status, 503);
}

}  // namespace
}  // namespace dirsync::testing::http_json
