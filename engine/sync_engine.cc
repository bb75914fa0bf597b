#include "engine/sync_engine.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/diff.h"
#include "core/failpoint.h"
#include "core/validate.h"
#include "core/json_record.h"

namespace dirsync::engine {

using core::Change;
using core::Op;
using core::OutcomeKind;

nlohmann::json Counts::to_json() const {
  return {{"source_records", source_records}, {"source_issues", source_issues}, {"mapping_errors", mapping_errors},
          {"unchanged", unchanged},           {"created", created},             {"updated", updated},
          {"detached", detached},             {"rejected", rejected},           {"retry", retry},
          {"unknown", unknown},               {"detach_planned", detach_planned}, {"skipped", skipped},
          {"filtered", filtered},             {"detach_deferred", detach_deferred},
          {"adopted", adopted},               {"reconciled", reconciled},         {"pending", pending},
          {"quarantined", quarantined},       {"stale", stale},                 {"protected", protected_users},
          {"invalid", invalid}};
}

namespace {

// "max_detach: count 500, percent 10.0, floor 5", for blocked notes.
std::string guard_text(const char* name, const config::DetachGuard& guard) {
  return std::string(name) + ": count " + std::to_string(guard.max_count) + ", percent " +
         nlohmann::json(guard.max_percent).dump() + ", floor " + std::to_string(guard.floor);
}

void add_blocked_note(RunReport& report, const std::string& note) {
  report.blocked_note += (report.blocked_note.empty() ? "" : " ") + note;
}

// Changes a guard holds back: none is sent; a dry run lists them in its plan, marked.
void hold_in_plan(RunReport& report, std::vector<Change> changes, const char* guard) {
  if (!report.dry_run) return;
  for (auto& change : changes) {
    report.held[change.key] = guard;
    report.plan.push_back(std::move(change));
  }
}

}  // namespace

const char* to_string(RunOutcome outcome) {
  switch (outcome) {
    case RunOutcome::kOk: return "ok";
    case RunOutcome::kPartial: return "partial";
    case RunOutcome::kBlocked: return "blocked";
    case RunOutcome::kFailed: return "failed";
  }
  return "?";
}

// Collects changes per operation and sends a batch when it is full. After each
// batch, the acknowledged changes go to the snapshot in one transaction.
class SyncEngine::Batcher {
 public:
  Batcher(SyncEngine& engine, RunReport& report, bool dry_run)
      : engine_(engine), report_(report), dry_run_(dry_run),
        batch_size_(std::max<std::size_t>(1, engine.target_.batch_size())) {}

  void add(Change change) {
    if (failed_) return;
    if (change.op == Op::kCreate) {
      if (const auto it = engine_.pending_creates_.find(change.key); it != engine_.pending_creates_.end()) {
        // Sending it again could create the user twice: it waits until the
        // earlier attempt is settled (the next run's reconciliation).
        ++report_.counts.pending;
        problem(change, "pending", "an earlier create of this user has an unknown outcome (" + it->second +
                                       "); not sent again until it is settled");
        return;
      }
    }
    if (change.op != Op::kDetach && engine_.job_.quarantine_after > 0) {
      const auto it = engine_.quarantine_.find(change.key);
      if (it != engine_.quarantine_.end() && it->second.rejections >= engine_.job_.quarantine_after &&
          it->second.hash == change.hash) {
        ++report_.counts.quarantined;
        problem(change, "quarantined",
                "rejected " + std::to_string(it->second.rejections) + " times in a row with this payload; last "
                "answer: " + it->second.message + ". Not sent until the source record changes or 'dirsync release " +
                    engine_.job_.name + " " + change.key + "'");
        return;
      }
    }
    const auto& caps = engine_.target_.capabilities();
    if (change.op == Op::kUpdate && !caps.update) {
      if (!change.resync) {
        // The snapshot keeps the old payload: the target really is out of date.
        ++report_.counts.skipped;
        return;
      }
      // A resync of a create-only target re-sends the creates; such APIs skip
      // (or report as existing) the users they already have.
      change.op = Op::kCreate;
    }
    if (holding_ && change.op == Op::kUpdate && !change.missing && !change.resync) {
      // max_update: a broken mapping changes many users at once, so no update
      // goes out before the pull has ended and their number is known. Over the
      // limit none will be sent: only a dry run (whose plan lists them) keeps
      // more than `update_limit_`.
      if (++held_count_ <= update_limit_ || dry_run_) held_.push_back(std::move(change));
      else held_.clear();
      return;
    }
    enqueue(std::move(change));
  }

  // Sends what is queued. For a full-set target, call it once, after detaches.
  void flush_all() {
    for (auto& queue : queues_) {
      if (!queue.empty()) flush(queue);
    }
  }

  bool failed() const { return failed_; }

  // max_update: from now on add() holds updates back (not resyncs, not
  // on_missing updates, which max_detach guards) until release_updates().
  void hold_updates(std::size_t limit) {
    holding_ = true;
    update_limit_ = limit;
  }
  // Updates held so far (also those no longer kept in memory).
  std::size_t held_updates() const { return held_count_; }
  // Ends the hold. `send`: the held updates go on their way; otherwise none is
  // sent and a dry run gets them back for its plan.
  std::vector<Change> release_updates(bool send) {
    holding_ = false;
    std::vector<Change> held;
    held.swap(held_);
    if (!send) return held;
    for (auto& change : held) enqueue(std::move(change));
    return {};
  }

