// HttpClient over loopback: headers, connection reuse, and how transport
// failures are classified — above all, that a create is never sent twice.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "connectors/http/http_client.h"
#include "connectors/http/retry.h"
#include "core/version.h"
#include "tests/support/loopback_http_server.h"

namespace dirsync::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::LoopbackHttpServer;
using testing::ServerRequest;
using testing::ServerResponse;

constexpr const char* kToken = "s3cr3t-token-value";

config::HttpSettings fast_settings() {
  config::HttpSettings s;
  s.connect_timeout = std::chrono::milliseconds(2000);
  s.timeout = std::chrono::milliseconds(5000);
  return s;
}

Request make(const std::string& method, const std::string& url, bool idempotent) {
  Request r;
  r.method = method;
  r.url = url;
  r.idempotent = idempotent;
  r.body = method == "GET" ? "" : R"({"resources":[]})";
  r.bearer = core::Secret(kToken, "${env:TOKEN}");
  return r;
}

// Records requests; answers per a policy the test sets.
struct Recording {
  std::mutex mu;
  std::vector<ServerRequest> requests;
  std::function<ServerResponse(const ServerRequest&, std::size_t)> answer = [](const ServerRequest&, std::size_t) {
    ServerResponse r;
    r.body = R"({"data":[]})";
    return r;
  };
  ServerResponse operator()(const ServerRequest& req) {
    std::size_t n;
    {
      std::lock_guard lock(mu);
      requests.push_back(req);
      n = requests.size();
    }
    return answer(req, n);
  }
  std::size_t count(const std::string& method) {
    std::lock_guard lock(mu);
    return static_cast<std::size_t>(std::count_if(requests.begin(), requests.end(),
                                                  [&](const ServerRequest& r) { return r.method == method; }));
  }
};

TEST(HttpClient, SendsUserAgentAcceptContentTypeAndBearer) {
  Recording rec;
  LoopbackHttpServer server([&](const ServerRequest& r) { return rec(r); });
  server.start();
  HttpClient client(fast_settings());
  Request req = make("PATCH", server.base_url() + "/v2/users/batch", true);
  req.headers.push_back({"X-Extra", "1"});
  const Response resp = client.send(req);
  ASSERT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, R"({"data":[]})");
  EXPECT_EQ(resp.header("Content-Type"), "application/json");
  ASSERT_EQ(rec.requests.size(), 1u);
  const ServerRequest& got = rec.requests[0];
  EXPECT_EQ(got.method, "PATCH");
  EXPECT_EQ(got.target, "/v2/users/batch");
  EXPECT_EQ(got.body, R"({"resources":[]})");
  EXPECT_EQ(got.header("user-agent"), std::string("dirsync/") + dirsync::kVersion);
  EXPECT_EQ(got.header("authorization"), std::string("Bearer ") + kToken);
  EXPECT_EQ(got.header("content-type"), "application/json");
  EXPECT_EQ(got.header("accept"), "application/json");
  EXPECT_EQ(got.header("x-extra"), "1");
  EXPECT_FALSE(got.has_header("expect"));
}

TEST(HttpClient, ReusesOneConnectionForSuccessiveRequests) {
  Recording rec;
  LoopbackHttpServer server([&](const ServerRequest& r) { return rec(r); });
  server.start();
  HttpClient client(fast_settings());
  for (int i = 0; i < 4; ++i) ASSERT_EQ(client.send(make("PATCH", server.base_url() + "/x", true)).status, 200);
  EXPECT_EQ(server.connections_accepted(), 1u);
}

TEST(HttpClient, ReportsConnectionRefusedAsNothingSent) {
  std::uint16_t port;
  {
    LoopbackHttpServer server([](const ServerRequest&) { return ServerResponse{}; });
    server.start();
    port = server.port();
  }
  HttpClient client(fast_settings());
  const Response r = client.send(make("POST", "http://127.0.0.1:" + std::to_string(port) + "/x", false));
  EXPECT_EQ(r.failure, TransportFailure::kNothingSent);
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.tls_problem);
  EXPECT_THAT(r.error, HasSubstr("(the request was not sent)"));
  EXPECT_THAT(r.error, Not(HasSubstr(kToken)));
  EXPECT_EQ(classify(r).verdict, Verdict::kRetry);
}

TEST(HttpClient, ReportsAConnectionClosedAfterTheRequestAsAfterSend) {
  Recording rec;
  rec.answer = [](const ServerRequest&, std::size_t) {
    ServerResponse r;
    r.close_without_response = true;
    return r;
  };
  LoopbackHttpServer server([&](const ServerRequest& r) { return rec(r); });
  server.start();
  HttpClient client(fast_settings());
  const Response r = client.send(make("POST", server.base_url() + "/x", false));
  EXPECT_EQ(r.failure, TransportFailure::kAfterSend);
  EXPECT_THAT(r.error, HasSubstr("the server may have processed it"));
  EXPECT_THAT(r.error, Not(HasSubstr(kToken)));
  EXPECT_EQ(classify(r).verdict, Verdict::kUnknown);
}

