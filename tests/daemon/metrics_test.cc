// Metrics: the exposition text for recorded runs (exact lines), label
// escaping, and MetricsServer on an io_context thread, scraped over loopback
// with the real HttpClient.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/time.h>

#include <utility>  // before Asio: see tests/support/asio.h

#include <chrono>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "connectors/http/http_client.h"
#include "core/version.h"
#include "daemon/metrics.h"

namespace dirsync::daemon {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
namespace asio = boost::asio;
using Clock = std::chrono::system_clock;

// 2023-11-14T22:13:20.250Z
const Clock::time_point kEnded = Clock::time_point(std::chrono::milliseconds(1'700'000'000'250));

engine::RunReport report(const std::string& job, engine::RunOutcome outcome, std::chrono::milliseconds duration) {
  engine::RunReport r;
  r.job = job;
  r.outcome = outcome;
  r.duration = duration;
  return r;
}

// The lines of `text` that start with `prefix`, in order.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(prefix)) out.push_back(line);
  }
  return out;
}

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;  // unescaped values
  std::string value;
};

// Parses the text format strictly: comments are # HELP / # TYPE, every other
// line is name{label="value",...} value; anything else fails the test.
std::vector<Sample> parse_exposition(const std::string& text, std::set<std::string>* typed = nullptr) {
  std::vector<Sample> samples;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("# HELP ")) continue;
    if (line.starts_with("# TYPE ")) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      EXPECT_THAT((std::set<std::string>{"counter", "gauge", "histogram"}), ::testing::Contains(type)) << line;
      if (typed) typed->insert(name);
      continue;
    }
    Sample s;
    std::size_t i = 0;
    while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == ':')) {
      s.name += line[i++];
    }
    if (s.name.empty()) {
      ADD_FAILURE() << "no metric name: " << line;
      continue;
    }
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const auto eq = line.find("=\"", i);
        if (eq == std::string::npos) break;
        const std::string label = line.substr(i, eq - i);
        std::string value;
        for (i = eq + 2; i < line.size() && line[i] != '"'; ++i) {
          if (line[i] == '\\' && i + 1 < line.size()) {
            const char e = line[++i];
            value += e == 'n' ? '\n' : e;
          } else {
            value += line[i];
          }
        }
        s.labels[label] = value;
        ++i;  // the closing quote
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size() || line[i] != '}') {
        ADD_FAILURE() << "unterminated labels: " << line;
        continue;
      }
      ++i;
    }
    if (i >= line.size() || line[i] != ' ' || line.find(' ', i + 1) != std::string::npos) {
      ADD_FAILURE() << "expected one space and a value: " << line;
      continue;
    }
    s.value = line.substr(i + 1);
    std::size_t used = 0;
    EXPECT_NO_THROW((void)std::stod(s.value, &used)) << line;
    EXPECT_EQ(used, s.value.size()) << line;
    samples.push_back(std::move(s));
  }
  return samples;
}

// The value of the one sample with this name and exactly these labels.
std::optional<std::string> value_of(const std::vector<Sample>& samples, const std::string& name,
                                    const std::map<std::string, std::string>& labels) {
  std::optional<std::string> found;
  for (const auto& s : samples) {
    if (s.name != name || s.labels != labels) continue;
    EXPECT_FALSE(found) << "duplicate series " << name;
    found = s.value;
  }
  return found;
}

