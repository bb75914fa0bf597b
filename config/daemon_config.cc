#include "config/daemon_config.h"

namespace dirsync::config::detail {
namespace {

using YAML::Node;

const std::vector<KeyDoc>& schedule_keys() {
  static const std::vector<KeyDoc> keys = {
      {"every", "duration", "", false, "Run every this long (from the previous start), at least 1s"},
      {"jitter", "duration", "0", false, "every: add up to this much, at random, to spread jobs out"},
      {"cron", "5-field cron expression", "", false,
       "minute hour day-of-month month day-of-week (crontab(5)), or @hourly/@daily/@weekly/@monthly/@yearly"},
      {"timezone", "local | UTC", "local", false,
       "cron: the zone its times are in; local is the machine's (TZ, else /etc/localtime)"},
  };
  return keys;
}

const std::vector<KeyDoc>& daemon_keys() {
  static const std::vector<KeyDoc> keys = {
      {"max_concurrent_jobs", "integer", "2", false, "Runs in progress at once, across jobs (1..64)"},
      {"shutdown_timeout", "duration", "60s", false,
       "SIGTERM: how long in-flight runs may take to finish their batch and commit before the daemon exits"},
      {"failure_backoff", "duration", "1m", false,
       "After a failed run, the job's next try comes this much later, doubling per failure in a row"},
      {"failure_backoff_max", "duration", "1h", false, "Cap on that delay"},
      {"control_socket", "path", "/run/dirsync/control.sock, else <state_dir>/control.sock", false,
       "Where sync/resync/plan/status reach the running daemon (mode 0660)"},
      {"control_group", "group name", "(none)", false,
       "Members may use the control socket (e.g. dirsync-operators); the daemon's user must be a member too"},
      {"metrics", "loopback host:port, or off", "off", false,
       "Serve Prometheus /metrics and /healthz here, e.g. 127.0.0.1:9187 (loopback only; port 0: a free one, logged)"},
      {"audit_log", "path, or off", "<state_dir>/audit.jsonl", false,
       "One JSON line per change a target answered (no payload values); relative to the config file's directory"},
      {"audit_max_size", "integer (MiB)", "64", false, "Rotate the audit log before it grows past this, 1..65536"},
      {"audit_max_age", "duration", "24h", false, "Rotate the audit log when its file is older than this"},
      {"audit_keep", "integer", "10", false, "Rotated audit files kept (audit.jsonl.1 is the newest), 1..1000"},
  };
  return keys;
}

std::string zone_name(core::TimeZone zone) { return zone == core::TimeZone::kUtc ? "UTC" : "local"; }

}  // namespace

std::optional<Schedule> read_schedule(Section& job, const Node& value) {
  Context& ctx = job.ctx();
  const char* expected = "expected manual, {every: 15m, jitter: 1m} or {cron: \"*/15 * * * *\", timezone: local}";
  if (value.IsScalar() && value.Scalar() == "manual") {
    Schedule s;
    s.text = "manual";
    return s;
  }
  if (!value.IsMap() || value.size() == 0) {
    report_bad_value(job, "schedule", value, expected);
    return std::nullopt;
  }
  Section sec(ctx, value, "in schedule " + job.what(), value.Mark());
  sec.check_keys(schedule_keys());
  Schedule s;
  const auto every = sec.find("every");
  const auto cron = sec.find("cron");
  if (every.has_value() == cron.has_value()) {
    ctx.diag.error(value.Mark(), std::string(every ? "both 'every' and 'cron'" : "neither 'every' nor 'cron'") +
                                     " in schedule " + job.what(),
                   "expected exactly one of them");
    return std::nullopt;
  }
  bool ok = true;
  if (every) {
    auto d = read_duration(sec, "every", *every);
    if (d && *d < std::chrono::seconds(1)) {
      report_bad_value(sec, "every", *every, "expected a duration of at least 1s");
      d.reset();
    }
    if (!d) return std::nullopt;
    s.kind = Schedule::Kind::kEvery;
    s.every = *d;
    if (auto j = sec.find("jitter")) {
      // "0" is a valid jitter; read_duration wants > 0.
      if (j->IsScalar() && (j->Scalar() == "0" || j->Scalar() == "0s")) {
        s.jitter = std::chrono::milliseconds(0);
      } else if (auto jd = read_duration(sec, "jitter", *j)) {
        s.jitter = *jd;
      } else {
        ok = false;
      }
    }
    if (sec.find("timezone")) {
      ctx.diag.error(sec.key_mark("timezone").value_or(value.Mark()), "'timezone' with 'every' " + sec.what(),
                     "expected timezone only with cron (an interval has no time zone)");
      ok = false;
    }
    s.text = "every " + format_duration(s.every) + (s.jitter.count() ? " (jitter " + format_duration(s.jitter) + ")" : "");
  } else {
    if (sec.find("jitter")) {
      ctx.diag.error(sec.key_mark("jitter").value_or(value.Mark()), "'jitter' with 'cron' " + sec.what(),
                     "expected jitter only with every");
      ok = false;
    }
    if (auto z = sec.find("timezone")) {
      auto e = read_enum(sec, "timezone", *z, {"local", "UTC"});
      if (!e) return std::nullopt;
      s.zone = *e == "UTC" ? core::TimeZone::kUtc : core::TimeZone::kLocal;
    }
    if (!cron->IsScalar()) {
      report_bad_value(sec, "cron", *cron, "expected a cron expression such as \"*/15 * * * *\"");
      return std::nullopt;
    }
    try {
      s.cron = core::CronExpression::parse(cron->Scalar());
    } catch (const core::CronError& e) {
      const auto [line, col] = caret_in_scalar(ctx, *cron, static_cast<std::size_t>(std::max(e.column, 1) - 1));
      ctx.diag.error_at(line, col, "bad cron expression: " + e.message,
                        "expected minute hour day-of-month month day-of-week, e.g. \"*/15 * * * *\"");
      return std::nullopt;
    }
    s.kind = Schedule::Kind::kCron;
    s.text = "cron " + cron->Scalar() + " (" + zone_name(s.zone) + ")";
  }
  if (!ok) return std::nullopt;
  return s;
}

std::optional<DaemonSettings> read_daemon(Section& top, const Node& value) {
  Context& ctx = top.ctx();
  if (!value.IsMap()) {
    report_bad_value(top, "daemon", value, "expected a map of daemon settings");
    return std::nullopt;
  }
  Section sec(ctx, value, "in daemon", value.Mark());
  sec.check_keys(daemon_keys());
  DaemonSettings d;
  if (auto v = sec.find("max_concurrent_jobs")) {
    if (auto n = read_int(sec, "max_concurrent_jobs", *v, 1, 64, "expected an integer from 1 to 64")) {
      d.max_concurrent_jobs = static_cast<std::size_t>(*n);
    }
  }
  if (auto v = sec.find("shutdown_timeout")) {
    if (auto t = read_duration(sec, "shutdown_timeout", *v)) d.shutdown_timeout = *t;
  }
  if (auto v = sec.find("failure_backoff")) {
    if (auto t = read_duration(sec, "failure_backoff", *v)) d.failure_backoff = *t;
  }
  if (auto v = sec.find("failure_backoff_max")) {
    if (auto t = read_duration(sec, "failure_backoff_max", *v)) d.failure_backoff_max = *t;
  }
  if (auto v = sec.find("metrics")) {
    auto text = read_string(sec, "metrics", *v);
    if (text && *text != "off") {
      // host:port with a loopback host: metrics say what the jobs do, not for the network.
      const auto colon = text->rfind(':');
      const std::string host = colon == std::string::npos ? "" : text->substr(0, colon);
      const std::string port = colon == std::string::npos ? "" : text->substr(colon + 1);
      const bool loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
      const auto p = parse_int(port);
      if (!loopback || !p || *p < 0 || *p > 65535) {
        report_bad_value(sec, "metrics", *v, "expected a loopback address and port such as 127.0.0.1:9187, or off");
      } else {
        d.metrics_listen = *text;
      }
    }
  }
  if (auto v = sec.find("control_socket")) {
    if (auto p = read_path(sec, "control_socket", *v)) d.control_socket = *p;
  }
  if (auto v = sec.find("control_group")) {
    if (auto g = read_string(sec, "control_group", *v)) d.control_group = *g;
  }
  if (auto v = sec.find("audit_log")) {
    if (v->IsScalar() && v->Scalar() == "off") {
      d.audit_log = "off";
    } else if (auto p = read_path(sec, "audit_log", *v)) {
      d.audit_log = *p;
    }
  }
  if (auto v = sec.find("audit_max_size")) {
    if (auto n = read_int(sec, "audit_max_size", *v, 1, 65536, "expected a size in MiB from 1 to 65536")) {
      d.audit_max_bytes = static_cast<std::uint64_t>(*n) << 20;
    }
  }
  if (auto v = sec.find("audit_max_age")) {
    if (auto t = read_duration(sec, "audit_max_age", *v)) d.audit_max_age = *t;
  }
  if (auto v = sec.find("audit_keep")) {
    if (auto n = read_int(sec, "audit_keep", *v, 1, 1000, "expected an integer from 1 to 1000")) {
      d.audit_keep = static_cast<std::size_t>(*n);
    }
  }
  if (d.failure_backoff > d.failure_backoff_max) {
    ctx.diag.error(sec.key_mark("failure_backoff").value_or(value.Mark()),
                   "failure_backoff (" + format_duration(d.failure_backoff) + ") is longer than failure_backoff_max (" +
                       format_duration(d.failure_backoff_max) + ")",
                   "expected failure_backoff <= failure_backoff_max");
  }
  return d;
}

std::vector<SectionDoc> daemon_docs() {
  return {{"daemon", daemon_keys()}, {"jobs.<name>.schedule", schedule_keys()}};
}

}  // namespace dirsync::config::detail
