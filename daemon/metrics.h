#pragma once
// Prometheus metrics for `dirsync daemon`: what the jobs did, served on a
// loopback port as /metrics (text exposition format 0.0.4) and /healthz.
//
// Metrics (per job, label `job`):
//   dirsync_runs_total{job,outcome}            counter; outcome ok|partial|blocked|failed
//   dirsync_records_total{job,op}              counter; op created|updated|detached|rejected|
//                                                        retry|unknown|skipped|filtered
//   dirsync_run_duration_seconds{job}          histogram; buckets 1,5,15,60,300,900,3600,+Inf
//   dirsync_last_run_timestamp_seconds{job}    gauge; when the last run ended (any outcome)
//   dirsync_last_success_timestamp_seconds{job} gauge; when the last `ok` run ended
//   dirsync_snapshot_users{job}                gauge; users in the job's snapshot
//   dirsync_job_running{job}                   gauge; 1 while a run is in progress
//   dirsync_job_consecutive_failures{job}      gauge; failed runs in a row (the daemon's count)
//   dirsync_job_blocked{job}                   gauge; 1 when a guard (max_detach, max_update) blocked the
//                                                     job's last run, until a run that is not blocked
//                                                     (a failed run reviews nothing: it leaves the gauge)
// Per connector (label `connector`: "target perscom-prod", "source hr-api"),
// from every HTTP request its client made (http::set_exchange_observer):
//   dirsync_http_requests_total{connector,class}      counter; class 2xx|3xx|4xx|5xx|error (no answer)
//   dirsync_http_request_duration_seconds{connector}  histogram; 0.05 .. 30 s, +Inf
// and dirsync_up 1, dirsync_build_info{version} 1.
//
// A job appears, with every counter at 0, from the first call that names it,
// so that rate() and increase() see the first run. The two timestamp gauges
// appear only once there is a time to report: a job that never succeeded has
// no dirsync_last_success_timestamp_seconds (alert on absent(), or on
// dirsync_job_consecutive_failures).
//
// Thread safety: Metrics is safe to use from any thread (the daemon records on
// its loop; the HTTP handler reads on the same loop, tests read elsewhere).
// MetricsServer is NOT thread safe: it lives on one io_context; call listen()
// and stop() from that io_context's thread or while it is not running.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/io_context.hpp>

#include "core/result.h"
#include "engine/sync_engine.h"

namespace dirsync::daemon {

class Metrics {
 public:
  using Clock = std::chrono::system_clock;

  // Registers the job (all series at 0) if it is new; sets dirsync_job_running 1.
  void run_started(const std::string& job);
  // Counts a finished run of report.job: outcome, record counts, duration,
  // end time (`ended`, for tests; default now), snapshot size, running 0.
  // `consecutive_failures` is the daemon's count after this run. A failed run
  // that never measured the snapshot (both sizes 0: it stopped before reading
  // the state) leaves dirsync_snapshot_users as it was.
  void run_finished(const engine::RunReport& report, unsigned consecutive_failures,
                    Clock::time_point ended = Clock::now());
  // The snapshot size known before any run (the daemon reads it at start).
  void set_snapshot_users(const std::string& job, std::size_t users);
  // Whether the job's last run was blocked, known before any run (the daemon
  // reads the run history at start, so that a restart does not hide it).
  void set_blocked(const std::string& job, bool blocked);
  // One HTTP request of `connector`: its status (0: no answer) and latency.
  void http_exchange(const std::string& connector, int status, std::chrono::duration<double> latency);

  // Every series, in a fixed order: families as listed above, jobs sorted by
  // name. Label values are escaped as the format requires (\\, \", \n).
  std::string exposition() const;

 private:
  struct Job {
    std::map<std::string, std::uint64_t> runs;     // outcome → count
    std::map<std::string, std::uint64_t> records;  // op → count
    std::uint64_t duration_buckets[7] = {};        // cumulative counts for le=1..3600
    std::uint64_t duration_count = 0;
    std::uint64_t duration_sum_ms = 0;             // integer: the sum must not drift
    std::int64_t last_run_ms = -1;                 // Unix ms; -1: never
    std::int64_t last_success_ms = -1;
    std::size_t snapshot_users = 0;
    bool running = false;
    unsigned consecutive_failures = 0;
    bool blocked = false;  // the last run's outcome was blocked
  };
  Job& job_locked(const std::string& name);

  struct Connector {
    std::map<std::string, std::uint64_t> requests;  // class → count
    std::uint64_t latency_buckets[9] = {};           // cumulative counts for le=0.05..30
    std::uint64_t latency_count = 0;
    double latency_sum = 0;
  };

  mutable std::mutex mu_;
  std::map<std::string, Job> jobs_;
  std::map<std::string, Connector> connectors_;
};

struct MetricsServerOptions {
  // A request must arrive (and the answer be written) within this, and an idle
  // keep-alive connection is closed after it: a silent client holds nothing.
  std::chrono::milliseconds timeout{10'000};
  // Connections open at once; more are closed on accept (a local client
  // opening sockets in a loop cannot exhaust the daemon's descriptors).
  std::size_t max_connections = 32;
};

// HTTP/1.1 on a loopback address, on the caller's io_context (no thread of its
// own; every read and write is asynchronous):
//   GET /metrics → 200 text/plain; version=0.0.4, Metrics::exposition()
//   GET /healthz → 200 "ok\n"
//   other paths → 404; other methods → 405 (Allow: GET); malformed → 400.
// Keep-alive is honoured. `metrics` must outlive the server and the
// io_context's handlers; the server must be destroyed before the io_context.
class MetricsServer {
 public:
  MetricsServer(boost::asio::io_context& io, const Metrics& metrics, MetricsServerOptions options = {});
  ~MetricsServer();  // stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds `listen` — "127.0.0.1:9187", "localhost:9187", "[::1]:0" (port 0:
  // the kernel picks; see port()) — and starts accepting. Only loopback
  // addresses are accepted. Errors (kInvalid): a malformed or non-loopback
  // address, or a port that cannot be bound; the message names the address.
  core::Status listen(const std::string& listen);
  // The bound port; 0 before listen().
  std::uint16_t port() const;
  // Closes the listener and every open connection. Idempotent.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with pending handlers
};

}  // namespace dirsync::daemon
