#pragma once
// The audit log: one JSON line per change a target answered, for "who changed
// what, when, and what did the target say":
//
//   {"time":"2024-11-24T19:56:01.123Z","job":"hr","run":"2024-11-24T19:56:00.002Z",
//    "key":"1044","op":"update","changed_fields":["title"],"outcome":"applied","target_id":"77"}
//
// `changed_fields` is written for updates only; `message` (the target's words)
// and `target_id` only when not empty. Field names only: payload values (phone
// numbers, titles, ...) never reach this file, which may be kept for months.
//
// Durability. Each line is one write(2) on an O_APPEND descriptor: other
// writers (other jobs' threads, a `dirsync sync` in a shell) never interleave
// inside a line, and once write returns the line survives a crash of the
// process. flush() fdatasyncs, so it survives a power loss too; the caller
// calls it after each batch (the engine's progress notice follows every batch)
// and after the run. One fdatasync per batch rather than per line: a batch is
// up to hundreds of changes and the first sync of a large directory would
// otherwise wait on the disk once per user.
//
// Rotation happens before a write that would take the file past max_bytes, or
// when the file is older than max_age: audit.jsonl → .1 → .2 … keeping `keep`
// rotated files (0: none). The age counts from when this object created the
// file; an existing file opened at start counts from its mtime (the creation
// time is not portable). If another process rotated the file, the next write
// follows the new one. Files are created with mode 0640 whatever the umask.
//
// Failures never fail a sync: open() reports (the caller logs it and runs
// without audit), record() and flush() report (the caller logs a warning and
// the run goes on); a later record() tries again.
//
// Thread safe: every member may be called from any thread.
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "core/result.h"
#include "engine/sync_engine.h"

namespace dirsync::daemon {

class AuditLog {
 public:
  using Clock = std::chrono::system_clock;
  using Now = std::function<Clock::time_point()>;

  // `now` stamps lines and ages the file (tests inject one); null: the system clock.
  explicit AuditLog(Now now = {});
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Opens (creating if needed) `path` for appending. max_bytes 0 or max_age 0:
  // that rotation is off. An error names the path and the system's reason.
  core::Status open(const std::string& path, std::uint64_t max_bytes, std::chrono::milliseconds max_age,
                    std::size_t keep);
  bool is_open() const;

  // Appends one line for `change` of run `run` (an id or start time, as the
  // caller identifies runs) of job `job`, rotating first if due.
  core::Status record(const std::string& job, const std::string& run, const engine::PushedChange& change);

  // fdatasync if anything was written since the last flush; cheap otherwise.
  core::Status flush();

  // "2024-11-24T19:56:01.123Z": the format of "time" (callers use it for "run").
  static std::string iso_time(Clock::time_point t);

 private:
  core::Status open_locked();
  core::Status rotate_locked();
  core::Status sync_locked();
  core::Error error(const std::string& what, int err) const;

  Now now_;
  mutable std::mutex mu_;
  std::string path_;
  std::uint64_t max_bytes_ = 0;
  std::chrono::milliseconds max_age_{0};
  std::size_t keep_ = 0;
  int fd_ = -1;
  Clock::time_point created_{};
  bool dirty_ = false;
};

}  // namespace dirsync::daemon
