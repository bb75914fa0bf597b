// The shared target conformance suite: the contract of core/target.h checked
// the same way for every target, against its loopback test server (one typed
// fixture every target instantiates, as osquery's plugin_tests.h does for its
// storage backends). A target's quirks are tested in its own folder; here only
// what every target owes the engine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/sync_engine.h"
#include "state/state_store.h"
#include "tests/connectors/conformance/harnesses.h"

namespace dirsync::conformance {
namespace {

using core::Change;
using core::OutcomeKind;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;

template <typename H>
class TargetConformance : public ::testing::Test {
 protected:
  Harness& harness() { return harness_; }

  // The recording sleeper may be called from several threads (targets that
  // send concurrently): it takes a lock.
  std::unique_ptr<core::Target> target(std::size_t batch_size = 0) {
    return harness_.make_target(
        [this](milliseconds d) {
          std::lock_guard<std::mutex> lock(sleeps_mu_);
          sleeps_.push_back(d);
        },
        batch_size);
  }

  std::vector<Change> creates(int n, int from = 0) const {
    std::vector<Change> out;
    for (int i = from; i < from + n; ++i) out.push_back(harness_.create(i));
    return out;
  }

  // The write requests a batch of n changes takes when nothing fails.
  std::size_t requests_for(std::size_t n) const { return harness_.one_request_per_user() ? n : 1; }

  // Every outcome, for failure messages.
  static std::string describe(const std::vector<core::Outcome>& outcomes) {
    std::string s;
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      s += "\n  [" + std::to_string(i) + "] " + core::to_string(outcomes[i].kind) + " id='" + outcomes[i].target_id +
           "' " + outcomes[i].message;
    }
    return s;
  }

  // Nobody on the server twice, and every applied create really there.
  void expect_no_duplicate_and_applied_means_held(const std::vector<core::Outcome>& outcomes, int from = 0) {
    const auto copies = harness_.copies_of_first(from + static_cast<int>(outcomes.size()));
    for (std::size_t k = 0; k < outcomes.size(); ++k) {
      const std::size_t i = static_cast<std::size_t>(from) + k;
      EXPECT_LE(copies[i], 1u) << "user " << i << " exists twice on the server";
      if (outcomes[k].kind == OutcomeKind::kApplied) {
        EXPECT_EQ(copies[i], 1u) << "user " << i << " is applied but the server does not have it";
      }
    }
  }

