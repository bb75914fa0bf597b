// Permissions as an unprivileged user sees them (issue 6). Root reads and
// writes anything, so these run dirsync through setpriv(1) as nobody (and a
// second unprivileged uid plays "another user"); they skip when the test is not
// root or setpriv is missing, since then they would prove nothing.
//
// - The state dirsync creates is private to its user: directories 0700, files
//   0600, even under umask 000, and another user cannot read them.
// - As sshd's StrictModes: a configuration file that someone else could write
//   (group/other-writable, or owned by another non-root user) is refused, exit 2.
// - The packaged layout is accepted: root-owned 0644, or root:<group> 0640.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "tests/robustness/state/child.h"
#include "tests/robustness/state/state_rig.h"

namespace dirsync::testing {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
constexpr uid_t kOtherUser = 65533;  // any unprivileged uid; needs no passwd entry
constexpr int kExitConfig = 2;       // README, "Exit codes"

class Permissions : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run dirsync as another user";
    if (setpriv_path().empty()) GTEST_SKIP() << "needs setpriv (util-linux) to run dirsync as another user";
    // nobody's own directory holds the state and the target file; the config
    // and the source stay root's.
    home_ = dir_ / "home";
    ASSERT_EQ(::mkdir(home_.c_str(), 0755), 0);
    ASSERT_EQ(::chown(home_.c_str(), kNobody, kNogroup), 0);
    dir_.write("users.csv", users_csv(3));
    config_ = dir_.write("dirsync.yaml", file_job_config(home_ + "/state", home_ + "/out.jsonl"));
  }

  static ChildOptions as(uid_t uid, gid_t gid = kNogroup) {
    ChildOptions options;
    options.uid = uid;
    options.gid = gid;
    return options;
  }

  ProcessResult dirsync_as_nobody(const std::vector<std::string>& command, ChildOptions options = as(kNobody)) const {
    std::vector<std::string> args{"--config", config_};
    args.insert(args.end(), command.begin(), command.end());
    return run_child(args, options);
  }

  void expect_refused(const std::string& why) const {
    for (const auto& command : {std::vector<std::string>{"check-config"}, {"sync", "hr-to-file"}}) {
      const auto run = dirsync_as_nobody(command);
      EXPECT_EQ(run.exit_code, kExitConfig) << run.out << run.err;
      EXPECT_NE(run.err.find(config_ + ": " + why), std::string::npos) << run.err;
      EXPECT_NE(run.err.find(config_ + ": 1 error; nothing was run"), std::string::npos) << run.err;
    }
    struct stat st {};
    EXPECT_NE(::stat((home_ + "/state").c_str(), &st), 0) << "a refused config runs nothing, creates nothing";
  }

  static std::string mode_of(const std::string& path, uid_t* owner = nullptr) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "missing";
    if (owner != nullptr) *owner = st.st_uid;
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return text;
  }

  Scratch dir_;
  std::string home_;
  std::string config_;
};

TEST_F(Permissions, TheStateAnUnprivilegedUserCreatesIsPrivateToItEvenUnderUmask000) {
  ChildOptions options = as(kNobody);
  options.umask = 0;
  const auto run = dirsync_as_nobody({"sync", "hr-to-file"}, options);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;

  const std::string state = home_ + "/state";
  for (const auto& [path, mode] : std::vector<std::pair<std::string, std::string>>{
           {state, "0700"},
           {state + "/data.mdb", "0600"},
           {state + "/lock.mdb", "0600"},
           {state + "/locks", "0700"},
           {state + "/locks/hr-to-file.lock", "0600"}}) {
    uid_t owner = 0;
    EXPECT_EQ(mode_of(path, &owner), mode) << path;
    EXPECT_EQ(owner, kNobody) << path;
  }
  // Another unprivileged user can neither list the state nor read its files.
  for (const auto& argv : {std::vector<std::string>{"ls", state}, {"cat", state + "/data.mdb"},
                           {"cat", state + "/locks/hr-to-file.lock"}}) {
    const auto other = run_program(argv, as(kOtherUser, kOtherUser));
    EXPECT_NE(other.exit_code, 0) << argv.back() << ": " << other.out;
    EXPECT_NE(other.err.find("Permission denied"), std::string::npos) << other.err;
  }
}

TEST_F(Permissions, AConfigFileOthersMayWriteIsRefusedWithTheFix) {
  ASSERT_EQ(::chmod(config_.c_str(), 0666), 0);
  expect_refused("the configuration file is writable by group/others (mode 0666), so another user could change "
                 "what dirsync does; fix with chmod go-w " + config_);
}

TEST_F(Permissions, AConfigFileItsGroupMayWriteIsRefusedWithTheFix) {
  ASSERT_EQ(::chmod(config_.c_str(), 0664), 0);
  ASSERT_EQ(::chown(config_.c_str(), 0, kNogroup), 0);  // even nobody's own group
  expect_refused("the configuration file is writable by group/others (mode 0664), so another user could change "
                 "what dirsync does; fix with chmod go-w " + config_);
}

TEST_F(Permissions, AConfigFileOwnedByAnotherUserIsRefusedButItsOwnerMayUseIt) {
  ASSERT_EQ(::chown(config_.c_str(), kOtherUser, kOtherUser), 0);
  expect_refused("the configuration file is owned by uid " + std::to_string(kOtherUser) +
                 ", neither root nor the user dirsync runs as (uid " + std::to_string(kNobody) +
                 "), so that user could change what dirsync does; fix with chown root " + config_);
  const auto own = run_child({"--config", config_, "check-config"}, as(kOtherUser, kOtherUser));
  EXPECT_EQ(own.exit_code, 0) << own.out << own.err;
}

TEST_F(Permissions, ARootOwnedConfigOnlyRootMayWriteIsAccepted) {
  ASSERT_EQ(mode_of(config_), "0644");
  auto run = dirsync_as_nobody({"check-config"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  // The packaged layout: root:dirsync 0640, read through the group.
  ASSERT_EQ(::chown(config_.c_str(), 0, kNogroup), 0);
  ASSERT_EQ(::chmod(config_.c_str(), 0640), 0);
  run = dirsync_as_nobody({"sync", "hr-to-file"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("hr-to-file: sync ok"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace dirsync::testing
