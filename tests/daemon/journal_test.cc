// The journald sink, against a datagram socket of the test's own that stands in
// for /run/systemd/journal/socket: every datagram is parsed as journald parses
// the native protocol.
#include "daemon/journal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

namespace dirsync::daemon {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

// Parses a native-protocol datagram: "NAME=value\n" or "NAME\n" <le64 size> value "\n".
Fields parse_datagram(const std::string& d) {
  Fields out;
  std::size_t pos = 0;
  while (pos < d.size()) {
    const std::size_t end = d.find_first_of("=\n", pos);
    if (end == std::string::npos) {
      ADD_FAILURE() << "field without terminator at " << pos;
      return out;
    }
    std::string name = d.substr(pos, end - pos);
    if (d[end] == '=') {
      const std::size_t nl = d.find('\n', end + 1);
      if (nl == std::string::npos) {
        ADD_FAILURE() << name << ": value without newline";
        return out;
      }
      out.emplace_back(std::move(name), d.substr(end + 1, nl - end - 1));
      pos = nl + 1;
    } else {
      if (end + 9 > d.size()) {
        ADD_FAILURE() << name << ": size cut off";
        return out;
      }
      std::uint64_t size = 0;
      for (int i = 7; i >= 0; --i) size = (size << 8) | static_cast<unsigned char>(d[end + 1 + i]);
      const std::size_t start = end + 9;
      if (start + size + 1 > d.size() || d[start + size] != '\n') {
        ADD_FAILURE() << name << ": binary value of " << size << " bytes does not end in a newline";
        return out;
      }
      out.emplace_back(std::move(name), d.substr(start, size));
      pos = start + size + 1;
    }
  }
  return out;
}

std::optional<std::string> field(const Fields& fields, const std::string& name) {
  std::optional<std::string> found;
  for (const auto& [n, v] : fields) {
    if (n != name) continue;
    EXPECT_FALSE(found) << name << " appears twice";
    found = v;
  }
  return found;
}

// Sets an environment variable for the test's lifetime (restores the old value).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value->c_str(), 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A bound datagram socket in a directory of its own.
class FakeJournal {
 public:
  FakeJournal() {
    dir_ = std::filesystem::temp_directory_path() /
           ("dirsync-journal-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "socket").string();
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    // The sink sends before the test receives; this bound only keeps a broken sink from hanging the test.
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~FakeJournal() {
    ::close(fd_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }

  std::string receive_raw() {
    std::string buf(256 * 1024, '\0');
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    EXPECT_GE(n, 0) << "no datagram: " << std::strerror(errno);
    buf.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    return buf;
  }
  Fields receive() { return parse_datagram(receive_raw()); }
  // True when no datagram is waiting.
  bool empty() {
    char c;
    return ::recv(fd_, &c, 1, MSG_DONTWAIT | MSG_PEEK) < 0;
  }

 private:
  std::filesystem::path dir_;
  std::string path_;
  int fd_ = -1;
};

class JournalSinkTest : public ::testing::Test {
 protected:
  FakeJournal journal_;
  std::shared_ptr<JournalSink> sink_ = std::make_shared<JournalSink>(journal_.path());
  spdlog::logger logger_{"test", sink_};
  void SetUp() override { logger_.set_level(spdlog::level::trace); }
};

TEST_F(JournalSinkTest, SendsMessagePriorityAndIdentifier) {
  logger_.info("hr: sync started");
  const Fields f = journal_.receive();
  EXPECT_EQ(f, (Fields{{"MESSAGE", "hr: sync started"}, {"PRIORITY", "6"}, {"SYSLOG_IDENTIFIER", "dirsync"}}));
}

TEST_F(JournalSinkTest, MapsSpdlogLevelsToSyslogPriorities) {
  const std::vector<std::pair<spdlog::level::level_enum, std::string>> cases = {
      {spdlog::level::trace, "7"}, {spdlog::level::debug, "7"}, {spdlog::level::info, "6"},
      {spdlog::level::warn, "4"},  {spdlog::level::err, "3"},   {spdlog::level::critical, "2"}};
  for (const auto& [level, priority] : cases) {
    logger_.log(level, "x");
    EXPECT_EQ(field(journal_.receive(), "PRIORITY"), priority) << spdlog::level::to_string_view(level).data();
  }
}

TEST_F(JournalSinkTest, TagsRecordsWithTheJobOfTheLogContext) {
  logger_.info("before");
  EXPECT_EQ(field(journal_.receive(), "JOB"), std::nullopt);
  {
    LogContext ctx("hr-to-perscom", "2024-11-24T19:56:00.002Z", "perscom");
    logger_.warn("pushed 3 creates");
    const Fields f = journal_.receive();
    EXPECT_EQ(field(f, "JOB"), "hr-to-perscom");
    EXPECT_EQ(field(f, "RUN_ID"), "2024-11-24T19:56:00.002Z");
    EXPECT_EQ(field(f, "TARGET"), "perscom");
    {
      LogContext inner("other");
      logger_.info("inner");
      const Fields g = journal_.receive();
      EXPECT_EQ(field(g, "JOB"), "other");
      EXPECT_EQ(field(g, "RUN_ID"), std::nullopt);  // empty fields are left out
    }
    logger_.info("outer again");
    EXPECT_EQ(field(journal_.receive(), "JOB"), "hr-to-perscom");
  }
  logger_.info("after");
  EXPECT_EQ(field(journal_.receive(), "JOB"), std::nullopt);
}

TEST_F(JournalSinkTest, KeepsEachThreadsContextToItself) {
  LogContext ctx("main-job");
  std::thread([this] { logger_.info("from a thread without a context"); }).join();
  EXPECT_EQ(field(journal_.receive(), "JOB"), std::nullopt);
  std::thread([this] {
    LogContext worker("worker-job");
    logger_.info("from the worker");
  }).join();
  EXPECT_EQ(field(journal_.receive(), "JOB"), "worker-job");
  logger_.info("from main");
  EXPECT_EQ(field(journal_.receive(), "JOB"), "main-job");
}

TEST_F(JournalSinkTest, EncodesMultiLineMessagesInBinarySafeForm) {
  logger_.error("reload: 2 errors\nline two\n");
  const std::string raw = journal_.receive_raw();
  const std::string value = "reload: 2 errors\nline two\n";
  std::string expected = "MESSAGE\n";
  expected.push_back(static_cast<char>(value.size()));
  expected.append(7, '\0');
  expected += value + "\n";
  EXPECT_EQ(raw.substr(0, expected.size()), expected);
  const Fields f = parse_datagram(raw);
  EXPECT_EQ(field(f, "MESSAGE"), value);
  EXPECT_EQ(field(f, "PRIORITY"), "3");
}

TEST_F(JournalSinkTest, TruncatesMessagesPast64KiBWithANote) {
  logger_.info(std::string(70'000, 'x'));
  EXPECT_EQ(field(journal_.receive(), "MESSAGE"), std::string(65'536, 'x') + "… [truncated 4464 bytes]");
}

TEST_F(JournalSinkTest, TruncatesAtACharacterBoundary) {
  // "a" then 2-byte characters: byte 65536 is the second byte of one, so the cut moves back to 65535.
  std::string text = "a";
  for (int i = 0; i < 40'000; ++i) text += "é";
  logger_.info(text);
  EXPECT_EQ(field(journal_.receive(), "MESSAGE"), text.substr(0, 65'535) + "… [truncated 14466 bytes]");
}

TEST(JournalSink, TakesTheSocketFromTheEnvironment) {
  FakeJournal journal;
  {
    ScopedEnv env("DIRSYNC_JOURNAL_SOCKET", journal.path());
    EXPECT_EQ(journal_socket_path(), journal.path());
    spdlog::logger logger("test", std::make_shared<JournalSink>());
    logger.info("via the environment");
    EXPECT_EQ(field(journal.receive(), "MESSAGE"), "via the environment");
  }
  ScopedEnv unset("DIRSYNC_JOURNAL_SOCKET", std::nullopt);
  EXPECT_EQ(journal_socket_path(), "/run/systemd/journal/socket");
}

TEST(JournalSink, WritesToStderrWhenTheJournalIsNotThere) {
  const auto file = std::filesystem::temp_directory_path() / ("dirsync-journal-stderr-" + std::to_string(::getpid()));
  spdlog::logger logger("test", std::make_shared<JournalSink>((file.string() + ".no-such-socket")));
  const int saved = ::dup(STDERR_FILENO);
  const int out = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(out, 0);
  ::dup2(out, STDERR_FILENO);
  logger.warn("hr: 1 rejected");
  ::dup2(saved, STDERR_FILENO);
  ::close(out);
  ::close(saved);
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  std::filesystem::remove(file);
  EXPECT_EQ(text.str(), "<4>hr: 1 rejected\n");
}

// $JOURNAL_STREAM as systemd sets it for a service whose stderr is the journal.
std::string stderr_stream(std::uint64_t inode_offset = 0) {
  struct stat st {};
  EXPECT_EQ(::fstat(STDERR_FILENO, &st), 0);
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + inode_offset);
}

TEST(JournalWanted, WhenJournalStreamNamesStderr) {
  ScopedEnv env("JOURNAL_STREAM", stderr_stream());
  EXPECT_TRUE(journal_wanted());
}

TEST(JournalWanted, NotWhenJournalStreamNamesAnotherFile) {
  ScopedEnv env("JOURNAL_STREAM", stderr_stream(1));
  EXPECT_FALSE(journal_wanted());
}

TEST(JournalWanted, NotWithoutJournalStreamOrWithAMalformedOne) {
  {
    ScopedEnv env("JOURNAL_STREAM", std::nullopt);
    EXPECT_FALSE(journal_wanted());
  }
  for (const std::string& bad : std::vector<std::string>{"", "12", "x:1", stderr_stream() + "x", ":" + stderr_stream()}) {
    ScopedEnv env("JOURNAL_STREAM", bad);
    EXPECT_FALSE(journal_wanted()) << bad;
  }
}

TEST(JournalWanted, SwitchesALoggerToTheJournalOnlyWhenWanted) {
  FakeJournal journal;
  ScopedEnv socket("DIRSYNC_JOURNAL_SOCKET", journal.path());
  spdlog::logger logger("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  {
    ScopedEnv env("JOURNAL_STREAM", stderr_stream(1));
    EXPECT_FALSE(use_journal_if_wanted(logger));
    logger.info("to the null sink");
    EXPECT_TRUE(journal.empty());
  }
  ScopedEnv env("JOURNAL_STREAM", stderr_stream());
  EXPECT_TRUE(use_journal_if_wanted(logger));
  logger.info("to the journal");
  EXPECT_EQ(field(journal.receive(), "MESSAGE"), "to the journal");
}

}  // namespace
}  // namespace dirsync::daemon
