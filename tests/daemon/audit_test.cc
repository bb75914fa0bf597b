// The audit log on a real file system, with an injected clock for ages and times.
#include "daemon/audit.h"

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace dirsync::daemon {
namespace {

using namespace std::chrono_literals;
using std::chrono::November;

AuditLog::Clock::time_point at(std::chrono::milliseconds since_start) {
  return std::chrono::sys_days{2024y / November / 24} + 19h + 56min + 1s + 123ms + since_start;
}

engine::PushedChange change(std::string key, core::Op op, core::OutcomeKind outcome, std::string message = {},
                            std::string target_id = {}, std::vector<std::string> fields = {}) {
  return {std::move(key), op, std::move(fields), outcome, std::move(message), std::move(target_id)};
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("dirsync-audit-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "audit.jsonl").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::vector<std::string> lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  // Records key `key` (an applied create) and expects success.
  void record(AuditLog& log, const std::string& key) {
    auto st = log.record("hr", "r1", change(key, core::Op::kCreate, core::OutcomeKind::kApplied));
    ASSERT_TRUE(st.ok()) << st.error().message;
  }

  std::filesystem::path dir_;
  std::string path_;
  AuditLog::Clock::time_point now_ = at(0ms);
  AuditLog log_{[this] { return now_; }};
};

TEST_F(AuditLogTest, WritesOneLinePerChangeWithExactlyTheseFields) {
  ASSERT_TRUE(log_.open(path_, 0, 0ms, 3).ok());
  const std::string run = AuditLog::iso_time(at(-1121ms));
  ASSERT_TRUE(log_.record("hr", run, change("1", core::Op::kCreate, core::OutcomeKind::kApplied, {}, "t-1")).ok());
  now_ = at(5ms);
  ASSERT_TRUE(log_.record("hr", run,
                          change("2", core::Op::kUpdate, core::OutcomeKind::kRejected,
                                 "The email has already been taken.", "77", {"title", "phone"}))
                  .ok());
  ASSERT_TRUE(log_.record("hr", run, change("3", core::Op::kDetach, core::OutcomeKind::kRetry)).ok());
  ASSERT_TRUE(log_.record("hr", run, change("4", core::Op::kCreate, core::OutcomeKind::kUnknown, "timeout")).ok());
  ASSERT_TRUE(log_.flush().ok());
  EXPECT_EQ(lines(path_),
            (std::vector<std::string>{
                R"({"time":"2024-11-24T19:56:01.123Z","job":"hr","run":"2024-11-24T19:56:00.002Z","key":"1","op":"create","outcome":"applied","target_id":"t-1"})",
                R"({"time":"2024-11-24T19:56:01.128Z","job":"hr","run":"2024-11-24T19:56:00.002Z","key":"2","op":"update","changed_fields":["title","phone"],"outcome":"rejected","message":"The email has already been taken.","target_id":"77"})",
                R"({"time":"2024-11-24T19:56:01.128Z","job":"hr","run":"2024-11-24T19:56:00.002Z","key":"3","op":"detach","outcome":"retry"})",
                R"({"time":"2024-11-24T19:56:01.128Z","job":"hr","run":"2024-11-24T19:56:00.002Z","key":"4","op":"create","outcome":"unknown","message":"timeout"})",
            }));
}

TEST_F(AuditLogTest, NamesChangedFieldsButNeverTheirValues) {
  ASSERT_TRUE(log_.open(path_, 0, 0ms, 3).ok());
  ASSERT_TRUE(log_.record("hr", "r1",
                          change("2", core::Op::kUpdate, core::OutcomeKind::kApplied, {}, "77", {"phone", "title"}))
                  .ok());
  const auto line = nlohmann::json::parse(lines(path_).at(0));
  std::set<std::string> keys;
  for (const auto& [k, v] : line.items()) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"time", "job", "run", "key", "op", "changed_fields", "outcome", "target_id"}));
  EXPECT_EQ(line["changed_fields"], nlohmann::json::array({"phone", "title"}));
}

