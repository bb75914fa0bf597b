#pragma once
// The daemon's control socket: how `dirsync sync|resync|plan|status|release` reach a
// running daemon.
//
// Transport: a Unix stream socket, mode 0660, its group the daemon's group (or
// `daemon.control_group`); the daemon also checks each peer with SO_PEERCRED
// (root, the daemon's own uid, or a member of that group) and logs who asked.
// Where: `daemon.control_socket`, else /run/dirsync/control.sock when
// /run/dirsync exists (systemd's RuntimeDirectory=dirsync), else
// <state_dir>/control.sock. Client and daemon apply the same rule.
//
// Protocol: newline-delimited JSON. The client sends one request
//   {"command": "sync" | "resync" | "plan" | "status", "job": "...", "explain": "...", "resync": bool}
//   {"command": "release", "job": "...", "keys": ["..."], "all": bool}   (frees quarantined users;
//    the daemon does it between runs of the job, as it owns the state)
// and the daemon answers with any number of {"progress": "..."} lines, then one
// final {"exit_code": N, "text": "...", "report": {...}} or {"exit_code": N, "error": "..."}
// and closes the connection. A sync or resync asked for while the job runs is
// queued behind it (a resync wins over a sync), and the client gets the report
// of the run that includes its request.
#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "config/config.h"

namespace boost::asio {
class io_context;
}

namespace dirsync::daemon {

// Where the control socket of `config` lives (see above).
std::string control_socket_path(const config::Config& config);

// One client connection, on the daemon's io_context thread.
class ControlSession {
 public:
  virtual ~ControlSession() = default;
  // Queues one JSON line to the client.
  virtual void send(const nlohmann::json& line) = 0;
  // Queues the final line, then closes the connection.
  virtual void finish(const nlohmann::json& line) = 0;
  virtual uid_t peer_uid() const = 0;
};

class ControlServer {
 public:
  // Called on the io_context thread for each request (a JSON object).
  using Handler = std::function<void(const nlohmann::json& request, std::shared_ptr<ControlSession> session)>;

  // `allowed_gid`: members of this group (and root, and the daemon's uid) may talk to it.
  ControlServer(boost::asio::io_context& io, std::string path, std::optional<gid_t> allowed_gid, Handler handler);
  ~ControlServer();
  // Binds (replacing a stale socket file), sets mode 0660 and the group, and
  // accepts. Throws std::runtime_error saying what failed.
  void start();
  void stop();
  const std::string& path() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Client side. What happened when the CLI tried the daemon.
struct ControlCall {
  enum class Result {
    kNoDaemon,  // nothing listens there: run in-process
    kRefused,   // the socket exists but we may not use it (message says why)
    kDone,      // the daemon answered; exit_code is set
  };
  Result result = Result::kNoDaemon;
  int exit_code = 0;
  std::string message;
};

// Sends `request` and relays the answer: progress lines to `on_progress`, the
// final line to `on_final` (the whole JSON object).
ControlCall call_daemon(const std::string& path, const nlohmann::json& request,
                        const std::function<void(const std::string&)>& on_progress,
                        const std::function<void(const nlohmann::json&)>& on_final);

}  // namespace dirsync::daemon