  // A full-set target: the updates queued for its one request. Each replaces
  // a member of the set (Healvi: the old user_id leaves), so max_detach counts
  // them as detaches. Resyncs re-send a member and replace nothing.
  std::size_t queued_replacements() const {
    return static_cast<std::size_t>(std::count_if(queues_[0].begin(), queues_[0].end(), replaces));
  }
  std::vector<Change> withdraw_replacements() {
    std::vector<Change> out;
    auto& queue = queues_[0];
    auto keep = std::stable_partition(queue.begin(), queue.end(), [](const Change& c) { return !replaces(c); });
    out.assign(std::make_move_iterator(keep), std::make_move_iterator(queue.end()));
    queue.erase(keep, queue.end());
    return out;
  }

 private:
  static bool replaces(const Change& c) { return c.op == Op::kUpdate && !c.resync && !c.missing; }

  // Queues a change for its batch (a full-set target: for the run's one request).
  void enqueue(Change change) {
    if (engine_.target_.capabilities().full_set) {
      // Everything goes in one request at the end of the run.
      queues_[0].push_back(std::move(change));
      return;
    }
    auto& queue = queues_[static_cast<int>(change.op)];
    queue.push_back(std::move(change));
    if (queue.size() >= batch_size_) flush(queue);
  }

  bool holding_ = false;
  std::size_t update_limit_ = 0;
  std::size_t held_count_ = 0;
  std::vector<Change> held_;

  void flush(std::vector<Change>& queue) {
    std::vector<Change> batch;
    batch.swap(queue);
    if (failed_) return;
    if (dry_run_) {
      for (auto& change : batch) count_applied(change.op);
      report_.plan.insert(report_.plan.end(), std::make_move_iterator(batch.begin()),
                          std::make_move_iterator(batch.end()));
      return;
    }
    if (engine_.stop_requested()) {
      // Shutting down: this batch is not sent; its changes come back next run.
      report_.stopped = true;
      failed_ = true;
      return;
    }
    // The intent goes to the outbox before anything is sent: whatever happens
    // from here on (a kill, a lost answer, a full disk), the next run knows
    // these changes may have reached the target.
    core::failpoint("before_intent");
    std::vector<state::IntentItem> items;
    items.reserve(batch.size());
    for (const auto& c : batch) {
      items.push_back({c.key, c.op, c.hash, c.target_id, c.op == Op::kCreate ? c.payload : nlohmann::json()});
    }
    auto intent = engine_.store_.add_intent(engine_.job_.name, items);
    if (!intent) {
      fail("state error: the batch was not sent because the outbox could not record it: " + intent.error().message);
      return;
    }
    core::failpoint("after_intent");
    // A full-set target sends the whole set: it must know every user the job
    // manages, not only those its (possibly partial) listing shows.
    if (engine_.target_.capabilities().full_set) engine_.target_.set_managed(engine_.managed_members());
    auto result = engine_.target_.apply(batch);
    core::failpoint("after_send");
    state::Settlement settlement;
    settlement.intent_id = intent.value();
    if (!result || result.value().size() != batch.size()) {
      // Nothing of the batch is recorded. Creates the target can be asked
      // about stay pending, in case the target took some after all.
      keep_unsettled_creates(batch, settlement, "the batch failed");
      (void)engine_.store_.settle(engine_.job_.name, settlement);
      if (!result) {
        fail(std::string(core::to_string(result.error().kind)) + ": " + result.error().message);
      } else {
        // A broken connector must never move the snapshot on a guess.
        fail("target '" + engine_.job_.target + "' returned " + std::to_string(result.value().size()) +
             " outcomes for " + std::to_string(batch.size()) + " changes; nothing of that batch was recorded");
      }
      return;
    }
    const auto& outcomes = result.value();
    auto& writes = settlement.writes;
    // What the audit hook is told once the batch is settled (payloads move into the snapshot below).
    std::vector<PushedChange> pushed;
    if (engine_.outcome_) pushed.reserve(batch.size());
    const std::int64_t now = unix_now();
    const bool resend_is_safe = engine_.target_.create_recovery() == core::CreateRecovery::kResend;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      Change& change = batch[i];
      const core::Outcome& outcome = outcomes[i];
      if (engine_.outcome_) {
        pushed.push_back({change.key, change.op, change.changed_fields, outcome.kind, outcome.message,
                          outcome.target_id.empty() ? change.target_id : outcome.target_id});
      }
      // Quarantine: consecutive rejections of the same payload; anything else ends the streak.
      const auto quarantined = engine_.quarantine_.find(change.key);
      if (outcome.kind == OutcomeKind::kRejected && change.op != Op::kDetach) {
        state::QuarantineEntry entry;
        if (quarantined != engine_.quarantine_.end() && quarantined->second.hash == change.hash) {
          entry = quarantined->second;
        } else {
          entry.hash = change.hash;
          entry.first_at = now;
        }
        ++entry.rejections;
        entry.message = outcome.message;
        entry.last_at = now;
        settlement.quarantine.emplace_back(change.key, entry);
        engine_.quarantine_[change.key] = std::move(entry);
      } else if (outcome.kind == OutcomeKind::kApplied && quarantined != engine_.quarantine_.end()) {
        settlement.quarantine.emplace_back(change.key, std::nullopt);
        engine_.quarantine_.erase(quarantined);
      }
      switch (outcome.kind) {
        case OutcomeKind::kApplied: {
          if (!outcome.message.empty()) {
            report_.notes.push_back({change.key, {}, core::to_string(change.op), "applied", outcome.message});
          }
          if (change.resync && change.op == Op::kCreate && !change.previous.is_null() && outcome.target_id.empty()) {
            // A resync re-sent an existing user as a create and the target said
            // it already has one: it confirmed the user, not our payload. The
            // snapshot keeps what the target last really took.
            break;
          }
          state::SnapshotWrite write{change.key, std::nullopt};
          const bool adopted = change.op == Op::kCreate && !outcome.current.is_null();
          if (change.op != Op::kDetach) {
            core::SnapshotEntry entry;
            // An empty id keeps what the snapshot had (e.g. a user the target skipped as existing).
            entry.target_id = outcome.target_id.empty() ? change.target_id : outcome.target_id;
            if (adopted) {
              // The target's user as it is: the next run updates what differs.
              entry.hash = core::canonical_hash(outcome.current);
              entry.payload = outcome.current;
            } else {
              entry.hash = change.hash;
              entry.payload = std::move(change.payload);
            }
            write.entry = std::move(entry);
          }
          writes.push_back(std::move(write));
          pending_applied_.push_back(adopted ? kAdopted : static_cast<int>(change.op));
          break;
        }
        case OutcomeKind::kRejected:
          ++report_.counts.rejected;
          problem(change, "rejected", outcome.message);
          break;
        case OutcomeKind::kRetry:
          ++report_.counts.retry;
          problem(change, "retry", outcome.message);
          break;
        case OutcomeKind::kUnknown:
          ++report_.counts.unknown;
          problem(change, "unknown", outcome.message);
          if (change.op == Op::kCreate && !resend_is_safe) {
            settlement.still_pending.push_back(std::move(items[i]));
            settlement.pending_note = outcome.message;
          }
          break;
      }
    }
    if (!writes.empty()) {
      same_failure_streak_ = 0;
    } else if (trip_breaker(outcomes)) {
      (void)engine_.store_.settle(engine_.job_.name, settlement);
      return;
    }
    // One transaction: the snapshot moves, the intent is cleared (or keeps
    // the creates still unknown), the quarantine follows the outcomes.
    if (auto committed = engine_.store_.settle(engine_.job_.name, settlement); !committed.ok()) {
      pending_applied_.clear();
      fail("state error: the target answered " + std::to_string(batch.size()) +
           " changes but the state could not record the answers (the next run settles them from the outbox): " +
           committed.error().message);
      return;
    }
    core::failpoint("after_commit");
    for (int op : pending_applied_) {
      if (op == kAdopted) ++report_.counts.adopted;
      else count_applied(static_cast<Op>(op));
    }
    pending_applied_.clear();
    for (const auto& p : pushed) engine_.outcome_(p);
    if (engine_.progress_) {
      engine_.progress_("pushed " + std::to_string(batch.size()) + " " + core::to_string(batch.front().op) +
                        (batch.size() == 1 ? "" : "s") + " (created " + std::to_string(report_.counts.created) +
                        ", updated " + std::to_string(report_.counts.updated) + ", detached " +
                        std::to_string(report_.counts.detached) + ")");
    }
  }

