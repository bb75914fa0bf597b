#include "daemon/notify.h"

#include <systemd/sd-daemon.h>

namespace dirsync::daemon {

void SystemdNotifier::notify(const std::string& state) {
  // unset_environment = 0: worker threads may notify too, and the variable must stay.
  ::sd_notify(0, state.c_str());
}

std::optional<std::chrono::microseconds> SystemdNotifier::watchdog_interval() {
  std::uint64_t usec = 0;
  if (::sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

}  // namespace dirsync::daemon
