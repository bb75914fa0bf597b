#include "engine/report_format.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace dirsync::engine {
namespace {

std::string line(const char* label, std::size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "  %-10s %zu\n", label, n);
  return buf;
}

std::string short_json(const nlohmann::json& v) {
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// "  [blocked by max_update]" for a change a guard holds back this run.
std::string held_mark(const RunReport& r, const core::Change& ch) {
  const auto it = r.held.find(ch.key);
  return it == r.held.end() ? "" : "  [blocked by " + it->second + "]";
}

std::string mode_name(const RunReport& r) {
  return r.mode == Mode::kResync ? "resync" : r.mode == Mode::kApply ? "apply" : "sync";
}

}  // namespace

std::string format_summary(const RunReport& r, std::size_t max_problems) {
  std::string out;
  char head[256];
  std::snprintf(head, sizeof head, "%s: %s%s %s in %.2f s\n", r.job.c_str(), mode_name(r).c_str(),
                r.dry_run ? " (dry run)" : "", to_string(r.outcome), static_cast<double>(r.duration.count()) / 1000.0);
  out += head;
  if (!r.error.empty()) out += "  error: " + r.error + "\n";
  const Counts& c = r.counts;
  out += line("source", c.source_records);
  out += line(r.dry_run ? "to create" : "created", c.created);
  out += line(r.dry_run ? "to update" : "updated", c.updated);
  out += line(r.dry_run ? "to detach" : "detached", c.detached);
  out += line("unchanged", c.unchanged);
  if (c.rejected) out += line("rejected", c.rejected);
  if (c.retry) out += line("retry", c.retry);
  if (c.unknown) out += line("unknown", c.unknown);
  if (c.skipped) out += line("skipped", c.skipped);
  if (c.filtered) out += line("filtered", c.filtered);
  if (c.detach_deferred) out += line("deferred", c.detach_deferred);
  if (c.adopted) out += line("adopted", c.adopted);
  if (c.reconciled) out += line("settled", c.reconciled);
  if (c.pending) out += line("pending", c.pending);
  if (c.quarantined) out += line("quarantine", c.quarantined);
  if (c.stale) out += line("stale", c.stale);
  if (c.source_issues) out += line("bad rows", c.source_issues);
  if (c.mapping_errors) out += line("unmapped", c.mapping_errors);
  if (c.invalid) out += line("invalid", c.invalid);
  if (c.protected_users) out += line("protected", c.protected_users);
  if (!r.dry_run) out += line("snapshot", r.snapshot_after);
  if (!r.blocked_note.empty()) out += "  BLOCKED: " + r.blocked_note + "\n";
  if (!r.pull_note.empty()) out += "  note: " + r.pull_note + "\n";
  auto list = [&](const char* title, const std::vector<Problem>& items) {
    if (items.empty()) return;
    out += title;
    std::size_t shown = 0;
    for (const auto& p : items) {
      if (shown++ == max_problems) {
        out += "  ... and " + std::to_string(items.size() - max_problems) + " more (use --json for all)\n";
        break;
      }
      out += "  ";
      if (!p.origin.empty()) out += p.origin + " ";
      if (!p.key.empty()) out += "key " + p.key + ": ";
      else if (p.stage == "source") out += "(no key): ";
      out += p.stage + " " + p.outcome + ": " + p.message + "\n";
    }
  };
  list("problems:\n", r.problems);
  list("notes:\n", r.notes);
  if (!r.protected_changes.empty()) {
    out += "protected (never updated or detached, whatever the source says):\n";
    std::size_t shown = 0;
    for (const auto& p : r.protected_changes) {
      if (shown++ == max_problems) {
        out += "  ... and " + std::to_string(r.protected_changes.size() - max_problems) + " more (use --json for all)\n";
        break;
      }
      out += "  key " + p.key + ": " + p.stage + " withheld — " + p.message + "\n";
    }
  }
  return out;
}

