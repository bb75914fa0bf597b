#pragma once
// `dirsync daemon`: every job on its schedule, until SIGTERM.
//
// Threads. One Boost.Asio io_context thread owns all of the daemon's state:
// the job table, timers, signals and the watchdog. Sync runs execute on a pool
// of `daemon.max_concurrent_jobs` worker threads. libcurl (targets, SCIM and
// HTTP JSON sources) and libldap are used in their blocking form on those
// workers: a run is one job's sequence of pages and batches, each waiting for
// the previous one, so blocking calls keep every connector simple; the event
// loop itself never touches the network or LMDB, so WATCHDOG=1, signals and
// scheduling are never held up by a million-user diff. A worker hands its
// report back to the loop with asio::post.
//
// Guarantees:
// - a job never runs twice at once: its state lives on the loop; a request for
//   a job that is running is queued (a resync wins over a sync), not lost. The
//   per-job flock also keeps a `dirsync sync` from a shell out (it exits 3);
// - at most max_concurrent_jobs runs at once; the others wait in FIFO order;
// - after a failed run the job's next try comes failure_backoff later,
//   doubling per failure in a row up to failure_backoff_max, and never sooner
//   than its schedule: a broken job reports and waits, it does not hot-loop;
// - SIGTERM / SIGINT: no new run starts; a run in progress stops after the
//   batch in flight, whose acknowledgements are committed; the daemon exits 0
//   once no run is left, or 1 after daemon.shutdown_timeout;
// - SIGHUP: reload. The new file is validated first (as check-config); if it is
//   invalid every error is logged and the old configuration keeps running.
//
// Service is used from one thread: start() then run().
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "daemon/notify.h"

namespace dirsync::daemon {

struct ServiceOptions {
  std::string config_path;
  Notifier* notifier = nullptr;    // required; outlives the Service
  std::function<double()> random;  // uniform [0, 1] for jitter; null: a per-process PRNG
};

class Service {
 public:
  explicit Service(ServiceOptions options);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Loads and checks the configuration and opens the state. Throws
  // config::ConfigError (the caller exits 2) or std::runtime_error (exit 1).
  void start();
  // Serves until shutdown; returns the exit code (0 after a clean stop).
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dirsync::daemon
