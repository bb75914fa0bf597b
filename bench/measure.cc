#include "bench/measure.h"

#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

extern char** environ;

namespace dirsync::bench {
namespace {

double seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; }

// "VmRSS:\t  123 kB" lines of /proc/PID/status; false once the process is gone.
bool sample_status(pid_t pid, ChildRun& run) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  auto field = [&](const char* name) -> std::uint64_t {
    const char* p = std::strstr(buf, name);
    return p ? std::strtoull(p + std::strlen(name), nullptr, 10) : 0;
  };
  const std::uint64_t rss = field("\nVmRSS:");
  if (rss == 0) return false;  // a zombie has no memory lines
  run.peak_rss_kb = std::max(run.peak_rss_kb, rss);
  run.peak_hwm_kb = std::max(run.peak_hwm_kb, field("\nVmHWM:"));
  run.peak_anon_kb = std::max(run.peak_anon_kb, field("\nRssAnon:"));
  run.peak_file_kb = std::max(run.peak_file_kb, field("\nRssFile:"));
  ++run.samples;
  return true;
}

}  // namespace

ChildRun run_measured(const ChildOptions& options) {
  ChildRun run;
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, options.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, options.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);

  const auto start = std::chrono::steady_clock::now();
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    run.error = std::string("cannot start ") + argv[0] + ": " + std::strerror(rc);
    return run;
  }
  run.started = true;

  int status = 0;
  rusage usage{};
  for (;;) {
    sample_status(pid, run);
    const pid_t done = ::wait4(pid, &status, WNOHANG, &usage);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) {
      run.error = std::string("wait4: ") + std::strerror(errno);
      return run;
    }
    std::this_thread::sleep_for(options.sample_every);
  }
  run.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.user_s = seconds(usage.ru_utime);
  run.sys_s = seconds(usage.ru_stime);
  return run;
}

LmdbUsage lmdb_usage(const std::string& state_dir) {
  LmdbUsage u;
  struct stat st{};
  const std::string data = state_dir + "/data.mdb";
  if (::stat(data.c_str(), &st) != 0) {
    u.error = data + ": " + std::strerror(errno);
    return u;
  }
  u.file_bytes = static_cast<std::uint64_t>(st.st_size);
  u.allocated_bytes = static_cast<std::uint64_t>(st.st_blocks) * 512;

  MDB_env* env = nullptr;
  auto fail = [&](const char* what, int rc) {
    u.error = std::string(what) + ": " + mdb_strerror(rc);
    if (env) mdb_env_close(env);
    return u;
  };
  int rc = mdb_env_create(&env);
  if (rc != 0) return fail("mdb_env_create", rc);
  if ((rc = mdb_env_set_maxdbs(env, 1024)) != 0) return fail("mdb_env_set_maxdbs", rc);
  // The map must be at least the file's size to open it read-only.
  if ((rc = mdb_env_set_mapsize(env, std::max<std::size_t>(st.st_size, 1u << 20))) != 0) {
    return fail("mdb_env_set_mapsize", rc);
  }
  if ((rc = mdb_env_open(env, state_dir.c_str(), MDB_RDONLY | MDB_NOTLS, 0600)) != 0) return fail("mdb_env_open", rc);
  MDB_envinfo info{};
  MDB_stat env_stat{};
  mdb_env_info(env, &info);
  mdb_env_stat(env, &env_stat);
  u.page_size = env_stat.ms_psize;
  u.high_water_pages = static_cast<std::uint64_t>(info.me_last_pgno) + 1;

  MDB_txn* txn = nullptr;
  if ((rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn)) != 0) return fail("mdb_txn_begin", rc);
  auto pages = [](const MDB_stat& s) {
    return static_cast<std::uint64_t>(s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages);
  };
  // The free list (database 0): each record lists free page numbers, count first.
  MDB_cursor* cursor = nullptr;
  if (mdb_cursor_open(txn, 0, &cursor) == 0) {
    MDB_val key, val;
    while (mdb_cursor_get(cursor, &key, &val, MDB_NEXT) == 0) {
      u.free_pages += *static_cast<const std::size_t*>(val.mv_data);
    }
    mdb_cursor_close(cursor);
  }
  MDB_stat s{};
  if (mdb_stat(txn, 0, &s) == 0) u.db_pages.emplace_back("(free list)", pages(s));
  MDB_dbi main_dbi = 0;
  if (mdb_dbi_open(txn, nullptr, 0, &main_dbi) == 0 && mdb_stat(txn, main_dbi, &s) == 0) {
    u.db_pages.emplace_back("(main)", pages(s));
    // The main database's keys name the others.
    if (mdb_cursor_open(txn, main_dbi, &cursor) == 0) {
      MDB_val key, val;
      while (mdb_cursor_get(cursor, &key, &val, MDB_NEXT) == 0) {
        const std::string name(static_cast<const char*>(key.mv_data), key.mv_size);
        MDB_dbi dbi = 0;
        if (name.find('\0') != std::string::npos || mdb_dbi_open(txn, name.c_str(), 0, &dbi) != 0) continue;
        if (mdb_stat(txn, dbi, &s) == 0) u.db_pages.emplace_back(name, pages(s));
      }
      mdb_cursor_close(cursor);
    }
  }
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return u;
}

}  // namespace dirsync::bench