TEST(Metrics, CountsRunsByOutcomeAndRecordsByOperation) {
  Metrics m;
  auto ok = report("hr", engine::RunOutcome::kOk, std::chrono::milliseconds(1200));
  ok.counts.created = 3;
  ok.counts.updated = 12;
  ok.counts.detached = 1;
  ok.counts.filtered = 2;
  m.run_started("hr");
  m.run_finished(ok, 0, kEnded);
  auto partial = report("hr", engine::RunOutcome::kPartial, std::chrono::milliseconds(800));
  partial.counts.created = 1;
  partial.counts.rejected = 4;
  partial.counts.retry = 5;
  partial.counts.unknown = 6;
  partial.counts.skipped = 7;
  m.run_finished(partial, 0, kEnded);

  const std::string text = m.exposition();
  EXPECT_EQ(lines_starting(text, "dirsync_runs_total"),
            (std::vector<std::string>{
                R"(dirsync_runs_total{job="hr",outcome="ok"} 1)",
                R"(dirsync_runs_total{job="hr",outcome="partial"} 1)",
                R"(dirsync_runs_total{job="hr",outcome="blocked"} 0)",
                R"(dirsync_runs_total{job="hr",outcome="failed"} 0)",
            }));
  EXPECT_EQ(lines_starting(text, "dirsync_records_total"),
            (std::vector<std::string>{
                R"(dirsync_records_total{job="hr",op="created"} 4)",
                R"(dirsync_records_total{job="hr",op="updated"} 12)",
                R"(dirsync_records_total{job="hr",op="detached"} 1)",
                R"(dirsync_records_total{job="hr",op="rejected"} 4)",
                R"(dirsync_records_total{job="hr",op="retry"} 5)",
                R"(dirsync_records_total{job="hr",op="unknown"} 6)",
                R"(dirsync_records_total{job="hr",op="skipped"} 7)",
                R"(dirsync_records_total{job="hr",op="filtered"} 2)",
            }));
  EXPECT_THAT(text, HasSubstr("# HELP dirsync_runs_total Finished runs by outcome.\n"
                              "# TYPE dirsync_runs_total counter\n"));
}

TEST(Metrics, CountsHttpRequestsByConnectorAndStatusClassWithTheirLatency) {
  Metrics m;
  using std::chrono::duration;
  m.http_exchange("target perscom", 201, duration<double>(0.04));
  m.http_exchange("target perscom", 422, duration<double>(0.3));
  m.http_exchange("target perscom", 0, duration<double>(10.0));  // no answer
  m.http_exchange("source api", 200, duration<double>(0.1));
  const std::string text = m.exposition();
  EXPECT_EQ(lines_starting(text, "dirsync_http_requests_total{connector=\"target perscom\""),
            (std::vector<std::string>{
                R"(dirsync_http_requests_total{connector="target perscom",class="2xx"} 1)",
                R"(dirsync_http_requests_total{connector="target perscom",class="3xx"} 0)",
                R"(dirsync_http_requests_total{connector="target perscom",class="4xx"} 1)",
                R"(dirsync_http_requests_total{connector="target perscom",class="5xx"} 0)",
                R"(dirsync_http_requests_total{connector="target perscom",class="error"} 1)",
            }));
  EXPECT_THAT(text, HasSubstr(R"(dirsync_http_request_duration_seconds_bucket{connector="target perscom",le="0.05"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(dirsync_http_request_duration_seconds_bucket{connector="target perscom",le="0.5"} 2)"));
  EXPECT_THAT(text, HasSubstr(R"(dirsync_http_request_duration_seconds_bucket{connector="target perscom",le="10"} 3)"));
  EXPECT_THAT(text, HasSubstr(R"(dirsync_http_request_duration_seconds_count{connector="target perscom"} 3)"));
  EXPECT_THAT(text, HasSubstr(R"(dirsync_http_requests_total{connector="source api",class="2xx"} 1)"));
}

