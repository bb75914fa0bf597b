#pragma once
// The diff engine's pure parts: canonical hashing, classifying one mapped record
// against its snapshot entry, and the set of keys seen in a pull.
//
// The engine streams: each record is diffed as it arrives, so memory holds one
// page of payloads, plus 8 bytes per key seen (for detaches after the pull).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/change.h"

namespace dirsync::core {

// What the snapshot holds for one key: only what a target acknowledged.
struct SnapshotEntry {
  std::uint64_t hash = 0;   // canonical hash of `payload`
  std::string target_id;    // the target's id for this user ("" where it has none)
  nlohmann::json payload;   // the last payload the target acknowledged
};

// Compact, key-sorted JSON: the canonical form that is hashed and stored.
std::string canonical_json(const nlohmann::json& payload);
std::uint64_t canonical_hash(const nlohmann::json& payload);
std::uint64_t key_hash(std::string_view key);

// Top-level fields whose values differ between two payload objects (sorted);
// fields present in only one of them count as changed.
std::vector<std::string> changed_fields(const nlohmann::json& before, const nlohmann::json& after);

// Create (no entry), update (hash differs), or nothing (unchanged). With
// `resync`, an existing entry always yields an update with every field listed.
std::optional<Change> diff_record(std::string key, nlohmann::json payload,
                                  const std::optional<SnapshotEntry>& entry, bool resync = false);

// Keys seen in one pull, as 64-bit hashes. A collision can only make an absent
// key look present, which errs towards not detaching.
class SeenKeys {
 public:
  void add(std::string_view key);
  void seal();  // sort and deduplicate; call once the pull is complete
  bool contains(std::string_view key) const;  // false before seal()
  std::size_t size() const { return hashes_.size(); }

 private:
  std::vector<std::uint64_t> hashes_;
  bool sealed_ = false;
};

// Finds the keys a source yields twice in one pull, remembering each key as its
// 64-bit hash (not the string) with a number of the caller's choosing for its
// first occurrence (an index, a line). A hash collision can only make a new key
// look like a duplicate: it is then reported and protected from detach, never
// lost silently. Used by one Pull at a time.
class PullKeys {
 public:
  // nullopt the first time `key` is added; afterwards the `where` given then.
  std::optional<std::uint64_t> add(std::string_view key, std::uint64_t where);
  std::size_t size() const { return first_.size(); }

 private:
  std::unordered_map<std::uint64_t, std::uint64_t> first_;
};

}  // namespace dirsync::core