std::string format_plan(const RunReport& r, std::size_t max_changes) {
  std::string out = "plan for job '" + r.job + "' (" + mode_name(r) + "); nothing was sent\n";
  std::size_t shown = 0;
  for (const auto& ch : r.plan) {
    if (shown++ == max_changes) {
      out += "  ... and " + std::to_string(r.plan.size() - max_changes) + " more (use --json for all)\n";
      break;
    }
    switch (ch.op) {
      case core::Op::kCreate:
        out += "  + create " + ch.key + " " + short_json(ch.payload) + "\n";
        break;
      case core::Op::kUpdate: {
        out += "  ~ update " + ch.key + (ch.target_id.empty() ? "" : " (id " + ch.target_id + ")") + ":";
        const char* sep = " ";
        for (const auto& f : ch.changed_fields) {
          const auto before = ch.previous.is_object() && ch.previous.contains(f) ? short_json(ch.previous[f]) : "-";
          const auto after = ch.payload.contains(f) ? short_json(ch.payload[f]) : "-";
          out += sep + f + " " + before + " -> " + after;
          sep = "; ";
        }
        if (ch.missing) {
          out += ch.filtered ? "  [dropped by the job's filter: on_missing update]"
                             : "  [gone from the source: on_missing update]";
        }
        out += held_mark(r, ch);
        out += "\n";
        break;
      }
      case core::Op::kDetach:
        out += "  - detach " + ch.key + (ch.target_id.empty() ? "" : " (id " + ch.target_id + ")") +
               (ch.filtered ? "  [dropped by the job's filter]" : "") +
               held_mark(r, ch) + "\n";
        break;
    }
  }
  if (r.plan.empty()) out += "  (no changes)\n";
  if (!r.pace.empty()) out += "  pace: " + r.pace + " (the target's rate limits)\n";
  out += format_summary(r);
  return out;
}

nlohmann::json report_to_json(const RunReport& r, bool with_plan) {
  nlohmann::json j = {{"job", r.job},
                      {"mode", mode_name(r)},
                      {"dry_run", r.dry_run},
                      {"outcome", to_string(r.outcome)},
                      {"pull_complete", r.pull_complete},
                      {"duration_ms", r.duration.count()},
                      {"snapshot_before", r.snapshot_before},
                      {"snapshot_after", r.snapshot_after},
                      {"counts", r.counts.to_json()}};
  if (!r.error.empty()) j["error"] = r.error;
  if (!r.pull_note.empty()) j["note"] = r.pull_note;
  if (!r.blocked_note.empty()) j["blocked"] = r.blocked_note;
  if (r.run_id) j["run_id"] = r.run_id;
  if (!r.pace.empty()) j["pace"] = r.pace;
  auto& problems = j["problems"] = nlohmann::json::array();
  for (const auto& p : r.problems) {
    problems.push_back(
        {{"key", p.key}, {"origin", p.origin}, {"stage", p.stage}, {"outcome", p.outcome}, {"message", p.message}});
  }
  auto& notes = j["notes"] = nlohmann::json::array();
  for (const auto& p : r.notes) {
    notes.push_back({{"key", p.key}, {"stage", p.stage}, {"outcome", p.outcome}, {"message", p.message}});
  }
  if (!r.protected_changes.empty()) {
    auto& held = j["protected"] = nlohmann::json::array();
    for (const auto& p : r.protected_changes) held.push_back({{"key", p.key}, {"stage", p.stage}, {"message", p.message}});
  }
  if (with_plan) {
    auto& changes = j["changes"] = nlohmann::json::array();
    for (const auto& ch : r.plan) {
      nlohmann::json c = {{"op", core::to_string(ch.op)}, {"key", ch.key}};
      if (!ch.target_id.empty()) c["target_id"] = ch.target_id;
      if (ch.op != core::Op::kDetach) c["payload"] = ch.payload;
      if (ch.op == core::Op::kUpdate) {
        c["changed_fields"] = ch.changed_fields;
        c["before"] = ch.previous;
      }
      if (ch.missing) c["on_missing"] = true;
      if (ch.filtered) c["filtered"] = true;
      if (const auto it = r.held.find(ch.key); it != r.held.end()) {
        c["blocked"] = true;
        c["blocked_by"] = it->second;
      }
      changes.push_back(std::move(c));
    }
  }
  return j;
}

