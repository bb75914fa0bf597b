#include "daemon/service.h"

#include <grp.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/spdlog.h>

#include "config/config.h"
#include "connectors/http/http_client.h"
#include "daemon/audit.h"
#include "daemon/control.h"
#include "daemon/journal.h"
#include "daemon/metrics.h"
#include "daemon/exit_codes.h"
#include "engine/registry.h"
#include "engine/report_format.h"
#include "engine/sync_engine.h"
#include "state/state_store.h"

namespace dirsync::daemon {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::system_clock;

const char* mode_name(engine::Mode mode) { return mode == engine::Mode::kResync ? "resync" : "sync"; }

std::string local_time(Clock::time_point t) {
  const std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  ::localtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// Loads and checks a configuration as check-config does; throws ConfigError.
config::Config load_checked(const std::string& path) {
  config::Config cfg = config::load_file(path);
  auto errors = engine::check_config(cfg);
  if (!errors.empty()) throw config::ConfigError(std::move(errors));
  return cfg;
}

}  // namespace

struct Service::Impl {
  struct Job {
    explicit Job(asio::io_context& io) : timer(io) {}
    config::JobConfig config;
    asio::system_timer timer;
    bool running = false;
    bool waiting = false;  // in the ready queue
    bool removed = false;  // dropped by a reload while it ran
    std::optional<engine::Mode> queued;  // asked for while running
    engine::Mode waiting_mode = engine::Mode::kSync;
    unsigned failures = 0;
    Clock::time_point last_start{};
    std::optional<Clock::time_point> next;  // armed timer
    std::optional<engine::RunReport> last;  // the last run's report (no plan)
    // Users in the snapshot, as last measured: counted once at start (walking
    // LMDB is O(users): never on the loop), then taken from each run's report.
    std::optional<std::size_t> snapshot_size;
    // Control clients waiting for this job's next run, and for the run in progress.
    std::vector<std::shared_ptr<ControlSession>> waiters_next, waiters_running;
  };

  explicit Impl(ServiceOptions o)
      : options(std::move(o)), signals(io, SIGTERM, SIGINT, SIGHUP), watchdog(io), shutdown_timer(io) {
    if (!options.random) {
      options.random = [rng = std::mt19937_64(std::random_device{}())]() mutable {
        return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
      };
    }
  }

  ServiceOptions options;
  asio::io_context io;
  std::unique_ptr<asio::thread_pool> pool;
  // Short reads and writes of the state for status and release: never on the
  // loop (LMDB), never queued behind a run or a plan.
  std::unique_ptr<asio::thread_pool> state_io;
  asio::signal_set signals;
  asio::steady_timer watchdog;
  asio::steady_timer shutdown_timer;
  std::shared_ptr<const config::Config> config;
  std::unique_ptr<state::StateStore> store;
  std::map<std::string, std::unique_ptr<Job>> jobs;
  std::deque<std::string> ready;
  std::size_t running = 0;
  std::size_t max_running = 1;
  bool stopping = false;
  std::atomic<bool> stop_flag{false};  // read by runs on the workers
  int exit_code = 0;
  std::unique_ptr<ControlServer> control;
  std::map<std::string, std::size_t> start_sizes;  // snapshot sizes counted at start, for add_job
  Metrics metrics;
  std::unique_ptr<MetricsServer> metrics_server;  // null: daemon.metrics is off
  AuditLog audit;
  bool audit_on = false;

  // The audit never fails a run: a line that cannot be written is a warning.
  void audit_record(const std::string& job, const std::string& run, const engine::PushedChange& c) {
    if (!audit_on) return;
    if (auto st = audit.record(job, run, c); !st) spdlog::warn("{}", st.error().message);
  }
  void audit_flush() {
    if (!audit_on) return;
    if (auto st = audit.flush(); !st) spdlog::warn("{}", st.error().message);
  }

  void notify(const std::string& state) { options.notifier->notify(state); }

