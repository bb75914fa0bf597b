// HTTPS for real: HttpClient (and the PERSCOM target) against a loopback HTTPS
// server whose certificate comes from a CA generated when the tests start.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "connectors/http/http_client.h"
#include "connectors/http/retry.h"
#include "connectors/targets/perscom/perscom_target.h"
#include "tests/support/https_test_server.h"
#include "tests/support/perscom_test_server.h"

namespace dirsync::http {
namespace {

using std::chrono::milliseconds;
using testing::HttpsTestServer;
using testing::ServerRequest;
using testing::ServerResponse;
using testing::TestPki;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

class HttpsTest : public ::testing::Test {
 protected:
  // Generating keys takes a moment: one CA that signed the server's
  // certificate and one that did not, for the whole suite.
  static void SetUpTestSuite() {
    pki_ = new TestPki("dirsync test CA");
    other_pki_ = new TestPki("some other CA");
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete other_pki_;
    pki_ = other_pki_ = nullptr;
  }

  void SetUp() override {
    server_ = std::make_unique<HttpsTestServer>(
        [this](const ServerRequest& r) {
          ++handled_;
          ServerResponse res;
          res.body = R"({"path":")" + r.target + R"(","method":")" + r.method + R"("})";
          return res;
        },
        pki_->server_cert(), pki_->server_key());
    server_->start();
  }

