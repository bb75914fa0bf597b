#pragma once
// Structured logging to the systemd journal, without libsystemd's logging API:
// each spdlog record becomes one datagram of the journal's native protocol
// (systemd.journal-fields(7), "Native Journal Protocol"), sent to
// /run/systemd/journal/socket — or to $DIRSYNC_JOURNAL_SOCKET, which tests use.
//
// Fields of every record: MESSAGE (spdlog's formatted text, without the
// pattern: the journal keeps its own timestamp), PRIORITY (syslog level),
// SYSLOG_IDENTIFIER=dirsync, and JOB / RUN_ID / TARGET from the LogContext of
// the thread that logs, when one is set (`journalctl -u dirsync JOB=hr`).
//
// Why a thread-local context rather than parsing "<job>: " off the message:
// the prefix is free text (a job may be named like a word that starts other
// messages), while the worker that runs a job knows for certain which job it
// runs. The context is read on the thread that calls spdlog, so it only works
// with synchronous loggers (dirsync's are); the event loop, which speaks about
// many jobs, sets a LogContext around the lines it logs about one job.
#include <memory>
#include <mutex>
#include <string>

#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

namespace dirsync::daemon {

// Sets the journal fields of one job on the current thread for its lifetime;
// the previous context (if any) is restored by the destructor, so contexts nest.
// Empty strings leave their field out. Not copyable; destroy on the creating thread.
class LogContext {
 public:
  explicit LogContext(std::string job, std::string run_id = {}, std::string target = {});
  ~LogContext();
  LogContext(const LogContext&) = delete;
  LogContext& operator=(const LogContext&) = delete;

  const std::string& job() const { return job_; }
  const std::string& run_id() const { return run_id_; }
  const std::string& target() const { return target_; }
  // The innermost context of the calling thread, or null.
  static const LogContext* current();

 private:
  std::string job_;
  std::string run_id_;
  std::string target_;
  const LogContext* previous_;
};

// $DIRSYNC_JOURNAL_SOCKET when set and not empty, else /run/systemd/journal/socket.
std::string journal_socket_path();

// systemd's documented rule (systemd.exec(5), $JOURNAL_STREAM): true when
// $JOURNAL_STREAM is "<device>:<inode>" of the file stderr is open on, i.e.
// stderr goes to the journal and structured records are better sent natively.
// False when it is unset, malformed, or names another file (stderr redirected).
bool journal_wanted();

// The largest MESSAGE sent; longer ones are cut (at a UTF-8 character
// boundary) and end with "… [truncated N bytes]". Keeps a record far below the
// datagram size limit, so no memfd fallback is needed.
inline constexpr std::size_t kJournalMaxMessage = 64 * 1024;

// The sink. Thread safe (base_sink's mutex). A datagram that cannot be sent
// (no journald, socket gone) is written to stderr instead, so no record is lost.
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit JournalSink(std::string socket_path = journal_socket_path());
  ~JournalSink() override;
  JournalSink(const JournalSink&) = delete;
  JournalSink& operator=(const JournalSink&) = delete;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}  // every record is sent as it comes

 private:
  std::string socket_path_;
  int fd_ = -1;
};

// The syslog priority (0 emerg … 7 debug) of an spdlog level.
int syslog_priority(spdlog::level::level_enum level);

// Encodes one native-protocol field: "NAME=value\n", or for a value with a
// newline the binary-safe form "NAME\n" <value length, 64-bit little endian>
// value "\n". Appends to `out`.
void append_journal_field(std::string& out, std::string_view name, std::string_view value);

// When journal_wanted(): replaces the logger's sinks with one JournalSink and
// returns true; otherwise leaves the logger alone. Call at start-up, before
// other threads log (spdlog does not lock a logger's sink list).
bool use_journal_if_wanted(spdlog::logger& logger);

}  // namespace dirsync::daemon