  void add_job(const config::JobConfig& jc, bool at_start) {
    auto job = std::make_unique<Job>(io);
    job->config = jc;
    if (auto it = start_sizes.find(jc.name); it != start_sizes.end()) job->snapshot_size = it->second;
    Job& j = *job;
    jobs[jc.name] = std::move(job);
    if (at_start && jc.run_at_start) {
      enqueue(jc.name, engine::Mode::kSync);
    } else {
      arm(j, Clock::now());
    }
  }

  // The job's next scheduled start after a start (or a decision) at `from`.
  std::optional<Clock::time_point> next_start(const Job& j, Clock::time_point from) {
    const auto& s = j.config.schedule;
    switch (s.kind) {
      case config::Schedule::Kind::kManual:
        return std::nullopt;
      case config::Schedule::Kind::kEvery:
        return core::next_every(from, s.every, s.jitter, options.random());
      case config::Schedule::Kind::kCron:
        return s.cron->next_after(std::max(from, Clock::now()), s.zone);
    }
    return std::nullopt;
  }

  // Arms the job's timer for its next start after `from`, later if it is
  // backing off after failures.
  void arm(Job& j, Clock::time_point from) {
    j.timer.cancel();
    j.next.reset();
    if (stopping || j.removed) return;
    auto next = next_start(j, from);
    if (j.failures > 0) {
      const auto& d = config->daemon;
      auto delay = d.failure_backoff;
      for (unsigned i = 1; i < j.failures && delay < d.failure_backoff_max; ++i) delay *= 2;
      delay = std::min(delay, d.failure_backoff_max);
      const auto retry = Clock::now() + delay;
      // Never sooner than the schedule; a manual job is retried only when asked.
      if (next) next = std::max(*next, retry);
      spdlog::warn("{}: {} failed run(s) in a row; next try not before {}", j.config.name, j.failures,
                   local_time(retry));
    }
    if (!next) return;
    j.next = next;
    spdlog::debug("{}: next run at {}", j.config.name, local_time(*next));
    j.timer.expires_at(*next);
    const std::string name = j.config.name;
    j.timer.async_wait([this, name](const boost::system::error_code& ec) {
      if (!ec) enqueue(name, engine::Mode::kSync);
    });
  }

  void enqueue(const std::string& name, engine::Mode mode) {
    if (stopping) return;
    auto it = jobs.find(name);
    if (it == jobs.end() || it->second->removed) return;
    Job& j = *it->second;
    if (j.running) {
      if (!j.queued || mode == engine::Mode::kResync) j.queued = mode;
      return;
    }
    if (j.waiting) {
      if (mode == engine::Mode::kResync) j.waiting_mode = mode;
      return;
    }
    j.waiting = true;
    j.waiting_mode = mode;
    ready.push_back(name);
    dispatch();
  }

  void dispatch() {
    while (!stopping && running < max_running && !ready.empty()) {
      const std::string name = ready.front();
      ready.pop_front();
      auto it = jobs.find(name);
      if (it == jobs.end()) continue;
      start_run(*it->second);
    }
    update_status();
  }

  void start_run(Job& j) {
    j.waiting = false;
    j.running = true;
    j.timer.cancel();
    j.next.reset();
    j.waiters_running = std::move(j.waiters_next);
    j.waiters_next.clear();
    j.last_start = Clock::now();
    metrics.run_started(j.config.name);
    ++running;
    const engine::Mode mode = j.waiting_mode;
    auto cfg = config;  // the run keeps the configuration it started with, across reloads
    const std::string name = j.config.name;
    spdlog::info("{}: {} started", name, mode_name(mode));
    asio::post(*pool, [this, cfg, name, mode] {
      engine::RunReport report = execute(*cfg, cfg->jobs.at(name), mode);
      asio::post(io, [this, name, report = std::move(report)]() mutable { finished(name, std::move(report)); });
    });
  }

