#pragma once
// Changes the diff engine yields and the outcome a target returns for each.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dirsync::core {

enum class Op { kCreate, kUpdate, kDetach };
const char* to_string(Op op);

struct Change {
  Op op = Op::kCreate;
  std::string key;                          // the source key
  nlohmann::json payload;                   // create/update: the full desired payload; detach: null
  nlohmann::json previous;                  // update/detach: last acknowledged payload; create: null
  std::vector<std::string> changed_fields;  // update: top-level fields that differ (sorted)
  std::string target_id;                    // update/detach: the id the target gave; create: empty
  std::uint64_t hash = 0;                   // canonical hash of `payload`
  // update/detach: the hash of the snapshot entry the change was computed
  // from (a saved plan is applied only while the entry still has it); create: 0.
  std::uint64_t base_hash = 0;
  bool resync = false;   // an update forced by `dirsync resync`: send every field the target allows
  bool missing = false;  // an update because the user is gone from the source (on_missing: update)
  bool filtered = false; // detach / missing update: the record is in the source but the job's filter drops it
};

enum class OutcomeKind {
  kApplied,   // the target acknowledged: the snapshot moves
  kRetry,     // temporary failure after the HTTP layer's retries: comes back next run
  kRejected,  // the target refused this record (message says why): comes back next run
  kUnknown,   // the request may or may not have taken effect: kept out of the snapshot, reported
};
const char* to_string(OutcomeKind kind);

struct Outcome {
  OutcomeKind kind = OutcomeKind::kUnknown;
  std::string target_id;  // applied create: the id the target gave (or the key where it has none)
  std::string message;    // the target's reason, or a note on an applied change
  // Applied create of a user the target already had (adopted, e.g. matched by
  // email): the fields the target holds, as a payload. The snapshot records
  // these instead of the sent payload, so the next run updates what differs.
  // Null: the target took the sent payload.
  nlohmann::json current;

  static Outcome applied(std::string id = {}, std::string note = {}) {
    return {OutcomeKind::kApplied, std::move(id), std::move(note), {}};
  }
  static Outcome adopted(std::string id, nlohmann::json current, std::string note) {
    return {OutcomeKind::kApplied, std::move(id), std::move(note), std::move(current)};
  }
  static Outcome retry(std::string why) { return {OutcomeKind::kRetry, {}, std::move(why), {}}; }
  static Outcome rejected(std::string why) { return {OutcomeKind::kRejected, {}, std::move(why), {}}; }
  static Outcome unknown(std::string why) { return {OutcomeKind::kUnknown, {}, std::move(why), {}}; }
};

}  // namespace dirsync::core
