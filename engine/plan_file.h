#pragma once
// Saved plans: `dirsync plan JOB --out FILE` writes the exact changes a sync
// would push; `dirsync apply FILE` pushes exactly those (SyncEngine::apply_plan).
//
// The file is JSON (format below), written 0600 and atomically (temporary file
// + rename). It holds payloads (personal data, never secrets). Each update and
// detach carries the hash of the snapshot entry it was computed from, as 16 hex
// digits; apply refuses a change whose entry has moved since.
//
//   {"dirsync_plan": 1, "job": "...", "target": "...", "created_at": "ISO-8601",
//    "blocked": "<why the run was blocked, if it was>",
//    "changes": [{"op": "create|update|detach", "key": "...", "target_id": "...",
//                 "payload": {...}, "previous": {...}, "changed_fields": [...],
//                 "hash": "hex", "base": "hex", "missing": false, "filtered": false}]}
//
// Pure functions apart from the two file calls; thread-safe.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/change.h"
#include "core/result.h"
#include "engine/sync_engine.h"

namespace dirsync::engine {

inline constexpr int kPlanFormat = 1;

struct SavedPlan {
  std::string job;
  std::string target;
  std::string created_at;
  std::string blocked;  // the plan's run was blocked by a guard: why (empty: it was not)
  std::vector<core::Change> changes;
};

// The plan of a dry run (report.plan, blocked changes included).
nlohmann::json plan_to_json(const RunReport& report, const std::string& target, const std::string& created_at);
// kInvalid with what is wrong ("changes[3]: op must be create, update or detach").
core::Result<SavedPlan> plan_from_json(const nlohmann::json& doc);

core::Status write_plan_file(const std::string& path, const nlohmann::json& doc);
core::Result<SavedPlan> read_plan_file(const std::string& path);

}  // namespace dirsync::engine