  // On a worker thread.
  engine::RunReport execute(const config::Config& cfg, const config::JobConfig& job, engine::Mode mode) {
    const std::string run = AuditLog::iso_time(AuditLog::Clock::now());
    LogContext log_context(job.name, run, job.target);  // JOB=, RUN_ID=, TARGET= in the journal
    try {
      auto parts = engine::build_job(cfg, job);
      engine::SyncEngine eng(job, *store, *parts.source, *parts.target, std::move(parts.mapping));
      eng.on_outcome([this, &job, &run](const engine::PushedChange& c) { audit_record(job.name, run, c); });
      eng.on_progress([this, &job](const std::string& msg) {
        audit_flush();  // progress follows every settled batch: its audit lines reach the disk
        notify("STATUS=" + job.name + ": " + msg);
        asio::post(io, [this, name = job.name, msg] { relay_progress(name, msg); });
      });
      engine::RunOptions run_options;
      run_options.mode = mode;
      run_options.stop_requested = [this] { return stop_flag.load(); };
      auto report = eng.run(run_options);
      audit_flush();
      return report;
    } catch (const std::exception& e) {
      // A state that cannot be read (StateError) or a connector that cannot be built.
      engine::RunReport report;
      report.job = job.name;
      report.mode = mode;
      report.outcome = engine::RunOutcome::kFailed;
      report.error = e.what();
      return report;
    }
  }

  void finished(const std::string& name, engine::RunReport report) {
    --running;
    const auto& c = report.counts;
    const auto level = report.outcome == engine::RunOutcome::kOk ? spdlog::level::info : spdlog::level::warn;
    spdlog::log(level,
                "{}: {} {} in {} ms — created {} updated {} detached {} unchanged {} rejected {} retry {} unknown {}"
                "{}{}{}{}",
                name, mode_name(report.mode), engine::to_string(report.outcome), report.duration.count(), c.created,
                c.updated, c.detached, c.unchanged, c.rejected, c.retry, c.unknown,
                report.error.empty() ? "" : ": ", report.error, report.pull_note.empty() ? "" : " — ",
                report.pull_note);
    auto it = jobs.find(name);
    if (it != jobs.end()) {
      Job& j = *it->second;
      j.running = false;
      const nlohmann::json final_line = {{"exit_code", cli::exit_code(report)},
                                         {"text", engine::format_summary(report)},
                                         {"report", engine::report_to_json(report, false)}};
      for (auto& w : j.waiters_running) w->finish(final_line);
      j.waiters_running.clear();
      // A run that stopped before reading the state measured nothing.
      if (report.snapshot_before || report.snapshot_after) j.snapshot_size = report.snapshot_after;
      j.last = report;
      if (j.removed) {
        metrics.run_finished(report, j.failures);
        jobs.erase(it);
      } else {
        // Another process holding the job's lock is not the job failing.
        if (report.outcome == engine::RunOutcome::kFailed && !report.busy && !report.stopped) ++j.failures;
        else if (report.outcome != engine::RunOutcome::kFailed) j.failures = 0;
        metrics.run_finished(report, j.failures);
        if (j.queued && !stopping) {
          const auto mode = *j.queued;
          j.queued.reset();
          enqueue(name, mode);
        } else {
          arm(j, j.last_start);
        }
      }
    }
    if (stopping && running == 0) {
      shutdown_timer.cancel();
      spdlog::info("every run has stopped; exiting");
      io.stop();
      return;
    }
    dispatch();
  }

  void update_status() {
    if (stopping) return;
    std::string text;
    for (const auto& [name, j] : jobs) {
      if (j->running) text += (text.empty() ? "running: " : ", ") + name;
    }
    if (text.empty()) text = "idle";
    if (!ready.empty()) text += "; waiting: " + std::to_string(ready.size());
    notify("STATUS=" + text);
  }

