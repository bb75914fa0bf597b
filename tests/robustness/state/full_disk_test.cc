// A full disk under the state, through the real binary against the loopback
// PERSCOM (issue 6): the run fails with an error that says the disk is full,
// the snapshot still opens and holds only what the server acknowledged (the
// rest waits in the outbox), and once there is space again a run settles the
// outbox and completes without creating anyone twice.
//
// Two ways to fill it: a small tmpfs mounted over state_dir (root only; in a
// private mount namespace of the test's thread, so nothing leaks if the test
// dies), and RLIMIT_FSIZE on the child (any user). LMDB writes its data file
// with pwrite, page by page, so the file is as large as what was written: the
// space given is half of what a whole run writes, measured by running the same
// job into an unconstrained directory first.
#include <gtest/gtest.h>

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "state/state_store.h"
#include "tests/robustness/state/child.h"
#include "tests/robustness/state/state_rig.h"
#include "tests/support/perscom_test_server.h"

namespace dirsync::testing {
namespace {

using nlohmann::json;

constexpr int kUsers = 300;
constexpr int kExitFailed = 1;  // README, "Exit codes": the run failed
constexpr const char* kJob = "hr-to-perscom";
constexpr const char* kToken = "tok-state-full-disk";
constexpr off_t kRoomy = off_t{64} << 20;  // a tmpfs with room for the whole run

// The job's files in `dir`, against `server`: 300 users in batches of 10.
std::string write_job(const Scratch& dir, const PerscomTestServer& server) {
  dir.write("users.csv", users_csv(kUsers));
  return dir.write("dirsync.yaml",
                   "state_dir: state\n"
                   "daemon: {audit_log: off}\n"  // the state alone fills the disk
                   "sources: {hr: {type: csv, path: users.csv, key: employee_id}}\n"
                   "targets:\n"
                   "  perscom: {type: perscom, base_url: '" +
                       server.base_url() +
                       "', token: '${env:STATE_TEST_TOKEN}', batch_size: 10, max_attempts: 2,\n"
                       "            backoff_initial: 10ms, backoff_max: 20ms}\n"
                       "jobs:\n"
                       "  hr-to-perscom: {source: hr, target: perscom,\n"
                       "                  mapping: {name: \"{first_name} {last_name}\", email: \"{email}\"}}\n");
}

PerscomServerOptions server_options() {
  PerscomServerOptions options;
  options.token = kToken;
  return options;
}

ProcessResult sync(const std::string& config, ChildOptions options = {}) {
  options.env.push_back(std::string("STATE_TEST_TOKEN=") + kToken);
  return run_child({"--config", config, "sync", kJob}, options);
}

struct Written {
  off_t file_bytes = 0;  // data.mdb's size
  off_t disk_bytes = 0;  // the blocks it occupies
};

// What one whole run of the job writes to data.mdb, measured on a run with room.
Written measure_a_whole_run() {
  PerscomTestServer server(server_options());
  server.start();
  Scratch dir;
  const auto run = sync(write_job(dir, server));
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  struct stat st {};
  EXPECT_EQ(::stat((dir / "state/data.mdb").c_str(), &st), 0);
  return {st.st_size, static_cast<off_t>(st.st_blocks) * 512};
}

class FullDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.start();
    config_ = write_job(dir_, server_);
    state_ = dir_ / "state";
  }

  std::string full_message() const { return "the disk holding " + state_ + " is full"; }

  // The server's users by email.
  std::map<std::string, json> server_users() const {
    std::map<std::string, json> out;
    for (const auto& u : server_.users()) out[u["email"].get<std::string>()] = u;
    return out;
  }

  // The state opens, and every snapshot entry is a user the server holds (same
  // id, same email); a server user the snapshot lacks was acknowledged while
  // the disk was full, and its create waits in the outbox. Returns the
  // snapshot's size and how many creates the outbox holds.
  std::pair<std::size_t, std::size_t> expect_consistent_with_server() const {
    auto opened = state::StateStore::open(state_);
    EXPECT_TRUE(opened) << (opened ? "" : opened.error().message);
    if (!opened) return {0, 0};
    auto& store = *opened.value();
    const auto users = server_users();
    std::set<std::string> recorded;
    store.reader(kJob)->for_each([&](std::string_view key, const core::SnapshotEntry& entry) {
      const std::string email = entry.payload.value("email", "");
      const auto it = users.find(email);
      EXPECT_NE(it, users.end()) << "snapshot key " << key << " (" << email << ") is not on the server";
      if (it != users.end()) {
        EXPECT_EQ(entry.target_id, it->second["id"].dump()) << email;
      }
      recorded.insert(email);
      return true;
    });
    std::set<std::string> pending;
    for (const auto& intent : store.intents(kJob)) {
      for (const auto& item : intent.items) {
        if (item.op == core::Op::kCreate) pending.insert(item.payload.value("email", ""));
      }
    }
    for (const auto& [email, user] : users) {
      if (!recorded.count(email)) {
        EXPECT_TRUE(pending.count(email)) << email << " is on the server but neither in the snapshot nor the outbox";
      }
    }
    return {recorded.size(), pending.size()};
  }

