#include "core/failpoint.h"

#include <csignal>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <unistd.h>

namespace dirsync::core {
namespace {

struct Failpoints {
  std::mutex mutex;
  std::map<std::string, long, std::less<>> remaining;  // hits left before the kill
};

Failpoints* load() {
  const char* spec = std::getenv("DIRSYNC_FAILPOINT");
  if (spec == nullptr || *spec == '\0') return nullptr;
  auto* points = new Failpoints;  // lives for the process
  std::string text(spec);
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, end - start);
    const std::size_t colon = item.rfind(':');
    if (colon != std::string::npos && colon > 0) {
      const long n = std::strtol(item.c_str() + colon + 1, nullptr, 10);
      if (n > 0) points->remaining[item.substr(0, colon)] = n;
    }
    start = end + 1;
  }
  return points;
}

}  // namespace

void failpoint(std::string_view name) {
  static Failpoints* const points = load();
  if (points == nullptr) return;
  std::lock_guard lock(points->mutex);
  const auto it = points->remaining.find(name);
  if (it == points->remaining.end()) return;
  if (--it->second == 0) ::kill(::getpid(), SIGKILL);
}

}  // namespace dirsync::core
