#include "daemon/journal.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace dirsync::daemon {
namespace {

thread_local const LogContext* t_context = nullptr;

// Parses a whole decimal number; false on anything else.
bool parse_u64(std::string_view text, std::uint64_t& out) {
  if (text.empty()) return false;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;
    value = value * 10 + digit;
  }
  out = value;
  return true;
}

// The message, cut to kJournalMaxMessage bytes without splitting a UTF-8 character.
std::string bounded_message(std::string_view text) {
  if (text.size() <= kJournalMaxMessage) return std::string(text);
  std::size_t cut = kJournalMaxMessage;
  // Back up over continuation bytes (10xxxxxx) to the start of a character.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "… [truncated " + std::to_string(text.size() - cut) + " bytes]";
}

}  // namespace

LogContext::LogContext(std::string job, std::string run_id, std::string target)
    : job_(std::move(job)), run_id_(std::move(run_id)), target_(std::move(target)), previous_(t_context) {
  t_context = this;
}

LogContext::~LogContext() { t_context = previous_; }

const LogContext* LogContext::current() { return t_context; }

std::string journal_socket_path() {
  const char* env = std::getenv("DIRSYNC_JOURNAL_SOCKET");
  if (env && *env) return env;
  return "/run/systemd/journal/socket";
}

bool journal_wanted() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (!env) return false;
  const std::string_view value(env);
  const auto colon = value.find(':');
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  if (colon == std::string_view::npos || !parse_u64(value.substr(0, colon), dev) ||
      !parse_u64(value.substr(colon + 1), ino)) {
    return false;
  }
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<std::uint64_t>(st.st_dev) == dev && static_cast<std::uint64_t>(st.st_ino) == ino;
}

int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical: return 2;  // LOG_CRIT
    case spdlog::level::err: return 3;       // LOG_ERR
    case spdlog::level::warn: return 4;      // LOG_WARNING
    case spdlog::level::info: return 6;      // LOG_INFO
    case spdlog::level::debug:
    case spdlog::level::trace:
    case spdlog::level::off:
    case spdlog::level::n_levels: break;
  }
  return 7;  // LOG_DEBUG
}

void append_journal_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  if (value.find('\n') == std::string_view::npos) {
    out.push_back('=');
    out.append(value);
  } else {
    out.push_back('\n');
    std::uint64_t size = value.size();
    for (int i = 0; i < 8; ++i) {
      out.push_back(static_cast<char>(size & 0xFF));
      size >>= 8;
    }
    out.append(value);
  }
  out.push_back('\n');
}

JournalSink::JournalSink(std::string socket_path) : socket_path_(std::move(socket_path)) {
  // Unconnected: each record names the socket, so a restarted journald is found again.
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

JournalSink::~JournalSink() {
  if (fd_ >= 0) ::close(fd_);
}

void JournalSink::sink_it_(const spdlog::details::log_msg& msg) {
  const std::string_view text(msg.payload.data(), msg.payload.size());
  std::string datagram;
  datagram.reserve(text.size() + 128);
  append_journal_field(datagram, "MESSAGE", bounded_message(text));
  append_journal_field(datagram, "PRIORITY", std::to_string(syslog_priority(msg.level)));
  append_journal_field(datagram, "SYSLOG_IDENTIFIER", "dirsync");
  if (const LogContext* ctx = LogContext::current()) {
    if (!ctx->job().empty()) append_journal_field(datagram, "JOB", ctx->job());
    if (!ctx->run_id().empty()) append_journal_field(datagram, "RUN_ID", ctx->run_id());
    if (!ctx->target().empty()) append_journal_field(datagram, "TARGET", ctx->target());
  }

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  bool sent = false;
  if (fd_ >= 0 && socket_path_.size() < sizeof addr.sun_path) {
    std::memcpy(addr.sun_path, socket_path_.data(), socket_path_.size());
    ssize_t n;
    do {
      n = ::sendto(fd_, datagram.data(), datagram.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr),
                   sizeof addr);
    } while (n < 0 && errno == EINTR);
    sent = n == static_cast<ssize_t>(datagram.size());
  }
  if (!sent) {
    // The journal is not there: stderr (which systemd also collects) rather than nothing.
    std::string line = "<" + std::to_string(syslog_priority(msg.level)) + ">";
    line.append(text);
    line.push_back('\n');
    [[maybe_unused]] const ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  }
}

bool use_journal_if_wanted(spdlog::logger& logger) {
  if (!journal_wanted()) return false;
  logger.sinks().assign({std::make_shared<JournalSink>()});
  return true;
}

}  // namespace dirsync::daemon