  // Every user was created exactly once: each email is in exactly one create
  // the server answered 200, and no create was refused (a second create of a
  // user is a 422 "email has already been taken").
  void expect_each_user_created_once() const {
    std::map<std::string, int> creates;
    for (const auto& request : server_.request_log()) {
      if (request.method != "POST" || request.path.find("/users/batch") == std::string::npos) continue;
      EXPECT_EQ(request.status, 200) << request.body;
      if (request.status != 200) continue;
      const json body = json::parse(request.body);
      for (const auto& user : body["resources"]) ++creates[user["email"].get<std::string>()];
    }
    EXPECT_EQ(creates.size(), static_cast<std::size_t>(kUsers));
    for (const auto& [email, n] : creates) EXPECT_EQ(n, 1) << email;
    EXPECT_EQ(server_users().size(), static_cast<std::size_t>(kUsers));
  }

  // The run that meets the full disk: it fails, says why, and leaves a state
  // consistent with the server.
  void expect_clean_failure(const ProcessResult& run) {
    EXPECT_EQ(run.exit_code, kExitFailed) << run.out << run.err;
    EXPECT_NE((run.out + run.err).find(full_message()), std::string::npos) << run.out << run.err;
    expect_consistent_with_server();
  }

  // Space is back: the next run settles the outbox and completes.
  void expect_recovery() {
    const auto run = sync(config_);
    EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
    EXPECT_NE(run.out.find(std::string(kJob) + ": sync ok"), std::string::npos) << run.out;
    const auto [recorded, pending] = expect_consistent_with_server();
    EXPECT_EQ(recorded, static_cast<std::size_t>(kUsers));
    EXPECT_EQ(pending, 0u);
    expect_each_user_created_once();
  }

  // Mounts a tmpfs of `bytes` over state_dir, in a mount namespace of this
  // thread's own (so the mount is gone with the process, whatever happens);
  // the reason when this system does not allow it.
  std::optional<std::string> mount_tmpfs(off_t bytes) {
    if (::geteuid() != 0) return "mounting a tmpfs needs root";
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      return std::string("no private mount namespace here: ") + std::strerror(errno);
    }
    if (::mkdir(state_.c_str(), 0700) != 0) return std::string("mkdir: ") + std::strerror(errno);
    const std::string options = "size=" + std::to_string(bytes) + ",mode=0700";
    if (::mount("tmpfs", state_.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      return std::string("cannot mount a tmpfs: ") + std::strerror(errno);
    }
    mounted_ = true;
    return std::nullopt;
  }

  void resize_tmpfs(off_t bytes) {
    const std::string options = "size=" + std::to_string(bytes);
    ASSERT_EQ(::mount(nullptr, state_.c_str(), nullptr, MS_REMOUNT, options.c_str()), 0) << std::strerror(errno);
  }

  void TearDown() override {
    if (mounted_) ::umount2(state_.c_str(), MNT_DETACH);
  }

  PerscomTestServer server_{server_options()};
  Scratch dir_;
  std::string config_;
  std::string state_;
  bool mounted_ = false;
};

TEST_F(FullDisk, AFullTmpfsFailsTheRunCleanlyAndTheNextRunCreatesNobodyTwice) {
  if (auto why_not = mount_tmpfs(kRoomy)) GTEST_SKIP() << *why_not << "; the file size limit test covers a full disk";
  const Written whole = measure_a_whole_run();
  // Half of what the run needs (tmpfs counts pages), plus the lock files' pages.
  resize_tmpfs((whole.disk_bytes / 2 + 16384) / 4096 * 4096);

  const auto first = sync(config_);
  expect_clean_failure(first);
  const auto created = server_users().size();
  EXPECT_GT(created, 0u) << "the disk should fill mid-run, not before the first batch";
  EXPECT_LT(created, static_cast<std::size_t>(kUsers)) << "the disk should fill mid-run";

  // Still full: the next run fails the same clean way.
  expect_clean_failure(sync(config_));

  resize_tmpfs(kRoomy);
  expect_recovery();
}

TEST_F(FullDisk, AFileSizeLimitFailsTheRunCleanlyAndTheNextRunCreatesNobodyTwice) {
  const Written whole = measure_a_whole_run();
  const rlim_t limit = static_cast<rlim_t>(whole.file_bytes / 2);
  ASSERT_GT(limit, 16384u) << "the limit must leave room for the lock file and the first batches";

  ChildOptions limited;
  limited.file_size_limit = limit;
  const auto first = sync(config_, limited);
  expect_clean_failure(first);
  EXPECT_NE((first.out + first.err).find("file size limit of " + std::to_string(limit) + " bytes"),
            std::string::npos)
      << first.out << first.err;
  const auto created = server_users().size();
  EXPECT_GT(created, 0u) << "the limit should stop the run mid-way, not before the first batch";
  EXPECT_LT(created, static_cast<std::size_t>(kUsers)) << "the limit should stop the run mid-way";

  expect_recovery();
}

// LMDB writes a new lock file through a shared map: on a full disk that would
// be a SIGBUS. The state allocates it first, so it is an error like any other.
TEST_F(FullDisk, ANewStateOnAFullDiskIsAnErrorNotACrash) {
  if (auto why_not = mount_tmpfs(16384)) GTEST_SKIP() << *why_not;
  dir_.write("state/filler", std::string(16384, 'x'));  // something else took every block
  struct statvfs fs {};
  ASSERT_EQ(::statvfs(state_.c_str(), &fs), 0);
  ASSERT_EQ(fs.f_bfree, 0u) << "the tmpfs should be full";

  const auto run = sync(config_);
  EXPECT_EQ(run.exit_code, kExitFailed) << run.out << run.err;
  EXPECT_NE(run.err.find("dirsync: cannot open the state in " + state_ + ": " + full_message()), std::string::npos)
      << run.err;
  EXPECT_EQ(server_.request_count(), 0u) << "nothing is sent without a state";
}

}  // namespace
}  // namespace dirsync::testing