  // The job-level circuit breaker: when request after request fails the same
  // way (a wrong base_url answering 404, a mapping the API refuses with 400),
  // stop with one clear error rather than rejecting every record one by one.
  bool trip_breaker(const std::vector<core::Outcome>& outcomes) {
    const std::string& first = outcomes.front().message;
    const bool uniform = std::all_of(outcomes.begin(), outcomes.end(), [&](const core::Outcome& o) {
      return o.kind != OutcomeKind::kApplied && o.message == first;
    });
    if (!uniform) {
      same_failure_streak_ = 0;
      return false;
    }
    same_failure_streak_ = first == streak_message_ ? same_failure_streak_ + 1 : 1;
    streak_message_ = first;
    if (same_failure_streak_ < kBreakerRequests) return false;
    fail("stopped after " + std::to_string(kBreakerRequests) + " requests in a row to target '" +
         engine_.job_.target + "' failed the same way: " + first + " (check the target's base_url, credentials " +
         "and the job's mapping)");
    return true;
  }

  // Failed batch: its creates stay in the outbox unless re-sending them is harmless.
  void keep_unsettled_creates(const std::vector<Change>& batch, state::Settlement& settlement, const char* why) {
    if (engine_.target_.create_recovery() == core::CreateRecovery::kResend) return;
    for (const auto& c : batch) {
      if (c.op == Op::kCreate) settlement.still_pending.push_back({c.key, c.op, c.hash, c.target_id, c.payload});
    }
    settlement.pending_note = why;
  }

  static std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  void count_applied(Op op) {
    switch (op) {
      case Op::kCreate: ++report_.counts.created; break;
      case Op::kUpdate: ++report_.counts.updated; break;
      case Op::kDetach: ++report_.counts.detached; break;
    }
  }

  void problem(const Change& change, const char* outcome, const std::string& message) {
    report_.problems.push_back({change.key, {}, core::to_string(change.op), outcome, message});
  }

  void fail(std::string why) {
    failed_ = true;
    report_.outcome = RunOutcome::kFailed;
    if (report_.error.empty()) report_.error = std::move(why);
    for (auto& queue : queues_) queue.clear();
  }

