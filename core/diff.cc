#include "core/diff.h"

#include <algorithm>

#include <xxhash.h>

namespace dirsync::core {

std::string canonical_json(const nlohmann::json& payload) {
  // nlohmann::json keeps object members in a std::map, so dump() is already
  // key-sorted and compact: the same payload always gives the same bytes.
  return payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::uint64_t canonical_hash(const nlohmann::json& payload) {
  const std::string text = canonical_json(payload);
  return XXH3_64bits(text.data(), text.size());
}

std::uint64_t key_hash(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

std::vector<std::string> changed_fields(const nlohmann::json& before, const nlohmann::json& after) {
  std::vector<std::string> changed;
  const bool before_obj = before.is_object();
  const bool after_obj = after.is_object();
  if (after_obj) {
    for (auto it = after.begin(); it != after.end(); ++it) {
      if (!before_obj || !before.contains(it.key()) || before.at(it.key()) != it.value()) {
        changed.push_back(it.key());
      }
    }
  }
  if (before_obj) {
    for (auto it = before.begin(); it != before.end(); ++it) {
      if (!after_obj || !after.contains(it.key())) changed.push_back(it.key());
    }
  }
  std::sort(changed.begin(), changed.end());
  return changed;
}

std::optional<Change> diff_record(std::string key, nlohmann::json payload,
                                  const std::optional<SnapshotEntry>& entry, bool resync) {
  Change change;
  change.hash = canonical_hash(payload);
  change.key = std::move(key);
  if (!entry) {
    change.op = Op::kCreate;
    change.payload = std::move(payload);
    return change;
  }
  if (entry->hash == change.hash && !resync) return std::nullopt;
  change.op = Op::kUpdate;
  change.resync = resync;
  change.target_id = entry->target_id;
  change.previous = entry->payload;
  change.base_hash = entry->hash;
  if (resync) {
    for (auto it = payload.begin(); it != payload.end(); ++it) change.changed_fields.push_back(it.key());
  } else {
    change.changed_fields = changed_fields(entry->payload, payload);
  }
  change.payload = std::move(payload);
  return change;
}

void SeenKeys::add(std::string_view key) {
  hashes_.push_back(key_hash(key));
  sealed_ = false;
}

void SeenKeys::seal() {
  std::sort(hashes_.begin(), hashes_.end());
  hashes_.erase(std::unique(hashes_.begin(), hashes_.end()), hashes_.end());
  sealed_ = true;
}

bool SeenKeys::contains(std::string_view key) const {
  return sealed_ && std::binary_search(hashes_.begin(), hashes_.end(), key_hash(key));
}

std::optional<std::uint64_t> PullKeys::add(std::string_view key, std::uint64_t where) {
  const auto [it, inserted] = first_.emplace(key_hash(key), where);
  if (inserted) return std::nullopt;
  return it->second;
}

}  // namespace dirsync::core
