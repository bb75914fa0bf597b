// The retry policy, without sockets: classification, backoff, Retry-After and
// the send loop over a scripted transport.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>

#include "connectors/http/retry.h"

namespace dirsync::http {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Response status(int code, std::string body = {}, std::vector<Header> headers = {}) {
  Response r;
  r.status = code;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

Response transport_failure(TransportFailure f, std::string error = "boom") {
  Response r;
  r.failure = f;
  r.error = std::move(error);
  return r;
}

// 2015-10-21 07:27:00 UTC
const auto kNow = std::chrono::system_clock::from_time_t(1445412420);

TEST(Classify, TreatsEvery2xxAsSuccess) {
  EXPECT_EQ(classify(status(200)).verdict, Verdict::kSuccess);
  EXPECT_EQ(classify(status(201)).verdict, Verdict::kSuccess);
  EXPECT_EQ(classify(status(204)).verdict, Verdict::kSuccess);
}

TEST(Classify, RetriesTooManyRequestsAndServiceUnavailableWithTheirRetryAfter) {
  auto c = classify(status(429, R"({"message":"Too Many Attempts."})", {{"retry-after", "7"}}), kNow);
  EXPECT_EQ(c.verdict, Verdict::kRetry);
  EXPECT_EQ(c.retry_after, milliseconds(7000));
  EXPECT_EQ(c.message, "HTTP 429: Too Many Attempts.");
  c = classify(status(503, "", {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}}), kNow);
  EXPECT_EQ(c.verdict, Verdict::kRetry);
  EXPECT_EQ(c.retry_after, milliseconds(60'000));
}

TEST(Classify, RetriesARequestThatWasNeverSent) {
  const auto c = classify(transport_failure(TransportFailure::kNothingSent, "connection refused"));
  EXPECT_EQ(c.verdict, Verdict::kRetry);
  EXPECT_EQ(c.message, "connection refused");
}

TEST(Classify, StopsTheJobOnUnauthorizedAndForbidden) {
  EXPECT_EQ(classify(status(401)).verdict, Verdict::kAuth);
  EXPECT_EQ(classify(status(403)).verdict, Verdict::kAuth);
}

TEST(Classify, RejectsOtherClientErrorsWithTheServersMessage) {
  const auto c = classify(status(422, R"({"error":{"message":"The resources.0.email field is required."}})"));
  EXPECT_EQ(c.verdict, Verdict::kRejected);
  EXPECT_EQ(c.message, "HTTP 422: The resources.0.email field is required.");
  EXPECT_EQ(classify(status(404, R"({"message":"Not Found"})")).message, "HTTP 404: Not Found");
  EXPECT_EQ(classify(status(400)).verdict, Verdict::kRejected);
}

TEST(Classify, CallsOtherServerErrorsAndFailuresAfterSendingUnknown) {
  EXPECT_EQ(classify(status(500)).verdict, Verdict::kUnknown);
  EXPECT_EQ(classify(status(502)).verdict, Verdict::kUnknown);
  EXPECT_EQ(classify(status(504)).verdict, Verdict::kUnknown);
  EXPECT_EQ(classify(transport_failure(TransportFailure::kAfterSend)).verdict, Verdict::kUnknown);
}

TEST(ParseRetryAfter, ReadsDeltaSeconds) {
  EXPECT_EQ(parse_retry_after("120", kNow), milliseconds(120'000));
  EXPECT_EQ(parse_retry_after(" 0 ", kNow), milliseconds(0));
}

TEST(ParseRetryAfter, ReadsEveryHttpDateFormat) {
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", kNow), milliseconds(60'000));
  EXPECT_EQ(parse_retry_after("Wednesday, 21-Oct-15 07:28:30 GMT", kNow), milliseconds(90'000));
  EXPECT_EQ(parse_retry_after("Wed Oct 21 07:29:00 2015", kNow), milliseconds(120'000));
}

TEST(ParseRetryAfter, TreatsAPastDateAsNoWait) {
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", kNow), milliseconds(0));
}

TEST(ParseRetryAfter, IgnoresGarbage) {
  EXPECT_EQ(parse_retry_after("", kNow), std::nullopt);
  EXPECT_EQ(parse_retry_after("-5", kNow), std::nullopt);
  EXPECT_EQ(parse_retry_after("1.5", kNow), std::nullopt);
  EXPECT_EQ(parse_retry_after("soon", kNow), std::nullopt);
}

TEST(ParseRetryAfter, SaturatesAbsurdlyLargeValuesInsteadOfOverflowing) {
  const auto d = parse_retry_after("99999999999999999999", kNow);
  ASSERT_TRUE(d);
  EXPECT_GT(*d, milliseconds(0));
}

RetryPolicy policy(int attempts = 5) {
  RetryPolicy p;
  p.max_attempts = attempts;
  p.backoff_initial = milliseconds(500);
  p.backoff_max = milliseconds(30'000);
  p.retry_after_max = milliseconds(120'000);
  return p;
}

TEST(Backoff, GrowsExponentiallyUpToTheCap) {
  EXPECT_EQ(backoff_delay(1, policy(), 1.0), milliseconds(500));
  EXPECT_EQ(backoff_delay(2, policy(), 1.0), milliseconds(1000));
  EXPECT_EQ(backoff_delay(3, policy(), 1.0), milliseconds(2000));
  EXPECT_EQ(backoff_delay(7, policy(), 1.0), milliseconds(30'000));
  EXPECT_EQ(backoff_delay(1'000'000, policy(), 1.0), milliseconds(30'000)) << "no overflow";
}

TEST(Backoff, UsesFullJitterBetweenZeroAndTheCap) {
  EXPECT_EQ(backoff_delay(3, policy(), 0.0), milliseconds(0));
  EXPECT_EQ(backoff_delay(3, policy(), 0.5), milliseconds(1000));
  EXPECT_EQ(backoff_delay(3, policy(), 7.0), milliseconds(2000)) << "jitter is clamped to [0, 1]";
  EXPECT_EQ(backoff_delay(3, policy(), -1.0), milliseconds(0));

  const Jitter jitter = random_jitter();
  milliseconds lo = milliseconds::max(), hi = milliseconds::min();
  for (int i = 0; i < 2000; ++i) {
    const auto d = backoff_delay(4, policy(), jitter());
    ASSERT_GE(d, milliseconds(0));
    ASSERT_LE(d, milliseconds(4000));
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, milliseconds(400)) << "full jitter reaches near zero";
  EXPECT_GT(hi, milliseconds(3600)) << "and near the cap";
}

TEST(RetryDelay, HonoursRetryAfterInsteadOfBackoff) {
  Classification c{Verdict::kRetry, milliseconds(7000), ""};
  EXPECT_EQ(retry_delay(1, c, policy(), 0.0), milliseconds(7000));
}

TEST(RetryDelay, CapsRetryAfter) {
  Classification c{Verdict::kRetry, milliseconds(3'600'000), ""};
  EXPECT_EQ(retry_delay(1, c, policy(), 0.0), milliseconds(120'000));
}

// A transport that answers from a script and records what it was sent.
class ScriptedTransport : public Transport {
 public:
  explicit ScriptedTransport(std::deque<Response> script) : script_(std::move(script)) {}
  Response send(const Request& request) override {
    sent.push_back(request.method);
    if (script_.empty()) return status(200);
    Response r = script_.front();
    script_.pop_front();
    return r;
  }
  std::vector<std::string> sent;

 private:
  std::deque<Response> script_;
};

struct Recorder {
  std::vector<milliseconds> sleeps;
  RetryOptions options(int attempts = 5) {
    RetryOptions o;
    o.policy = policy(attempts);
    o.sleeper = [this](milliseconds d) { sleeps.push_back(d); };
    o.jitter = [] { return 1.0; };
    o.clock = [] { return kNow; };
    return o;
  }
};

Request request(std::string method, bool idempotent) {
  Request r;
  r.method = std::move(method);
  r.url = "http://127.0.0.1:1/x";
  r.idempotent = idempotent;
  return r;
}

TEST(SendWithRetry, RetriesA429AndSleepsItsRetryAfter) {
  ScriptedTransport t({status(429, "", {{"retry-after", "7"}}), status(200)});
  Recorder rec;
  const Exchange ex = send_with_retry(t, request("POST", false), rec.options());
  EXPECT_EQ(ex.classification.verdict, Verdict::kSuccess);
  EXPECT_EQ(ex.attempts, 2);
  EXPECT_THAT(rec.sleeps, ElementsAre(milliseconds(7000)));
}

TEST(SendWithRetry, BacksOffExponentiallyWithoutRetryAfter) {
  ScriptedTransport t({status(503), status(503), status(503), status(200)});
  Recorder rec;
  const Exchange ex = send_with_retry(t, request("PATCH", true), rec.options());
  EXPECT_EQ(ex.attempts, 4);
  EXPECT_THAT(rec.sleeps, ElementsAre(milliseconds(500), milliseconds(1000), milliseconds(2000)));
}

TEST(SendWithRetry, NeverResendsANonIdempotentRequestAfterItMayHaveBeenReceived) {
  for (const Response& answer : {transport_failure(TransportFailure::kAfterSend), status(500), status(502)}) {
    ScriptedTransport t({answer, status(200)});
    Recorder rec;
    const Exchange ex = send_with_retry(t, request("POST", false), rec.options());
    EXPECT_EQ(ex.classification.verdict, Verdict::kUnknown);
    EXPECT_EQ(ex.attempts, 1);
    EXPECT_EQ(t.sent.size(), 1u);
    EXPECT_TRUE(rec.sleeps.empty());
  }
}

TEST(SendWithRetry, RetriesANonIdempotentRequestThatWasNeverSent) {
  ScriptedTransport t({transport_failure(TransportFailure::kNothingSent), status(200)});
  Recorder rec;
  const Exchange ex = send_with_retry(t, request("POST", false), rec.options());
  EXPECT_EQ(ex.classification.verdict, Verdict::kSuccess);
  EXPECT_EQ(ex.attempts, 2);
}

TEST(SendWithRetry, RetriesAnIdempotentRequestWhoseOutcomeIsUnknown) {
  ScriptedTransport t({status(500), transport_failure(TransportFailure::kAfterSend), status(200)});
  Recorder rec;
  const Exchange ex = send_with_retry(t, request("PATCH", true), rec.options());
  EXPECT_EQ(ex.classification.verdict, Verdict::kSuccess);
  EXPECT_EQ(ex.attempts, 3);
}

TEST(SendWithRetry, GivesUpAfterMaxAttempts) {
  ScriptedTransport t({status(503), status(503), status(503), status(503)});
  Recorder rec;
  const Exchange ex = send_with_retry(t, request("DELETE", true), rec.options(3));
  EXPECT_EQ(ex.classification.verdict, Verdict::kRetry);
  EXPECT_EQ(ex.attempts, 3);
  EXPECT_EQ(rec.sleeps.size(), 2u);
}

TEST(SendWithRetry, NeverRetriesRejectionsOrAuthenticationFailures) {
  for (int code : {400, 401, 403, 404, 422}) {
    ScriptedTransport t({status(code), status(200)});
    Recorder rec;
    const Exchange ex = send_with_retry(t, request("PATCH", true), rec.options());
    EXPECT_EQ(ex.attempts, 1) << code;
  }
}

TEST(ServerMessage, PrefersTheServersOwnWords) {
  EXPECT_EQ(server_message(status(422, R"({"error":{"message":"bad","type":"ValidationException"}})")), "bad");
  EXPECT_EQ(server_message(status(401, R"({"message":"Unauthenticated."})")), "Unauthenticated.");
  EXPECT_EQ(server_message(status(422, R"({"detail":"nope"})")), "nope");
  EXPECT_EQ(server_message(status(502, "<html>\nBad gateway</html>")), "<html> Bad gateway</html>");
  EXPECT_EQ(server_message(status(500)), "HTTP 500");
  EXPECT_THAT(server_message(status(500, std::string(1000, 'x'))), HasSubstr("..."));
}

}  // namespace
}  // namespace dirsync::http