  static config::HttpSettings settings(const std::string& ca_file) {
    config::HttpSettings s;
    s.connect_timeout = milliseconds(5000);
    s.timeout = milliseconds(10'000);
    s.ca_file = ca_file;
    return s;
  }

  Request get(const std::string& path) const {
    Request r;
    r.url = server_->base_url() + path;
    r.idempotent = true;
    return r;
  }

  static TestPki* pki_;
  static TestPki* other_pki_;
  std::unique_ptr<HttpsTestServer> server_;
  std::atomic<int> handled_{0};
};

TestPki* HttpsTest::pki_ = nullptr;
TestPki* HttpsTest::other_pki_ = nullptr;

TEST_F(HttpsTest, SucceedsWithTheCaThatSignedTheServersCertificate) {
  HttpClient client(settings(pki_->ca_cert()));
  const Response r = client.send(get("/v2/users"));
  ASSERT_EQ(r.failure, TransportFailure::kNone) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"path":"/v2/users","method":"GET"})");
  EXPECT_EQ(handled_, 1);
  EXPECT_EQ(server_->handshakes_completed(), 1u);
}

TEST_F(HttpsTest, ChecksTheHostNameAgainstTheCertificatesDnsName) {
  HttpClient client(settings(pki_->ca_cert()));
  Request r = get("/ping");
  r.url = "https://localhost:" + std::to_string(server_->port()) + "/ping";
  const Response response = client.send(r);
  ASSERT_EQ(response.failure, TransportFailure::kNone) << response.error;
  EXPECT_EQ(response.status, 200);
}

TEST_F(HttpsTest, ReusesTheTlsConnectionForRequestsThatMayBeRepeated) {
  HttpClient client(settings(pki_->ca_cert()));
  for (int i = 0; i < 3; ++i) {
    const Response r = client.send(get("/again"));
    ASSERT_TRUE(r.ok()) << r.error;
  }
  EXPECT_EQ(server_->connections_accepted(), 1u);
  EXPECT_EQ(server_->handshakes_completed(), 1u);
}

TEST_F(HttpsTest, PostsABodyOverTls) {
  HttpClient client(settings(pki_->ca_cert()));
  Request r;
  r.method = "POST";
  r.url = server_->base_url() + "/users/batch";
  r.body = R"({"resources":[]})";
  const Response response = client.send(r);
  ASSERT_TRUE(response.ok()) << response.error;
  EXPECT_EQ(response.body, R"({"path":"/users/batch","method":"POST"})");
}

TEST_F(HttpsTest, RefusesTheServerWithoutItsCaAsATlsProblemBeforeAnythingWasSent) {
  HttpClient client(settings(""));  // the system CA store does not know our CA
  const Response r = client.send(get("/v2/users"));
  EXPECT_EQ(r.failure, TransportFailure::kNothingSent);
  EXPECT_TRUE(r.tls_problem);
  EXPECT_EQ(r.status, 0);
  EXPECT_THAT(r.error, HasSubstr("TLS/certificate problem"));
  EXPECT_THAT(r.error, AnyOf(HasSubstr("certificate"), HasSubstr("SSL")));
  EXPECT_EQ(handled_, 0) << "no request may reach a server that was not verified";
  EXPECT_EQ(classify(r).verdict, Verdict::kRetry) << "nothing was sent, so retrying is safe";
}

TEST_F(HttpsTest, RefusesTheServerWhenTheConfiguredCaDidNotSignItsCertificate) {
  HttpClient client(settings(other_pki_->ca_cert()));
  const Response r = client.send(get("/v2/users"));
  EXPECT_EQ(r.failure, TransportFailure::kNothingSent);
  EXPECT_TRUE(r.tls_problem);
  EXPECT_THAT(r.error, HasSubstr("TLS/certificate problem"));
  EXPECT_EQ(handled_, 0);
}

TEST_F(HttpsTest, RefusesAPlainHttpClientSpeakingToTheTlsPort) {
  // The control for the tests above: the server really demands TLS.
  HttpClient client(settings(pki_->ca_cert()));
  Request r = get("/v2/users");
  r.url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/v2/users";
  const Response response = client.send(r);
  EXPECT_FALSE(response.ok());
  EXPECT_EQ(handled_, 0);
}

// --- the PERSCOM target over HTTPS ----------------------------------------------

config::PerscomTargetSettings perscom_settings(const std::string& base_url, const std::string& ca_file) {
  config::PerscomTargetSettings s;
  s.base_url = base_url;
  s.api_version = "v2";
  s.token = core::Secret("tls-secret-token", "${env:PERSCOM_TOKEN}");
  s.batch_size = 100;
  s.http.connect_timeout = milliseconds(5000);
  s.http.timeout = milliseconds(10'000);
  s.http.max_attempts = 2;
  s.http.ca_file = ca_file;
  return s;
}

core::Change create(const std::string& name, const std::string& email) {
  core::Change c;
  c.op = core::Op::kCreate;
  c.key = email;
  c.payload = {{"name", name}, {"email", email}};
  return c;
}

class PerscomOverHttpsTest : public HttpsTest {
 protected:
  void SetUp() override {
    testing::PerscomServerOptions options;
    options.token = "tls-secret-token";
    perscom_ = std::make_unique<testing::PerscomTestServer>(options);
    server_ = std::make_unique<HttpsTestServer>([this](const ServerRequest& r) { return perscom_->handle(r); },
                                                pki_->server_cert(), pki_->server_key());
    server_->start();
  }
  std::unique_ptr<testing::PerscomTestServer> perscom_;  // used without its sockets: only its handler
};

TEST_F(PerscomOverHttpsTest, CreatesAUserWithTheCaConfigured) {
  targets::PerscomTarget target(perscom_settings(server_->base_url(), pki_->ca_cert()), [](milliseconds) {});
  auto result = target.apply(std::vector<core::Change>{create("Ann", "ann@x.org")});
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->size(), 1u);
  EXPECT_EQ(result.value()[0].kind, core::OutcomeKind::kApplied);
  EXPECT_FALSE(result.value()[0].target_id.empty());
  EXPECT_EQ(perscom_->find_user_by_email("ann@x.org")["name"], "Ann");
}

TEST_F(PerscomOverHttpsTest, StopsTheJobWithATlsErrorThatNamesNoSecretWithoutTheCa) {
  std::vector<milliseconds> sleeps;
  targets::PerscomTarget target(perscom_settings(server_->base_url(), ""),
                                [&](milliseconds d) { sleeps.push_back(d); });
  auto result = target.apply(std::vector<core::Change>{create("Ann", "ann@x.org")});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, core::ErrorKind::kTarget);
  EXPECT_THAT(result.error().message, HasSubstr("TLS/certificate problem"));
  EXPECT_THAT(result.error().message, Not(HasSubstr("tls-secret-token")));
  EXPECT_EQ(perscom_->request_count(), 0u);
  EXPECT_EQ(sleeps.size(), 1u) << "retried once (max_attempts 2): nothing had been sent";
}

}  // namespace
}  // namespace dirsync::http
