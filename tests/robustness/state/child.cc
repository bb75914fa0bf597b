#include "tests/robustness/state/child.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>

extern char** environ;

namespace dirsync::testing {
namespace {

std::string find_on_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

// A temporary file for one of the child's outputs, removed when read.
struct Capture {
  Capture() {
    char tmpl[] = "/tmp/dirsync-state-child-XXXXXX";
    fd = ::mkostemp(tmpl, O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    path = tmpl;
  }
  ~Capture() {
    if (fd >= 0) ::close(fd);
    ::unlink(path.c_str());
  }
  std::string read() const {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  int fd = -1;
  std::string path;
};

}  // namespace

std::string setpriv_path() { return find_on_path("setpriv"); }

ProcessResult run_program(const std::vector<std::string>& argv_in, const ChildOptions& options) {
  std::vector<std::string> argv_s;
  if (options.uid) {
    const std::string setpriv = setpriv_path();
    if (setpriv.empty()) throw std::runtime_error("setpriv is not on PATH");
    argv_s = {setpriv, "--reuid=" + std::to_string(*options.uid), "--regid=" + std::to_string(options.gid),
              "--clear-groups", "--"};
  }
  argv_s.insert(argv_s.end(), argv_in.begin(), argv_in.end());
  argv_s.front() = find_on_path(argv_s.front());
  if (argv_s.front().empty()) throw std::runtime_error("not on PATH: " + argv_in.front());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) env_s.emplace_back(*e);
  env_s.insert(env_s.end(), options.env.begin(), options.env.end());
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  Capture out;
  Capture err;
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // Async-signal-safe calls only from here to exec.
    ::dup2(out.fd, STDOUT_FILENO);
    ::dup2(err.fd, STDERR_FILENO);
    if (options.umask) ::umask(*options.umask);
    if (options.file_size_limit) {
      // An ignored SIGXFSZ stays ignored across exec: the write fails with EFBIG
      // (or comes back short) instead of killing dirsync.
      ::signal(SIGXFSZ, SIG_IGN);
      const rlimit limit{*options.file_size_limit, *options.file_size_limit};
      if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(126);
    }
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ProcessResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = out.read();
  result.err = err.read();
  return result;
}

ProcessResult run_child(const std::vector<std::string>& args, const ChildOptions& options) {
  std::vector<std::string> argv{dirsync_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv, options);
}

}  // namespace dirsync::testing
