#pragma once
// The exit codes of every `dirsync` command (documented in the README and --help),
// shared by the CLI and the daemon, which computes them for commands it runs on
// behalf of a client of its control socket.
#include "engine/sync_engine.h"

namespace dirsync::cli {

inline constexpr int kExitOk = 0;        // success: every planned change applied (or, plan/check-config, all good)
inline constexpr int kExitFailed = 1;    // a run failed: source, target, auth or state error, or a safety guard
inline constexpr int kExitConfig = 2;    // configuration or usage error (nothing ran)
inline constexpr int kExitBusy = 3;      // the job is already running in another process
inline constexpr int kExitProblems = 4;  // finished with problems: rejected/retry/unknown records, bad rows,
                                         // an incomplete pull, or changes blocked by max_detach/max_update

inline int exit_code(const engine::RunReport& r) {
  switch (r.outcome) {
    case engine::RunOutcome::kOk: return kExitOk;
    case engine::RunOutcome::kPartial:
    case engine::RunOutcome::kBlocked: return kExitProblems;
    case engine::RunOutcome::kFailed: break;
  }
  return r.busy ? kExitBusy : kExitFailed;
}

}  // namespace dirsync::cli
