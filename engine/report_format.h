#pragma once
// How run reports and plans are shown: a readable form for operators and a JSON
// form for machines. Both contain payloads and keys, never secrets (mapped
// payloads are built from source attributes only).
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sync_engine.h"

namespace dirsync::engine {

// The human summary printed after a run: counts, then problems (at most
// `max_problems`, with a line saying how many more).
std::string format_summary(const RunReport& report, std::size_t max_problems = 50);
// A dry run's changes, one line each, then the summary counts.
std::string format_plan(const RunReport& report, std::size_t max_changes = 1000);
nlohmann::json report_to_json(const RunReport& report, bool with_plan);
// `dirsync plan JOB --explain KEY`: the source record, the filter decision, the
// mapped payload, the snapshot entry and what the next sync would do and why.
// Empty / null when the report has no explanation.
std::string format_explanation(const RunReport& report);
nlohmann::json explanation_to_json(const RunReport& report);

// --- what a job's state holds for an operator (`dirsync status`, `dirsync release`)

// Read from the state store (LMDB): call it off the daemon's event loop.
struct JobAttention {
  // The job's last run that decided something (failed runs decide nothing),
  // when a guard blocked it: its changes wait for an operator's review.
  std::optional<state::RunRecord> blocked;
  // Users at or past the job's quarantine_after (0 when quarantine is off).
  std::size_t quarantined = 0;
  // Up to the sample size of them, the longest quarantined first.
  std::vector<std::pair<std::string, state::QuarantineEntry>> quarantine;
  // Creates in the outbox whose outcome is unknown (settled by the next run).
  std::size_t pending_creates = 0;
};
JobAttention read_attention(state::StateStore& store, const config::JobConfig& job, std::size_t sample = 10);
// Indented lines for `status` ("  BLOCKED: ...", the quarantine, pending
// creates); empty when nothing needs attention.
std::string format_attention(const JobAttention& attention, const std::string& job);
// Members for a job's status object: "blocked" (null or {note, run, at}),
// "quarantine" {count, users: [{key, rejections, message, since}]}, "pending_creates".
void attention_to_json(const JobAttention& attention, nlohmann::json& job_status);
// "2024-05-01 12:00:00" in local time; "-" for 0.
std::string format_local_time(std::int64_t unix_seconds);

// `dirsync release JOB KEY... | --all`: frees quarantined users so that the
// next run sends them again. Takes the job's lock (never races a run).
struct ReleaseResult {
  std::optional<core::Error> error;   // kBusy: the job is running; kState: the state failed
  std::vector<std::string> released;  // keys cleared
  std::vector<std::string> unknown;   // keys the job's quarantine does not hold (not an error)
};
ReleaseResult release_quarantine(state::StateStore& store, const std::string& job,
                                 const std::vector<std::string>& keys, bool all);
// "released 2 of job 'x': 1044, 1045; not quarantined: 9999\n".
std::string format_release(const ReleaseResult& result, const std::string& job);
nlohmann::json release_to_json(const ReleaseResult& result, const std::string& job);

}  // namespace dirsync::engine
