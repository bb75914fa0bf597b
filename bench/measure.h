#pragma once
// What the benchmark driver measures of a dirsync run and of its state.
//
// run_measured(): starts a program as a child (posix_spawn: safe while the
// driver's server threads run), samples /proc/PID/status every `sample_every`
// until it exits, and reaps it with wait4() for its CPU time and peak RSS.
// Sampling misses peaks shorter than the period; VmHWM is the kernel's own
// high-water mark and misses nothing (but counts file-backed pages too, the
// LMDB map included). wait4's ru_maxrss is NOT used: posix_spawn's child
// shares the driver's memory until exec, and ru_maxrss keeps that peak (the
// driver's server holding a million users), not dirsync's.
//
// lmdb_usage(): what `mdb_stat -ef` reports of an LMDB environment, read with
// the LMDB API (read-only): the data file's size, the blocks it really takes
// on disk (it may be sparse), and the pages in use (high-water mark minus
// the free list).
//
// Thread safety: both are reentrant; run_measured() blocks the calling thread.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dirsync::bench {

struct ChildOptions {
  std::vector<std::string> argv;  // argv[0] is the program's path
  std::string stdout_path;        // the child's stdout and stderr go to these files
  std::string stderr_path;
  std::chrono::milliseconds sample_every{5};
};

struct ChildRun {
  bool started = false;
  std::string error;          // why it could not start
  int exit_code = -1;         // the exit status, or 128 + signal
  double wall_s = 0;          // from spawn to reaped
  double user_s = 0;          // CPU time (wait4's rusage)
  double sys_s = 0;
  std::uint64_t peak_hwm_kb = 0;    // VmHWM (peak RSS), as last sampled before the exit
  std::uint64_t peak_rss_kb = 0;    // highest VmRSS sampled
  std::uint64_t peak_anon_kb = 0;   // highest RssAnon sampled (heap, stacks)
  std::uint64_t peak_file_kb = 0;   // highest RssFile sampled (binary, libraries, the LMDB map)
  std::size_t samples = 0;
};

ChildRun run_measured(const ChildOptions& options);

struct LmdbUsage {
  std::string error;                  // non-empty: the environment could not be read
  std::uint64_t file_bytes = 0;       // data.mdb's size (st_size)
  std::uint64_t allocated_bytes = 0;  // blocks it takes on disk (st_blocks × 512)
  std::uint64_t page_size = 0;
  std::uint64_t high_water_pages = 0;  // last page number used + 1
  std::uint64_t free_pages = 0;        // pages on the free list (reusable)
  std::uint64_t used_pages() const { return high_water_pages - free_pages; }
  std::vector<std::pair<std::string, std::uint64_t>> db_pages;  // per database: branch + leaf + overflow pages
};

LmdbUsage lmdb_usage(const std::string& state_dir);

}  // namespace dirsync::bench
