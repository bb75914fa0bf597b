#include "connectors/targets/file/file_target.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

namespace dirsync::targets {
namespace {

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

class FileTarget final : public core::Target {
 public:
  explicit FileTarget(config::FileTargetSettings settings) : settings_(std::move(settings)) {
    caps_.create = caps_.update = caps_.detach = true;
    caps_.max_batch = 10'000;
  }

  const core::Capabilities& capabilities() const override { return caps_; }
  const std::vector<core::FieldSpec>& fields() const override { return fields_; }
  std::size_t batch_size() const override { return 1000; }
  // At-least-once: a create re-sent after a crash appends its line again (a
  // consumer of the file sees the same user twice and must treat it as an upsert).
  core::CreateRecovery create_recovery() const override { return core::CreateRecovery::kResend; }
  std::string describe() const override { return "file " + settings_.path; }

  core::Result<std::vector<core::Outcome>> apply(std::span<const core::Change> batch) override {
    std::string text;
    const std::string time = utc_now();
    for (const auto& change : batch) {
      nlohmann::json line = {{"time", time}, {"op", core::to_string(change.op)}, {"key", change.key}};
      if (change.op != core::Op::kDetach) line["payload"] = change.payload;
      if (change.op == core::Op::kUpdate) line["changed_fields"] = change.changed_fields;
      text += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      text += '\n';
    }
    const int fd = ::open(settings_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return io_error("cannot open");
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        const auto err = io_error("cannot write");
        ::close(fd);
        return err;
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
      const auto err = io_error("cannot fsync");
      ::close(fd);
      return err;
    }
    ::close(fd);
    std::vector<core::Outcome> outcomes;
    outcomes.reserve(batch.size());
    for (const auto& change : batch) outcomes.push_back(core::Outcome::applied(change.key));
    return outcomes;
  }

 private:
  core::Error io_error(const char* what) const {
    return core::Error{core::ErrorKind::kTarget,
                       std::string(what) + " " + settings_.path + ": " + std::strerror(errno)};
  }

  config::FileTargetSettings settings_;
  core::Capabilities caps_;
  std::vector<core::FieldSpec> fields_;
};

}  // namespace

std::unique_ptr<core::Target> make_file_target(const config::FileTargetSettings& settings) {
  return std::make_unique<FileTarget>(settings);
}

}  // namespace dirsync::targets