TEST(Metrics, HistogramBucketsAreCumulativeWithInclusiveUpperBounds) {
  Metrics m;
  m.run_finished(report("hr", engine::RunOutcome::kOk, std::chrono::milliseconds(500)), 0, kEnded);
  m.run_finished(report("hr", engine::RunOutcome::kOk, std::chrono::milliseconds(5000)), 0, kEnded);  // le=5
  m.run_finished(report("hr", engine::RunOutcome::kOk, std::chrono::milliseconds(61'250)), 0, kEnded);
  m.run_finished(report("hr", engine::RunOutcome::kFailed, std::chrono::milliseconds(4'000'000)), 1, kEnded);

  EXPECT_EQ(lines_starting(m.exposition(), "dirsync_run_duration_seconds"),
            (std::vector<std::string>{
                R"(dirsync_run_duration_seconds_bucket{job="hr",le="1"} 1)",
                R"(dirsync_run_duration_seconds_bucket{job="hr",le="5"} 2)",
                R"(dirsync_run_duration_seconds_bucket{job="hr",le="15"} 2)",
                R"(dirsync_run_duration_seconds_bucket{job="hr",le="60"} 2)",
                R"(dirsync_run_duration_seconds_bucket{job="hr",le="300"} 3)",
                R"(dirsync_run_duration_seconds_bucket{job="hr",le="900"} 3)",
                R"(dirsync_run_duration_seconds_bucket{job="hr",le="3600"} 3)",
                R"(dirsync_run_duration_seconds_bucket{job="hr",le="+Inf"} 4)",
                R"(dirsync_run_duration_seconds_sum{job="hr"} 4066.75)",
                R"(dirsync_run_duration_seconds_count{job="hr"} 4)",
            }));
}

TEST(Metrics, AJobSeenOnlyStartingHasZeroedSeriesAndNoTimestamps) {
  Metrics m;
  m.run_started("hr");
  const std::string text = m.exposition();
  EXPECT_THAT(text, HasSubstr("\ndirsync_job_running{job=\"hr\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\ndirsync_runs_total{job=\"hr\",outcome=\"failed\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\ndirsync_run_duration_seconds_bucket{job=\"hr\",le=\"+Inf\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\ndirsync_run_duration_seconds_sum{job=\"hr\"} 0\n"));
  EXPECT_TRUE(lines_starting(text, "dirsync_last_run_timestamp_seconds{").empty());
  EXPECT_TRUE(lines_starting(text, "dirsync_last_success_timestamp_seconds{").empty());
  EXPECT_THAT(text, HasSubstr("\ndirsync_up 1\n"));
  EXPECT_THAT(text, HasSubstr(std::string("\ndirsync_build_info{version=\"") + kVersion + "\"} 1\n"));
}

TEST(Metrics, LastSuccessStaysAtTheLastOkRunWhileFailuresCount) {
  Metrics m;
  auto ok = report("hr", engine::RunOutcome::kOk, std::chrono::milliseconds(10));
  ok.snapshot_after = 1202;
  m.run_started("hr");
  m.run_finished(ok, 0, kEnded);
  auto failed = report("hr", engine::RunOutcome::kFailed, std::chrono::milliseconds(10));
  failed.snapshot_before = 1202;
  failed.snapshot_after = 1201;  // a batch went through before the target failed
  m.run_started("hr");
  m.run_finished(failed, 1, kEnded + std::chrono::seconds(60));
  m.run_finished(report("hr", engine::RunOutcome::kFailed, std::chrono::milliseconds(10)), 2,
                 kEnded + std::chrono::seconds(120));  // stopped before it read the state

  const std::string text = m.exposition();
  EXPECT_THAT(text, HasSubstr("\ndirsync_last_success_timestamp_seconds{job=\"hr\"} 1700000000.25\n"));
  EXPECT_THAT(text, HasSubstr("\ndirsync_last_run_timestamp_seconds{job=\"hr\"} 1700000120.25\n"));
  EXPECT_THAT(text, HasSubstr("\ndirsync_job_consecutive_failures{job=\"hr\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\ndirsync_snapshot_users{job=\"hr\"} 1201\n"));
  EXPECT_THAT(text, HasSubstr("\ndirsync_job_running{job=\"hr\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\ndirsync_runs_total{job=\"hr\",outcome=\"failed\"} 2\n"));
}

TEST(Metrics, SnapshotSizeCanBeSetBeforeAnyRun) {
  Metrics m;
  m.set_snapshot_users("hr", 42);
  EXPECT_THAT(m.exposition(), HasSubstr("\ndirsync_snapshot_users{job=\"hr\"} 42\n"));
}

TEST(Metrics, BlockedGaugeStaysOneFromABlockedRunUntilARunThatIsNotBlocked) {
  Metrics m;
  m.run_started("hr");
  EXPECT_THAT(m.exposition(), HasSubstr("\n# TYPE dirsync_job_blocked gauge\ndirsync_job_blocked{job=\"hr\"} 0\n"));
  m.run_finished(report("hr", engine::RunOutcome::kBlocked, std::chrono::milliseconds(10)), 0, kEnded);
  EXPECT_THAT(m.exposition(), HasSubstr("\ndirsync_job_blocked{job=\"hr\"} 1\n"));
  // A failed run (the source down) reviewed nothing: the blocked changes still wait.
  m.run_finished(report("hr", engine::RunOutcome::kFailed, std::chrono::milliseconds(10)), 1, kEnded);
  EXPECT_THAT(m.exposition(), HasSubstr("\ndirsync_job_blocked{job=\"hr\"} 1\n"));
  m.run_finished(report("hr", engine::RunOutcome::kPartial, std::chrono::milliseconds(10)), 0, kEnded);
  EXPECT_THAT(m.exposition(), HasSubstr("\ndirsync_job_blocked{job=\"hr\"} 0\n"));
}

TEST(Metrics, BlockedCanBeSetBeforeAnyRun) {
  // The daemon reads the run history at start: a restart does not hide a blocked run.
  Metrics m;
  m.set_blocked("hr", true);
  EXPECT_THAT(m.exposition(), HasSubstr("\ndirsync_job_blocked{job=\"hr\"} 1\n"));
}

TEST(Metrics, EscapesBackslashQuoteAndNewlineInLabelValues) {
  Metrics m;
  m.run_started("a\\b\"c\nd");
  const std::string text = m.exposition();
  EXPECT_THAT(text, HasSubstr("\ndirsync_job_running{job=\"a\\\\b\\\"c\\nd\"} 1\n"));
  const auto samples = parse_exposition(text);
  EXPECT_EQ(value_of(samples, "dirsync_job_running", {{"job", "a\\b\"c\nd"}}), "1");
}

TEST(Metrics, ListsJobsInNameOrderAndDeclaresEveryFamilyBeforeItsSamples) {
  Metrics m;
  m.run_started("zeta");
  m.run_started("alpha");
  const std::string text = m.exposition();
  EXPECT_EQ(lines_starting(text, "dirsync_job_running{"),
            (std::vector<std::string>{R"(dirsync_job_running{job="alpha"} 1)", R"(dirsync_job_running{job="zeta"} 1)"}));
  std::set<std::string> typed;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("# TYPE ")) {
      typed.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.starts_with("#")) continue;
    std::string name = line.substr(0, line.find_first_of("{ "));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (name.ends_with(suffix) && !typed.count(name)) name.resize(name.size() - std::string(suffix).size());
    }
    EXPECT_TRUE(typed.count(name)) << "sample before its # TYPE: " << line;
  }
  EXPECT_EQ(text, m.exposition());  // deterministic
}