  SyncEngine& engine_;
  RunReport& report_;
  const bool dry_run_;
  const std::size_t batch_size_;
  std::vector<Change> queues_[3];
  static constexpr int kAdopted = 100;  // in pending_applied_: an applied create that adopted an existing user
  std::vector<int> pending_applied_;   // Op values, or kAdopted
  bool failed_ = false;
  static constexpr int kBreakerRequests = 3;
  int same_failure_streak_ = 0;
  std::string streak_message_;
};

SyncEngine::SyncEngine(const config::JobConfig& job, state::StateStore& store, core::Source& source,
                       core::Target& target, core::Mapping mapping)
    : job_(job), store_(store), source_(source), target_(target), mapping_(std::move(mapping)) {}

std::size_t SyncEngine::detach_limit(const config::DetachGuard& guard, std::size_t snapshot_size) {
  const auto by_percent =
      static_cast<std::size_t>(std::floor(guard.max_percent * static_cast<double>(snapshot_size) / 100.0));
  return std::max(guard.floor, std::min(guard.max_count, by_percent));
}

RunReport SyncEngine::run(const RunOptions& options) {
  // Reads from the state store throw StateError (they have no error channel);
  // a run that meets one fails as a whole, with the snapshot as last committed.
  try {
    return run_unguarded(options);
  } catch (const state::StateError& e) {
    RunReport report;
    report.job = job_.name;
    report.mode = options.mode;
    report.dry_run = options.dry_run;
    report.outcome = RunOutcome::kFailed;
    report.error = std::string("state error: ") + e.what();
    return report;
  }
}

