#include "daemon/metrics.h"

// Why <utility> first: Boost 1.74's asio/awaitable.hpp uses std::exchange
// without including it, and g++ 12 in C++20 mode no longer pulls it in.
#include <utility>

#include <charconv>
#include <list>
#include <optional>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "core/version.h"

namespace dirsync::daemon {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr const char* kOutcomes[] = {"ok", "partial", "blocked", "failed"};
constexpr const char* kOps[] = {"created", "updated", "detached", "rejected", "retry", "unknown", "skipped", "filtered"};
constexpr std::uint64_t kBucketsMs[] = {1'000, 5'000, 15'000, 60'000, 300'000, 900'000, 3'600'000};
constexpr const char* kBucketLabels[] = {"1", "5", "15", "60", "300", "900", "3600"};
constexpr const char* kHttpClasses[] = {"2xx", "3xx", "4xx", "5xx", "error"};
constexpr double kLatencyBuckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
constexpr const char* kLatencyLabels[] = {"0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30"};
static_assert(std::size(kBucketsMs) == std::size(kBucketLabels));

// Label values per the text format: backslash, double quote and newline escaped.
std::string escape_label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

// Milliseconds as seconds with no trailing zeros: 1500 → "1.5", 2000 → "2".
std::string ms_as_seconds(std::int64_t ms) {
  std::string out = std::to_string(ms / 1000);
  if (const auto frac = ms % 1000; frac != 0) {
    out += fmt::format(".{:03}", frac);
    while (out.back() == '0') out.pop_back();
  }
  return out;
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

Metrics::Job& Metrics::job_locked(const std::string& name) {
  auto [it, added] = jobs_.try_emplace(name);
  if (added) {
    for (const char* o : kOutcomes) it->second.runs[o] = 0;
    for (const char* o : kOps) it->second.records[o] = 0;
  }
  return it->second;
}

void Metrics::run_started(const std::string& job) {
  std::lock_guard lock(mu_);
  job_locked(job).running = true;
}

void Metrics::run_finished(const engine::RunReport& report, unsigned consecutive_failures, Clock::time_point ended) {
  std::lock_guard lock(mu_);
  Job& j = job_locked(report.job);
  ++j.runs[engine::to_string(report.outcome)];
  const auto& c = report.counts;
  j.records["created"] += c.created;
  j.records["updated"] += c.updated;
  j.records["detached"] += c.detached;
  j.records["rejected"] += c.rejected;
  j.records["retry"] += c.retry;
  j.records["unknown"] += c.unknown;
  j.records["skipped"] += c.skipped;
  j.records["filtered"] += c.filtered;
  const auto ms = static_cast<std::uint64_t>(std::max<std::int64_t>(report.duration.count(), 0));
  for (std::size_t i = 0; i < std::size(kBucketsMs); ++i) {
    if (ms <= kBucketsMs[i]) ++j.duration_buckets[i];
  }
  ++j.duration_count;
  j.duration_sum_ms += ms;
  j.last_run_ms = unix_ms(ended);
  if (report.outcome == engine::RunOutcome::kOk) j.last_success_ms = j.last_run_ms;
  const bool measured = report.outcome != engine::RunOutcome::kFailed || report.snapshot_before != 0 ||
                        report.snapshot_after != 0;
  if (measured) j.snapshot_users = report.snapshot_after;
  j.running = false;
  j.consecutive_failures = consecutive_failures;
  // A failed run decided nothing about the blocked changes: they still wait for review.
  if (report.outcome != engine::RunOutcome::kFailed) j.blocked = report.outcome == engine::RunOutcome::kBlocked;
}

void Metrics::set_blocked(const std::string& job, bool blocked) {
  std::lock_guard lock(mu_);
  job_locked(job).blocked = blocked;
}

void Metrics::set_snapshot_users(const std::string& job, std::size_t users) {
  std::lock_guard lock(mu_);
  job_locked(job).snapshot_users = users;
}

std::string Metrics::exposition() const {
  std::lock_guard lock(mu_);
  std::string out;
  auto line = [&out](std::string_view name, const std::string& labels, const auto& value) {
    fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, labels, value);
  };
  auto job_label = [](const std::string& job) { return "job=\"" + escape_label(job) + "\""; };
  // One gauge per job; `value` returns nullopt to leave the job out.
  auto per_job = [&](std::string_view name, std::string_view help, auto value) {
    family(out, name, "gauge", help);
    for (const auto& [job, j] : jobs_) {
      if (auto v = value(j)) line(name, job_label(job), *v);
    }
  };

  family(out, "dirsync_up", "gauge", "1 while the daemon serves metrics.");
  out += "dirsync_up 1\n";
  family(out, "dirsync_build_info", "gauge", "The running dirsync version.");
  line("dirsync_build_info", "version=\"" + escape_label(kVersion) + "\"", 1);

  family(out, "dirsync_runs_total", "counter", "Finished runs by outcome.");
  for (const auto& [job, j] : jobs_) {
    for (const char* o : kOutcomes) line("dirsync_runs_total", job_label(job) + ",outcome=\"" + o + "\"", j.runs.at(o));
  }
  family(out, "dirsync_records_total", "counter", "Records by what happened to them in finished runs.");
  for (const auto& [job, j] : jobs_) {
    for (const char* o : kOps) line("dirsync_records_total", job_label(job) + ",op=\"" + o + "\"", j.records.at(o));
  }
  family(out, "dirsync_run_duration_seconds", "histogram", "Duration of finished runs.");
  for (const auto& [job, j] : jobs_) {
    const std::string l = job_label(job);
    for (std::size_t i = 0; i < std::size(kBucketsMs); ++i) {
      line("dirsync_run_duration_seconds_bucket", l + ",le=\"" + kBucketLabels[i] + "\"", j.duration_buckets[i]);
    }
    line("dirsync_run_duration_seconds_bucket", l + ",le=\"+Inf\"", j.duration_count);
    line("dirsync_run_duration_seconds_sum", l, ms_as_seconds(static_cast<std::int64_t>(j.duration_sum_ms)));
    line("dirsync_run_duration_seconds_count", l, j.duration_count);
  }
  using Value = std::optional<std::string>;
  per_job("dirsync_last_run_timestamp_seconds", "Unix time the last run ended.",
          [](const Job& j) { return j.last_run_ms < 0 ? Value() : Value(ms_as_seconds(j.last_run_ms)); });
  per_job("dirsync_last_success_timestamp_seconds", "Unix time the last run with outcome ok ended.",
          [](const Job& j) { return j.last_success_ms < 0 ? Value() : Value(ms_as_seconds(j.last_success_ms)); });
  per_job("dirsync_snapshot_users", "Users in the job's snapshot after its last run.",
          [](const Job& j) { return Value(std::to_string(j.snapshot_users)); });
  per_job("dirsync_job_running", "1 while a run of the job is in progress.",
          [](const Job& j) { return Value(j.running ? "1" : "0"); });
  per_job("dirsync_job_consecutive_failures", "Failed runs in a row.",
          [](const Job& j) { return Value(std::to_string(j.consecutive_failures)); });
  per_job("dirsync_job_blocked", "1 when the last run was blocked by a guard (max_detach, max_update): review it.",
          [](const Job& j) { return Value(j.blocked ? "1" : "0"); });

  family(out, "dirsync_http_requests_total", "counter", "HTTP requests by connector and status class.");
  for (const auto& [name, c] : connectors_) {
    for (const char* k : kHttpClasses) {
      const auto it = c.requests.find(k);
      line("dirsync_http_requests_total", "connector=\"" + escape_label(name) + "\",class=\"" + k + "\"",
           it == c.requests.end() ? 0 : it->second);
    }
  }
  family(out, "dirsync_http_request_duration_seconds", "histogram", "HTTP request latency by connector.");
  for (const auto& [name, c] : connectors_) {
    const std::string l = "connector=\"" + escape_label(name) + "\"";
    for (std::size_t i = 0; i < std::size(kLatencyBuckets); ++i) {
      line("dirsync_http_request_duration_seconds_bucket", l + ",le=\"" + kLatencyLabels[i] + "\"",
           c.latency_buckets[i]);
    }
    line("dirsync_http_request_duration_seconds_bucket", l + ",le=\"+Inf\"", c.latency_count);
    line("dirsync_http_request_duration_seconds_sum", l, fmt::format("{:.6f}", c.latency_sum));
    line("dirsync_http_request_duration_seconds_count", l, c.latency_count);
  }
  return out;
}

void Metrics::http_exchange(const std::string& connector, int status, std::chrono::duration<double> latency) {
  const char* cls = status >= 200 && status < 300   ? "2xx"
                    : status >= 300 && status < 400 ? "3xx"
                    : status >= 400 && status < 500 ? "4xx"
                    : status >= 500 && status < 600 ? "5xx"
                                                    : "error";
  std::lock_guard lock(mu_);
  Connector& c = connectors_[connector.empty() ? "(unnamed)" : connector];
  ++c.requests[cls];
  const double seconds = latency.count();
  for (std::size_t i = 0; i < std::size(kLatencyBuckets); ++i) {
    if (seconds <= kLatencyBuckets[i]) ++c.latency_buckets[i];
  }
  ++c.latency_count;
  c.latency_sum += seconds;
}

// ---------------------------------------------------------------------------

namespace {

// Parses "host:port" with a loopback host into an endpoint.
core::Result<tcp::endpoint> parse_listen(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return core::Error{core::ErrorKind::kInvalid, "metrics: cannot listen on '" + text + "': " + why};
  };
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return bad("expected host:port");
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return bad("expected a port number 0-65535");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  // localhost is loopback by definition (RFC 6761): no resolver, which could block or answer otherwise.
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code aec;
  const auto address = asio::ip::make_address(host, aec);
  if (aec) return bad("'" + host + "' is not an IP address or localhost");
  if (!address.is_loopback()) return bad("only loopback addresses are allowed");
  return tcp::endpoint(address, static_cast<std::uint16_t>(port));
}

bhttp::response<bhttp::string_body> answer(const bhttp::request<bhttp::string_body>& req, const Metrics& metrics) {
  bhttp::response<bhttp::string_body> res;
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(bhttp::field::server, std::string("dirsync/") + kVersion);
  res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
  const auto target = req.target();
  const std::string_view path(target.data(), target.find('?') == target.npos ? target.size() : target.find('?'));
  if (path != "/metrics" && path != "/healthz") {
    res.result(bhttp::status::not_found);
    res.body() = "not found; try /metrics or /healthz\n";
  } else if (req.method() != bhttp::verb::get) {
    res.result(bhttp::status::method_not_allowed);
    res.set(bhttp::field::allow, "GET");
    res.body() = "method not allowed; use GET\n";
  } else if (path == "/healthz") {
    res.result(bhttp::status::ok);
    res.body() = "ok\n";
  } else {
    res.result(bhttp::status::ok);
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = metrics.exposition();
  }
  res.prepare_payload();
  return res;
}

}  // namespace