// ---------------------------------------------------------------------------
// MetricsServer on an io_context thread, as the daemon runs it.

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ok = report("hr-to-perscom", engine::RunOutcome::kOk, std::chrono::milliseconds(2500));
    ok.counts.created = 3;
    ok.counts.updated = 12;
    ok.snapshot_after = 1202;
    metrics_.run_started("hr-to-perscom");
    metrics_.run_finished(ok, 0, kEnded);
    metrics_.run_started("ldap-to-hesh");
  }

  void start(MetricsServerOptions options = {}, const std::string& listen = "127.0.0.1:0") {
    server_.emplace(io_, metrics_, options);
    const auto status = server_->listen(listen);
    ASSERT_TRUE(status) << status.error().message;
    ASSERT_NE(server_->port(), 0);
    std::promise<void> done;
    io_done_ = done.get_future();
    thread_ = std::thread([this, done = std::move(done)]() mutable {
      io_.run();
      done.set_value();
    });
  }

  void TearDown() override {
    if (thread_.joinable()) {
      asio::post(io_, [this] { server_->stop(); });
      guard_.reset();
      io_.stop();  // whatever a failed test left behind
      thread_.join();
    }
  }

  http::Response get(const std::string& path, const std::string& method = "GET") {
    http::Request r;
    r.method = method;
    r.url = "http://127.0.0.1:" + std::to_string(server_->port()) + path;
    r.idempotent = true;
    return client_.send(r);
  }

  static config::HttpSettings settings() {
    config::HttpSettings s;
    s.connect_timeout = std::chrono::milliseconds(2000);
    s.timeout = std::chrono::milliseconds(5000);
    return s;
  }

  Metrics metrics_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  std::optional<MetricsServer> server_;
  std::thread thread_;
  std::future<void> io_done_;
  http::HttpClient client_{settings()};
};