RunReport SyncEngine::run_unguarded(const RunOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const auto started_wall = std::chrono::system_clock::now();
  RunReport report;
  report.job = job_.name;
  report.mode = options.mode;
  report.dry_run = options.dry_run;
  auto finish = [&] {
    report.duration =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  };

  // A dry run reads a consistent view and writes nothing, so it needs no lock.
  std::unique_ptr<state::JobLock> lock;
  if (!options.dry_run) {
    lock = acquire_lock(report);
    if (!lock) {
      finish();
      return report;
    }
  }

  quarantine_ = store_.quarantine(job_.name);
  if (!reconcile(report, options.dry_run)) {
    report.outcome = RunOutcome::kFailed;
    finish();
    return report;
  }
  report.snapshot_before = store_.snapshot_size(job_.name);
  auto reader = store_.reader(job_.name);
  Batcher batcher(*this, report, options.dry_run);
  if (job_.max_update.enabled) batcher.hold_updates(detach_limit(job_.max_update, report.snapshot_before));
  core::SeenKeys seen;
  core::SeenKeys filtered;  // kept by the source, dropped by the job's filter: detached "because of the filter"
  const bool explaining = options.dry_run && !options.explain_key.empty();
  if (explaining) {
    report.explanation.emplace();
    report.explanation->key = options.explain_key;
  }
  std::optional<Change> explained_change;  // what the diff made of the explained key
  bool unreadable_key = false;
  bool reached_end = false;
  const bool resync = options.mode == Mode::kResync;

  stop_requested_ = options.stop_requested;
  auto pull = source_.start();
  if (!pull) {
    report.outcome = RunOutcome::kFailed;
    report.error = "source '" + job_.source + "' failed: " + pull.error().message;
  } else {
    while (!batcher.failed()) {
      if (stop_requested()) {
        report.stopped = true;
        break;
      }
      auto page = pull.value()->next();
      if (!page) {
        report.outcome = RunOutcome::kFailed;
        report.error = "source '" + job_.source + "' failed mid-pull: " + page.error().message;
        break;
      }
      for (auto& issue : page->issues) {
        ++report.counts.source_issues;
        if (explaining && issue.key == options.explain_key) {
          report.explanation->source_issues.push_back(issue.origin + ": " + issue.message);
        }
        if (issue.key.empty()) unreadable_key = true;
        else seen.add(issue.key);  // a bad row protects its key from detach
        report.problems.push_back({issue.key, issue.origin, "source", "invalid", issue.message});
      }
      for (auto& record : page->records) {
        ++report.counts.source_records;
        if (auto bad = core::validate_key(record.key)) {
          // Reported with a printable key; the raw key still protects its user from detach.
          ++report.counts.source_issues;
          seen.add(record.key);
          report.problems.push_back({core::printable(record.key), record.origin, "source", "invalid", *bad});
          continue;
        }
        Explanation* ex = explaining && record.key == options.explain_key ? &*report.explanation : nullptr;
        if (ex) {
          ex->in_source = true;
          ex->record = record;
        }
        if (!job_.filter.empty()) {
          const auto decision = job_.filter.decide(record);
          if (ex) {
            ex->filter_kept = decision.keep;
            ex->filter_reason = decision.reason;
          }
          if (!decision.decided) {
            // A regex of the filter gave up on this record: neither kept nor
            // dropped. Reported, not sent, and (seen) protected from detach.
            ++report.counts.invalid;
            seen.add(record.key);
            report.problems.push_back({record.key, record.origin, "filter", "invalid", decision.reason});
            if (ex) ex->mapping_error = decision.reason;
            continue;
          }
          if (!decision.keep) {
            // Not seen: to this job the user is gone from the source.
            ++report.counts.filtered;
            filtered.add(record.key);
            continue;
          }
        } else if (ex) {
          ex->filter_reason = "no filter";
        }
        seen.add(record.key);
        auto payload = mapping_.apply(record);
        if (!payload) {
          ++report.counts.mapping_errors;
          report.problems.push_back({record.key, record.origin, "mapping", "invalid", payload.error().message});
          if (ex) ex->mapping_error = payload.error().message;
          continue;
        }
        if (auto bad = core::validate_payload(payload.value(), target_.fields()); !bad.empty()) {
          // Bad source data (an invalid email, an over-long or garbled value) stops at
          // this record: reported, not sent, and (seen) protected from detach.
          ++report.counts.invalid;
          std::string why;
          for (const auto& b : bad) why += (why.empty() ? "" : "; ") + b;
          report.problems.push_back({record.key, record.origin, "validation", "invalid", why});
          if (ex) ex->mapping_error = why;
          continue;
        }
        if (ex) ex->payload = payload.value();
        const auto entry = reader->find(record.key);
        auto change = core::diff_record(record.key, std::move(payload).value(), entry, resync);
        if (!change) {
          ++report.counts.unchanged;
          continue;
        }
        if (entry && withhold_protected(report, *change, *entry)) continue;
        if (ex) explained_change = *change;
        batcher.add(std::move(*change));
      }
      if (page->last) {
        reached_end = true;
        break;
      }
      reader->refresh();
      if (progress_) progress_("pulled " + std::to_string(report.counts.source_records) + " records");
    }
  }
  if (job_.max_update.enabled) {
    // The pull has ended: the run's updates are all counted.
    const std::size_t updates = batcher.held_updates();
    const std::size_t limit = detach_limit(job_.max_update, report.snapshot_before);
    const bool block = updates > limit;
    auto held = batcher.release_updates(!block);
    if (block) {
      if (report.outcome != RunOutcome::kFailed) report.outcome = RunOutcome::kBlocked;
      add_blocked_note(report, std::to_string(updates) + " updates exceed the limit of " + std::to_string(limit) +
                                   " for " + std::to_string(report.snapshot_before) + " users (" +
                                   guard_text("max_update", job_.max_update) +
                                   "); no update was applied (creates still went out). Review them with 'dirsync "
                                   "plan " + job_.name + "', then raise max_update for the job if they are intended.");
      hold_in_plan(report, std::move(held), "max_update");
    }
  }
  const bool full_set = target_.capabilities().full_set;
  if (!full_set) batcher.flush_all();
  seen.seal();
  filtered.seal();

  report.pull_complete = reached_end && !unreadable_key;
  if (report.stopped) {
    report.pull_note = "the run was stopped before its end (shutdown): unsent changes come back next run, and no "
                       "detaches were computed";
  } else if (!reached_end) {
    report.pull_note = "the source pull did not complete: no detaches computed";
  } else if (unreadable_key) {
    report.pull_note = "some source rows had no readable key: the pull counts as incomplete and no detaches were "
                       "computed";
  }

  // Zero records over a populated snapshot is a broken source, not everyone leaving.
  if (reached_end && seen.size() == 0 && report.snapshot_before > 0 && report.outcome != RunOutcome::kFailed) {
    report.outcome = RunOutcome::kFailed;
    report.error = "source '" + job_.source + "' returned no records" +
                   (report.counts.filtered ? " the job's filter keeps (it dropped " +
                                                 std::to_string(report.counts.filtered) + ")"
                                           : std::string()) +
                   " while the snapshot holds " + std::to_string(report.snapshot_before) +
                   " users; treating that as a failed pull (nothing was detached)";
  }

  const bool can_detach = report.pull_complete && !batcher.failed() && report.outcome != RunOutcome::kFailed &&
                          job_.on_missing != config::OnMissing::kIgnore;
  // Users gone from a complete pull: detached, or (on_missing: update) given
  // the configured fields. Both count against max_detach: a mass suspension
  // is as much an accident as a mass deletion.
  std::vector<Change> detaches;
  if (can_detach) {
    // detach_after > 1: a user must be absent from that many complete pulls in
    // a row; the counts live in the state (only for users absent right now).
    const bool counting = job_.detach_after > 1;
    std::map<std::string, std::uint32_t> absent_before, absent_now;
    if (counting) absent_before = store_.absences(job_.name);
    reader->refresh();
    reader->for_each([&](std::string_view key, const core::SnapshotEntry& entry) {
      if (seen.contains(key)) return true;
      if (counting) {
        const auto it = absent_before.find(std::string(key));
        const std::uint32_t times = (it == absent_before.end() ? 0 : it->second) + 1;
        absent_now.emplace(std::string(key), times);
        if (explaining && key == options.explain_key) report.explanation->absent_pulls = times;
        if (times < job_.detach_after) {
          ++report.counts.detach_deferred;
          return true;
        }
      }
      Change change;
      change.key = std::string(key);
      change.target_id = entry.target_id;
      change.previous = entry.payload;
      change.base_hash = entry.hash;
      change.filtered = filtered.contains(key);
      if (job_.on_missing == config::OnMissing::kUpdate) {
        nlohmann::json payload = entry.payload.is_object() ? entry.payload : nlohmann::json::object();
        for (auto it = job_.missing_update.begin(); it != job_.missing_update.end(); ++it) payload[it.key()] = it.value();
        if (payload == entry.payload) return true;  // already marked on an earlier run
        change.op = Op::kUpdate;
        change.missing = true;
        change.changed_fields = core::changed_fields(entry.payload, payload);
        change.hash = core::canonical_hash(payload);
        change.payload = std::move(payload);
      } else {
        change.op = Op::kDetach;
        change.hash = entry.hash;
      }
      // Protected users are neither detached nor counted against max_detach.
      if (withhold_protected(report, change, entry)) return true;
      detaches.push_back(std::move(change));
      return true;
    });
    if (counting && !options.dry_run) {
      if (auto st = store_.set_absences(job_.name, absent_now); !st.ok()) {
        // Without the counts a later run could detach too early: detach nothing now.
        report.outcome = RunOutcome::kFailed;
        report.error = st.error().message;
        detaches.clear();
      }
    }
    report.counts.detach_planned = detaches.size();
    if (explaining) {
      for (const auto& c : detaches) {
        if (c.key == options.explain_key) explained_change = c;
      }
    }
  } else if (job_.on_missing == config::OnMissing::kIgnore && report.pull_note.empty()) {
    report.pull_note = "on_missing: ignore — users gone from the source are left in the target";
  }
  // max_detach. A full-set target also loses a member for every update it is
  // sent (Healvi: the old user_id), complete pull or not: those count too.
  const std::size_t replaced = full_set ? batcher.queued_replacements() : 0;
  const std::size_t limit = detach_limit(job_.max_detach, report.snapshot_before);
  if (job_.max_detach.enabled && detaches.size() + replaced > limit) {
    if (report.outcome != RunOutcome::kFailed) report.outcome = RunOutcome::kBlocked;
    add_blocked_note(
        report, std::to_string(detaches.size() + replaced) + " detaches" +
                    (replaced ? " (" + std::to_string(replaced) + " of them updates, each replacing a user of the "
                                "full set)"
                              : std::string()) +
                    " exceed the limit of " + std::to_string(limit) + " for " +
                    std::to_string(report.snapshot_before) + " users (" + guard_text("max_detach", job_.max_detach) +
                    "); no detach was applied" + (replaced ? " and those updates were held back" : "") +
                    ". Review them with 'dirsync plan " + job_.name +
                    "', then raise max_detach for the job if they are intended.");
    hold_in_plan(report, std::move(detaches), "max_detach");
    if (replaced) hold_in_plan(report, batcher.withdraw_replacements(), "max_detach");
  } else {
    for (auto& change : detaches) batcher.add(std::move(change));
  }
  // Non-full-set targets only have detaches left here; a full-set target gets
  // its one request now. A batcher that failed has dropped its queues.
  batcher.flush_all();
  if (report.counts.skipped) {
    report.notes.push_back({"", "", "update", "skipped",
                            std::to_string(report.counts.skipped) + " changed users were not pushed: target '" +
                                job_.target + "' cannot update users (resync re-sends them as creates)"});
  }
  if (explaining) {
    report.explanation->snapshot = reader->find(options.explain_key);
    explain(report, std::move(explained_change));
  }
  reader.reset();

  if (report.outcome == RunOutcome::kOk &&
      (!report.pull_complete || report.counts.rejected || report.counts.retry || report.counts.unknown ||
       report.counts.source_issues || report.counts.mapping_errors || report.counts.invalid || report.counts.pending ||
       report.counts.quarantined)) {
    report.outcome = RunOutcome::kPartial;
  }
  report.snapshot_after = store_.snapshot_size(job_.name);
  if (options.dry_run) {
    report.pace = target_.pace(report.counts.created, report.counts.updated, report.counts.detached);
  }
  finish();

  if (!options.dry_run) record_run(report, started_wall);
  return report;
}

