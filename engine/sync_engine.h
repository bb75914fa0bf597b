#pragma once
// The sync engine: one run of one job. The CLI calls it today; the daemon's
// scheduler and control socket will call the same `run`.
//
// A run streams: source pages → mapping → diff against the snapshot → batches
// to the target. After each batch the changes the target acknowledged are
// committed to the snapshot in one LMDB transaction; nothing else moves it.
// Detaches are computed only after a complete pull, and only if the detach
// guard allows them.
//
// Thread safety: a SyncEngine runs one job at a time; different jobs may run on
// different engines concurrently (they share the StateStore).
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "core/change.h"
#include "core/diff.h"
#include "core/mapping.h"
#include "core/source.h"
#include "core/target.h"
#include "state/state_store.h"

namespace dirsync::engine {

enum class Mode {
  kSync,    // push what changed
  kResync,  // push every current record again, in the way the target allows
};

struct RunOptions {
  Mode mode = Mode::kSync;
  bool dry_run = false;  // compute the plan; touch neither the target nor the snapshot
  // Dry runs only: follow this source key through the run (RunReport::explanation).
  std::string explain_key = {};
  // Polled between pages and before each batch: once it returns true the run
  // sends no further batch (the one in flight finishes and is committed), pulls
  // no further page, computes no detach, and ends kPartial. The daemon's
  // SIGTERM. Called from the thread that runs the job; null: never stop.
  std::function<bool()> stop_requested = {};
};

// One record that did not make it, with the reason.
struct Problem {
  std::string key;      // may be empty (a source row whose key could not be read)
  std::string origin;   // "users.csv:12", when known
  std::string stage;    // "source", "mapping", or the operation: "create", "update", "detach"
  std::string outcome;  // "invalid", "rejected", "retry", "unknown"
  std::string message;
};

struct Counts {
  std::size_t source_records = 0;  // records the source yielded
  std::size_t source_issues = 0;   // rows the source reported as bad
  std::size_t mapping_errors = 0;
  std::size_t unchanged = 0;
  std::size_t created = 0;
  std::size_t updated = 0;
  std::size_t detached = 0;
  std::size_t rejected = 0;
  std::size_t retry = 0;
  std::size_t unknown = 0;
  std::size_t detach_planned = 0;  // detaches computed after a complete pull
  std::size_t skipped = 0;         // changes the target cannot take (updates on a create-only target)
  std::size_t filtered = 0;        // records the job's filter dropped (they count as gone from the source)
  std::size_t detach_deferred = 0; // absent users not detached yet: absent from fewer than detach_after pulls
  nlohmann::json to_json() const;
};

enum class RunOutcome {
  kOk,       // everything planned was applied
  kPartial,  // the run finished, but some records were not applied or the pull was incomplete
  kBlocked,  // the detach guard blocked this run's detaches (creates/updates still went out)
  kFailed,   // the run stopped: source, auth, target or state error, or a guard
};
const char* to_string(RunOutcome outcome);

// One user followed through a dry run (`dirsync plan JOB --explain KEY`):
// everything an operator needs to answer "why was this user (not) synced?".
struct Explanation {
  std::string key;
  bool in_source = false;
  core::Record record;                        // in_source: as the source gave it
  std::vector<std::string> source_issues;     // problems the source reported for this key
  bool filter_kept = true;
  std::string filter_reason;                  // in_source: core::FilterDecision::reason
  nlohmann::json payload;                     // mapped payload (null when not mapped)
  std::string mapping_error;
  std::optional<core::SnapshotEntry> snapshot;  // what the target acknowledged last
  std::uint32_t absent_pulls = 0;  // detach_after > 1: complete pulls in a row it was absent from, this one included
  std::string action;  // "create", "update", "detach", "update (on_missing)", "nothing", "skipped"
  std::string why;     // the reason for `action`, in operator words
  std::optional<core::Change> change;  // the change the next sync would push
};

struct RunReport {
  std::string job;
  Mode mode = Mode::kSync;
  bool dry_run = false;
  RunOutcome outcome = RunOutcome::kOk;
  std::string error;          // kFailed: why
  bool busy = false;          // kFailed because another process runs the job
  bool pull_complete = false;
  std::string pull_note;      // why detaches were not computed, when they were not
  bool stopped = false;       // RunOptions::stop_requested ended the run early
  std::string blocked_note;   // kBlocked: the numbers
  std::size_t snapshot_before = 0;
  std::size_t snapshot_after = 0;
  Counts counts;
  std::vector<Problem> problems;
  std::vector<Problem> notes;      // applied changes the target said something about
  std::vector<core::Change> plan;  // dry runs: every change that would be pushed
  std::string pace;                // dry runs: how long the target's rate limits make the push, if they matter
  std::optional<Explanation> explanation;  // dry runs with RunOptions::explain_key
  std::chrono::milliseconds duration{0};
  std::uint64_t run_id = 0;
};

// One change a target answered, for the audit log: never payload values.
struct PushedChange {
  std::string key;
  core::Op op = core::Op::kCreate;
  std::vector<std::string> changed_fields;  // updates
  core::OutcomeKind outcome = core::OutcomeKind::kApplied;
  std::string message;    // the target's words, if any
  std::string target_id;  // the target's id for the user, when known
};
// Called on the run's thread after each batch is settled (applied ones committed).
using OutcomeFn = std::function<void(const PushedChange&)>;

// Progress notices for logs (and the daemon's STATUS=): free text, no secrets.
using ProgressFn = std::function<void(const std::string&)>;

class SyncEngine {
 public:
  SyncEngine(const config::JobConfig& job, state::StateStore& store, core::Source& source, core::Target& target,
             core::Mapping mapping);
  void on_progress(ProgressFn fn) { progress_ = std::move(fn); }
  void on_outcome(OutcomeFn fn) { outcome_ = std::move(fn); }

  // Runs the job once. Never throws for runtime failures: they are in the report.
  RunReport run(const RunOptions& options);

  // The detach limit for a snapshot of `snapshot_size` users (see config::DetachGuard).
  static std::size_t detach_limit(const config::DetachGuard& guard, std::size_t snapshot_size);

 private:
  class Batcher;
  RunReport run_unguarded(const RunOptions& options);
  bool stop_requested() const { return stop_requested_ && stop_requested_(); }
  // Fills report.explanation's action and why once the run is decided.
  void explain(RunReport& report, std::optional<core::Change> change) const;
  const config::JobConfig& job_;
  state::StateStore& store_;
  core::Source& source_;
  core::Target& target_;
  core::Mapping mapping_;
  ProgressFn progress_;
  OutcomeFn outcome_;
  std::function<bool()> stop_requested_;  // of the run in progress
};

}  // namespace dirsync::engine
