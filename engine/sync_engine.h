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
#include <map>
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
  kApply,   // push the changes of a saved plan (SyncEngine::apply_plan)
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
  std::size_t invalid = 0;         // mapped records with bad data for the target (core::validate_payload)
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
  std::size_t adopted = 0;         // creates the target answered with a user it already had (recorded, not created)
  std::size_t reconciled = 0;      // creates of earlier runs with an unknown outcome, settled at this run's start
  std::size_t pending = 0;         // creates not sent: an earlier create of the user still has an unknown outcome
  std::size_t quarantined = 0;     // records not sent: the target rejected them quarantine_after runs in a row
  std::size_t stale = 0;           // apply_plan: changes refused because their snapshot entry moved since the plan
  // Updates and detaches the job's protect filter withheld ("protected" in JSON):
  // these users are never changed, whatever the source says.
  std::size_t protected_users = 0;
  nlohmann::json to_json() const;
};

enum class RunOutcome {
  kOk,       // everything planned was applied
  kPartial,  // the run finished, but some records were not applied or the pull was incomplete
  kBlocked,  // a guard held changes back: max_detach this run's detaches, max_update its updates
            // (creates, and what the other guard allowed, still went out)
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
  std::string protected_by;  // the protect condition that holds the user's change back (empty: none did)
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
  std::string blocked_note;   // kBlocked: the numbers, one sentence per guard that blocked
  std::size_t snapshot_before = 0;
  std::size_t snapshot_after = 0;
  Counts counts;
  std::vector<Problem> problems;
  std::vector<Problem> notes;      // applied changes the target said something about
  std::vector<core::Change> plan;  // dry runs: every change that would be pushed
  // Dry runs: the changes of `plan` a guard holds back this run, by key:
  // "max_detach" or "max_update". A held change is not counted as applied.
  std::map<std::string, std::string> held;
  // Updates and detaches the protect filter withheld (outcome "protected"; the
  // message names the condition). Not problems: the run can still be ok.
  std::vector<Problem> protected_changes;
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

  // Pushes exactly `changes` (a plan an operator saved with `dirsync plan
  // --out` and approved), bypassing max_detach (the approval is the review).
  // Each update/detach is pushed only while the job's snapshot entry still has
  // the change's base_hash, and each create only while the key has no entry:
  // a change whose entry moved since the plan is refused (a problem with
  // outcome "stale"), the others still go. The job's protect filter as it is
  // now (it may have been added since the plan) withholds updates and detaches
  // of the users it matches, as in a run (RunReport::protected_changes). No
  // source is read. Like run, it settles the outbox first and never throws for
  // runtime failures.
  RunReport apply_plan(const std::vector<core::Change>& changes);

  // The limit of max_detach (and of max_update, same shape) for a snapshot of
  // `snapshot_size` users (see config::DetachGuard).
  static std::size_t detach_limit(const config::DetachGuard& guard, std::size_t snapshot_size);

 private:
  class Batcher;
  RunReport run_unguarded(const RunOptions& options);
  RunReport apply_unguarded(const std::vector<core::Change>& changes);
  // The job's lock, or null with the report failed (busy when another process runs the job).
  std::unique_ptr<state::JobLock> acquire_lock(RunReport& report) const;
  // Appends the run to the state's run history (not for dry runs).
  void record_run(RunReport& report, std::chrono::system_clock::time_point started) const;
  // Settles the outbox's pending intents before a run (see the README's
  // "Crash safety"): updates and detaches are re-derived by the diff; creates
  // are re-sent, looked up or kept pending per Target::create_recovery().
  // Dry runs only read which creates are pending. False: the state failed
  // (report.error says why).
  bool reconcile(RunReport& report, bool dry_run);
  bool stop_requested() const { return stop_requested_ && stop_requested_(); }
  // The protect filter: true when it holds `change` back (the user the
  // target holds as `entry` matches it); the change is then counted and listed.
  bool withhold_protected(RunReport& report, const core::Change& change, const core::SnapshotEntry& entry) const;
  // Full-set targets (core::Target::set_managed): every user the job manages —
  // the snapshot, and the creates still pending from an earlier attempt.
  std::vector<core::Member> managed_members() const;
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
  // Of the run in progress: creates whose earlier attempt is still unknown
  // (key → why), and the job's quarantine.
  std::map<std::string, std::string> pending_creates_;
  std::map<std::string, state::QuarantineEntry> quarantine_;
};

}  // namespace dirsync::engine
