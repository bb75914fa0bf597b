#pragma once
// Runs the real `dirsync` binary ($DIRSYNC_BINARY) as a child process and
// captures its exit code and output, for end-to-end tests.
#include <string>
#include <vector>

namespace dirsync::testing {

struct ProcessResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// `env` entries ("NAME=value") are added to the child's environment.
ProcessResult run_dirsync(const std::vector<std::string>& args, const std::vector<std::string>& env = {});

// Path of the binary under test: $DIRSYNC_BINARY, else the one this build made.
std::string dirsync_binary();
// The source tree: $DIRSYNC_SOURCE_DIR, else the one this build came from.
std::string source_dir();

}  // namespace dirsync::testing