  H harness_;
  std::mutex sleeps_mu_;
  std::vector<milliseconds> sleeps_;
};

struct HarnessNames {
  template <typename H>
  static std::string GetName(int) {
    if (std::is_same_v<H, PerscomHarness>) return "Perscom";
    if (std::is_same_v<H, RoyaltiHarness>) return "Royalti";
    if (std::is_same_v<H, HealviHarness>) return "Healvi";
#ifdef DIRSYNC_CONFORMANCE_HESH
    if (std::is_same_v<H, HeshHarness>) return "Hesh";
#endif
#ifdef DIRSYNC_CONFORMANCE_AUTH_SYNC_USER
    if (std::is_same_v<H, AuthSyncUserHarness>) return "AuthSyncUser";
#endif
    return "Unknown";
  }
};

using Harnesses = ::testing::Types<PerscomHarness, RoyaltiHarness, HealviHarness
#ifdef DIRSYNC_CONFORMANCE_HESH
                                   ,
                                   HeshHarness
#endif
#ifdef DIRSYNC_CONFORMANCE_AUTH_SYNC_USER
                                   ,
                                   AuthSyncUserHarness
#endif
                                   >;
TYPED_TEST_SUITE(TargetConformance, Harnesses, HarnessNames);

TYPED_TEST(TargetConformance, ReturnsExactlyOneOutcomePerChangeInOrder) {
  auto t = this->target();
  const auto& caps = t->capabilities();
  ASSERT_GE(t->batch_size(), 1u);
  ASSERT_LE(t->batch_size(), caps.max_batch);
  std::size_t n = this->harness().whole_set_size();
  if (!caps.full_set) {
    if (this->harness().batch_size_configurable()) {
      EXPECT_EQ(t->batch_size(), caps.max_batch) << "a configured batch size above max_batch is clamped to it";
    }
    n = t->batch_size();
  }
  const auto batch = this->creates(static_cast<int>(n));
  auto result = t->apply(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->size(), n);
  const auto ids = this->harness().server_ids(static_cast<int>(n));
  for (std::size_t k = 0; k < n; ++k) {
    ASSERT_EQ(result.value()[k].kind, OutcomeKind::kApplied) << k << this->describe(result.value());
    if (ids) {
      EXPECT_EQ(result.value()[k].target_id, (*ids)[k]) << "outcome " << k << " carries another user's id";
    }
  }
  EXPECT_EQ(this->harness().users_held(), n);
  EXPECT_EQ(this->harness().write_requests(), this->requests_for(n))
      << "a batch of batch_size() changes is one request (one per user where the API takes one)";
  this->expect_no_duplicate_and_applied_means_held(result.value());
}

TYPED_TEST(TargetConformance, AppliesUpdatesAndDetachesOfUsersItCreated) {
  auto t = this->target();
  const auto& caps = t->capabilities();
  if (!caps.update && !caps.detach) GTEST_SKIP() << "create-only target";
  constexpr int kUsers = 6;
  auto created = t->apply(this->creates(kUsers));
  ASSERT_TRUE(created.ok()) << created.error().message;
  ASSERT_EQ(created->size(), static_cast<std::size_t>(kUsers));
  for (const auto& o : created.value()) ASSERT_EQ(o.kind, OutcomeKind::kApplied) << o.message;

  // Users 0-2 are updated, 3-5 detached (each where the target can): one
  // mixed batch for a full-set target, a batch per operation otherwise
  // (core/target.h).
  std::vector<Change> updates, detaches;
  for (int i = 0; i < kUsers; ++i) {
    const std::string& id = created.value()[i].target_id;
    if (i < 3 && caps.update) {
      auto c = this->harness().update(i, id);
      ASSERT_TRUE(c.has_value()) << "the target can update but the harness has no update";
      updates.push_back(std::move(*c));
    } else if (i >= 3 && caps.detach) {
      auto c = this->harness().detach(i, id);
      ASSERT_TRUE(c.has_value()) << "the target can detach but the harness has no detach";
      detaches.push_back(std::move(*c));
    }
  }
  std::vector<std::vector<Change>> batches;
  if (caps.full_set) {
    batches.push_back(updates);
    batches.back().insert(batches.back().end(), detaches.begin(), detaches.end());
  } else {
    for (auto* b : {&updates, &detaches}) {
      if (!b->empty()) batches.push_back(*b);
    }
  }
  for (const auto& batch : batches) {
    auto result = t->apply(batch);
    ASSERT_TRUE(result.ok()) << result.error().message;
    ASSERT_EQ(result->size(), batch.size());
    for (const auto& o : result.value()) EXPECT_EQ(o.kind, OutcomeKind::kApplied) << this->describe(result.value());
  }
  if (caps.update) {
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(this->harness().shows_update(i)) << "user " << i;
  }
  if (caps.detach) {
    for (int i = 3; i < kUsers; ++i) EXPECT_EQ(this->harness().copies(i), 0u) << "user " << i << " still there";
  }
  EXPECT_EQ(this->harness().users_held(), caps.detach ? 3u : static_cast<std::size_t>(kUsers));
}

TYPED_TEST(TargetConformance, HonoursRetryAfterOn429) {
  static constexpr int kRetryAfterSeconds = 7;
  this->harness().inject(Fault::k429, 1, kRetryAfterSeconds);
  auto result = this->target()->apply(this->creates(3));
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->size(), 3u);
  for (const auto& o : result.value()) EXPECT_EQ(o.kind, OutcomeKind::kApplied) << this->describe(result.value());
  // The harness leaves retry_after_max at its default (120 s), above 7 s.
  EXPECT_TRUE(std::any_of(this->sleeps_.begin(), this->sleeps_.end(),
                          [](milliseconds d) { return d >= std::chrono::seconds(kRetryAfterSeconds); }))
      << "no recorded sleep of at least " << kRetryAfterSeconds << " s (" << this->sleeps_.size() << " sleeps)";
  EXPECT_EQ(this->harness().write_requests(), this->requests_for(3) + 1)
      << "the 429, then the request that went through";
  EXPECT_EQ(this->harness().users_held(), 3u);
}