struct MetricsServer::Impl : std::enable_shared_from_this<MetricsServer::Impl> {
  // One connection: read a request, write the answer, again while keep-alive.
  struct Session : std::enable_shared_from_this<Session> {
    Session(tcp::socket socket, std::shared_ptr<Impl> server) : stream(std::move(socket)), server(std::move(server)) {}
    beast::tcp_stream stream;
    std::shared_ptr<Impl> server;
    beast::flat_buffer buffer;
    std::optional<bhttp::request_parser<bhttp::string_body>> parser;
    bhttp::response<bhttp::string_body> response;

    void read() {
      parser.emplace();
      parser->header_limit(16 * 1024);
      parser->body_limit(64 * 1024);  // nothing here takes a body; a bigger one is not ours to read
      stream.expires_after(server->options.timeout);
      bhttp::async_read(stream, buffer, *parser,
                        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
      if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
          !stream.socket().is_open()) {
        return close();
      }
      if (ec) {
        // A request that does not parse (or is too big) gets a 400, then the connection ends.
        response = {};
        response.result(bhttp::status::bad_request);
        response.set(bhttp::field::content_type, "text/plain; charset=utf-8");
        response.body() = "bad request\n";
        response.keep_alive(false);
        response.prepare_payload();
      } else {
        response = answer(parser->get(), *server->metrics);
      }
      stream.expires_after(server->options.timeout);
      bhttp::async_write(stream, response, [self = shared_from_this()](beast::error_code wec, std::size_t) {
        if (wec || !self->response.keep_alive()) return self->close();
        self->read();
      });
    }

