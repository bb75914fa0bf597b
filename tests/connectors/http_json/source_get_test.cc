// connectors/http/source_get: the authentication headers it builds, and one GET
// over loopback with the shared retry policy.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/http/source_get.h"
#include "tests/support/http_json_test_server.h"

namespace dirsync::http {
namespace {

using dirsync::testing::http_json::Fault;
using dirsync::testing::http_json::HttpJsonTestServer;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::Pair;

std::vector<std::pair<std::string, std::string>> revealed(const Request& r) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, value] : r.secret_headers) out.emplace_back(name, value.reveal());
  return out;
}

TEST(AddSourceAuth, BuildsTheExactBasicHeaderAfterTheExtraHeaders) {
  config::HttpSourceAuth auth;
  auth.username = "reader";
  auth.password = core::Secret("pä55:word", "${env:P}");
  Request r;
  add_source_auth(r, auth, {{"X-Tenant", core::Secret("acme", "(literal)")}});
  EXPECT_THAT(revealed(r), ElementsAre(Pair("X-Tenant", "acme"), Pair("Authorization", "Basic cmVhZGVyOnDDpDU1OndvcmQ=")));
  EXPECT_FALSE(r.bearer);
  EXPECT_TRUE(r.headers.empty());  // nothing secret in the printable headers
  EXPECT_EQ(r.secret_headers[1].second.describe(), "${env:P}");
}

TEST(AddSourceAuth, SendsTheApiKeyInItsHeaderAndTheTokenAsBearer) {
  config::HttpSourceAuth key;
  key.api_key = core::Secret("k-1", "${env:K}");
  key.api_key_header = "X-Api-Token";
  Request a;
  add_source_auth(a, key);
  EXPECT_THAT(revealed(a), ElementsAre(Pair("X-Api-Token", "k-1")));

  config::HttpSourceAuth bearer;
  bearer.token = core::Secret("t-1", "${env:T}");
  Request b;
  add_source_auth(b, bearer);
  ASSERT_TRUE(b.bearer);
  EXPECT_EQ(b.bearer->reveal(), "t-1");
  EXPECT_TRUE(b.secret_headers.empty());
}

TEST(UrlEncode, KeepsUnreservedCharactersOnly) {
  EXPECT_EQ(url_encode("aZ09-_.~"), "aZ09-_.~");
  EXPECT_EQ(url_encode("a b&c/d=é"), "a%20b%26c%2Fd%3D%C3%A9");
}

class GetJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.add_users(3);
    server_.start();
    options_.policy.max_attempts = 3;
    options_.sleeper = [this](milliseconds d) { sleeps_.push_back(d); };
    options_.jitter = [] { return 1.0; };
    options_.policy.backoff_initial = milliseconds(10);
  }
  Request request() {
    Request r;
    r.method = "POST";  // get_json forces GET
    r.url = server_.users_url() + "?page=1";
    return r;
  }

  HttpJsonTestServer server_;
  HttpClient client_{config::HttpSettings{}};
  RetryOptions options_;
  std::vector<milliseconds> sleeps_;
};

TEST_F(GetJsonTest, ParsesTheBodyAndKeepsTheHeaders) {
  auto page = get_json(client_, request(), options_);
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->body["data"].size(), 3u);
  EXPECT_EQ(page->response.header("content-type"), "application/json");
  EXPECT_EQ(server_.request_log().at(0).method, "GET");
}

TEST_F(GetJsonTest, RetriesServiceUnavailableWithBackoff) {
  server_.inject(0, Fault::k503, 2);
  auto page = get_json(client_, request(), options_);
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(server_.request_count(), 3u);
  EXPECT_THAT(sleeps_, ElementsAre(milliseconds(10), milliseconds(20)));
}

TEST_F(GetJsonTest, AnswersUnauthorizedAsAuthAtOnce) {
  server_.inject(0, Fault::k401);
  auto page = get_json(client_, request(), options_);
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.error().kind, core::ErrorKind::kAuth);
  EXPECT_EQ(page.error().message, "GET " + server_.users_url() + "?page=1: HTTP 401: Unauthenticated.");
  EXPECT_EQ(server_.request_count(), 1u);
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(GetJsonTest, RefusesABodyThatIsNotJson) {
  server_.inject(0, Fault::kNotJson);
  auto page = get_json(client_, request(), options_);
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.error().kind, core::ErrorKind::kSource);
  EXPECT_EQ(page.error().message, "GET " + server_.users_url() + "?page=1: HTTP 200 with a body that is not JSON");
}

}  // namespace
}  // namespace dirsync::http