TYPED_TEST(TargetConformance, NeverDuplicatesACreateAfterA500) {
  this->harness().inject(Fault::k500);
  auto result = this->target()->apply(this->creates(3));
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->size(), 3u);
  if (this->harness().create_is_safe_to_resend()) {
    // The API skips or upserts what it has: the request is sent again.
    for (const auto& o : result.value()) EXPECT_EQ(o.kind, OutcomeKind::kApplied) << this->describe(result.value());
    EXPECT_EQ(this->harness().write_requests(), this->requests_for(3) + 1);
    EXPECT_EQ(this->harness().users_held(), 3u);
  } else {
    for (const auto& o : result.value()) EXPECT_EQ(o.kind, OutcomeKind::kUnknown) << this->describe(result.value());
    EXPECT_EQ(this->harness().write_requests(), this->requests_for(3)) << "a create that may have landed is never re-sent";
    EXPECT_EQ(this->harness().users_held(), 0u) << "this 500 processed nothing";
  }
  this->expect_no_duplicate_and_applied_means_held(result.value());
}

TYPED_TEST(TargetConformance, NeverDuplicatesACreateWhenTheConnectionDropsBeforeProcessing) {
  this->harness().inject(Fault::kClose);
  auto result = this->target()->apply(this->creates(3));
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->size(), 3u);
  if (this->harness().create_is_safe_to_resend()) {
    for (const auto& o : result.value()) EXPECT_EQ(o.kind, OutcomeKind::kApplied) << this->describe(result.value());
    EXPECT_EQ(this->harness().write_requests(), this->requests_for(3) + 1);
    EXPECT_EQ(this->harness().users_held(), 3u);
  } else {
    // The client cannot tell this from a server that processed the request.
    for (const auto& o : result.value()) EXPECT_EQ(o.kind, OutcomeKind::kUnknown) << this->describe(result.value());
    EXPECT_EQ(this->harness().write_requests(), this->requests_for(3));
    EXPECT_EQ(this->harness().users_held(), 0u);
  }
  this->expect_no_duplicate_and_applied_means_held(result.value());
}

TYPED_TEST(TargetConformance, NeverDuplicatesACreateWhenTheAnswerIsLost) {
  // A first batch warms up a kept-alive connection: a client library may
  // replay a request on its own when a reused connection dies unanswered,
  // which must never happen to a create that is unsafe to repeat.
  auto t = this->target();
  constexpr int kWarm = 2;
  auto warm = t->apply(this->creates(kWarm, 100));
  ASSERT_TRUE(warm.ok()) << warm.error().message;
  const std::size_t before = this->harness().write_requests();

  this->harness().inject(Fault::kCloseAfterProcessing);
  auto result = t->apply(this->creates(3));
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->size(), 3u);
  for (const auto& o : result.value()) {
    EXPECT_TRUE(o.kind == OutcomeKind::kApplied || o.kind == OutcomeKind::kUnknown) << this->describe(result.value());
  }
  EXPECT_EQ(this->harness().users_held(), 3u + kWarm) << "the server processed the request before the connection dropped";
  if (this->harness().create_is_safe_to_resend()) {
    for (const auto& o : result.value()) EXPECT_EQ(o.kind, OutcomeKind::kApplied) << this->describe(result.value());
  } else {
    EXPECT_EQ(this->harness().write_requests(), before + 1) << "a create whose answer was lost is never re-sent";
  }
  this->expect_no_duplicate_and_applied_means_held(result.value());
}

TYPED_TEST(TargetConformance, RejectsWhatTheServerRefusesWithItsMessage) {
  std::vector<Change> batch = this->creates(5);
  batch[2] = this->harness().invalid_create(2);
  auto result = this->target()->apply(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->size(), 5u);
  EXPECT_EQ(result.value()[2].kind, OutcomeKind::kRejected) << this->describe(result.value());
  EXPECT_FALSE(result.value()[2].message.empty());
  for (int k : {0, 1, 3, 4}) {
    EXPECT_EQ(result.value()[k].kind, OutcomeKind::kApplied) << "valid change " << k << this->describe(result.value());
    EXPECT_EQ(this->harness().copies(k), 1u) << "user " << k;
  }
  EXPECT_EQ(this->harness().users_held(), 4u) << "the invalid user was not stored";
  EXPECT_GE(this->harness().write_requests(), 1u) << "the refusal came from the server, not a local check";
}

