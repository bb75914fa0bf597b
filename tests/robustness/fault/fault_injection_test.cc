// Fault injection against every target (issue 6): the real engine syncs ~200
// users to each target's loopback server while the server fails in one way —
// 429 with Retry-After, 500s, answers slower than the client's timeout,
// dropped connections, malformed or truncated JSON, valid JSON of the wrong
// shape, 2xx with partial results — applied BEFORE the server processed the
// request (no effect) or AFTER (the effect happened, the answer is lost or
// garbled), on every second write request. Then the faults stop, and:
//   - the first run without faults ends ok, and the next one has nothing to push;
//   - the server holds exactly the source: nobody lost, nobody twice, every
//     change visible (create-only targets keep users gone from the source);
//   - the server processed at most one create per user (its fault log);
//   - the snapshot agrees with the server: the same users, each with the
//     server's id for it.
// Creates and the later updates/detaches are separate tests, so that a fault
// meets each kind of request.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/sync_engine.h"
#include "state/state_store.h"
#include "tests/robustness/fault/fault_rigs.h"

namespace dirsync::fault {
namespace {

using std::chrono::milliseconds;
using testing::FaultKind;
using testing::FaultPhase;

// Flip once the engine reconciles creates whose outcome is unknown (the
// durable outbox: PERSCOM search by email, adopt). Until then a PERSCOM
// create whose answer was lost stays unknown, and every later run is refused
// with 422 "email has already been taken": FaultsDuringCreates skips PERSCOM
// with every fault AFTER the server acted (and with partial results).
constexpr bool kOutboxReconciliation = true;

// The client's timeout in the delay cases; the server's delay is just above it.
constexpr milliseconds kShortTimeout{300};
constexpr milliseconds kDelay = kShortTimeout + milliseconds(150);

enum class TargetKind { kPerscom, kHesh, kRoyalti, kHealvi, kAuthSyncUser };

const char* name_of(TargetKind t) {
  switch (t) {
    case TargetKind::kPerscom: return "Perscom";
    case TargetKind::kHesh: return "Hesh";
    case TargetKind::kRoyalti: return "Royalti";
    case TargetKind::kHealvi: return "Healvi";
    case TargetKind::kAuthSyncUser: return "AuthSyncUser";
  }
  return "?";
}

std::unique_ptr<Rig> make_rig(TargetKind t) {
  switch (t) {
    case TargetKind::kPerscom: return std::make_unique<PerscomRig>();
    case TargetKind::kRoyalti: return std::make_unique<RoyaltiRig>();
    case TargetKind::kHealvi: return std::make_unique<HealviRig>();
#ifdef DIRSYNC_CONFORMANCE_HESH
    case TargetKind::kHesh: return std::make_unique<HeshRig>();
#endif
#ifdef DIRSYNC_CONFORMANCE_AUTH_SYNC_USER
    case TargetKind::kAuthSyncUser: return std::make_unique<AuthSyncUserRig>();
#endif
    default: return nullptr;
  }
}

struct Case {
  TargetKind target;
  FaultKind kind;
  FaultPhase phase;
  // Faults hit reads too (a full-set target's GET of the current set), not
  // only the requests that carry changes.
  bool reads_too = false;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  return std::string(name_of(c.target)) + "_" + to_string(c.kind) + "_" + to_string(c.phase) +
         (c.reads_too ? "_ReadsToo" : "");
}
void PrintTo(const Case& c, std::ostream* os) { *os << case_name({c, 0}); }

// A source serving the current records in pages of 50.
class ListSource final : public core::Source {
 public:
  std::vector<core::Record> records;

  core::Result<std::unique_ptr<core::Pull>> start() override {
    class P final : public core::Pull {
     public:
      explicit P(const std::vector<core::Record>& r) : r_(r) {}
      core::Result<core::Page> next() override {
        core::Page page;
        for (; at_ < r_.size() && page.records.size() < 50; ++at_) page.records.push_back(r_[at_]);
        page.last = at_ >= r_.size();
        return page;
      }

     private:
      const std::vector<core::Record>& r_;
      std::size_t at_ = 0;
    };
    return std::unique_ptr<core::Pull>(std::make_unique<P>(records));
  }
  std::string describe() const override { return "list"; }
};

// The engine's state in a fresh directory. (testing::TempStateStore names its
// directory after the test, and a parameterised test's name holds a '/'.)
// On tmpfs where there is one: every batch commits with fdatasync, which on a
// busy disk costs more than the whole run.
class StateDir {
 public:
  StateDir() : dir_(base() / ("dirsync-fault-" + std::to_string(::getpid()))) { std::filesystem::remove_all(dir_); }
  ~StateDir() {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  state::StateStore& open() {
    auto opened = state::StateStore::open(dir_.string());
    if (!opened.ok()) throw std::runtime_error(opened.error().message);
    store_ = std::move(opened).value();
    return *store_;
  }

 private:
  static std::filesystem::path base() {
    std::error_code ec;
    const std::filesystem::path shm = "/dev/shm";
    if (std::filesystem::is_directory(shm, ec) && ::access(shm.c_str(), W_OK) == 0) return shm;
    return std::filesystem::temp_directory_path();
  }
  std::filesystem::path dir_;
  std::unique_ptr<state::StateStore> store_;
};

class FaultInjection : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    store_ = &state_.open();
    rig_ = make_rig(GetParam().target);
    if (!rig_) GTEST_SKIP() << name_of(GetParam().target) << " is not built";
    n_ = rig_->users();
    config::HttpSettings http = conformance::http_settings();
    // The sleeper only records: back-offs and Retry-After never wait.
    if (GetParam().kind == FaultKind::kDelay) http.timeout = kShortTimeout;
    target_ = rig_->make_target(http, [this](milliseconds d) {
      std::lock_guard lock(sleeps_mu_);
      sleeps_.push_back(d);
    });
    const auto& caps = target_->capabilities();
    job_.name = "fault";
    job_.source = "list";
    job_.target = "target";
    job_.on_missing = caps.detach ? config::OnMissing::kDetach : config::OnMissing::kIgnore;
    // Not what is tested here (Healvi's moved users count as detaches too).
    job_.max_detach.enabled = false;
    present_.assign(static_cast<std::size_t>(n_), true);
    changed_.assign(static_cast<std::size_t>(n_), false);
    for (int i = 0; i < n_; ++i) source_.records.push_back(rig_->harness().record(i));
  }