std::unique_ptr<state::JobLock> SyncEngine::acquire_lock(RunReport& report) const {
  auto acquired = state::JobLock::acquire(store_.dir(), job_.name);
  if (acquired) return std::move(acquired).value();
  report.outcome = RunOutcome::kFailed;
  report.busy = acquired.error().kind == core::ErrorKind::kBusy;
  report.error = acquired.error().message;
  return nullptr;
}

void SyncEngine::record_run(RunReport& report, std::chrono::system_clock::time_point started) const {
  auto seconds = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  };
  state::RunRecord record;
  record.started_at = seconds(started);
  record.finished_at = seconds(std::chrono::system_clock::now());
  record.mode = report.mode == Mode::kResync ? "resync" : report.mode == Mode::kApply ? "apply" : "sync";
  record.outcome = to_string(report.outcome);
  record.message = !report.error.empty() ? report.error : !report.blocked_note.empty() ? report.blocked_note
                                                                                      : report.pull_note;
  record.counts = report.counts.to_json();
  auto id = store_.record_run(job_.name, std::move(record));
  if (id) report.run_id = id.value();
}

RunReport SyncEngine::apply_plan(const std::vector<Change>& changes) {
  try {
    return apply_unguarded(changes);
  } catch (const state::StateError& e) {
    RunReport report;
    report.job = job_.name;
    report.mode = Mode::kApply;
    report.outcome = RunOutcome::kFailed;
    report.error = std::string("state error: ") + e.what();
    return report;
  }
}