TYPED_TEST(TargetConformance, StopsWithAnAuthErrorOn401) {
  this->harness().refuse_credentials();
  auto result = this->target()->apply(this->creates(2));
  ASSERT_FALSE(result.ok()) << "a refused credential stops the job";
  EXPECT_EQ(result.error().kind, core::ErrorKind::kAuth) << result.error().message;
  EXPECT_FALSE(result.error().message.empty());
  for (const auto& secret : this->harness().secrets()) {
    EXPECT_THAT(result.error().message, Not(HasSubstr(secret)));
  }
  EXPECT_LE(this->harness().requests(), this->requests_for(2)) << "a 401 is not retried";
  EXPECT_EQ(this->harness().users_held(), 0u);
}

// ---------------------------------------------------------------- engine

// A source that serves prepared pages and calls `before_page(index)` before
// serving each one (to stage a fault between the engine's batches).
class ListSource : public core::Source {
 public:
  std::vector<core::Page> pages;
  std::function<void(std::size_t)> before_page;

  core::Result<std::unique_ptr<core::Pull>> start() override {
    class P : public core::Pull {
     public:
      explicit P(ListSource& s) : s_(s) {}
      core::Result<core::Page> next() override {
        if (s_.before_page) s_.before_page(i_);
        core::Page page = i_ < s_.pages.size() ? s_.pages[i_] : core::Page{};
        ++i_;
        if (i_ >= s_.pages.size()) page.last = true;
        return page;
      }

     private:
      ListSource& s_;
      std::size_t i_ = 0;
    };
    return std::unique_ptr<core::Pull>(std::make_unique<P>(*this));
  }
  std::string describe() const override { return "list"; }

  void set_records(const std::vector<core::Record>& records, std::size_t page_size) {
    pages.clear();
    for (std::size_t i = 0; i < records.size(); i += page_size) {
      core::Page p;
      for (std::size_t j = i; j < std::min(records.size(), i + page_size); ++j) p.records.push_back(records[j]);
      pages.push_back(std::move(p));
    }
  }
};

// Forwards to the real target and keeps every key's last outcome. It asks the
// engine for batches of at most `max_batch` (smaller batches are always within
// the contract), so that a target without a configurable batch size still
// gets several batches in a run.
class RecordingTarget : public core::Target {
 public:
  RecordingTarget(core::Target& inner, std::size_t max_batch) : inner_(inner), max_batch_(max_batch) {}
  const core::Capabilities& capabilities() const override { return inner_.capabilities(); }
  const std::vector<core::FieldSpec>& fields() const override { return inner_.fields(); }
  std::size_t batch_size() const override { return std::min(inner_.batch_size(), max_batch_); }
  std::string describe() const override { return inner_.describe(); }
  std::string pace(std::size_t creates, std::size_t updates, std::size_t detaches) const override {
    return inner_.pace(creates, updates, detaches);
  }
  core::CreateRecovery create_recovery() const override { return inner_.create_recovery(); }
  core::Result<std::vector<std::optional<core::Found>>> lookup(std::span<const Change> creates) override {
    return inner_.lookup(creates);
  }
  core::Result<std::vector<core::Outcome>> apply(std::span<const Change> batch) override {
    auto result = inner_.apply(batch);
    if (result.ok() && result->size() == batch.size()) {
      for (std::size_t i = 0; i < batch.size(); ++i) outcomes[batch[i].key] = result.value()[i].kind;
    }
    return result;
  }
  std::map<std::string, OutcomeKind> outcomes;

 private:
  core::Target& inner_;
  std::size_t max_batch_;
};

