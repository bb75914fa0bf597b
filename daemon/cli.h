#pragma once
// The `dirsync` command line. Exit codes (documented in the README and --help):
//   0  success: every planned change was applied (or, for plan/check-config, all good)
//   1  a run failed: source, target, authentication or state error, or a safety guard
//   2  configuration or usage error (nothing ran)
//   3  the job is already running in another process
//   4  the run finished with problems: rejected, retried or unknown records, bad
//      source rows, an incomplete pull, or changes blocked by max_detach or max_update
#include "daemon/exit_codes.h"

namespace dirsync::cli {

int run(int argc, char** argv);

}  // namespace dirsync::cli
