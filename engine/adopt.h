#pragma once
// `dirsync adopt JOB`: on a job's first run against a populated target, or
// after the state directory was lost, users the target already holds are
// matched to the source records dirsync would create (through the target's
// lookup: PERSCOM searches by email) and recorded in the snapshot instead of
// being created again. Targets that answer "already exists" to a create
// (Hesh, Royalti, auth_sync_user, PERSCOM's 422 for a taken email) adopt
// automatically during a sync; this command is for looking them up first.
//
// plan_adoption is a dry run plus lookups: it changes nothing. apply_adoption
// records the matches (taking the job lock), each only while the key still has
// no snapshot entry; the entry holds the target's fields, so the next sync
// updates what differs.
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/target.h"
#include "engine/sync_engine.h"
#include "state/state_store.h"

namespace dirsync::engine {

struct Adoption {
  std::string key;
  std::string target_id;
  nlohmann::json current;                   // the target's fields (as a payload)
  std::vector<std::string> differing_fields;  // where it differs from the mapped source record
};

struct AdoptionPlan {
  RunReport dry_run;              // the plan the lookups were made for
  std::vector<Adoption> found;    // creates the target already has a user for
  std::size_t not_found = 0;      // creates the target has no user for (a sync creates them)
  std::string error;              // non-empty: nothing can be adopted (why)
};

// Looks up every create of a dry run of `engine`'s job, in batches of the target's batch size.
AdoptionPlan plan_adoption(SyncEngine& engine, core::Target& target);

// Records plan.found in the job's snapshot in one transaction. Returns how many
// were recorded (keys that meanwhile got an entry are skipped).
core::Result<std::size_t> apply_adoption(state::StateStore& store, const std::string& job, const AdoptionPlan& plan);

}  // namespace dirsync::engine