RunReport SyncEngine::apply_unguarded(const std::vector<Change>& changes) {
  const auto started = std::chrono::steady_clock::now();
  const auto started_wall = std::chrono::system_clock::now();
  RunReport report;
  report.job = job_.name;
  report.mode = Mode::kApply;
  auto finish = [&] {
    report.duration =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  };
  const auto lock = acquire_lock(report);
  if (!lock) {
    finish();
    return report;
  }
  quarantine_ = store_.quarantine(job_.name);
  if (!reconcile(report, false)) {
    report.outcome = RunOutcome::kFailed;
    finish();
    return report;
  }
  report.snapshot_before = store_.snapshot_size(job_.name);
  report.pull_complete = true;  // no pull: the plan is the whole input
  stop_requested_ = nullptr;
  auto reader = store_.reader(job_.name);
  Batcher batcher(*this, report, false);
  const bool full_set = target_.capabilities().full_set;
  // Detaches go last, as in a run (a full-set target takes everything at once anyway).
  for (const bool detaches : {false, true}) {
    for (const auto& change : changes) {
      if ((change.op == Op::kDetach || change.missing) != detaches) continue;
      const auto entry = reader->find(change.key);
      const bool moved = change.op == Op::kCreate ? entry.has_value() : !entry || entry->hash != change.base_hash;
      if (moved) {
        ++report.counts.stale;
        report.problems.push_back({change.key, {}, core::to_string(change.op), "stale",
                                   entry ? "the snapshot entry changed since the plan was made: not applied "
                                           "(make a new plan)"
                                         : "the snapshot no longer has this user: not applied (make a new plan)"});
        continue;
      }
      // A protect filter added since the plan was saved holds its users back too.
      if (change.op != Op::kCreate && withhold_protected(report, change, *entry)) continue;
      if (change.op == Op::kDetach) ++report.counts.detach_planned;
      batcher.add(change);
    }
    if (!full_set) batcher.flush_all();
  }
  batcher.flush_all();
  reader.reset();
  if (report.outcome == RunOutcome::kOk &&
      (report.counts.rejected || report.counts.retry || report.counts.unknown || report.counts.stale ||
       report.counts.pending || report.counts.quarantined)) {
    report.outcome = RunOutcome::kPartial;
  }
  report.snapshot_after = store_.snapshot_size(job_.name);
  finish();
  record_run(report, started_wall);
  return report;
}

bool SyncEngine::reconcile(RunReport& report, bool dry_run) {
  pending_creates_.clear();
  auto intents = store_.intents(job_.name);
  if (intents.empty()) return true;
  auto remember_pending = [&](const std::vector<state::Intent>& list) {
    pending_creates_.clear();
    for (const auto& intent : list) {
      for (const auto& item : intent.items) {
        if (item.op == Op::kCreate) {
          pending_creates_[item.key] = "attempt " + std::to_string(intent.id) +
                                       (intent.note.empty() ? std::string(", interrupted") : ": " + intent.note);
        }
      }
    }
  };
  if (dry_run) {
    // A plan settles nothing; it shows which creates wait for the next run's reconciliation.
    remember_pending(intents);
    return true;
  }
  core::failpoint("before_reconcile");
  const auto recovery = target_.create_recovery();
  for (const auto& intent : intents) {
    state::Settlement settlement;
    settlement.intent_id = intent.id;
    // Updates and detaches need nothing: the snapshot did not move for them,
    // so this run's diff derives them again, and both are idempotent.
    std::vector<Change> creates;
    std::vector<const state::IntentItem*> items;
    for (const auto& item : intent.items) {
      if (item.op != Op::kCreate || store_.get(job_.name, item.key)) continue;
      Change c;
      c.op = Op::kCreate;
      c.key = item.key;
      c.payload = item.payload;
      c.hash = item.hash;
      creates.push_back(std::move(c));
      items.push_back(&item);
    }
    if (!creates.empty() && recovery == core::CreateRecovery::kLookup) {
      auto found = target_.lookup(creates);
      if (!found || found.value().size() != creates.size()) {
        const std::string why = !found ? found.error().message : "the target's lookup answered the wrong count";
        for (const auto* item : items) settlement.still_pending.push_back(*item);
        settlement.pending_note = "looking the users up failed: " + why;
        report.notes.push_back({"", "", "create", "pending",
                                std::to_string(creates.size()) + " creates of attempt " + std::to_string(intent.id) +
                                    " have an unknown outcome and looking them up failed (" + why +
                                    "); they are not sent again until a later run settles them"});
      } else {
        for (std::size_t i = 0; i < creates.size(); ++i) {
          ++report.counts.reconciled;
          const auto& match = found.value()[i];
          if (!match) continue;  // the target never got it: this run's diff creates it
          core::SnapshotEntry entry;
          entry.target_id = match->target_id;
          entry.payload = match->current.is_null() ? creates[i].payload : match->current;
          entry.hash = core::canonical_hash(entry.payload);
          settlement.writes.push_back({creates[i].key, std::move(entry)});
          report.notes.push_back({creates[i].key, "", "create", "reconciled",
                                  "an earlier create (attempt " + std::to_string(intent.id) +
                                      ") had an unknown outcome; the target has the user (id " + match->target_id +
                                      "): recorded, not created again"});
        }
      }
    } else if (!creates.empty() && recovery == core::CreateRecovery::kReport) {
      for (const auto* item : items) settlement.still_pending.push_back(*item);
      settlement.pending_note = intent.note.empty() ? "interrupted" : intent.note;
    } else {
      // kResend: this run's diff sends them again, which the target answers harmlessly.
      report.counts.reconciled += creates.size();
    }
    if (auto st = store_.settle(job_.name, settlement); !st.ok()) {
      report.error = "state error: cannot settle the outbox: " + st.error().message;
      return false;
    }
  }
  core::failpoint("after_reconcile");
  remember_pending(store_.intents(job_.name));
  return true;
}

