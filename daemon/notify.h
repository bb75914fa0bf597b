#pragma once
// The service manager's notification protocol (sd_notify(3)): READY=1,
// STATUS=..., WATCHDOG=1, STOPPING=1, RELOADING=1.
//
// Thread safe (each call is one datagram). Without $NOTIFY_SOCKET (not under
// systemd) every call is a no-op, so the daemon also runs in a terminal.
#include <chrono>
#include <optional>
#include <string>

namespace dirsync::daemon {

class Notifier {
 public:
  virtual ~Notifier() = default;
  // One notification, e.g. "READY=1" or "STATUS=hr: pushing 300/1200".
  virtual void notify(const std::string& state) = 0;
  // How often WATCHDOG=1 must come ($WATCHDOG_USEC), or nullopt when the
  // watchdog is off.
  virtual std::optional<std::chrono::microseconds> watchdog_interval() = 0;
};

// The real one: libsystemd's sd_notify / sd_watchdog_enabled.
class SystemdNotifier final : public Notifier {
 public:
  void notify(const std::string& state) override;
  std::optional<std::chrono::microseconds> watchdog_interval() override;
};

}  // namespace dirsync::daemon
