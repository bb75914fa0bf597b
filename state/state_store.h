#pragma once
// dirsync's state: one LMDB environment in `state_dir`.
//
// Caveats (as LMDB's own header states its own):
// - One process runs a given job at a time: `JobLock` enforces it with flock(2)
//   on state_dir/locks/<job>.lock. Readers (plan, status) need no lock.
// - Write transactions are short and bounded: one per acknowledged batch.
// - The map starts at 1 GiB and doubles on MDB_MAP_FULL (the file is sparse).
// - Do not put state_dir on a network filesystem (LMDB's locking needs a local one).
// - Open a state_dir once per process (LMDB forbids two environments on one
//   file in a process); a second open while the first is alive is an Error.
// - A schema version is stored in the `meta` database and checked at open; a
//   mismatch is an error that says which versions were found and expected.
//
// Layout (named databases):
//   meta      "schema_version" → decimal string
//   snapshot  "<job>\0<key>"   → entry (hash, target id, payload)  -- only acknowledged records
//   runs      "<job>\0<be64 seq>" → JSON run record
//   absent    "<job>\0<key>"   → u32: consecutive complete pulls the key was absent from (detach_after)
//   outbox    "<job>\0<be64 id>" → intent: a batch about to be sent, or the part of
//                                   one whose outcome is still unknown (MessagePack)
//   quarantine "<job>\0<key>"  → a record the target keeps rejecting (MessagePack)
//
// Thread safety: a StateStore may be shared by threads; each call opens its own
// transaction. SnapshotReader is used from one thread; it must not outlive the
// StateStore that made it. A thread may commit while it holds a reader (the
// environment is opened with MDB_NOTLS), including from inside for_each's callback.
//
// Errors: open/commit/record_run return core::Error (kind kState). The read
// calls (get, find, for_each, refresh, snapshot_size, runs) have no error
// channel: an LMDB failure or an entry that cannot be decoded throws StateError,
// because a run cannot continue on a state it cannot read.
//
// Entry encoding (snapshot values), little-endian and compact:
//   u64 hash | varint length of target_id | target_id | payload as MessagePack
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/diff.h"
#include "core/result.h"

namespace dirsync::state {

inline constexpr int kSchemaVersion = 1;

// A read of the state failed (I/O error, corrupt entry). See "Errors" above.
class StateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct StateStoreOptions {
  // The map LMDB reserves (address space; the file is sparse). Doubles on
  // MDB_MAP_FULL up to max_map_size. Tests use a tiny one to exercise growth.
  std::size_t initial_map_size = std::size_t{1} << 30;
  std::size_t max_map_size = std::size_t{1} << 40;
};

// The snapshot value encoding, exposed for tests and tools. decode returns
// nullopt for bytes that are not a valid entry.
std::string encode_entry(const core::SnapshotEntry& entry);
std::optional<core::SnapshotEntry> decode_entry(std::string_view bytes);

// One acknowledged change to record: put (create/update) or erase (detach).
struct SnapshotWrite {
  std::string key;
  std::optional<core::SnapshotEntry> entry;  // nullopt: erase the key
};

// One change of a batch as the outbox records it before the batch is sent.
// Creates keep their payload: a create whose outcome is unknown is settled
// later (looked up or re-sent) and, if the target has it, recorded from it.
struct IntentItem {
  std::string key;
  core::Op op = core::Op::kCreate;
  std::uint64_t hash = 0;     // the payload's canonical hash
  std::string target_id;      // update/detach: the id the change was sent to
  nlohmann::json payload;     // creates only; null otherwise
};

// A batch the engine sent or was about to send, not settled yet: the job died
// (crash, kill, full disk) between recording it and recording its outcome, or
// the target's answer left some creates unknown.
struct Intent {
  std::uint64_t id = 0;         // per job, increasing (the attempt id)
  std::int64_t created_at = 0;  // unix seconds
  std::string note;             // why it is still pending (empty: the run never settled it)
  std::vector<IntentItem> items;
};

// A record the target rejected `rejections` times in a row with the same
// payload (`hash`). Quarantined once rejections reach the job's quarantine_after.
struct QuarantineEntry {
  std::uint32_t rejections = 0;
  std::uint64_t hash = 0;
  std::string message;          // the target's last answer
  std::int64_t first_at = 0;    // unix seconds of the first rejection of this streak
  std::int64_t last_at = 0;
};

// Everything a settled batch changes, written in ONE transaction: the snapshot
// moves, the intent is cleared (or narrowed to what is still unknown), and the
// quarantine counts follow the outcomes.
struct Settlement {
  std::vector<SnapshotWrite> writes;
  std::uint64_t intent_id = 0;             // 0: no intent to settle
  std::vector<IntentItem> still_pending;   // empty: the intent is deleted
  std::string pending_note;                // Intent::note for still_pending
  std::vector<std::pair<std::string, std::optional<QuarantineEntry>>> quarantine;  // nullopt: clear the key
};

struct RunRecord {
  std::uint64_t id = 0;         // assigned by record_run (per job, increasing)
  std::int64_t started_at = 0;  // unix seconds
  std::int64_t finished_at = 0;
  std::string mode;             // sync | resync
  std::string outcome;          // ok | partial | failed | blocked
  std::string message;          // one line; never secrets
  nlohmann::json counts;        // {"created":n,"updated":n,"detached":n,"rejected":n,...}
};

class StateStore;

// A consistent read view of one job's snapshot, for a diff pass. `refresh()`
// starts a new read transaction (call it between pages so a long run does not
// pin old pages).
class SnapshotReader {
 public:
  ~SnapshotReader();
  SnapshotReader(const SnapshotReader&) = delete;
  SnapshotReader& operator=(const SnapshotReader&) = delete;