  void wait_signals() {
    signals.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        reload();
      } else {
        begin_shutdown(sig);
      }
      wait_signals();
    });
  }

  void begin_shutdown(int sig) {
    if (stopping) return;
    stopping = true;
    stop_flag = true;
    notify("STOPPING=1");
    notify("STATUS=stopping");
    ready.clear();
    for (auto& [name, j] : jobs) {
      j->timer.cancel();
      j->waiting = false;
      for (auto& w : j->waiters_next) w->finish({{"exit_code", cli::kExitFailed}, {"error", "the daemon is stopping"}});
      j->waiters_next.clear();
    }
    if (control) control->stop();
    if (metrics_server) metrics_server->stop();
    spdlog::info("{}: stopping; {} run(s) in progress finish their batch in flight", sig == SIGINT ? "SIGINT" : "SIGTERM",
                 running);
    if (running == 0) {
      io.stop();
      return;
    }
    shutdown_timer.expires_after(config->daemon.shutdown_timeout);
    shutdown_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      // A run stuck in a request: exit without it. What it had not committed is
      // diffed again next time (the state is LMDB: a half-run is not a torn one).
      spdlog::error("{} run(s) still in progress after the shutdown timeout; exiting without them", running);
      spdlog::default_logger()->flush();
      std::_Exit(1);
    });
  }

  void reload() {
    notify("RELOADING=1");
    spdlog::info("SIGHUP: reloading {}", options.config_path);
    std::shared_ptr<const config::Config> next;
    try {
      next = std::make_shared<const config::Config>(load_checked(options.config_path));
    } catch (const config::ConfigError& e) {
      for (const auto& msg : e.errors()) spdlog::error("reload: {}", msg);
      spdlog::error("reload failed with {} error(s); still running the previous configuration", e.errors().size());
      notify("READY=1");
      return;
    } catch (const std::exception& e) {
      spdlog::error("reload failed: {}; still running the previous configuration", e.what());
      notify("READY=1");
      return;
    }
    if (next->state_dir != config->state_dir) {
      spdlog::warn("reload: state_dir changed to {}; that takes effect at the next restart", next->state_dir);
    }
    if (next->daemon.max_concurrent_jobs != config->daemon.max_concurrent_jobs) {
      spdlog::warn("reload: max_concurrent_jobs changes at the next restart (the worker pool is sized at start)");
    }
    const auto previous = config;
    config = next;
    for (auto it = jobs.begin(); it != jobs.end();) {
      if (next->jobs.count(it->first)) {
        ++it;
        continue;
      }
      spdlog::info("reload: job '{}' removed", it->first);
      Job& j = *it->second;
      j.timer.cancel();
      std::erase(ready, it->first);
      if (j.running) {
        j.removed = true;  // erased when its run ends
        ++it;
      } else {
        it = jobs.erase(it);
      }
    }
    for (const auto& [name, jc] : next->jobs) {
      auto it = jobs.find(name);
      if (it == jobs.end()) {
        spdlog::info("reload: job '{}' added", name);
        add_job(jc, true);
        continue;
      }
      Job& j = *it->second;
      j.config = jc;
      j.removed = false;
      if (!j.running && !j.waiting) arm(j, Clock::now());
    }
    spdlog::info("reloaded {}: {} job(s)", options.config_path, jobs.size());
    notify("READY=1");
    dispatch();
  }

  void relay_progress(const std::string& name, const std::string& msg) {
    auto it = jobs.find(name);
    if (it == jobs.end()) return;
    for (auto& w : it->second->waiters_running) w->send({{"progress", name + ": " + msg}});
  }

  // A request from the control socket, on the loop thread.
  void handle_control(const nlohmann::json& request, const std::shared_ptr<ControlSession>& session) {
    const std::string command = request.value("command", "");
    const std::string job = request.value("job", "");
    spdlog::info("control: uid {} asks for {}{}{}", session->peer_uid(), command, job.empty() ? "" : " ", job);
    if (command == "status") {
      status(job, session);
      return;
    }
    if (command == "release") {
      release(request, session);
      return;
    }
    if (command != "sync" && command != "resync" && command != "plan") {
      session->finish({{"exit_code", cli::kExitConfig}, {"error", "unknown command '" + command + "'"}});
      return;
    }
    auto it = jobs.find(job);
    if (it == jobs.end() || it->second->removed) {
      session->finish({{"exit_code", cli::kExitConfig}, {"error", "the daemon has no job '" + job + "'"}});
      return;
    }
    if (stopping) {
      session->finish({{"exit_code", cli::kExitFailed}, {"error", "the daemon is stopping"}});
      return;
    }
    if (command == "plan") {
      plan(job, request.value("resync", false), request.value("explain", ""), session);
      return;
    }
    Job& j = *it->second;
    const auto mode = command == "resync" ? engine::Mode::kResync : engine::Mode::kSync;
    // The client gets the report of the run that includes its request: the
    // next one to start (queued behind a run in progress, not lost).
    j.waiters_next.push_back(session);
    if (j.running) {
      session->send({{"progress", job + ": running; your " + command + " is queued behind the run in progress"}});
    }
    enqueue(job, mode);
  }

  // A dry run on a worker (no job lock: a plan reads, and may overlap a run).
  void plan(const std::string& name, bool resync, const std::string& explain,
            const std::shared_ptr<ControlSession>& session) {
    auto cfg = config;
    asio::post(*pool, [this, cfg, name, resync, explain, session] {
      engine::RunReport report;
      try {
        const auto& jc = cfg->jobs.at(name);
        auto parts = engine::build_job(*cfg, jc);
        engine::SyncEngine eng(jc, *store, *parts.source, *parts.target, std::move(parts.mapping));
        engine::RunOptions o;
        o.mode = resync ? engine::Mode::kResync : engine::Mode::kSync;
        o.dry_run = true;
        o.explain_key = explain;
        report = eng.run(o);
      } catch (const std::exception& e) {
        report.job = name;
        report.outcome = engine::RunOutcome::kFailed;
        report.error = e.what();
      }
      nlohmann::json line = {{"exit_code", cli::exit_code(report)}};
      if (!explain.empty()) {
        line["text"] = engine::format_explanation(report);
        line["report"] = engine::explanation_to_json(report);
      } else {
        line["text"] = engine::format_plan(report);
        line["report"] = engine::report_to_json(report, true);
      }
      asio::post(io, [session, line = std::move(line)] { session->finish(line); });
    });
  }

  // Status reads the state (the blocked run, quarantine, outbox) on the
  // state_io thread, then answers from the loop with the jobs' live state.
  void status(const std::string& only, const std::shared_ptr<ControlSession>& session) {
    if (!only.empty() && !jobs.count(only)) {
      session->finish({{"exit_code", cli::kExitConfig}, {"error", "the daemon has no job '" + only + "'"}});
      return;
    }
    std::vector<config::JobConfig> wanted;
    for (const auto& [name, j] : jobs) {
      if (only.empty() || name == only) wanted.push_back(j->config);
    }
    asio::post(*state_io, [this, only, session, wanted = std::move(wanted)] {
      std::map<std::string, engine::JobAttention> attention;
      for (const auto& jc : wanted) {
        try {
          attention[jc.name] = engine::read_attention(*store, jc);
        } catch (const std::exception& e) {
          spdlog::warn("{}: status cannot read the state: {}", jc.name, e.what());
        }
      }
      asio::post(io, [this, only, session, attention = std::move(attention)] {
        session->finish(status_answer(only, attention));
      });
    });
  }

  // `dirsync release`: on the state_io thread, under the job's lock (a run
  // in progress holds it: the answer is "running", exit 3).
  void release(const nlohmann::json& request, const std::shared_ptr<ControlSession>& session) {
    const std::string job = request.value("job", "");
    if (!jobs.count(job)) {
      session->finish({{"exit_code", cli::kExitConfig}, {"error", "the daemon has no job '" + job + "'"}});
      return;
    }
    std::vector<std::string> keys;
    const bool all = request.value("all", false);
    if (const auto it = request.find("keys"); it != request.end() && it->is_array()) {
      for (const auto& k : *it) {
        if (k.is_string()) keys.push_back(k.get<std::string>());
      }
    }
    asio::post(*state_io, [this, job, keys = std::move(keys), all, session] {
      engine::ReleaseResult result;
      try {
        result = engine::release_quarantine(*store, job, keys, all);
      } catch (const std::exception& e) {
        result.error = core::Error{core::ErrorKind::kState, e.what()};
      }
      nlohmann::json line;
      if (result.error) {
        line = {{"exit_code", result.error->kind == core::ErrorKind::kBusy ? cli::kExitBusy : cli::kExitFailed},
                {"error", result.error->message}};
      } else {
        spdlog::info("{}: released from quarantine: {} user(s)", job, result.released.size());
        line = {{"exit_code", cli::kExitOk},
                {"text", engine::format_release(result, job)},
                {"report", engine::release_to_json(result, job)}};
      }
      asio::post(io, [session, line = std::move(line)] { session->finish(line); });
    });
  }

  nlohmann::json status_answer(const std::string& only, const std::map<std::string, engine::JobAttention>& attention) {
    nlohmann::json list = nlohmann::json::array();
    std::string text;
    for (const auto& [name, j] : jobs) {
      if (!only.empty() && name != only) continue;
      const auto seen = attention.find(name);  // absent: a job a reload added meanwhile
      const std::string state = j->running ? "running" : j->waiting ? "waiting" : "idle";
      nlohmann::json e = {{"job", name},
                          {"schedule", j->config.schedule.text.empty() ? "manual" : j->config.schedule.text},
                          {"state", state},
                          {"consecutive_failures", j->failures}};
      text += "job " + name + ": " + state + "; schedule " + e["schedule"].get<std::string>();
      if (j->next) {
        e["next_run"] = local_time(*j->next);
        text += "; next run " + local_time(*j->next);
      }
      if (j->snapshot_size) {
        e["snapshot_size"] = *j->snapshot_size;
        text += "\n  snapshot: " + std::to_string(*j->snapshot_size) + " users";
      }
      text += "\n";
      if (seen != attention.end()) {
        text += engine::format_attention(seen->second, name);
        engine::attention_to_json(seen->second, e);
      }
      if (j->failures) text += "  failed runs in a row: " + std::to_string(j->failures) + "\n";
      if (j->last) {
        e["last_run"] = engine::report_to_json(*j->last, false);
        const auto& c = j->last->counts;
        text += "  last run: " + std::string(engine::to_string(j->last->outcome)) + " — created " +
                std::to_string(c.created) + ", updated " + std::to_string(c.updated) + ", detached " +
                std::to_string(c.detached) + ", rejected " + std::to_string(c.rejected) + ", retry " +
                std::to_string(c.retry) + ", unknown " + std::to_string(c.unknown) +
                (j->last->error.empty() ? "" : "\n  error: " + j->last->error) + "\n";
      }
      list.push_back(std::move(e));
    }
    if (!only.empty() && list.empty()) {
      return {{"exit_code", cli::kExitConfig}, {"error", "the daemon has no job '" + only + "'"}};
    }
    return {{"exit_code", cli::kExitOk}, {"text", text}, {"report", list}};
  }

  void pet_watchdog(std::chrono::microseconds every) {
    notify("WATCHDOG=1");
    watchdog.expires_after(every);
    watchdog.async_wait([this, every](const boost::system::error_code& ec) {
      if (!ec) pet_watchdog(every);
    });
  }
};