std::vector<core::Member> SyncEngine::managed_members() const {
  std::vector<core::Member> members;
  store_.reader(job_.name)->for_each([&](std::string_view key, const core::SnapshotEntry& entry) {
    members.push_back({std::string(key), entry.target_id, entry.payload});
    return true;
  });
  if (pending_creates_.empty()) return members;
  // Their earlier attempt may have added them: they stay, as that attempt sent them.
  for (const auto& intent : store_.intents(job_.name)) {
    for (const auto& item : intent.items) {
      if (item.op == Op::kCreate && pending_creates_.count(item.key)) members.push_back({item.key, {}, item.payload});
    }
  }
  return members;
}

bool SyncEngine::withhold_protected(RunReport& report, const Change& change, const core::SnapshotEntry& entry) const {
  if (job_.protect.empty()) return false;
  // What the target holds, as the condition sees it; `key` is the source key
  // (it wins over a payload field of that name).
  core::Record held;
  held.key = change.key;
  if (entry.payload.is_object()) held.attributes = core::flatten_json(entry.payload);
  held.set("key", {change.key});
  const auto decision = job_.protect.decide(held);
  if (!decision.keep) return false;
  // The filter reads the condition as its include: "included: <the part that matched>".
  constexpr std::string_view kIncluded = "included: ";
  std::string reason = decision.reason;
  if (reason.starts_with(kIncluded)) reason.erase(0, kIncluded.size());
  ++report.counts.protected_users;
  report.protected_changes.push_back({change.key, {}, change.missing ? "on_missing update" : core::to_string(change.op),
                                      "protected", "protected by the job's protect filter: " + reason});
  if (report.explanation && report.explanation->key == change.key) report.explanation->protected_by = reason;
  return true;
}

void SyncEngine::explain(RunReport& report, std::optional<Change> change) const {
  Explanation& ex = *report.explanation;
  ex.change = change;
  auto list = [](const std::vector<std::string>& fields) {
    std::string out;
    for (const auto& f : fields) out += (out.empty() ? "" : ", ") + f;
    return out;
  };
  auto set = [&](std::string action, std::string why) {
    ex.action = std::move(action);
    ex.why = std::move(why);
  };
  if (!ex.in_source && !ex.source_issues.empty()) {
    return set("nothing", "the source reported a problem with this key (see above): nothing is pushed for it, and "
                          "it is protected from detach");
  }
  if (!ex.in_source || !ex.filter_kept) {
    const std::string gone = ex.in_source ? "the job's filter drops it (" + ex.filter_reason + ")" : "it is not in the source";
    if (!ex.snapshot) {
      return set("nothing", gone + ", and the snapshot has no entry for it: dirsync has never pushed this user for "
                                   "this job");
    }
    if (!report.pull_complete || report.outcome == RunOutcome::kFailed) {
      return set("nothing", gone + ", but " +
                                (report.outcome == RunOutcome::kFailed && !report.error.empty() ? "the run failed ("
                                                                                                 + report.error + ")"
                                                                                           : report.pull_note) +
                                ": no detach is computed from an incomplete pull");
    }
    if (job_.on_missing == config::OnMissing::kIgnore) {
      return set("nothing", gone + "; on_missing: ignore leaves it in the target");
    }
    if (ex.absent_pulls > 0 && ex.absent_pulls < job_.detach_after) {
      return set("nothing", gone + "; absent from " + std::to_string(ex.absent_pulls) + " complete pull(s) in a row, "
                                   "detach_after is " + std::to_string(job_.detach_after));
    }
    if (!ex.protected_by.empty()) {
      return set("nothing", gone + ", but it is protected by the job's protect filter: " + ex.protected_by +
                                ". The job never detaches or updates it, whatever the source says");
    }
    if (!change) return set("nothing", gone + "; on_missing: update already set its fields on an earlier run");
    std::string action = change->op == Op::kDetach ? "detach" : "update (on_missing)";
    std::string why = gone + "; on_missing: " + (change->op == Op::kDetach ? "detach" : "update");
    if (report.held.count(ex.key)) {
      action += " (blocked)";
      why += ". Blocked this run: " + report.blocked_note;
    }
    return set(action, why);
  }
  if (!ex.mapping_error.empty()) {
    return set("nothing", "the mapping failed (" + ex.mapping_error + "): nothing is pushed, and the user is "
                          "protected from detach");
  }
  if (!ex.protected_by.empty()) {
    return set("nothing", "protected by the job's protect filter: " + ex.protected_by + ". The job never updates "
                          "or detaches it, whatever the source says");
  }
  if (!change) {
    return set("nothing", "unchanged: the mapped payload's hash equals the one the target acknowledged last");
  }
  if (change->op == Op::kCreate) {
    return set("create", "the snapshot has no entry for it: the target has not acknowledged this user yet");
  }
  const bool resync = change->resync;
  if (!target_.capabilities().update && !resync) {
    return set("skipped", "fields changed (" + list(change->changed_fields) + "), but target '" + job_.target +
                              "' cannot update users; 'dirsync resync " + job_.name + "' re-sends it as a create");
  }
  if (resync) return set(target_.capabilities().update ? "update" : "create", "resync: every current user is sent again");
  std::string why = "fields changed since the target acknowledged it: " + list(change->changed_fields);
  if (report.held.count(ex.key)) return set("update (blocked)", why + ". Blocked this run: " + report.blocked_note);
  set("update", why);
}

}  // namespace dirsync::engine
