// load_file refuses a configuration file someone else could change, as sshd's
// StrictModes does (issue 6): group- or other-writable, or owned by a user who
// is neither root nor the one running dirsync. The same rules as another user
// sees them are in tests/robustness/state/permissions_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include "tests/config/test_util.h"

namespace dirsync::config::testing {
namespace {

using ::testing::ElementsAre;

constexpr const char* kConfig = "state_dir: state\n";

std::vector<std::string> load_errors(const std::string& path) {
  try {
    load_file(path);
  } catch (const ConfigError& e) {
    return e.errors();
  }
  return {};
}

std::string writable_message(const std::string& path, const char* mode) {
  return path + ": the configuration file is writable by group/others (mode " + mode +
         "), so another user could change what dirsync does; fix with chmod go-w " + path;
}

TEST(ConfigFileMode, AFileGroupOrOthersMayWriteIsRefusedWithTheChmodThatFixesIt) {
  TempDir dir;
  const std::string path = dir.write("dirsync.yaml", kConfig).string();
  for (const auto& [mode, text] : std::vector<std::pair<mode_t, const char*>>{
           {0664, "0664"}, {0646, "0646"}, {0666, "0666"}, {0620, "0620"}}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    EXPECT_THAT(load_errors(path), ElementsAre(writable_message(path, text)));
  }
}

TEST(ConfigFileMode, AFileOnlyItsOwnerMayWriteIsLoaded) {
  TempDir dir;
  const std::string path = dir.write("dirsync.yaml", kConfig).string();
  for (mode_t mode : {0644, 0640, 0600, 0400}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    EXPECT_NO_THROW(load_file(path)) << std::oct << mode;
  }
}

TEST(ConfigFileMode, TheFileReadIsTheFileCheckedThroughASymlink) {
  TempDir dir;
  const std::string target = dir.write("real.yaml", kConfig).string();
  ASSERT_EQ(::chmod(target.c_str(), 0666), 0);
  const std::string link = (dir.path() / "dirsync.yaml").string();
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  EXPECT_THAT(load_errors(link), ElementsAre(writable_message(link, "0666")));
}

TEST(ConfigFileMode, AFileOwnedByAnotherUserIsRefusedWithTheChownThatFixesIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the file to another user";
  TempDir dir;
  const std::string path = dir.write("dirsync.yaml", kConfig).string();
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  ASSERT_EQ(::chown(path.c_str(), 65533, 65533), 0);
  EXPECT_THAT(load_errors(path),
              ElementsAre(path + ": the configuration file is owned by uid 65533, neither root nor the user dirsync "
                                 "runs as (uid 0), so that user could change what dirsync does; fix with chown root " +
                          path));
}

}  // namespace
}  // namespace dirsync::config::testing