TEST_F(AuditLogTest, KeepsALineWhoseKeyIsNotUtf8) {
  ASSERT_TRUE(log_.open(path_, 0, 0ms, 3).ok());
  ASSERT_TRUE(log_.record("hr", "r1", change("caf\xe9", core::Op::kCreate, core::OutcomeKind::kApplied)).ok());
  EXPECT_EQ(nlohmann::json::parse(lines(path_).at(0))["key"], "caf\xef\xbf\xbd");
}

TEST_F(AuditLogTest, CreatesTheFileWithMode0640WhateverTheUmask) {
  const mode_t old = ::umask(077);
  auto st = log_.open(path_, 0, 0ms, 3);
  ::umask(old);
  ASSERT_TRUE(st.ok()) << st.error().message;
  struct stat s {};
  ASSERT_EQ(::stat(path_.c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 0777, 0640u);
}

TEST_F(AuditLogTest, ReportsAFileItCannotOpen) {
  const std::string path = (dir_ / "missing" / "audit.jsonl").string();
  auto st = log_.open(path, 0, 0ms, 3);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "audit log " + path + ": cannot create it: No such file or directory");
  EXPECT_FALSE(log_.is_open());
  EXPECT_FALSE(log_.record("hr", "r1", change("1", core::Op::kCreate, core::OutcomeKind::kApplied)).ok());
}

TEST_F(AuditLogTest, AppendsToAnExistingFile) {
  { std::ofstream(path_) << "{\"old\":1}\n"; }
  ASSERT_TRUE(log_.open(path_, 0, 0ms, 3).ok());
  record(log_, "1");
  ASSERT_EQ(lines(path_).size(), 2u);
  EXPECT_EQ(lines(path_)[0], "{\"old\":1}");
}

TEST_F(AuditLogTest, RotatesBeforeAWriteWouldPassMaxBytes) {
  // Lines of key "1".."9" are the same length: room for exactly two.
  ASSERT_TRUE(log_.open(path_, 0, 0ms, 3).ok());
  record(log_, "1");
  const auto line_size = std::filesystem::file_size(path_);
  std::filesystem::remove(path_);
  ASSERT_TRUE(log_.open(path_, 2 * line_size, 0ms, 3).ok());
  record(log_, "1");
  record(log_, "2");
  EXPECT_FALSE(std::filesystem::exists(path_ + ".1"));
  record(log_, "3");
  ASSERT_EQ(lines(path_ + ".1").size(), 2u);
  EXPECT_NE(lines(path_ + ".1")[1].find("\"key\":\"2\""), std::string::npos);
  ASSERT_EQ(lines(path_).size(), 1u);
  EXPECT_NE(lines(path_)[0].find("\"key\":\"3\""), std::string::npos);
}

TEST_F(AuditLogTest, WritesALineLongerThanMaxBytesIntoAnEmptyFile) {
  ASSERT_TRUE(log_.open(path_, 10, 0ms, 3).ok());
  record(log_, "1");
  record(log_, "2");
  EXPECT_EQ(lines(path_).size(), 1u);
  EXPECT_EQ(lines(path_ + ".1").size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(path_ + ".2"));
}

TEST_F(AuditLogTest, RotatesWhenTheFileIsOlderThanMaxAge) {
  ASSERT_TRUE(log_.open(path_, 0, 1h, 3).ok());
  record(log_, "1");
  now_ += 59min;
  record(log_, "2");
  EXPECT_FALSE(std::filesystem::exists(path_ + ".1"));
  now_ += 1min;
  record(log_, "3");
  EXPECT_EQ(lines(path_ + ".1").size(), 2u);
  EXPECT_EQ(lines(path_).size(), 1u);
  // The new file's age starts at its rotation.
  now_ += 59min;
  record(log_, "4");
  EXPECT_EQ(lines(path_).size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(path_ + ".2"));
}

