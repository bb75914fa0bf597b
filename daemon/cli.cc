#include "daemon/cli.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "config/config.h"
#include "config/schema.h"
#include "core/version.h"
#include "daemon/audit.h"
#include "daemon/control.h"
#include "daemon/notify.h"
#include "daemon/service.h"
#include "engine/adopt.h"
#include "engine/plan_file.h"
#include "engine/registry.h"
#include "engine/report_format.h"
#include "engine/sync_engine.h"
#include "state/state_store.h"

namespace dirsync::cli {
namespace {

struct Globals {
  std::string config_path;
  std::string log_level = "info";
};

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("dirsync");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

// Loads the config and checks every job against its target. On failure prints
// every error and returns nullopt (exit code 2).
std::optional<config::Config> load(const Globals& g) {
  try {
    config::Config cfg = config::load_file(g.config_path);
    auto errors = engine::check_config(cfg);
    if (!errors.empty()) throw config::ConfigError(errors);
    return cfg;
  } catch (const config::ConfigError& e) {
    for (const auto& msg : e.errors()) std::cerr << msg << "\n";
    std::cerr << g.config_path << ": " << e.errors().size() << " error" << (e.errors().size() == 1 ? "" : "s")
              << "; nothing was run\n";
  } catch (const std::exception& e) {
    std::cerr << g.config_path << ": " << e.what() << "\n";
  }
  return std::nullopt;
}

std::unique_ptr<state::StateStore> open_state(const config::Config& cfg) {
  auto store = state::StateStore::open(cfg.state_dir);
  if (!store) {
    std::cerr << "dirsync: " << store.error().message << "\n";
    return nullptr;
  }
  return std::move(store).value();
}

const config::JobConfig* find_job(const config::Config& cfg, const std::string& name) {
  auto it = cfg.jobs.find(name);
  if (it != cfg.jobs.end()) return &it->second;
  std::cerr << "dirsync: no job '" << name << "' in " << cfg.file << "; jobs:";
  for (const auto& [n, j] : cfg.jobs) std::cerr << " " << n;
  std::cerr << "\n";
  return nullptr;
}

// The audit log `cfg` names, opened into `audit`; null when it is off or cannot be
// opened (the audit never stops a sync: a warning says why it is missing).
daemon::AuditLog* open_audit(const config::Config& cfg, daemon::AuditLog& audit) {
  const auto& d = cfg.daemon;
  if (d.audit_log.empty()) return nullptr;
  if (auto st = audit.open(d.audit_log, d.audit_max_bytes, d.audit_max_age, d.audit_keep); !st) {
    spdlog::warn("{}; running without an audit log", st.error().message);
    return nullptr;
  }
  return &audit;
}

void audit_warn(const core::Status& st) {
  if (!st) spdlog::warn("{}", st.error().message);  // the audit never fails a sync
}

// Every change `eng` pushes goes to `audit` (may be null), under the run's start time.
void audit_outcomes(engine::SyncEngine& eng, daemon::AuditLog* audit, const std::string& job) {
  if (!audit) return;
  eng.on_outcome([audit, job, run = daemon::AuditLog::iso_time(daemon::AuditLog::Clock::now())](
                     const engine::PushedChange& c) { audit_warn(audit->record(job, run, c)); });
}

// `audit` may be null (dry runs, audit off or unwritable).
engine::RunReport run_job(const config::Config& cfg, const config::JobConfig& job, state::StateStore& store,
                          const engine::RunOptions& options, daemon::AuditLog* audit) {
  auto parts = engine::build_job(cfg, job);
  spdlog::info("{}: {} {} → {}{}", job.name, options.mode == engine::Mode::kResync ? "resync" : "sync",
               parts.source->describe(), parts.target->describe(), options.dry_run ? " (dry run)" : "");
  engine::SyncEngine eng(job, store, *parts.source, *parts.target, std::move(parts.mapping));
  audit_outcomes(eng, audit, job.name);
  eng.on_progress([&](const std::string& msg) {
    if (audit) audit_warn(audit->flush());  // after every settled batch
    spdlog::debug("{}: {}", job.name, msg);
  });
  auto report = eng.run(options);
  if (audit) audit_warn(audit->flush());
  spdlog::log(report.outcome == engine::RunOutcome::kOk ? spdlog::level::info : spdlog::level::warn,
              "{}: {} {} — {}created {} updated {} detached {} unchanged {} rejected {} retry {} unknown {} in {} ms{}{}",
              job.name, options.dry_run ? "plan" : "run", engine::to_string(report.outcome),
              options.dry_run ? "would have " : "", report.counts.created, report.counts.updated,
              report.counts.detached, report.counts.unchanged, report.counts.rejected, report.counts.retry,
              report.counts.unknown, report.duration.count(), report.error.empty() ? "" : ": ", report.error);
  return report;
}

int cmd_daemon(const Globals& g) {
  daemon::SystemdNotifier notifier;
  daemon::Service service({g.config_path, &notifier, {}});
  try {
    service.start();
  } catch (const config::ConfigError& e) {
    for (const auto& msg : e.errors()) spdlog::error("{}", msg);
    spdlog::error("{}: {} error{}; the daemon did not start", g.config_path, e.errors().size(),
                  e.errors().size() == 1 ? "" : "s");
    return kExitConfig;
  } catch (const std::exception& e) {
    spdlog::error("the daemon did not start: {}", e.what());
    return kExitFailed;
  }
  return service.run();
}

// The same tables the loader validates against (config/schema.h), so this
// reference cannot drift from what is accepted.
int cmd_config_reference() {
  for (const auto& section : config::schema()) {
    std::cout << section.section << "\n";
    for (const auto& k : section.keys) {
      std::cout << "  " << k.key << " (" << k.type << (k.required ? ", required" : "")
                << (k.default_value.empty() ? "" : ", default " + k.default_value) << ")\n      " << k.description
                << "\n";
    }
    std::cout << "\n";
  }
  return kExitOk;
}

int cmd_check_config(const Globals& g) {
  auto cfg = load(g);
  if (!cfg) return kExitConfig;
  std::cout << cfg->file << ": OK — " << cfg->sources.size() << " source(s), " << cfg->targets.size()
            << " target(s), " << cfg->jobs.size() << " job(s); state in " << cfg->state_dir << "\n";
  return kExitOk;
}

// Worst of two exit codes: busy/failed over problems over ok.
int worse(int a, int b) {
  if (a == kExitFailed || a == kExitBusy) return a;
  if (b == kExitFailed || b == kExitBusy) return b;
  return a == kExitProblems || b == kExitProblems ? kExitProblems : std::max(a, b);
}

// Asks a running daemon to do `request` (daemon/control.h) and prints its
// answer; nullopt when no daemon listens, so the command runs in-process.
std::optional<int> via_daemon(const config::Config& cfg, const nlohmann::json& request, bool json,
                              nlohmann::json* json_out) {
  const auto call = daemon::call_daemon(
      daemon::control_socket_path(cfg), request, [](const std::string& p) { spdlog::info("daemon: {}", p); },
      [&](const nlohmann::json& answer) {
        if (answer.contains("error")) {
          std::cerr << "dirsync: the daemon says: " << answer["error"].get<std::string>() << "\n";
        } else if (json) {
          json_out->push_back(answer["report"]);
        } else {
          std::cout << answer["text"].get<std::string>();
        }
      });
  switch (call.result) {
    case daemon::ControlCall::Result::kNoDaemon: return std::nullopt;
    case daemon::ControlCall::Result::kRefused:
      std::cerr << "dirsync: " << call.message << "\n";
      return kExitConfig;
    case daemon::ControlCall::Result::kDone: return call.exit_code;
  }
  return std::nullopt;
}

// In-process runs must not create state files another user (the service's)
// cannot open, nor fail deep inside LMDB on a directory they cannot read.
bool state_is_ours(const config::Config& cfg) {
  struct stat st {};
  if (::stat(cfg.state_dir.c_str(), &st) != 0 || st.st_uid == ::geteuid()) return true;
  std::cerr << "dirsync: state_dir " << cfg.state_dir << " belongs to uid " << st.st_uid
            << " and no daemon answers on " << daemon::control_socket_path(cfg)
            << ": run this command as that user (e.g. sudo -u dirsync dirsync ...), or start the daemon "
               "(systemctl start dirsync) and try again\n";
  return false;
}

int cmd_run(const Globals& g, const std::vector<std::string>& jobs, bool all, engine::RunOptions options, bool json,
            bool plan_view) {
  auto cfg = load(g);
  if (!cfg) return kExitConfig;
  std::vector<const config::JobConfig*> selected;
  if (all) {
    for (const auto& [name, job] : cfg->jobs) selected.push_back(&job);
  } else {
    if (jobs.empty()) {
      std::cerr << "dirsync: name a job (or --all)\n";
      return kExitConfig;
    }
    for (const auto& name : jobs) {
      const auto* job = find_job(*cfg, name);
      if (!job) return kExitConfig;
      selected.push_back(job);
    }
  }
  // A running daemon runs the jobs in its own queue (and its own user); this
  // process only relays. Without one, the jobs run here.
  nlohmann::json out = nlohmann::json::array();
  {
    int worst = kExitOk;
    bool daemon_answered = false;
    for (const auto* job : selected) {
      nlohmann::json request = {{"job", job->name}};
      if (options.dry_run) {
        request["command"] = "plan";
        request["resync"] = options.mode == engine::Mode::kResync;
        request["explain"] = options.explain_key;
      } else {
        request["command"] = options.mode == engine::Mode::kResync ? "resync" : "sync";
      }
      auto code = via_daemon(*cfg, request, json, &out);
      if (!code) break;  // no daemon: everything runs in-process below
      daemon_answered = true;
      worst = worse(worst, *code);
      if (*code == kExitConfig) break;
    }
    if (daemon_answered) {
      if (json) std::cout << (out.size() == 1 ? out[0] : out).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return worst;
    }
  }
  if (!state_is_ours(*cfg)) return kExitConfig;
  auto store = open_state(*cfg);
  if (!store) return kExitFailed;
  daemon::AuditLog audit;
  daemon::AuditLog* audit_ptr = options.dry_run ? nullptr : open_audit(*cfg, audit);
  int worst = kExitOk;
  for (const auto* job : selected) {
    auto report = run_job(*cfg, *job, *store, options, audit_ptr);
    if (!options.explain_key.empty()) {
      // The explanation replaces the plan: one user, not thousands of lines.
      if (json) out.push_back(engine::explanation_to_json(report));
      else std::cout << engine::format_explanation(report);
    } else if (json) {
      out.push_back(engine::report_to_json(report, options.dry_run));
    } else {
      std::cout << (plan_view ? engine::format_plan(report) : engine::format_summary(report));
    }
    const int code = exit_code(report);
    // Order of severity: busy/failed over problems over ok.
    if (code == kExitFailed || code == kExitBusy) worst = code;
    else if (code == kExitProblems && worst == kExitOk) worst = code;
  }
  if (json) std::cout << (out.size() == 1 ? out[0] : out).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return worst;
}

// `dirsync plan JOB --out FILE`: the dry run's exact changes, saved for `dirsync apply`.
int cmd_plan_out(const Globals& g, const std::string& job_name, engine::RunOptions options, const std::string& path,
                 bool json) {
  auto cfg = load(g);
  if (!cfg) return kExitConfig;
  const auto* job = find_job(*cfg, job_name);
  if (!job) return kExitConfig;
  if (!state_is_ours(*cfg)) return kExitConfig;
  auto store = open_state(*cfg);
  if (!store) return kExitFailed;
  auto report = run_job(*cfg, *job, *store, options, nullptr);
  if (report.outcome == engine::RunOutcome::kFailed) {
    std::cout << (json ? engine::report_to_json(report, true).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n" : engine::format_summary(report));
    std::cerr << "dirsync: the plan failed; nothing was saved\n";
    return exit_code(report);
  }
  const std::string now = daemon::AuditLog::iso_time(daemon::AuditLog::Clock::now());
  if (auto st = engine::write_plan_file(path, engine::plan_to_json(report, job->target, now)); !st.ok()) {
    std::cerr << "dirsync: " << st.error().message << "\n";
    return kExitFailed;
  }
  if (json) {
    std::cout << engine::report_to_json(report, true).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << engine::format_plan(report) << "saved " << report.plan.size() << " change"
              << (report.plan.size() == 1 ? "" : "s") << " to " << path << "; review it, then push exactly these with: "
              << "dirsync apply " << path << "\n";
  }
  return exit_code(report) == kExitFailed ? kExitFailed : kExitOk;
}

// `dirsync apply FILE`: pushes a saved plan's changes (an operator's approval,
// e.g. of detaches max_detach blocked); refuses those whose snapshot entry moved.
int cmd_apply(const Globals& g, const std::string& path, bool json) {
  auto cfg = load(g);
  if (!cfg) return kExitConfig;
  auto plan = engine::read_plan_file(path);
  if (!plan) {
    std::cerr << "dirsync: " << plan.error().message << "\n";
    return kExitConfig;
  }
  const auto* job = find_job(*cfg, plan.value().job);
  if (!job) return kExitConfig;
  if (job->target != plan.value().target) {
    std::cerr << "dirsync: " << path << " was made for target '" << plan.value().target << "', but job '" << job->name
              << "' now pushes to '" << job->target << "'; make a new plan\n";
    return kExitConfig;
  }
  if (!state_is_ours(*cfg)) return kExitConfig;
  auto store = open_state(*cfg);
  if (!store) return kExitFailed;
  daemon::AuditLog audit;
  daemon::AuditLog* audit_ptr = open_audit(*cfg, audit);
  auto parts = engine::build_job(*cfg, *job);
  spdlog::info("{}: apply {} ({} changes) → {}", job->name, path, plan.value().changes.size(),
               parts.target->describe());
  engine::SyncEngine eng(*job, *store, *parts.source, *parts.target, std::move(parts.mapping));
  audit_outcomes(eng, audit_ptr, job->name);
  auto report = eng.apply_plan(plan.value().changes);
  if (audit_ptr) audit_warn(audit_ptr->flush());
  std::cout << (json ? engine::report_to_json(report, false).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n" : engine::format_summary(report));
  return exit_code(report);
}

// `dirsync adopt JOB [--apply]`: match users the target already holds to the
// records a sync would create, and (with --apply) record them instead.
int cmd_adopt(const Globals& g, const std::string& job_name, bool apply, bool json) {
  auto cfg = load(g);
  if (!cfg) return kExitConfig;
  const auto* job = find_job(*cfg, job_name);
  if (!job) return kExitConfig;
  if (!state_is_ours(*cfg)) return kExitConfig;
  auto store = open_state(*cfg);
  if (!store) return kExitFailed;
  auto parts = engine::build_job(*cfg, *job);
  engine::SyncEngine eng(*job, *store, *parts.source, *parts.target, std::move(parts.mapping));
  const auto plan = engine::plan_adoption(eng, *parts.target);
  nlohmann::json out = {{"job", job->name}, {"found", nlohmann::json::array()}, {"not_found", plan.not_found}};
  if (!plan.error.empty()) {
    std::cerr << "dirsync: " << job->name << ": " << plan.error << "\n";
    return plan.dry_run.outcome == engine::RunOutcome::kFailed ? exit_code(plan.dry_run) : kExitConfig;
  }
  std::string text = "adopt for job '" + job->name + "': " + std::to_string(plan.found.size()) +
                     " users the target already has, " + std::to_string(plan.not_found) +
                     " it does not (a sync creates them)\n";
  for (const auto& a : plan.found) {
    out["found"].push_back({{"key", a.key}, {"target_id", a.target_id}, {"differing_fields", a.differing_fields}});
    text += "  = " + a.key + " (id " + a.target_id + ")";
    if (!a.differing_fields.empty()) {
      text += ": the next sync updates";
      for (const auto& f : a.differing_fields) text += " " + f;
    }
    text += "\n";
  }
  int code = kExitOk;
  if (apply) {
    auto done = engine::apply_adoption(*store, job->name, plan);
    if (!done) {
      std::cerr << "dirsync: " << done.error().message << "\n";
      return done.error().kind == core::ErrorKind::kBusy ? kExitBusy : kExitFailed;
    }
    out["adopted"] = done.value();
    text += "recorded " + std::to_string(done.value()) + " users in the snapshot\n";
  } else if (!plan.found.empty()) {
    text += "nothing was recorded; run 'dirsync adopt " + job->name + " --apply' to record them\n";
  }
  std::cout << (json ? out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n" : text);
  return code;
}

std::string format_time(std::int64_t t) {
  if (t == 0) return "-";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

int cmd_status(const Globals& g, const std::string& only, bool json) {
  auto cfg = load(g);
  if (!cfg) return kExitConfig;
  if (!only.empty() && !find_job(*cfg, only)) return kExitConfig;
  {
    // A running daemon knows more (state, next run): ask it first.
    nlohmann::json answer = nlohmann::json::array();
    if (auto code = via_daemon(*cfg, {{"command", "status"}, {"job", only}}, json, &answer)) {
      if (json && !answer.empty()) std::cout << answer[0].dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return *code;
    }
  }
  if (!state_is_ours(*cfg)) return kExitConfig;
  struct stat st{};
  const bool has_state = ::stat(cfg->state_dir.c_str(), &st) == 0;
  // status never creates the state directory: it only reports.
  std::unique_ptr<state::StateStore> store;
  if (has_state) {
    store = open_state(*cfg);
    if (!store) return kExitFailed;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [name, job] : cfg->jobs) {
    if (!only.empty() && name != only) continue;
    auto parts = engine::build_job(*cfg, job);
    const std::size_t size = store ? store->snapshot_size(name) : 0;
    const auto runs = store ? store->runs(name, 5) : std::vector<state::RunRecord>{};
    const auto attention = store ? engine::read_attention(*store, job) : engine::JobAttention{};
    if (json) {
      nlohmann::json j = {{"job", name},
                          {"source", parts.source->describe()},
                          {"target", parts.target->describe()},
                          {"snapshot_size", size},
                          {"schedule", job.schedule.text.empty() ? "manual" : job.schedule.text},
                          {"runs", nlohmann::json::array()}};
      for (const auto& r : runs) {
        j["runs"].push_back({{"id", r.id},
                             {"started_at", r.started_at},
                             {"finished_at", r.finished_at},
                             {"mode", r.mode},
                             {"outcome", r.outcome},
                             {"message", r.message},
                             {"counts", r.counts}});
      }
      engine::attention_to_json(attention, j);
      out.push_back(std::move(j));
      continue;
    }
    std::cout << "job " << name << ": " << parts.source->describe() << " → " << parts.target->describe() << "\n";
    std::cout << engine::format_attention(attention, name);
    std::cout << "  schedule: " << (job.schedule.text.empty() ? "manual" : job.schedule.text)
              << (job.run_at_start ? "" : " (not at daemon start)") << "\n";
    std::cout << "  snapshot: " << size << " user" << (size == 1 ? "" : "s") << "\n";
    if (runs.empty()) {
      std::cout << "  runs: never run\n";
      continue;
    }
    std::cout << "  last runs (newest first):\n";
    for (const auto& r : runs) {
      const auto& c = r.counts;
      auto n = [&](const char* k) { return c.contains(k) ? c[k].get<std::size_t>() : 0; };
      std::cout << "    #" << r.id << " " << format_time(r.started_at) << " " << r.mode << " " << r.outcome << " ("
                << (r.finished_at - r.started_at) << " s): created " << n("created") << ", updated " << n("updated")
                << ", detached " << n("detached") << ", rejected " << n("rejected") << ", unknown " << n("unknown")
                << "\n";
      if (!r.message.empty()) std::cout << "       " << r.message << "\n";
    }
  }
  if (json) std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return kExitOk;
}

// `dirsync release JOB KEY... | --all`: through the daemon when one runs (its
// user owns the state), else here. Keys not in quarantine are reported, and
// do not fail the others.
int cmd_release(const Globals& g, const std::string& job_name, const std::vector<std::string>& keys, bool all,
                bool json) {
  auto cfg = load(g);
  if (!cfg) return kExitConfig;
  if (!find_job(*cfg, job_name)) return kExitConfig;
  if (all == !keys.empty()) {
    std::cerr << "dirsync: name the keys to release, or --all (not both)\n";
    return kExitConfig;
  }
  {
    nlohmann::json answer = nlohmann::json::array();
    const nlohmann::json request = {{"command", "release"}, {"job", job_name}, {"keys", keys}, {"all", all}};
    if (auto code = via_daemon(*cfg, request, json, &answer)) {
      if (json && !answer.empty()) std::cout << answer[0].dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return *code;
    }
  }
  if (!state_is_ours(*cfg)) return kExitConfig;
  engine::ReleaseResult result;
  struct stat st {};
  if (::stat(cfg->state_dir.c_str(), &st) != 0) {
    // No state yet: nothing was ever quarantined (and release creates no state).
    result.unknown = all ? std::vector<std::string>{} : keys;
  } else {
    auto store = open_state(*cfg);
    if (!store) return kExitFailed;
    result = engine::release_quarantine(*store, job_name, keys, all);
  }
  if (result.error) {
    std::cerr << "dirsync: " << result.error->message << "\n";
    return result.error->kind == core::ErrorKind::kBusy ? kExitBusy : kExitFailed;
  }
  if (json) std::cout << engine::release_to_json(result, job_name).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  else std::cout << engine::format_release(result, job_name);
  return kExitOk;
}

}  // namespace

int run(int argc, char** argv) {
  Globals g;
  const char* env_config = std::getenv("DIRSYNC_CONFIG");
  g.config_path = env_config && *env_config ? env_config : "/etc/dirsync/dirsync.yaml";

  CLI::App app{"dirsync " + std::string(kVersion) +
               " — keeps user accounts in target systems in step with a source of truth.\n\n"
               "Exit codes: 0 ok; 1 run failed; 2 configuration or usage error; 3 job already running;\n"
               "4 run finished with problems (rejected/unknown records, bad rows, blocked detaches)."};
  app.set_version_flag("--version", std::string("dirsync ") + kVersion);
  app.option_defaults()->always_capture_default();
  app.add_option("-c,--config", g.config_path, "configuration file (env DIRSYNC_CONFIG)");
  app.add_option("--log-level", g.log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.require_subcommand(1);
  app.fallthrough();

  auto* check = app.add_subcommand("check-config", "validate the configuration; list every error");
  auto* reference = app.add_subcommand(
      "config-reference", "print every configuration key of every section: type, default and what it does");

  std::vector<std::string> sync_jobs;
  bool sync_all = false, sync_json = false;
  auto* sync = app.add_subcommand("sync", "run jobs once now: push what changed");
  sync->add_option("jobs", sync_jobs, "job names");
  sync->add_flag("--all", sync_all, "every job in the configuration");
  sync->add_flag("--json", sync_json, "print the run report as JSON");

  std::string plan_job;
  bool plan_json = false, plan_resync = false;
  auto* plan = app.add_subcommand("plan", "show the changes a sync would make; touch neither target nor snapshot");
  plan->add_option("job", plan_job, "job name")->required();
  plan->add_flag("--json", plan_json, "machine-readable plan");
  plan->add_flag("--resync", plan_resync, "plan a resync instead of a sync");
  std::string explain_key;
  std::string plan_out;
  plan->add_option("--out", plan_out, "save the exact changes to this file for 'dirsync apply' (JSON, mode 0600)");
  plan->add_option("--explain", explain_key,
                   "follow one source key: its record, the filter decision, the mapped payload, the snapshot entry "
                   "and what the next sync would do and why");

  std::string resync_job;
  bool resync_dry = false, resync_json = false;
  auto* resync = app.add_subcommand(
      "resync", "push every current record again, regardless of the snapshot, to repair a target that drifted");
  resync->add_option("job", resync_job, "job name")->required();
  resync->add_flag("--dry-run", resync_dry, "show what would be sent; send nothing");
  resync->add_flag("--json", resync_json, "print the report as JSON");

  std::string apply_file;
  bool apply_json = false;
  auto* apply = app.add_subcommand(
      "apply", "push exactly the changes of a plan saved with 'plan --out' (an operator's approval: max_detach "
               "does not apply); changes whose snapshot entry moved since are refused");
  apply->add_option("plan", apply_file, "the plan file")->required();
  apply->add_flag("--json", apply_json, "print the report as JSON");

  std::string adopt_job;
  bool adopt_apply = false, adopt_json = false;
  auto* adopt = app.add_subcommand(
      "adopt", "find users the target already has for records a sync would create (by email), and with --apply "
               "record them in the snapshot instead of creating them again");
  adopt->add_option("job", adopt_job, "job name")->required();
  adopt->add_flag("--apply", adopt_apply, "record the matches (without it: only show them)");
  adopt->add_flag("--json", adopt_json, "machine-readable answer");

  std::string status_job;
  bool status_json = false;
  auto* status = app.add_subcommand(
      "status", "snapshot size and last runs of each job; a run blocked by a guard, quarantined users, pending "
                "creates");
  status->add_option("job", status_job, "only this job");
  status->add_flag("--json", status_json, "machine-readable status");

  std::string release_job;
  std::vector<std::string> release_keys;
  bool release_all = false, release_json = false;
  auto* release = app.add_subcommand(
      "release", "free quarantined users (the target rejected them run after run) so that the next run sends them "
                 "again");
  release->add_option("job", release_job, "job name")->required();
  release->add_option("keys", release_keys, "source keys to release");
  release->add_flag("--all", release_all, "every quarantined user of the job");
  release->add_flag("--json", release_json, "machine-readable answer");

  auto* daemon_cmd = app.add_subcommand(
      "daemon", "run every job on its schedule until SIGTERM; SIGHUP reloads the configuration (systemd: "
                "Type=notify, with the watchdog)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitConfig;
  }
  setup_logging(g.log_level);

  if (check->parsed()) return cmd_check_config(g);
  if (reference->parsed()) return cmd_config_reference();
  if (sync->parsed()) return cmd_run(g, sync_jobs, sync_all, {engine::Mode::kSync, false}, sync_json, false);
  if (plan->parsed() && !plan_out.empty()) {
    if (!explain_key.empty()) {
      std::cerr << "dirsync: --out and --explain do not go together\n";
      return kExitConfig;
    }
    return cmd_plan_out(g, plan_job, {plan_resync ? engine::Mode::kResync : engine::Mode::kSync, true}, plan_out,
                        plan_json);
  }
  if (apply->parsed()) return cmd_apply(g, apply_file, apply_json);
  if (adopt->parsed()) return cmd_adopt(g, adopt_job, adopt_apply, adopt_json);
  if (plan->parsed()) {
    return cmd_run(g, {plan_job}, false,
                   {plan_resync ? engine::Mode::kResync : engine::Mode::kSync, true, explain_key}, plan_json, true);
  }
  if (resync->parsed()) {
    return cmd_run(g, {resync_job}, false, {engine::Mode::kResync, resync_dry}, resync_json, resync_dry);
  }
  if (status->parsed()) return cmd_status(g, status_job, status_json);
  if (release->parsed()) return cmd_release(g, release_job, release_keys, release_all, release_json);
  if (daemon_cmd->parsed()) return cmd_daemon(g);
  return kExitConfig;
}

}  // namespace dirsync::cli
