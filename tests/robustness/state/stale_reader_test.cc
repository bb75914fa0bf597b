// Stale LMDB reader slots (issue 6): a process killed while it reads leaves
// its slot in the lock file, pinning old pages so the file only grows. LMDB
// resets the table only when a process opens the environment alone; while
// another holds it open (a daemon does, always) the slot stays until someone
// runs mdb_reader_check — which dirsync does every time it opens the state.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <cerrno>

#include "tests/robustness/state/child.h"
#include "tests/robustness/state/state_rig.h"

namespace dirsync::testing {
namespace {

bool has(const std::vector<long>& pids, long pid) { return std::find(pids.begin(), pids.end(), pid) != pids.end(); }

TEST(StaleReaders, ASlotLeftByAKilledReaderIsClearedByTheNextOpen) {
  Scratch dir;
  dir.write("users.csv", users_csv(3));
  const std::string config = dir.write("dirsync.yaml", file_job_config("state", "out.jsonl"));
  const std::string state = dir / "state";
  auto run = run_child({"--config", config, "sync", "hr-to-file"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;

  // Stands for a daemon: keeps the environment open, so nobody opens it alone.
  RawEnv holder(state, MDB_RDONLY);
  ASSERT_TRUE(holder.reader_pids().empty());

  const auto killed = run_program({STALE_READER_HELPER, state, "hr-to-file"});
  ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.out << killed.err;
  const std::string marker = "reading as pid ";
  ASSERT_EQ(killed.out.rfind(marker, 0), 0u) << killed.out;
  const long dead = std::stol(killed.out.substr(marker.size()));
  ASSERT_NE(::kill(static_cast<pid_t>(dead), 0), 0) << "the helper must be gone";
  ASSERT_TRUE(has(holder.reader_pids(), dead)) << "the killed reader's slot should be left behind";

  // Any command that opens the state clears it; status writes nothing else.
  run = run_child({"--config", config, "status"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_FALSE(has(holder.reader_pids(), dead)) << "the stale slot should have been cleared at open";
  EXPECT_TRUE(holder.reader_pids().empty()) << "status releases its own slots when it exits";
}

}  // namespace
}  // namespace dirsync::testing