TEST_F(AuditLogTest, TakesTheAgeOfAnExistingFileFromItsMtime) {
  { std::ofstream(path_) << "{\"old\":1}\n"; }
  std::filesystem::last_write_time(path_, std::filesystem::file_time_type::clock::from_sys(now_ - 2h));
  ASSERT_TRUE(log_.open(path_, 0, 1h, 3).ok());
  record(log_, "1");
  EXPECT_EQ(lines(path_ + ".1"), (std::vector<std::string>{"{\"old\":1}"}));
  EXPECT_EQ(lines(path_).size(), 1u);
}

TEST_F(AuditLogTest, KeepsOnlyKeepRotatedFiles) {
  ASSERT_TRUE(log_.open(path_, 1, 0ms, 2).ok());  // every write but into an empty file rotates
  for (const char* key : {"1", "2", "3", "4", "5"}) record(log_, key);
  auto key_of = [](const std::string& path) {
    return nlohmann::json::parse(lines(path).at(0))["key"].get<std::string>();
  };
  EXPECT_EQ(key_of(path_), "5");
  EXPECT_EQ(key_of(path_ + ".1"), "4");
  EXPECT_EQ(key_of(path_ + ".2"), "3");
  EXPECT_FALSE(std::filesystem::exists(path_ + ".3"));
}

TEST_F(AuditLogTest, KeepsNoRotatedFileWhenKeepIsZero) {
  ASSERT_TRUE(log_.open(path_, 1, 0ms, 0).ok());
  record(log_, "1");
  record(log_, "2");
  EXPECT_EQ(lines(path_).size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(path_ + ".1"));
}

TEST_F(AuditLogTest, FollowsTheFileWhenAnotherProcessRotatedIt) {
  ASSERT_TRUE(log_.open(path_, 0, 0ms, 3).ok());
  record(log_, "1");
  std::filesystem::rename(path_, path_ + ".1");  // as a `dirsync sync` beside the daemon would
  record(log_, "2");
  EXPECT_EQ(lines(path_ + ".1").size(), 1u);
  ASSERT_EQ(lines(path_).size(), 1u);
  EXPECT_NE(lines(path_)[0].find("\"key\":\"2\""), std::string::npos);
}

TEST_F(AuditLogTest, ConcurrentWritersProduceWholeLines) {
  ASSERT_TRUE(log_.open(path_, 0, 0ms, 3).ok());
  constexpr int kPerThread = 500;
  auto writer = [this](const std::string& job) {
    for (int i = 0; i < kPerThread; ++i) {
      // A long message makes a torn line likely if writes were not whole.
      ASSERT_TRUE(log_.record(job, "r", change(std::to_string(i), core::Op::kUpdate, core::OutcomeKind::kRejected,
                                               std::string(300, job[0]), {}, {"title"}))
                      .ok());
    }
  };
  std::thread a(writer, "alpha");
  std::thread b(writer, "beta");
  a.join();
  b.join();
  ASSERT_TRUE(log_.flush().ok());
  std::map<std::string, int> per_job;
  for (const auto& line : lines(path_)) {
    const auto j = nlohmann::json::parse(line);  // throws (fails the test) on a torn line
    EXPECT_EQ(j["message"], std::string(300, j["job"].get<std::string>()[0]));
    ++per_job[j["job"].get<std::string>()];
  }
  EXPECT_EQ(per_job, (std::map<std::string, int>{{"alpha", kPerThread}, {"beta", kPerThread}}));
}

TEST(AuditLogTime, IsIso8601UtcWithMilliseconds) {
  EXPECT_EQ(AuditLog::iso_time(at(0ms)), "2024-11-24T19:56:01.123Z");
  EXPECT_EQ(AuditLog::iso_time(AuditLog::Clock::time_point{}), "1970-01-01T00:00:00.000Z");
}

}  // namespace
}  // namespace dirsync::daemon