std::string format_explanation(const RunReport& r) {
  if (!r.explanation) return "";
  const Explanation& ex = *r.explanation;
  std::string out = "explain key '" + ex.key + "' in job '" + r.job + "' (" + mode_name(r) + "); nothing was sent\n";
  out += "source:\n";
  if (ex.in_source) {
    out += "  found at " + (ex.record.origin.empty() ? std::string("(no origin)") : ex.record.origin) + "\n";
    for (const auto& a : ex.record.attributes) out += "  " + a.name + ": " + short_json(a.values) + "\n";
  } else {
    out += r.pull_complete ? "  not in the source (the pull was complete)\n"
                           : "  not seen (the pull was incomplete: " + r.pull_note + ")\n";
  }
  for (const auto& issue : ex.source_issues) out += "  problem: " + issue + "\n";
  if (ex.in_source) out += "filter:\n  " + std::string(ex.filter_kept ? "kept" : "dropped") + " (" + ex.filter_reason + ")\n";
  if (!ex.mapping_error.empty()) out += "mapping:\n  failed: " + ex.mapping_error + "\n";
  else if (!ex.payload.is_null()) out += "mapping:\n  " + short_json(ex.payload) + "\n";
  out += "snapshot:\n";
  if (ex.snapshot) {
    out += "  " + short_json(ex.snapshot->payload) +
           (ex.snapshot->target_id.empty() ? "" : " (target id " + ex.snapshot->target_id + ")") + "\n";
  } else {
    out += "  no entry (the target never acknowledged this user for this job)\n";
  }
  out += "next sync:\n  " + ex.action + ": " + ex.why + "\n";
  if (ex.change && ex.change->op == core::Op::kUpdate && !ex.change->changed_fields.empty()) {
    for (const auto& f : ex.change->changed_fields) {
      const auto& prev = ex.change->previous;
      const auto before = prev.is_object() && prev.contains(f) ? short_json(prev[f]) : "-";
      const auto after = ex.change->payload.contains(f) ? short_json(ex.change->payload[f]) : "-";
      out += "    " + f + " " + before + " -> " + after + "\n";
    }
  }
  return out;
}

nlohmann::json explanation_to_json(const RunReport& r) {
  if (!r.explanation) return nullptr;
  const Explanation& ex = *r.explanation;
  nlohmann::json j = {{"job", r.job}, {"key", ex.key}, {"in_source", ex.in_source}, {"pull_complete", r.pull_complete}};
  if (ex.in_source) {
    nlohmann::json attrs = nlohmann::json::object();
    for (const auto& a : ex.record.attributes) attrs[a.name] = a.values;
    j["record"] = {{"origin", ex.record.origin}, {"attributes", attrs}};
    j["filter"] = {{"kept", ex.filter_kept}, {"reason", ex.filter_reason}};
  }
  if (!ex.source_issues.empty()) j["source_issues"] = ex.source_issues;
  if (!ex.mapping_error.empty()) j["mapping_error"] = ex.mapping_error;
  if (!ex.payload.is_null()) j["payload"] = ex.payload;
  j["snapshot"] = ex.snapshot ? nlohmann::json{{"payload", ex.snapshot->payload}, {"target_id", ex.snapshot->target_id}}
                              : nlohmann::json(nullptr);
  if (ex.absent_pulls) j["absent_pulls"] = ex.absent_pulls;
  if (!ex.protected_by.empty()) j["protected_by"] = ex.protected_by;
  j["action"] = ex.action;
  j["why"] = ex.why;
  if (ex.change && ex.change->op == core::Op::kUpdate) j["changed_fields"] = ex.change->changed_fields;
  return j;
}

}  // namespace dirsync::engine

