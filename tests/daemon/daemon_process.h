#pragma once
// A `dirsync daemon` child process for tests, and the datagram socket it sends
// its sd_notify messages to ($NOTIFY_SOCKET).
//
// Waits are bounded polls for an event (a message, a log line, an exit), never
// assertions on how long something took.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace dirsync::testing {

// An AF_UNIX datagram socket bound to `path` (removed by the destructor).
class NotifySocket {
 public:
  explicit NotifySocket(std::string path);
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::string& path() const { return path_; }
  // Receives until a message contains `text` (counting those already received:
  // true once `count` such messages have arrived), or `limit` passes.
  bool wait_for(const std::string& text, int count = 1, std::chrono::milliseconds limit = std::chrono::seconds(30));
  // Every message received so far (one entry per datagram).
  const std::vector<std::string>& messages() const { return messages_; }
  std::size_t count(const std::string& text) const;

 private:
  void receive(std::chrono::milliseconds wait);
  std::string path_;
  int fd_ = -1;
  std::vector<std::string> messages_;
};

class DaemonProcess {
 public:
  // Starts `dirsync <args>` with `env` added to the environment; stdout and
  // stderr go to `log_path`.
  DaemonProcess(const std::vector<std::string>& args, const std::vector<std::string>& env, std::string log_path);
  ~DaemonProcess();  // SIGKILL if still running
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig);
  // The exit code (128 + signal when killed), or nullopt if it has not exited within `limit`.
  std::optional<int> wait(std::chrono::milliseconds limit = std::chrono::seconds(60));
  std::string log() const;
  // Polls the log until `pred` holds for it, or `limit` passes.
  bool wait_for_log(const std::function<bool(const std::string&)>& pred,
                    std::chrono::milliseconds limit = std::chrono::seconds(30)) const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

// Polls `pred` every 20 ms until it holds or `limit` passes.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = std::chrono::seconds(30));

}  // namespace dirsync::testing
