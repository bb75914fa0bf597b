// A state written by another schema version (issue 6): every command that
// opens it stops at start with a message naming both versions, before
// anything is sent or written.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>

#include "state/state_store.h"
#include "tests/daemon/daemon_process.h"
#include "tests/robustness/state/child.h"
#include "tests/robustness/state/state_rig.h"

namespace dirsync::testing {
namespace {

constexpr int kExitFailed = 1;  // README, "Exit codes": a state error

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(SchemaVersion, AStateOfAnotherVersionStopsEveryCommandAtStartNamingBothVersions) {
  Scratch dir;
  dir.write("users.csv", users_csv(3));
  const std::string config = dir.write("dirsync.yaml", file_job_config("state", "out.jsonl"));
  const std::string state = dir / "state";
  auto run = run_child({"--config", config, "sync", "hr-to-file"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;

  const std::string expected = std::to_string(state::kSchemaVersion);
  const std::string other = std::to_string(state::kSchemaVersion + 1);
  {
    RawEnv env(state, 0);
    ASSERT_EQ(env.get_meta("schema_version"), expected);
    env.put_meta("schema_version", other);
  }
  const std::string message =
      "state in " + state + " has schema version " + other + "; this dirsync expects " + expected;
  dir.write("users.csv", users_csv(5));  // two more users a sync would send
  const std::string sent_before = read_file(dir / "out.jsonl");

  for (const auto& command :
       {std::vector<std::string>{"status"}, {"sync", "hr-to-file"}, {"plan", "hr-to-file"}}) {
    std::vector<std::string> args{"--config", config};
    args.insert(args.end(), command.begin(), command.end());
    run = run_child(args);
    EXPECT_EQ(run.exit_code, kExitFailed) << command.front() << ": " << run.out << run.err;
    EXPECT_NE(run.err.find("dirsync: " + message), std::string::npos) << command.front() << ": " << run.err;
  }

  DaemonProcess daemon({"--config", config, "daemon"}, {}, dir / "daemon.log");
  EXPECT_EQ(daemon.wait(std::chrono::seconds(30)), kExitFailed) << daemon.log();
  EXPECT_NE(daemon.log().find("the daemon did not start: " + message), std::string::npos) << daemon.log();

  EXPECT_EQ(read_file(dir / "out.jsonl"), sent_before) << "nothing may be sent on a state of another version";
  RawEnv env(state, MDB_RDONLY);
  EXPECT_EQ(env.get_meta("schema_version"), other) << "the state is left as it was found";
}

}  // namespace
}  // namespace dirsync::testing
