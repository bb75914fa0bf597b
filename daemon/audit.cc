#include "daemon/audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <nlohmann/json.hpp>

namespace dirsync::daemon {
namespace {

constexpr mode_t kMode = 0640;

std::string line_for(const std::string& time, const std::string& job, const std::string& run,
                     const engine::PushedChange& c) {
  // Ordered: the fields read in the order an operator asks the questions.
  nlohmann::ordered_json j;
  j["time"] = time;
  j["job"] = job;
  j["run"] = run;
  j["key"] = c.key;
  j["op"] = core::to_string(c.op);
  if (c.op == core::Op::kUpdate) j["changed_fields"] = c.changed_fields;
  j["outcome"] = core::to_string(c.outcome);
  if (!c.message.empty()) j["message"] = c.message;
  if (!c.target_id.empty()) j["target_id"] = c.target_id;
  // A key or message that is not UTF-8 must not cost the line: replace, never throw.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace

AuditLog::AuditLog(Now now) : now_(std::move(now)) {
  if (!now_) now_ = [] { return Clock::now(); };
}

AuditLog::~AuditLog() {
  std::lock_guard lock(mu_);
  if (fd_ >= 0) {
    (void)sync_locked();
    ::close(fd_);
  }
}

std::string AuditLog::iso_time(Clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  const int millis = static_cast<int>(((ms % 1000) + 1000) % 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", millis);
  return buf;
}

core::Error AuditLog::error(const std::string& what, int err) const {
  return {core::ErrorKind::kState, "audit log " + path_ + ": " + what + ": " + std::strerror(err)};
}

core::Status AuditLog::open(const std::string& path, std::uint64_t max_bytes, std::chrono::milliseconds max_age,
                            std::size_t keep) {
  std::lock_guard lock(mu_);
  if (fd_ >= 0) {
    (void)sync_locked();
    ::close(fd_);
    fd_ = -1;
  }
  path_ = path;
  max_bytes_ = max_bytes;
  max_age_ = max_age;
  keep_ = keep;
  return open_locked();
}

bool AuditLog::is_open() const {
  std::lock_guard lock(mu_);
  return fd_ >= 0;
}

core::Status AuditLog::open_locked() {
  for (int attempt = 0; attempt < 2; ++attempt) {
    // Create exclusively first: only a file we created gets our mode and a fresh age.
    int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, kMode);
    if (fd >= 0) {
      if (::fchmod(fd, kMode) != 0) {  // the umask may have taken bits off
        const int err = errno;
        ::close(fd);
        return error("cannot set its mode", err);
      }
      fd_ = fd;
      created_ = now_();
      dirty_ = false;
      return core::Ok{};
    }
    if (errno != EEXIST) return error("cannot create it", errno);
    fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;  // removed (rotated) between the two opens
      return error("cannot open it", errno);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return error("cannot stat it", err);
    }
    fd_ = fd;
    created_ = Clock::time_point(std::chrono::duration_cast<Clock::duration>(
        std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
    dirty_ = false;
    return core::Ok{};
  }
  return error("cannot open it", ENOENT);
}

core::Status AuditLog::sync_locked() {
  if (!dirty_ || fd_ < 0) return core::Ok{};
  if (::fdatasync(fd_) != 0) return error("cannot sync it", errno);
  dirty_ = false;
  return core::Ok{};
}

core::Status AuditLog::rotate_locked() {
  core::Status result = sync_locked();
  ::close(fd_);
  fd_ = -1;
  dirty_ = false;
  auto remember = [&](core::Status s) {
    if (result.ok() && !s.ok()) result = std::move(s);
  };
  if (keep_ == 0) {
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) remember(error("cannot remove it to rotate", errno));
  } else {
    // Oldest first, so each rename lands on a name just vacated; .keep is replaced, which drops the oldest.
    for (std::size_t i = keep_ - 1; i >= 1; --i) {
      const std::string from = path_ + "." + std::to_string(i);
      const std::string to = path_ + "." + std::to_string(i + 1);
      if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
        remember(error("cannot rename " + from + " to " + to, errno));
      }
    }
    if (::rename(path_.c_str(), (path_ + ".1").c_str()) != 0 && errno != ENOENT) {
      remember(error("cannot rename it to " + path_ + ".1", errno));
    }
  }
  // The renames are directory entries: sync the directory so a power loss does not undo them.
  std::string dir = std::filesystem::path(path_).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  remember(open_locked());
  return result;
}

core::Status AuditLog::record(const std::string& job, const std::string& run, const engine::PushedChange& change) {
  std::lock_guard lock(mu_);
  if (path_.empty()) return core::Error{core::ErrorKind::kState, "audit log: not opened"};
  if (fd_ < 0) {
    if (auto reopened = open_locked(); !reopened) return reopened;
  }
  const auto now = now_();
  const std::string line = line_for(iso_time(now), job, run, change);

  // Another process (a `dirsync sync` next to the daemon) may have rotated the
  // file: follow the name, not the descriptor.
  struct stat ours {};
  struct stat named {};
  if (::fstat(fd_, &ours) != 0) return error("cannot stat it", errno);
  if (::stat(path_.c_str(), &named) != 0 || named.st_ino != ours.st_ino || named.st_dev != ours.st_dev) {
    (void)sync_locked();
    ::close(fd_);
    fd_ = -1;
    if (auto reopened = open_locked(); !reopened) return reopened;
    if (::fstat(fd_, &ours) != 0) return error("cannot stat it", errno);
  }

  core::Status rotated = core::Ok{};
  const auto size = static_cast<std::uint64_t>(ours.st_size);
  const bool too_big = max_bytes_ > 0 && size + line.size() > max_bytes_;
  const bool too_old = max_age_.count() > 0 && now - created_ >= max_age_;
  // An empty file is never rotated: a line longer than max_bytes still gets written once.
  if (size > 0 && (too_big || too_old)) {
    rotated = rotate_locked();
    if (fd_ < 0) return rotated;
  }

  ssize_t n;
  do {
    n = ::write(fd_, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return error("cannot write to it", errno);
  dirty_ = true;
  if (static_cast<std::size_t>(n) != line.size()) {
    return core::Error{core::ErrorKind::kState, "audit log " + path_ + ": short write (" + std::to_string(n) +
                                                    " of " + std::to_string(line.size()) + " bytes): disk full?"};
  }
  return rotated;
}

core::Status AuditLog::flush() {
  std::lock_guard lock(mu_);
  return sync_locked();
}

}  // namespace dirsync::daemon
