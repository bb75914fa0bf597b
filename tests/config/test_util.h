#pragma once
// Helpers shared by the config tests: loading text that must fail, temporary
// directories and files, and scoped environment variables.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include "config/config.h"

namespace dirsync::config::testing {

// Raw-string YAML in tests starts with a newline for readability; drop it so
// that line 1 of the text is line 1 of the document.
inline std::string yaml(std::string_view text) {
  if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  return std::string(text);
}

// A valid file with one job 'j' (source hr, target out, mapping name) in 11
// lines: `tail` — more keys of the job, indented by four spaces — starts on line 12.
inline std::string one_job(std::string_view tail) {
  if (!tail.empty() && tail.front() == '\n') tail.remove_prefix(1);
  return R"(state_dir: /var/lib/dirsync
sources:
  hr: {type: csv, path: /srv/hr.csv, key: id}
targets:
  out: {type: file, path: /srv/out.jsonl}
jobs:
  j:
    source: hr
    target: out
    mapping:
      name: "{name}"
)" + std::string(tail);
}

// The errors of a load that must fail (an empty vector fails the test).
inline std::vector<std::string> errors_of(std::string_view text, const std::string& file = "dirsync.yaml") {
  try {
    load_string(yaml(text), file);
  } catch (const ConfigError& e) {
    return e.errors();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return {};
}

// A fresh directory under the test temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "dirsync-config-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path write(const std::string& name, std::string_view content) const {
    const auto p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

 private:
  std::filesystem::path path_;
};

// Sets (or unsets, with nullopt) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value) ::setenv(name_.c_str(), value->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_.c_str(), old_->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace dirsync::config::testing