TYPED_TEST(TargetConformance, RecordsOnlyAcknowledgedChangesInTheSnapshot) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("dirsync-conformance-" + std::to_string(::getpid()) + "-" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name() + "-" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{dir};
  auto opened = state::StateStore::open(dir.string());
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto store = std::move(opened).value();

  constexpr std::size_t kBatch = 2;
  constexpr int kUsers = 6;
  auto real = this->target(kBatch);
  RecordingTarget recording(*real, kBatch);
  config::JobConfig job;
  job.name = "conformance";
  job.source = "list";
  job.target = "target";
  job.on_missing = real->capabilities().detach ? config::OnMissing::kDetach : config::OnMissing::kIgnore;

  std::vector<core::Record> records;
  for (int i = 0; i < kUsers; ++i) records.push_back(this->harness().record(i));
  ListSource source;
  source.set_records(records, kBatch);
  // The engine sends a batch as soon as it has batch_size() changes, so the
  // fault staged before page 1 hits the second batch (for a full-set target:
  // its one request, sent after the pull). Where a create is safe to re-send,
  // the server PROCESSES the request and drops the connection, on every
  // attempt: the users exist but were never acknowledged, and the second run
  // must not duplicate them. Where it is not, a 500 that processed nothing,
  // met once (the target must not retry it): the only fault after which an
  // unsafe create can be sent again by the next run.
  const bool safe = this->harness().create_is_safe_to_resend();
  source.before_page = [&](std::size_t page) {
    if (page != 1) return;
    if (safe) {
      // Enough to fail every attempt of every request of the batch, twice
      // over: libcurl itself replays an idempotent request once when a REUSED
      // connection dies without an answer. Faults left over hit the third
      // batch, which the checks allow for.
      this->harness().inject(Fault::kCloseAfterProcessing,
                             2 * kMaxAttempts * static_cast<int>(this->requests_for(kBatch)));
    } else {
      this->harness().inject(Fault::k500);
    }
  };

  auto snapshot_keys = [&] {
    std::set<std::string> keys;
    store->reader(job.name)->for_each([&](std::string_view key, const core::SnapshotEntry&) {
      keys.insert(std::string(key));
      return true;
    });
    return keys;
  };

  {
    engine::SyncEngine engine(job, *store, source, recording, this->harness().mapping());
    auto report = engine.run({});
    EXPECT_NE(report.outcome, engine::RunOutcome::kOk) << "the fault left changes unacknowledged";
    std::set<std::string> applied, not_applied;
    for (const auto& [key, kind] : recording.outcomes) (kind == OutcomeKind::kApplied ? applied : not_applied).insert(key);
    EXPECT_FALSE(not_applied.empty()) << "the fault had no effect";
    if (!real->capabilities().full_set) {
      EXPECT_FALSE(applied.empty()) << "the first batch went through";
    }
    EXPECT_EQ(snapshot_keys(), applied) << "the snapshot holds exactly what the target acknowledged";
    const auto copies = this->harness().copies_of_first(kUsers);
    for (int i = 0; i < kUsers; ++i) {
      EXPECT_LE(copies[i], 1u) << "user " << i;
      if (applied.count(records[i].key)) {
        EXPECT_EQ(copies[i], 1u) << "user " << i << " applied but absent";
      }
    }
    if (safe) {
      EXPECT_EQ(this->harness().users_held(), static_cast<std::size_t>(kUsers)) << "processed, unacknowledged";
    }
  }

  // The fault is gone: a second run brings server and snapshot to the full set.
  source.before_page = nullptr;
  this->harness().clear_faults();
  recording.outcomes.clear();
  {
    engine::SyncEngine engine(job, *store, source, recording, this->harness().mapping());
    auto report = engine.run({});
    EXPECT_EQ(report.outcome, engine::RunOutcome::kOk) << report.error;
    EXPECT_EQ(store->snapshot_size(job.name), static_cast<std::size_t>(kUsers));
    EXPECT_EQ(this->harness().users_held(), static_cast<std::size_t>(kUsers));
    const auto copies = this->harness().copies_of_first(kUsers);
    for (int i = 0; i < kUsers; ++i) EXPECT_EQ(copies[i], 1u) << "user " << i;
  }
}

}  // namespace
}  // namespace dirsync::conformance
