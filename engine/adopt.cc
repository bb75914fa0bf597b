#include "engine/adopt.h"

#include <algorithm>

namespace dirsync::engine {

AdoptionPlan plan_adoption(SyncEngine& engine, core::Target& target) {
  AdoptionPlan plan;
  RunOptions options;
  options.dry_run = true;
  plan.dry_run = engine.run(options);
  if (plan.dry_run.outcome == RunOutcome::kFailed) {
    plan.error = plan.dry_run.error;
    return plan;
  }
  if (target.create_recovery() != core::CreateRecovery::kLookup) {
    plan.error = "target " + target.describe() + " cannot look users up; it adopts existing users by itself when "
                 "a sync creates them (it answers that they already exist)";
    return plan;
  }
  std::vector<core::Change> creates;
  for (const auto& c : plan.dry_run.plan) {
    if (c.op == core::Op::kCreate) creates.push_back(c);
  }
  const std::size_t chunk = std::max<std::size_t>(1, target.batch_size());
  for (std::size_t start = 0; start < creates.size(); start += chunk) {
    const std::size_t n = std::min(chunk, creates.size() - start);
    const std::span<const core::Change> part(creates.data() + start, n);
    auto found = target.lookup(part);
    if (!found) {
      plan.error = "looking users up failed: " + found.error().message;
      plan.found.clear();
      return plan;
    }
    if (found.value().size() != n) {
      plan.error = "the target's lookup answered the wrong count";
      plan.found.clear();
      return plan;
    }
    for (std::size_t i = 0; i < n; ++i) {
      const auto& match = found.value()[i];
      if (!match) {
        ++plan.not_found;
        continue;
      }
      const auto& change = part[i];
      nlohmann::json current = match->current.is_null() ? change.payload : match->current;
      plan.found.push_back({change.key, match->target_id, current, core::changed_fields(current, change.payload)});
    }
  }
  return plan;
}

core::Result<std::size_t> apply_adoption(state::StateStore& store, const std::string& job, const AdoptionPlan& plan) {
  auto lock = state::JobLock::acquire(store.dir(), job);
  if (!lock) return lock.error();
  state::Settlement settlement;
  for (const auto& a : plan.found) {
    if (store.get(job, a.key)) continue;  // recorded meanwhile (a sync ran)
    core::SnapshotEntry entry;
    entry.target_id = a.target_id;
    entry.payload = a.current;
    entry.hash = core::canonical_hash(a.current);
    settlement.writes.push_back({a.key, std::move(entry)});
  }
  if (auto st = store.settle(job, settlement); !st.ok()) return st.error();
  return settlement.writes.size();
}

}  // namespace dirsync::engine
