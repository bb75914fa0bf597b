#include "engine/sync_engine.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/diff.h"

namespace dirsync::engine {

using core::Change;
using core::Op;
using core::OutcomeKind;

nlohmann::json Counts::to_json() const {
  return {{"source_records", source_records}, {"source_issues", source_issues}, {"mapping_errors", mapping_errors},
          {"unchanged", unchanged},           {"created", created},             {"updated", updated},
          {"detached", detached},             {"rejected", rejected},           {"retry", retry},
          {"unknown", unknown},               {"detach_planned", detach_planned}, {"skipped", skipped},
          {"filtered", filtered},             {"detach_deferred", detach_deferred}};
}

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
    if (caps.full_set) {
      // Everything goes in one request at the end of the run.
      queues_[0].push_back(std::move(change));
      return;
    }
    auto& queue = queues_[static_cast<int>(change.op)];
    queue.push_back(std::move(change));
    if (queue.size() >= batch_size_) flush(queue);
  }

  // Sends what is queued. For a full-set target, call it once, after detaches.
  void flush_all() {
    for (auto& queue : queues_) {
      if (!queue.empty()) flush(queue);
    }
  }

  bool failed() const { return failed_; }

 private:
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
    auto result = engine_.target_.apply(batch);
    if (!result) {
      fail(std::string(core::to_string(result.error().kind)) + ": " + result.error().message);
      return;
    }
    const auto& outcomes = result.value();
    if (outcomes.size() != batch.size()) {
      // A broken connector must never move the snapshot on a guess.
      fail("target '" + engine_.job_.target + "' returned " + std::to_string(outcomes.size()) + " outcomes for " +
           std::to_string(batch.size()) + " changes; nothing of that batch was recorded");
      return;
    }
    std::vector<state::SnapshotWrite> writes;
    // What the audit hook is told once the batch is settled (payloads move into the snapshot below).
    std::vector<PushedChange> pushed;
    if (engine_.outcome_) pushed.reserve(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      Change& change = batch[i];
      const core::Outcome& outcome = outcomes[i];
      if (engine_.outcome_) {
        pushed.push_back({change.key, change.op, change.changed_fields, outcome.kind, outcome.message,
                          outcome.target_id.empty() ? change.target_id : outcome.target_id});
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
          if (change.op != Op::kDetach) {
            core::SnapshotEntry entry;
            entry.hash = change.hash;
            // An empty id keeps what the snapshot had (e.g. a user the target skipped as existing).
            entry.target_id = outcome.target_id.empty() ? change.target_id : outcome.target_id;
            entry.payload = std::move(change.payload);
            write.entry = std::move(entry);
          }
          writes.push_back(std::move(write));
          pending_applied_.push_back(change.op);
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
          break;
      }
    }
    if (!writes.empty()) {
      same_failure_streak_ = 0;
    } else if (trip_breaker(outcomes)) {
      return;
    }
    if (!writes.empty()) {
      auto committed = engine_.store_.commit(engine_.job_.name, writes);
      if (!committed) {
        pending_applied_.clear();
        fail("state error: the target applied " + std::to_string(writes.size()) +
             " changes but the snapshot could not record them: " + committed.error().message);
        return;
      }
    }
    for (Op op : pending_applied_) count_applied(op);
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
  std::vector<Op> pending_applied_;
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
    auto acquired = state::JobLock::acquire(store_.dir(), job_.name);
    if (!acquired) {
      report.outcome = RunOutcome::kFailed;
      report.busy = acquired.error().kind == core::ErrorKind::kBusy;
      report.error = acquired.error().message;
      finish();
      return report;
    }
    lock = std::move(acquired).value();
  }

  report.snapshot_before = store_.snapshot_size(job_.name);
  auto reader = store_.reader(job_.name);
  Batcher batcher(*this, report, options.dry_run);
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
        if (ex) ex->payload = payload.value();
        auto change = core::diff_record(record.key, std::move(payload).value(), reader->find(record.key), resync);
        if (!change) {
          ++report.counts.unchanged;
          continue;
        }
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
  if (can_detach) {
    // Users gone from a complete pull: detached, or (on_missing: update) given
    // the configured fields. Both count against max_detach: a mass suspension
    // is as much an accident as a mass deletion.
    std::vector<Change> detaches;
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
    const std::size_t limit = detach_limit(job_.max_detach, report.snapshot_before);
    if (explaining) {
      for (const auto& c : detaches) {
        if (c.key == options.explain_key) explained_change = c;
      }
    }
    if (job_.max_detach.enabled && detaches.size() > limit) {
      report.outcome = RunOutcome::kBlocked;
      report.blocked_note =
          std::to_string(detaches.size()) + " detaches exceed the limit of " + std::to_string(limit) + " for " +
          std::to_string(report.snapshot_before) + " users (max_detach: count " +
          std::to_string(job_.max_detach.max_count) + ", percent " + nlohmann::json(job_.max_detach.max_percent).dump() +
          ", floor " + std::to_string(job_.max_detach.floor) + "); no detach was applied. Review them with "
          "'dirsync plan " + job_.name + "', then raise max_detach for the job if they are intended.";
      if (options.dry_run) {
        report.plan.insert(report.plan.end(), std::make_move_iterator(detaches.begin()),
                           std::make_move_iterator(detaches.end()));
      }
    } else {
      for (auto& change : detaches) batcher.add(std::move(change));
    }
  } else if (job_.on_missing == config::OnMissing::kIgnore && report.pull_note.empty()) {
    report.pull_note = "on_missing: ignore — users gone from the source are left in the target";
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
       report.counts.source_issues || report.counts.mapping_errors)) {
    report.outcome = RunOutcome::kPartial;
  }
  report.snapshot_after = store_.snapshot_size(job_.name);
  if (options.dry_run) {
    report.pace = target_.pace(report.counts.created, report.counts.updated, report.counts.detached);
  }
  finish();

  if (!options.dry_run) {
    state::RunRecord record;
    record.started_at = std::chrono::duration_cast<std::chrono::seconds>(started_wall.time_since_epoch()).count();
    record.finished_at =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    record.mode = resync ? "resync" : "sync";
    record.outcome = to_string(report.outcome);
    record.message = !report.error.empty() ? report.error : !report.blocked_note.empty() ? report.blocked_note
                                                                                        : report.pull_note;
    record.counts = report.counts.to_json();
    auto id = store_.record_run(job_.name, std::move(record));
    if (id) report.run_id = id.value();
  }
  return report;
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
    if (!change) return set("nothing", gone + "; on_missing: update already set its fields on an earlier run");
    std::string action = change->op == Op::kDetach ? "detach" : "update (on_missing)";
    std::string why = gone + "; on_missing: " + (change->op == Op::kDetach ? "detach" : "update");
    if (report.outcome == RunOutcome::kBlocked) {
      action += " (blocked)";
      why += ". Blocked this run: " + report.blocked_note;
    }
    return set(action, why);
  }
  if (!ex.mapping_error.empty()) {
    return set("nothing", "the mapping failed (" + ex.mapping_error + "): nothing is pushed, and the user is "
                          "protected from detach");
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
  set("update", "fields changed since the target acknowledged it: " + list(change->changed_fields));
}

}  // namespace dirsync::engine