namespace dirsync::engine {

std::string format_local_time(std::int64_t unix_seconds) {
  if (unix_seconds == 0) return "-";
  const auto tt = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::localtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

JobAttention read_attention(state::StateStore& store, const config::JobConfig& job, std::size_t sample) {
  JobAttention out;
  // The run history keeps the newest 50 runs; a failed run (a source down, the
  // job busy) reviews nothing, so the blocked run behind it still counts.
  for (auto& run : store.runs(job.name, 50)) {
    if (run.outcome == "failed") continue;
    if (run.outcome == "blocked") out.blocked = std::move(run);
    break;
  }
  if (job.quarantine_after > 0) {
    for (auto& [key, entry] : store.quarantine(job.name)) {
      if (entry.rejections < job.quarantine_after) continue;  // rejected lately, still sent
      ++out.quarantined;
      out.quarantine.emplace_back(key, std::move(entry));
    }
    std::stable_sort(out.quarantine.begin(), out.quarantine.end(),
                     [](const auto& a, const auto& b) { return a.second.first_at < b.second.first_at; });
    if (out.quarantine.size() > sample) out.quarantine.resize(sample);
  }
  for (const auto& intent : store.intents(job.name)) {
    out.pending_creates += static_cast<std::size_t>(std::count_if(
        intent.items.begin(), intent.items.end(), [](const state::IntentItem& i) { return i.op == core::Op::kCreate; }));
  }
  return out;
}

std::string format_attention(const JobAttention& a, const std::string& job) {
  std::string out;
  if (a.blocked) {
    out += "  BLOCKED: " + a.blocked->message + " (run #" + std::to_string(a.blocked->id) + ", " +
           format_local_time(a.blocked->finished_at) + ")\n";
  }
  if (a.quarantined) {
    out += "  quarantined: " + std::to_string(a.quarantined) + " user" + (a.quarantined == 1 ? "" : "s") +
           ", not sent until their source record changes or 'dirsync release " + job + " KEY' frees them\n";
    for (const auto& [key, e] : a.quarantine) {
      out += "    " + key + ": rejected " + std::to_string(e.rejections) + " times since " +
             format_local_time(e.first_at) + " — " + e.message + "\n";
    }
    if (a.quarantined > a.quarantine.size()) {
      out += "    ... and " + std::to_string(a.quarantined - a.quarantine.size()) + " more (use --json for the count)\n";
    }
  }
  if (a.pending_creates) {
    out += "  pending creates: " + std::to_string(a.pending_creates) +
           " with an unknown outcome (not sent again until the next run settles them)\n";
  }
  return out;
}

void attention_to_json(const JobAttention& a, nlohmann::json& j) {
  j["blocked"] = a.blocked ? nlohmann::json{{"note", a.blocked->message},
                                            {"run", a.blocked->id},
                                            {"at", a.blocked->finished_at}}
                           : nlohmann::json(nullptr);
  nlohmann::json users = nlohmann::json::array();
  for (const auto& [key, e] : a.quarantine) {
    users.push_back({{"key", key}, {"rejections", e.rejections}, {"message", e.message}, {"since", e.first_at}});
  }
  j["quarantine"] = {{"count", a.quarantined}, {"users", std::move(users)}};
  j["pending_creates"] = a.pending_creates;
}

ReleaseResult release_quarantine(state::StateStore& store, const std::string& job,
                                 const std::vector<std::string>& keys, bool all) {
  ReleaseResult out;
  // A run updates the quarantine as its batches settle: hold the job's lock.
  auto lock = state::JobLock::acquire(store.dir(), job);
  if (!lock) {
    out.error = lock.error();
    return out;
  }
  const auto held = store.quarantine(job);
  if (all) {
    for (const auto& [key, entry] : held) out.released.push_back(key);
  } else {
    for (const auto& key : keys) {
      auto& list = held.count(key) ? out.released : out.unknown;
      if (std::find(list.begin(), list.end(), key) == list.end()) list.push_back(key);
    }
  }
  if (out.released.empty()) return out;
  if (auto cleared = store.release(job, out.released); !cleared) {
    out.error = cleared.error();
    out.released.clear();
  }
  return out;
}

std::string format_release(const ReleaseResult& r, const std::string& job) {
  if (r.error) return "";
  auto list = [](const std::vector<std::string>& keys) {
    std::string out;
    for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
    return out;
  };
  std::string out = "released " + std::to_string(r.released.size()) + " user" + (r.released.size() == 1 ? "" : "s") +
                    " of job '" + job + "' from quarantine" + (r.released.empty() ? "" : ": " + list(r.released)) +
                    (r.released.empty() ? "" : " (the next run sends them again)") + "\n";
  if (!r.unknown.empty()) out += "not quarantined (nothing to release): " + list(r.unknown) + "\n";
  return out;
}

nlohmann::json release_to_json(const ReleaseResult& r, const std::string& job) {
  nlohmann::json j = {{"job", job}, {"released", r.released}, {"unknown", r.unknown}};
  if (r.error) j["error"] = r.error->message;
  return j;
}

}  // namespace dirsync::engine