    void close() {
      beast::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream.close();
    }
  };

  Impl(asio::io_context& io, const Metrics& metrics, MetricsServerOptions options)
      : io(io), metrics(&metrics), options(options), acceptor(io), retry_timer(io) {}

  asio::io_context& io;
  const Metrics* metrics;
  MetricsServerOptions options;
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;
  std::list<std::weak_ptr<Session>> sessions;  // to close them on stop()
  std::uint16_t port = 0;
  bool stopped = false;

  void accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
      if (self->stopped || ec == asio::error::operation_aborted) return;
      if (ec) {
        // EMFILE and the like: try again shortly rather than spin on the failure.
        self->retry_timer.expires_after(std::chrono::milliseconds(100));
        self->retry_timer.async_wait([self](beast::error_code tec) {
          if (!tec && !self->stopped) self->accept();
        });
        return;
      }
      self->sessions.remove_if([](const std::weak_ptr<Session>& s) { return s.expired(); });
      if (self->sessions.size() >= self->options.max_connections) {
        beast::error_code cec;
        socket.close(cec);
      } else {
        auto session = std::make_shared<Session>(std::move(socket), self);
        self->sessions.push_back(session);
        session->read();
      }
      self->accept();
    });
  }
};

MetricsServer::MetricsServer(asio::io_context& io, const Metrics& metrics, MetricsServerOptions options)
    : impl_(std::make_shared<Impl>(io, metrics, options)) {}

MetricsServer::~MetricsServer() { stop(); }

core::Status MetricsServer::listen(const std::string& listen) {
  auto endpoint = parse_listen(listen);
  if (!endpoint) return endpoint.error();
  Impl& s = *impl_;
  beast::error_code ec;
  s.acceptor.open(endpoint->protocol(), ec);
  if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint.value(), ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    s.acceptor.close(ignored);
    return core::Error{core::ErrorKind::kInvalid, "metrics: cannot listen on '" + listen + "': " + ec.message()};
  }
  s.port = s.acceptor.local_endpoint().port();
  s.stopped = false;
  s.accept();
  return core::Ok{};
}

std::uint16_t MetricsServer::port() const { return impl_->port; }

void MetricsServer::stop() {
  Impl& s = *impl_;
  s.stopped = true;
  beast::error_code ec;
  s.acceptor.close(ec);
  s.retry_timer.cancel();
  for (auto& weak : s.sessions) {
    if (auto session = weak.lock()) session->close();
  }
  s.sessions.clear();
}

}  // namespace dirsync::daemon