TEST_F(MetricsServerTest, ServesEverySeriesInTheTextFormat) {
  start();
  const auto res = get("/metrics");
  ASSERT_EQ(res.status, 200) << res.error;
  EXPECT_THAT(res.header("content-type"), StartsWith("text/plain; version=0.0.4"));
  EXPECT_EQ(res.body, metrics_.exposition());

  std::set<std::string> typed;
  const auto samples = parse_exposition(res.body, &typed);
  EXPECT_EQ(typed, (std::set<std::string>{
                       "dirsync_up", "dirsync_build_info", "dirsync_runs_total", "dirsync_records_total",
                       "dirsync_run_duration_seconds", "dirsync_last_run_timestamp_seconds",
                       "dirsync_last_success_timestamp_seconds", "dirsync_snapshot_users", "dirsync_job_running",
                       "dirsync_job_consecutive_failures", "dirsync_job_blocked", "dirsync_http_requests_total",
                       "dirsync_http_request_duration_seconds"}));
  // 2 + 2 jobs × (4 outcomes + 8 ops + 10 histogram + snapshot, running, failures, blocked) + 2 timestamps of
  // the job that ran
  EXPECT_EQ(samples.size(), 2u + 2u * (4 + 8 + 10 + 4) + 2u);
  const std::string hr = "hr-to-perscom";
  EXPECT_EQ(value_of(samples, "dirsync_up", {}), "1");
  EXPECT_EQ(value_of(samples, "dirsync_build_info", {{"version", kVersion}}), "1");
  EXPECT_EQ(value_of(samples, "dirsync_runs_total", {{"job", hr}, {"outcome", "ok"}}), "1");
  EXPECT_EQ(value_of(samples, "dirsync_runs_total", {{"job", hr}, {"outcome", "failed"}}), "0");
  EXPECT_EQ(value_of(samples, "dirsync_records_total", {{"job", hr}, {"op", "created"}}), "3");
  EXPECT_EQ(value_of(samples, "dirsync_records_total", {{"job", hr}, {"op", "updated"}}), "12");
  EXPECT_EQ(value_of(samples, "dirsync_run_duration_seconds_bucket", {{"job", hr}, {"le", "1"}}), "0");
  EXPECT_EQ(value_of(samples, "dirsync_run_duration_seconds_bucket", {{"job", hr}, {"le", "5"}}), "1");
  EXPECT_EQ(value_of(samples, "dirsync_run_duration_seconds_sum", {{"job", hr}}), "2.5");
  EXPECT_EQ(value_of(samples, "dirsync_run_duration_seconds_count", {{"job", hr}}), "1");
  EXPECT_EQ(value_of(samples, "dirsync_last_run_timestamp_seconds", {{"job", hr}}), "1700000000.25");
  EXPECT_EQ(value_of(samples, "dirsync_last_success_timestamp_seconds", {{"job", hr}}), "1700000000.25");
  EXPECT_EQ(value_of(samples, "dirsync_snapshot_users", {{"job", hr}}), "1202");
  EXPECT_EQ(value_of(samples, "dirsync_job_running", {{"job", hr}}), "0");
  EXPECT_EQ(value_of(samples, "dirsync_job_running", {{"job", "ldap-to-hesh"}}), "1");
  EXPECT_EQ(value_of(samples, "dirsync_job_consecutive_failures", {{"job", hr}}), "0");
  EXPECT_EQ(value_of(samples, "dirsync_last_run_timestamp_seconds", {{"job", "ldap-to-hesh"}}), std::nullopt);
}

TEST_F(MetricsServerTest, ServesRunsRecordedAfterAnEarlierScrape) {
  start();
  ASSERT_EQ(get("/metrics").status, 200);
  metrics_.run_finished(report("ldap-to-hesh", engine::RunOutcome::kBlocked, std::chrono::milliseconds(1)), 0, kEnded);
  const auto res = get("/metrics?name[]=dirsync_runs_total");
  ASSERT_EQ(res.status, 200) << res.error;
  EXPECT_EQ(value_of(parse_exposition(res.body), "dirsync_runs_total", {{"job", "ldap-to-hesh"}, {"outcome", "blocked"}}),
            "1");
}

TEST_F(MetricsServerTest, HealthzAnswersOk) {
  start();
  const auto res = get("/healthz");
  ASSERT_EQ(res.status, 200) << res.error;
  EXPECT_EQ(res.body, "ok\n");
}

