#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "state/state_store.h"

namespace dirsync::state {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "dirsync-lock-XXXXXX";
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(JobLock, SecondHolderGetsRunningPid) {
  TempDir tmp;
  int ready[2];
  int release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child holds the lock until the parent closes `release`.
    ::close(ready[0]);
    ::close(release[1]);
    auto lock = JobLock::acquire(tmp.path(), "hr");
    const char ok = lock.ok() ? 'y' : 'n';
    (void)!::write(ready[1], &ok, 1);
    char c;
    (void)!::read(release[0], &c, 1);
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(release[0]);
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  ASSERT_EQ(ok, 'y');

  auto second = JobLock::acquire(tmp.path(), "hr");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().kind, core::ErrorKind::kBusy);
  EXPECT_EQ(second.error().message, "job 'hr' is running (pid " + std::to_string(child) + ")");
  EXPECT_TRUE(JobLock::acquire(tmp.path(), "other").ok()) << "locks are per job";

  ::close(release[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(JobLock::acquire(tmp.path(), "hr").ok()) << "the lock dies with its holder";
}

TEST(JobLock, ConflictsWithinOneProcessAndIsReleasedOnDestruction) {
  TempDir tmp;
  auto first = JobLock::acquire(tmp.path(), "hr");
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = JobLock::acquire(tmp.path(), "hr");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().message, "job 'hr' is running (pid " + std::to_string(::getpid()) + ")");
  first.value().reset();
  EXPECT_TRUE(JobLock::acquire(tmp.path(), "hr").ok());
}

TEST(JobLock, WritesItsPidIntoAPrivateLockFile) {
  TempDir tmp;
  const std::string state_dir = tmp.path() + "/state";
  const std::string file = state_dir + "/locks/hr.lock";
  const auto read_all = [&] {
    std::ifstream in(file);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  {
    auto lock = JobLock::acquire(state_dir, "hr");
    ASSERT_TRUE(lock.ok()) << lock.error().message;
    EXPECT_EQ(read_all(), std::to_string(::getpid()) + "\n");
    struct stat st {};
    ASSERT_EQ(::stat(state_dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_EQ(::stat((state_dir + "/locks").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  // A stale, longer pid left by an earlier holder must not survive.
  std::ofstream(file) << "1234567890\n";
  auto lock = JobLock::acquire(state_dir, "hr");
  ASSERT_TRUE(lock.ok());
  EXPECT_EQ(read_all(), std::to_string(::getpid()) + "\n");
}

TEST(JobLock, RefusesNamesThatLeaveTheLocksDirectory) {
  TempDir tmp;
  for (const std::string name : {"../evil", "a/b", ".hidden", ""}) {
    auto lock = JobLock::acquire(tmp.path(), name);
    ASSERT_FALSE(lock.ok()) << name;
    EXPECT_EQ(lock.error().kind, core::ErrorKind::kInvalid);
    EXPECT_EQ(lock.error().message, "job name '" + name + "' cannot name a lock file");
  }
}

}  // namespace
}  // namespace dirsync::state