  std::optional<core::SnapshotEntry> find(std::string_view key);
  void refresh();
  // Every key of the job's snapshot, in key order; stop early by returning false.
  void for_each(const std::function<bool(std::string_view key, const core::SnapshotEntry&)>& fn);

 private:
  friend class StateStore;
  struct Impl;
  explicit SnapshotReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class StateStore {
 public:
  // Creates state_dir (mode 0700, parents too) if needed and opens or creates
  // the environment. A new environment gets kSchemaVersion; an existing one
  // with another version is an Error (kState) naming both versions.
  static core::Result<std::unique_ptr<StateStore>> open(const std::string& state_dir);
  static core::Result<std::unique_ptr<StateStore>> open(const std::string& state_dir,
                                                        const StateStoreOptions& options);
  ~StateStore();

  std::unique_ptr<SnapshotReader> reader(const std::string& job);
  std::optional<core::SnapshotEntry> get(const std::string& job, std::string_view key);
  // Counts the job's keys (walks them: O(n), meant for status, not hot paths).
  std::size_t snapshot_size(const std::string& job);

  // Applies all writes in one transaction (grows the map and retries on MDB_MAP_FULL).
  // All or nothing. Erasing an absent key is not an error. A key too long for
  // LMDB (job + key over ~500 bytes) is an Error and nothing is written.
  core::Status commit(const std::string& job, const std::vector<SnapshotWrite>& writes);

  // The outbox. `add_intent` records a batch before it is sent (one durable
  // transaction) and returns its id; `settle` applies a Settlement atomically.
  // `intents` lists the job's pending intents, oldest first.
  core::Result<std::uint64_t> add_intent(const std::string& job, const std::vector<IntentItem>& items);
  core::Status settle(const std::string& job, const Settlement& settlement);
  std::vector<Intent> intents(const std::string& job);

  // Quarantine: the job's entries (usually few), and an operator's release.
  std::map<std::string, QuarantineEntry> quarantine(const std::string& job);
  // Clears the given keys (all of the job's when `keys` is empty); returns how many were cleared.
  core::Result<std::size_t> release(const std::string& job, const std::vector<std::string>& keys);

  // Appends a run record (id = the job's largest id + 1, starting at 1), keeping
  // the newest `keep` per job (at least the one just written). Returns the id.
  core::Result<std::uint64_t> record_run(const std::string& job, RunRecord run, std::size_t keep = 50);
  // The newest `limit` runs of the job, newest first.
  std::vector<RunRecord> runs(const std::string& job, std::size_t limit);

  // `detach_after`: for each snapshot key, how many consecutive complete pulls
  // it has been absent from. Only keys currently absent are stored (usually
  // few); `set_absences` replaces the job's whole set in one transaction.
  std::map<std::string, std::uint32_t> absences(const std::string& job);
  core::Status set_absences(const std::string& job, const std::map<std::string, std::uint32_t>& counts);

  // The map size currently in use (for status and tests).
  std::size_t map_size() const;

  const std::string& dir() const { return dir_; }

 private:
  friend class SnapshotReader;
  struct Impl;
  StateStore(std::string dir, std::unique_ptr<Impl> impl);
  std::string dir_;
  std::unique_ptr<Impl> impl_;
};

// An exclusive per-job lock held for the life of the object: flock(2) on
// state_dir/locks/<job>.lock, which holds the holder's pid. The kernel drops it
// when the process dies, so a crashed run never leaves a stale lock. flock locks
// belong to an open file description: a second acquire in the same process
// conflicts too. The lock file is never removed (removing it would let two
// holders lock two different files).
class JobLock {
 public:
  // Error kind kBusy with "job 'NAME' is running (pid N)" when another process holds it;
  // kInvalid for a job name with '/' or a leading '.'; kState for I/O failures.
  static core::Result<std::unique_ptr<JobLock>> acquire(const std::string& state_dir, const std::string& job);
  ~JobLock();
  JobLock(const JobLock&) = delete;
  JobLock& operator=(const JobLock&) = delete;

 private:
  explicit JobLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace dirsync::state
