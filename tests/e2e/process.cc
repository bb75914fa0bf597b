#include "tests/e2e/process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace dirsync::testing {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string dirsync_binary() {
  const char* bin = std::getenv("DIRSYNC_BINARY");
  return bin && *bin ? bin : DIRSYNC_BINARY_PATH;
}

std::string source_dir() {
  const char* dir = std::getenv("DIRSYNC_SOURCE_DIR");
  return dir && *dir ? dir : DIRSYNC_SOURCE_PATH;
}

ProcessResult run_dirsync(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  // Output goes to temporary files rather than pipes: no risk of a full pipe
  // blocking the child while the parent waits.
  char out_path[] = "/tmp/dirsync-e2e-out-XXXXXX";
  char err_path[] = "/tmp/dirsync-e2e-err-XXXXXX";
  const int out_fd = ::mkstemp(out_path);
  const int err_fd = ::mkstemp(err_path);
  if (out_fd < 0 || err_fd < 0) throw std::runtime_error("mkstemp failed");

  std::vector<std::string> argv_s{dirsync_binary()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) env_s.emplace_back(*e);
  env_s.insert(env_s.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_fd);
  ::close(err_fd);
  ProcessResult result;
  if (rc == 0) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  ::unlink(out_path);
  ::unlink(err_path);
  if (rc != 0) throw std::runtime_error("posix_spawn failed");
  return result;
}

}  // namespace dirsync::testing