TEST_F(MetricsServerTest, UnknownPathIs404) {
  start();
  const auto res = get("/metricz");
  EXPECT_EQ(res.status, 404) << res.error;
  EXPECT_EQ(get("/").status, 404);
}

TEST_F(MetricsServerTest, OtherMethodsAre405WithAllowGet) {
  start();
  const auto post = get("/metrics", "POST");
  EXPECT_EQ(post.status, 405) << post.error;
  EXPECT_EQ(post.header("allow"), "GET");
  EXPECT_EQ(get("/healthz", "DELETE").status, 405);
}

TEST_F(MetricsServerTest, ClosesAConnectionThatSendsNothing) {
  MetricsServerOptions options;
  options.timeout = std::chrono::milliseconds(100);
  start(options);
  asio::io_context client_io;
  asio::ip::tcp::socket socket(client_io);
  socket.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
  // A bound on the test, not a timing assertion: a server that never closes fails instead of hanging.
  timeval tv{10, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char byte;
  boost::system::error_code ec;
  socket.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof) << ec.message();
  // ...and it still serves the next client.
  EXPECT_EQ(get("/healthz").status, 200);
}

TEST_F(MetricsServerTest, AnswersAMalformedRequestWith400) {
  start();
  asio::io_context client_io;
  asio::ip::tcp::socket socket(client_io);
  socket.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
  asio::write(socket, asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
  std::string got;
  boost::system::error_code ec;
  char buf[512];
  while (!ec) got.append(buf, socket.read_some(asio::buffer(buf), ec));
  EXPECT_THAT(got, StartsWith("HTTP/1.1 400 Bad Request\r\n"));
}

TEST_F(MetricsServerTest, StopClosesTheListenerAndKeptAliveConnections) {
  start();
  ASSERT_EQ(get("/healthz").status, 200);  // the client keeps this connection open
  asio::post(io_, [this] { server_->stop(); });
  guard_.reset();
  // run() returns only when no socket or timer is left waiting (the default timeout is 10 s,
  // so an idle connection stop() missed would hold it): bounded so a bug fails, not hangs.
  ASSERT_EQ(io_done_.wait_for(std::chrono::seconds(8)), std::future_status::ready);
  thread_.join();
  const auto res = get("/healthz");
  EXPECT_EQ(res.status, 0);
  EXPECT_EQ(res.failure, http::TransportFailure::kNothingSent) << res.error;
}

TEST(MetricsServer, ListensOnLocalhostAndIpv6Loopback) {
  asio::io_context io;
  Metrics metrics;
  MetricsServer v4(io, metrics);
  const auto a = v4.listen("localhost:0");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_NE(v4.port(), 0);
  MetricsServer v6(io, metrics);
  const auto b = v6.listen("[::1]:0");
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_NE(v6.port(), 0);
}

TEST(MetricsServer, RefusesNonLoopbackMalformedAndBusyAddresses) {
  asio::io_context io;
  Metrics metrics;
  MetricsServer first(io, metrics);
  ASSERT_TRUE(first.listen("127.0.0.1:0"));
  const std::string busy = "127.0.0.1:" + std::to_string(first.port());
  const std::map<std::string, std::string> cases = {
      {"0.0.0.0:9187", "metrics: cannot listen on '0.0.0.0:9187': only loopback addresses are allowed"},
      {"10.1.2.3:9187", "metrics: cannot listen on '10.1.2.3:9187': only loopback addresses are allowed"},
      {"127.0.0.1", "metrics: cannot listen on '127.0.0.1': expected host:port"},
      {"127.0.0.1:70000", "metrics: cannot listen on '127.0.0.1:70000': expected a port number 0-65535"},
      {"example.com:80", "metrics: cannot listen on 'example.com:80': 'example.com' is not an IP address or localhost"},
      {busy, "metrics: cannot listen on '" + busy + "': Address already in use"},
  };
  for (const auto& [listen, message] : cases) {
    MetricsServer server(io, metrics);
    const auto status = server.listen(listen);
    ASSERT_FALSE(status) << listen;
    EXPECT_EQ(status.error().kind, core::ErrorKind::kInvalid);
    EXPECT_EQ(status.error().message, message);
    EXPECT_EQ(server.port(), 0);
  }
}

}  // namespace
}  // namespace dirsync::daemon