  engine::RunReport run() {
    engine::SyncEngine engine(job_, *store_, source_, *target_, rig_->harness().mapping());
    return engine.run({});
  }

  // Every second write request fails; a delay, slow by design, once per run.
  void start_faults() {
    testing::FaultSpec spec;
    spec.kind = GetParam().kind;
    spec.phase = GetParam().phase;
    spec.delay = kDelay;
    if (!GetParam().reads_too) spec.method = rig_->write_method();
    if (spec.kind == FaultKind::kDelay) {
      rig_->faults().add(spec);
    } else {
      rig_->faults().every(2, spec);
    }
  }

  // A run with the faults on, then the faults off: one run puts everything
  // right, and the next finds nothing to do.
  void sync_through_faults() {
    const std::size_t faults_before = rig_->faults().faults_applied();
    start_faults();
    const auto faulty = run();
    rig_->faults().clear();
    EXPECT_GT(rig_->faults().faults_applied(), faults_before) << "no request met the fault";

    const auto settle = run();
    EXPECT_EQ(settle.outcome, engine::RunOutcome::kOk) << describe(settle) << "\nthe run with faults:" << describe(faulty);
    const auto quiet = run();
    EXPECT_EQ(quiet.outcome, engine::RunOutcome::kOk) << describe(quiet);
    EXPECT_EQ(quiet.counts.created + quiet.counts.updated + quiet.counts.detached, 0u)
        << "the run after the one that put things right still pushed something" << describe(quiet);
    if (GetParam().kind == FaultKind::k429) {
      std::lock_guard lock(sleeps_mu_);
      EXPECT_TRUE(std::any_of(sleeps_.begin(), sleeps_.end(), [](milliseconds d) { return d >= std::chrono::seconds(1); }))
          << "Retry-After: 1 was not honoured (" << sleeps_.size() << " sleeps)";
    }
  }

  // Users i % 7 == 3 change; users i % 17 == 5 leave the source.
  void change_and_remove_users() {
    source_.records.clear();
    for (int i = 0; i < n_; ++i) {
      const auto k = static_cast<std::size_t>(i);
      if (i % 17 == 5) {
        present_[k] = !target_->capabilities().detach;  // without detach the user stays
        continue;
      }
      changed_[k] = i % 7 == 3 && target_->capabilities().update;
      source_.records.push_back(changed_[k] ? rig_->changed_record(i) : rig_->harness().record(i));
    }
  }

  // Mismatches are collected per check and reported once, naming the users.
  void expect_server_equals_source() {
    auto& h = rig_->harness();
    const auto copies = rig_->copies();
    std::string missing, extra, twice, stale;
    std::size_t expected_held = 0;
    for (int i = 0; i < n_; ++i) {
      const auto k = static_cast<std::size_t>(i);
      const std::string who = " " + std::to_string(i);
      expected_held += present_[k];
      if (copies[k] > 1) twice += who;
      if (present_[k] && copies[k] == 0) missing += who;
      if (!present_[k] && copies[k] > 0) extra += who;
      if (present_[k] && copies[k] > 0 && h.shows_update(i) != changed_[k]) stale += who;
    }
    EXPECT_EQ(missing, "") << "users the server lacks";
    EXPECT_EQ(extra, "") << "users the server still has after they left the source";
    EXPECT_EQ(twice, "") << "users the server has twice";
    EXPECT_EQ(stale, "") << "users whose change the server does not show (or shows wrongly)";
    EXPECT_EQ(h.users_held(), expected_held);

    std::string created_twice;
    for (const auto& [user, n] : rig_->creates(rig_->faults().log())) {
      if (n > 1) created_twice += " " + user + " (" + std::to_string(n) + ")";
    }
    EXPECT_EQ(created_twice, "") << "users the server processed more than one create for";

    std::map<std::string, std::string> snapshot;  // key → target id
    store_->reader(job_.name)->for_each([&](std::string_view key, const core::SnapshotEntry& e) {
      snapshot.emplace(std::string(key), e.target_id);
      return true;
    });
    const auto ids = h.server_ids(n_);
    std::set<std::string> expected_keys, keys;
    std::string wrong_ids;
    for (int i = 0; i < n_; ++i) {
      if (!present_[static_cast<std::size_t>(i)]) continue;
      const std::string key = "user-" + std::to_string(i);
      expected_keys.insert(key);
      const auto it = snapshot.find(key);
      if (it == snapshot.end() || (rig_->may_lack_id() && it->second.empty())) continue;
      const std::string want = rig_->expected_id(i, changed_[static_cast<std::size_t>(i)], ids);
      if (it->second != want) wrong_ids += " " + key + " has '" + it->second + "', the server '" + want + "';";
    }
    for (const auto& [key, id] : snapshot) keys.insert(key);
    EXPECT_EQ(keys, expected_keys) << "the snapshot holds exactly the users on the server";
    EXPECT_EQ(wrong_ids, "") << "snapshot ids that are not the server's";
  }