TEST(HttpClient, ReportsATimeoutAfterSendingAsAfterSend) {
  Recording rec;
  rec.answer = [](const ServerRequest&, std::size_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    return ServerResponse{};
  };
  LoopbackHttpServer server([&](const ServerRequest& r) { return rec(r); });
  server.start();
  auto settings = fast_settings();
  settings.timeout = std::chrono::milliseconds(150);
  HttpClient client(settings);
  const Response r = client.send(make("POST", server.base_url() + "/x", false));
  EXPECT_EQ(r.failure, TransportFailure::kAfterSend);
}

// The hazard the client guards against: libcurl replays a request whose reused
// connection died before any answer byte — even though the server read it.
TEST(HttpClient, LibcurlReplaysAnIdempotentRequestOnADeadReusedConnection) {
  Recording rec;
  rec.answer = [](const ServerRequest&, std::size_t n) {
    ServerResponse r;
    r.close_without_response = n == 2;  // the first request on the reused connection
    r.body = "{}";
    return r;
  };
  LoopbackHttpServer server([&](const ServerRequest& r) { return rec(r); });
  server.start();
  HttpClient client(fast_settings());
  ASSERT_EQ(client.send(make("GET", server.base_url() + "/x", true)).status, 200);
  const Response r = client.send(make("PATCH", server.base_url() + "/x", true));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(rec.count("PATCH"), 2u) << "libcurl sent the PATCH twice by itself";
}

TEST(HttpClient, NeverLetsLibcurlReplayANonIdempotentRequest) {
  Recording rec;
  rec.answer = [](const ServerRequest& req, std::size_t) {
    ServerResponse r;
    r.close_without_response = req.method == "POST";  // read it (maybe acted on it), then drop
    r.body = "{}";
    return r;
  };
  LoopbackHttpServer server([&](const ServerRequest& r) { return rec(r); });
  server.start();
  HttpClient client(fast_settings());
  ASSERT_EQ(client.send(make("GET", server.base_url() + "/x", true)).status, 200);  // a connection to reuse
  const Response r = client.send(make("POST", server.base_url() + "/x", false));
  EXPECT_EQ(r.failure, TransportFailure::kAfterSend);
  EXPECT_EQ(rec.count("POST"), 1u);

  // And through the retry loop: still one copy.
  RetryOptions options;
  options.sleeper = [](std::chrono::milliseconds) {};
  const Exchange ex = send_with_retry(client, make("POST", server.base_url() + "/x", false), options);
  EXPECT_EQ(ex.classification.verdict, Verdict::kUnknown);
  EXPECT_EQ(ex.attempts, 1);
  EXPECT_EQ(rec.count("POST"), 2u);
}

TEST(HttpClient, SaysATlsHandshakeFailureIsATlsProblem) {
  // A plain-HTTP server spoken to over https: the handshake fails.
  LoopbackHttpServer server([](const ServerRequest&) { return ServerResponse{}; });
  server.start();
  HttpClient client(fast_settings());
  const Response r =
      client.send(make("POST", "https://127.0.0.1:" + std::to_string(server.port()) + "/x", false));
  EXPECT_EQ(r.failure, TransportFailure::kNothingSent);
  EXPECT_TRUE(r.tls_problem);
  EXPECT_THAT(r.error, HasSubstr("TLS/certificate problem"));
  EXPECT_THAT(r.error, Not(HasSubstr(kToken)));
}

TEST(HttpClient, RefusesACaFileThatDoesNotExistAsATlsProblem) {
  auto settings = fast_settings();
  settings.ca_file = "/nonexistent/ca.pem";
  LoopbackHttpServer server([](const ServerRequest&) { return ServerResponse{}; });
  server.start();
  HttpClient client(settings);
  const Response r = client.send(make("GET", "https://127.0.0.1:" + std::to_string(server.port()) + "/x", true));
  EXPECT_TRUE(r.tls_problem);
  EXPECT_EQ(r.failure, TransportFailure::kNothingSent);
}

TEST(HttpClient, KeepsOnlyTheFinalResponsesHeaders) {
  LoopbackHttpServer server([](const ServerRequest&) {
    ServerResponse r;
    r.status = 429;
    r.headers.emplace_back("Retry-After", "12");
    r.body = R"({"message":"Too Many Attempts."})";
    return r;
  });
  server.start();
  HttpClient client(fast_settings());
  const Response r = client.send(make("GET", server.base_url() + "/x", true));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("retry-after"), "12");
  EXPECT_EQ(classify(r).retry_after, std::chrono::milliseconds(12'000));
}

}  // namespace
}  // namespace dirsync::http

namespace dirsync::http {
namespace {

TEST(HttpClient, TellsTheExchangeObserverAboutEveryRequestWithItsConnectorLabel) {
  std::mutex mu;
  std::vector<std::pair<std::string, int>> seen;
  set_exchange_observer([&](const ExchangeEvent& e) {
    std::lock_guard lock(mu);
    seen.emplace_back(e.label, e.status);
    EXPECT_GE(e.latency.count(), 0.0);
  });
  {
    testing::LoopbackHttpServer server([](const testing::ServerRequest&) {
      testing::ServerResponse res;
      res.status = 503;
      return res;
    });
    server.start();
    config::HttpSettings settings;
    settings.label = "target perscom-prod";
    HttpClient client(settings);
    Request req;
    req.url = server.base_url() + "/x";
    req.idempotent = true;
    client.send(req);
    client.send(req);
  }
  set_exchange_observer(nullptr);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], (std::pair<std::string, int>{"target perscom-prod", 503}));
}

}  // namespace
}  // namespace dirsync::http
