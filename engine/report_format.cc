#include "engine/report_format.h"

#include <cstdio>

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

std::string mode_name(const RunReport& r) { return r.mode == Mode::kResync ? "resync" : "sync"; }

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
  if (c.source_issues) out += line("bad rows", c.source_issues);
  if (c.mapping_errors) out += line("unmapped", c.mapping_errors);
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
        if (r.outcome == RunOutcome::kBlocked && ch.missing) out += " [blocked by max_detach]";
        out += "\n";
        break;
      }
      case core::Op::kDetach:
        out += "  - detach " + ch.key + (ch.target_id.empty() ? "" : " (id " + ch.target_id + ")") +
               (ch.filtered ? "  [dropped by the job's filter]" : "") +
               (r.outcome == RunOutcome::kBlocked ? "  [blocked by max_detach]" : "") + "\n";
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
      if ((ch.op == core::Op::kDetach || ch.missing) && r.outcome == RunOutcome::kBlocked) c["blocked"] = true;
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
  j["action"] = ex.action;
  j["why"] = ex.why;
  if (ex.change && ex.change->op == core::Op::kUpdate) j["changed_fields"] = ex.change->changed_fields;
  return j;
}

}  // namespace dirsync::engine
