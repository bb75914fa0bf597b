// Secret references: ${env:NAME}, ${file:PATH}, ${cred:NAME}.
//
// Every message names the reference or the path, never what was read: these
// messages end up in logs and in `check-config` output.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

#include "config/config.h"
#include "config/yaml_section.h"

namespace dirsync::config {
namespace detail {
namespace {

namespace fs = std::filesystem;

// A secret is a token or an id; anything larger is a wrong path (a log, /dev/zero).
constexpr std::size_t kMaxSecretBytes = 64 * 1024;

std::string errno_text(int err) { return std::generic_category().message(err); }

bool is_word(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  }
  return true;
}

bool is_identifier(std::string_view s) {
  if (s.empty() || (s.front() >= '0' && s.front() <= '9')) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// The file's contents with exactly one trailing "\n" or "\r\n" removed: editors
// add one, and a token with a newline in it is never what was meant.
std::string read_secret_file(const std::string& reference, const fs::path& path, std::string_view expected) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw SecretError{reference, "cannot read " + path.string() + ": " + errno_text(errno), std::string(expected)};
  }
  std::string data;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw SecretError{reference, "cannot read " + path.string() + ": " + errno_text(err), std::string(expected)};
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
    if (data.size() > kMaxSecretBytes) {
      ::close(fd);
      throw SecretError{reference, path.string() + " is larger than 64 KiB",
                        "expected a file holding only the secret"};
    }
  }
  ::close(fd);
  if (data.ends_with("\r\n")) data.resize(data.size() - 2);
  else if (data.ends_with('\n')) data.pop_back();
  if (data.empty()) throw SecretError{reference, path.string() + " is empty", "expected the secret in it"};
  return data;
}

}  // namespace

core::Secret resolve_secret_in(const std::string& text, const std::filesystem::path& base_dir) {
  if (text.size() < 3 || !text.starts_with("${") || !text.ends_with('}')) return core::Secret(text, "(literal)");
  const std::string_view inner = std::string_view(text).substr(2, text.size() - 3);
  const std::size_t colon = inner.find(':');
  if (colon == std::string_view::npos) {
    // "${PERSCOM_TOKEN}" is a shell habit; sending it verbatim as a token would fail
    // much later and much less clearly.
    if (is_identifier(inner)) {
      throw SecretError{"", "'${" + std::string(inner) + "}' is not a reference dirsync knows",
                        "expected ${env:" + std::string(inner) + "}"};
    }
    return core::Secret(text, "(literal)");
  }
  const std::string_view kind = inner.substr(0, colon);
  const std::string arg(inner.substr(colon + 1));
  if (!is_word(kind)) return core::Secret(text, "(literal)");
  // Only name the reference once its kind is known: an unknown one might be a
  // literal value that happens to look like a reference.
  const std::string reference = (kind == "env" || kind == "file" || kind == "cred") ? text : "";

  if (kind == "env") {
    if (arg.empty()) throw SecretError{reference, "no variable name", "expected ${env:NAME}"};
    const char* value = std::getenv(arg.c_str());
    if (value == nullptr) {
      throw SecretError{reference, "environment variable " + arg + " is not set",
                        "expected " + arg + " in dirsync's environment"};
    }
    if (*value == '\0') {
      throw SecretError{reference, "environment variable " + arg + " is empty", "expected the secret in it"};
    }
    return core::Secret(value, text);
  }
  if (kind == "file") {
    if (arg.empty()) throw SecretError{reference, "no path", "expected ${file:PATH}"};
    fs::path path(arg);
    if (path.is_relative()) path = base_dir / path;
    return core::Secret(read_secret_file(reference, path.lexically_normal(), "expected a readable file"), text);
  }
  if (kind == "cred") {
    // systemd's LoadCredential= puts credentials in $CREDENTIALS_DIRECTORY, readable
    // only by the service: the way to hand secrets to a sandboxed unit.
    if (arg.empty() || arg == "." || arg == ".." || arg.find('/') != std::string::npos) {
      throw SecretError{reference, "'" + arg + "' is not a credential name", "expected a plain file name"};
    }
    const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
    if (dir == nullptr || *dir == '\0') {
      throw SecretError{reference, "CREDENTIALS_DIRECTORY is not set",
                        "expected dirsync to run as a systemd service with LoadCredential=" + arg};
    }
    return core::Secret(
        read_secret_file(reference, fs::path(dir) / arg, "expected a credential named " + arg + " (LoadCredential=)"),
        text);
  }
  throw SecretError{"", "unknown kind of reference '" + std::string(kind) + "'",
                    "expected ${env:NAME}, ${file:PATH} or ${cred:NAME}"};
}

}  // namespace detail

core::Secret resolve_secret(const std::string& text) {
  std::error_code ec;
  const std::filesystem::path cwd = std::filesystem::current_path(ec);
  try {
    return detail::resolve_secret_in(text, cwd);
  } catch (const detail::SecretError& e) {
    const std::string ref = e.reference.empty() ? "a secret" : e.reference;
    throw std::runtime_error("cannot resolve " + ref + ": " + e.what + "; " + e.expected);
  }
}

}  // namespace dirsync::config