Service::Service(ServiceOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  if (!impl_->options.notifier) throw std::invalid_argument("Service needs a notifier");
}

Service::~Service() {
  if (impl_->pool) impl_->pool->join();
  if (impl_->state_io) impl_->state_io->join();
  http::set_exchange_observer(nullptr);  // it points into this service's metrics
}

void Service::start() {
  Impl& s = *impl_;
  // Under systemd (stderr is the journal stream) log to journald with fields.
  use_journal_if_wanted(*spdlog::default_logger());
  s.config = std::make_shared<const config::Config>(load_checked(s.options.config_path));
  auto store = state::StateStore::open(s.config->state_dir);
  if (!store) throw std::runtime_error(store.error().message);
  s.store = std::move(store).value();
  if (const auto& d = s.config->daemon; !d.audit_log.empty()) {
    auto opened = s.audit.open(d.audit_log, d.audit_max_bytes, d.audit_max_age, d.audit_keep);
    if (opened) s.audit_on = true;
    else spdlog::error("{}; running without an audit log", opened.error().message);
  }
  s.max_running = s.config->daemon.max_concurrent_jobs;
  // One more worker than runs allowed: plans asked through the socket never wait behind runs.
  s.pool = std::make_unique<asio::thread_pool>(s.max_running + 1);
  s.state_io = std::make_unique<asio::thread_pool>(1);
  std::optional<gid_t> gid;
  if (const auto& group = s.config->daemon.control_group; !group.empty()) {
    const ::group* g = ::getgrnam(group.c_str());
    if (!g) throw std::runtime_error("daemon.control_group '" + group + "' does not exist");
    gid = g->gr_gid;
  }
  s.control = std::make_unique<ControlServer>(
      s.io, control_socket_path(*s.config), gid,
      [&s](const nlohmann::json& request, std::shared_ptr<ControlSession> session) {
        s.handle_control(request, session);
      });
  s.control->start();
  std::map<std::string, std::size_t> sizes;  // counted once, before the loop runs
  for (const auto& [name, jc] : s.config->jobs) {
    sizes[name] = s.store->snapshot_size(name);
    s.metrics.set_snapshot_users(name, sizes[name]);
    // A run blocked before a restart still waits for review.
    s.metrics.set_blocked(name, engine::read_attention(*s.store, jc, 0).blocked.has_value());
  }
  s.start_sizes = std::move(sizes);
  // Every HTTP request of every connector (workers' threads; Metrics is thread safe).
  http::set_exchange_observer([&s](const http::ExchangeEvent& e) { s.metrics.http_exchange(e.label, e.status, e.latency); });
  if (const auto& listen = s.config->daemon.metrics_listen; !listen.empty()) {
    s.metrics_server = std::make_unique<MetricsServer>(s.io, s.metrics);
    if (auto st = s.metrics_server->listen(listen); !st) throw std::runtime_error(st.error().message);
    spdlog::info("metrics: serving /metrics and /healthz on {} (port {})", listen, s.metrics_server->port());
  }
}

int Service::run() {
  Impl& s = *impl_;
  s.wait_signals();
  for (const auto& [name, jc] : s.config->jobs) {
    spdlog::info("{}: schedule {}{}", name, jc.schedule.text.empty() ? "manual" : jc.schedule.text,
                 jc.run_at_start ? "; runs now" : "");
  }
  for (const auto& [name, jc] : s.config->jobs) s.add_job(jc, true);
  if (auto interval = s.options.notifier->watchdog_interval()) {
    // Twice per interval, from the event loop: a stuck loop misses it and systemd restarts us.
    s.pet_watchdog(*interval / 2);
  }
  spdlog::info("dirsync daemon ready: {} job(s), at most {} at once; control socket {}", s.jobs.size(), s.max_running,
               s.control->path());
  s.notify("READY=1");
  s.dispatch();
  s.io.run();
  s.pool->join();
  s.state_io->join();
  return s.exit_code;
}

}  // namespace dirsync::daemon
