#pragma once
// Pieces for tests that run the real sync engine in front of a real source:
// a target that applies (and remembers) every change, and a state store in a
// fresh temporary directory. Header-only; link dirsync::engine and
// dirsync::state. Neither class is thread safe (the engine drives a target
// from one thread).
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/target.h"
#include "state/state_store.h"

namespace dirsync::testing {

// Applies every change (creates get the id "t-<key>") and remembers it.
// The engine hands it `batch_size` changes at a time (at least 1).
class RecordingTarget : public core::Target {
 public:
  explicit RecordingTarget(std::size_t batch_size = 5) : caps_{true, true, true, false, batch_size} {}

  std::vector<core::Change> sent;  // every change applied, in order; tests may clear it between runs

  const core::Capabilities& capabilities() const override { return caps_; }
  const std::vector<core::FieldSpec>& fields() const override { return fields_; }
  std::size_t batch_size() const override { return caps_.max_batch; }
  std::string describe() const override { return "recording"; }
  core::Result<std::vector<core::Outcome>> apply(std::span<const core::Change> changes) override {
    std::vector<core::Outcome> out;
    for (const auto& c : changes) {
      sent.push_back(c);
      out.push_back(core::Outcome::applied(c.op == core::Op::kCreate ? "t-" + c.key : ""));
    }
    return out;
  }
  // How many of `sent` are `op`.
  std::size_t count(core::Op op) const {
    return static_cast<std::size_t>(
        std::count_if(sent.begin(), sent.end(), [&](const core::Change& c) { return c.op == op; }));
  }

 private:
  core::Capabilities caps_;  // max_batch is the configured batch size
  std::vector<core::FieldSpec> fields_;
};

// A StateStore in a directory of its own (named after the process and the
// running test), removed again by the destructor. Construct it while a test
// runs (e.g. as a fixture member). When the store cannot be opened the test
// fails and ok() is false; dereferencing is then invalid.
class TempStateStore {
 public:
  TempStateStore() {
    // A parameterised test's name ("Case/3") has a slash: one directory, not two.
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = std::filesystem::temp_directory_path() / ("dirsync-state-" + std::to_string(::getpid()) + "-" + name);
    std::filesystem::remove_all(dir_);
    auto store = state::StateStore::open(dir_.string());
    if (!store.ok()) {
      ADD_FAILURE() << store.error().message;
      return;
    }
    store_ = std::move(store).value();
  }
  ~TempStateStore() {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempStateStore(const TempStateStore&) = delete;
  TempStateStore& operator=(const TempStateStore&) = delete;

  bool ok() const { return store_ != nullptr; }
  state::StateStore& operator*() { return *store_; }
  state::StateStore* operator->() { return store_.get(); }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<state::StateStore> store_;
};

}  // namespace dirsync::testing
