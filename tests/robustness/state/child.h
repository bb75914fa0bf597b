#pragma once
// Runs the real `dirsync` binary the way the state robustness tests need it:
// under a file size limit, with a given umask, or as another user through
// setpriv(1). Built on fork/exec because posix_spawn cannot set a resource
// limit; between the two the child only makes async-signal-safe calls, so the
// test process may have threads (loopback servers).
#include <sys/resource.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "tests/e2e/process.h"

namespace dirsync::testing {

struct ChildOptions {
  std::vector<std::string> env;            // "NAME=value", added to the test's environment
  std::optional<rlim_t> file_size_limit;   // RLIMIT_FSIZE; SIGXFSZ is ignored, so a write past it fails (EFBIG)
  std::optional<mode_t> umask;             // the child's umask
  std::optional<uid_t> uid;                // run as this uid and gid (setpriv, groups cleared)
  gid_t gid = 0;
};

// `dirsync <args>`; stdout and stderr are captured through temporary files.
ProcessResult run_child(const std::vector<std::string>& args, const ChildOptions& options = {});

// Any program (found on PATH) with the same options.
ProcessResult run_program(const std::vector<std::string>& argv, const ChildOptions& options = {});

// Path of setpriv(1) on PATH, or "" (the permission tests skip without it).
std::string setpriv_path();

}  // namespace dirsync::testing