  static std::string describe(const engine::RunReport& r) {
    std::string s = "\n  outcome " + std::string(engine::to_string(r.outcome)) + " " + r.error + "; " +
                    r.counts.to_json().dump();
    std::size_t shown = 0;
    for (const auto& p : r.problems) {
      if (++shown > 5) break;
      s += "\n  " + p.key + " " + p.stage + " " + p.outcome + ": " + p.message;
    }
    return s;
  }

  bool perscom_create_after_processing() const {
    return GetParam().target == TargetKind::kPerscom &&
           (GetParam().phase == FaultPhase::kAfter || GetParam().kind == FaultKind::kPartialResults);
  }

  std::unique_ptr<Rig> rig_;
  int n_ = 0;
  std::unique_ptr<core::Target> target_;
  StateDir state_;
  state::StateStore* store_ = nullptr;
  config::JobConfig job_;
  ListSource source_;
  std::vector<bool> present_, changed_;  // per user: on the server; changed (visibly)
  std::mutex sleeps_mu_;
  std::vector<milliseconds> sleeps_;
};

class FaultsDuringCreates : public FaultInjection {};
class FaultsDuringUpdatesAndDetaches : public FaultInjection {};

TEST_P(FaultsDuringCreates, EndWithTheSourceOnTheServerOnceTheFaultsStop) {
  if (perscom_create_after_processing() && !kOutboxReconciliation) {
    GTEST_SKIP() << "needs outbox reconciliation";
  }
  sync_through_faults();
  expect_server_equals_source();
}

TEST_P(FaultsDuringUpdatesAndDetaches, EndWithTheSourceOnTheServerOnceTheFaultsStop) {
  const auto& caps = target_->capabilities();
  if (!caps.update && !caps.detach) GTEST_SKIP() << "create-only: nothing but creates is ever sent";
  const auto created = run();
  ASSERT_EQ(created.outcome, engine::RunOutcome::kOk) << describe(created);
  change_and_remove_users();
  sync_through_faults();
  expect_server_equals_source();
}

// Every fault, before and after the server acts, against each target.
std::vector<Case> every_case(std::vector<TargetKind> targets, bool reads_too = false) {
  std::vector<Case> out;
  for (TargetKind t : targets) {
    for (FaultKind k : {FaultKind::k429, FaultKind::k500, FaultKind::kDelay, FaultKind::kClose,
                        FaultKind::kMalformedJson, FaultKind::kTruncatedBody, FaultKind::kWrongShape}) {
      for (FaultPhase p : {FaultPhase::kBefore, FaultPhase::kAfter}) out.push_back({t, k, p, reads_too});
    }
    // auth_sync_user answers one user with a bare string: no list to cut.
    if (t != TargetKind::kAuthSyncUser) out.push_back({t, FaultKind::kPartialResults, FaultPhase::kAfter, reads_too});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(EveryTarget, FaultsDuringCreates,
                         ::testing::ValuesIn(every_case({TargetKind::kPerscom, TargetKind::kHesh, TargetKind::kRoyalti,
                                                         TargetKind::kHealvi, TargetKind::kAuthSyncUser})),
                         case_name);
// Only these targets are ever sent updates or detaches.
INSTANTIATE_TEST_SUITE_P(EveryTarget, FaultsDuringUpdatesAndDetaches,
                         ::testing::ValuesIn(every_case({TargetKind::kPerscom, TargetKind::kHealvi,
                                                         TargetKind::kAuthSyncUser})),
                         case_name);
// Healvi reads the customer's whole set before it sends one: that GET fails too.
INSTANTIATE_TEST_SUITE_P(FullSetRead, FaultsDuringCreates,
                         ::testing::ValuesIn(every_case({TargetKind::kHealvi}, true)), case_name);
INSTANTIATE_TEST_SUITE_P(FullSetRead, FaultsDuringUpdatesAndDetaches,
                         ::testing::ValuesIn(every_case({TargetKind::kHealvi}, true)), case_name);

}  // namespace
}  // namespace dirsync::fault
