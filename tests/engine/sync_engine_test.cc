// The engine's rules, with an in-memory source and a scripted target in front
// of a real LMDB state store. Connectors are tested against real servers in
// tests/connectors; here only the engine's decisions are under test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "engine/registry.h"
#include "engine/report_format.h"
#include "engine/sync_engine.h"

namespace dirsync::engine {
namespace {

using ::testing::HasSubstr;

using core::Change;
using core::Op;
using core::Outcome;
using nlohmann::json;

core::Record rec(const std::string& key, const std::string& name) {
  core::Record r;
  r.key = key;
  r.set("name", {name});
  r.origin = "test:" + key;
  return r;
}

// A source that serves prepared pages, optionally failing at a page.
class ListSource : public core::Source {
 public:
  std::vector<core::Page> pages;
  int fail_at_page = -1;  // returns an Error instead of this page

  core::Result<std::unique_ptr<core::Pull>> start() override {
    class P : public core::Pull {
     public:
      explicit P(ListSource& s) : s_(s) {}
      core::Result<core::Page> next() override {
        if (static_cast<int>(i_) == s_.fail_at_page) return core::Error{core::ErrorKind::kSource, "connection reset"};
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

  void set_records(std::vector<core::Record> records, std::size_t page_size = 2) {
    pages.clear();
    for (std::size_t i = 0; i < records.size(); i += page_size) {
      core::Page p;
      for (std::size_t j = i; j < std::min(records.size(), i + page_size); ++j) p.records.push_back(records[j]);
      pages.push_back(std::move(p));
    }
    if (pages.empty()) pages.emplace_back();
  }
};

// A target that records what it was sent and answers from a script (default: applied).
class ScriptedTarget : public core::Target {
 public:
  std::vector<Change> sent;
  std::size_t calls = 0;
  std::map<std::string, Outcome> outcome_for;  // by key
  std::optional<core::Error> error;
  bool short_answer = false;
  std::size_t batch = 2;
  int next_id = 100;
  core::CreateRecovery recovery = core::CreateRecovery::kResend;
  std::map<std::string, core::Found> found_for;  // lookup answers by key (absent: not found)
  std::optional<core::Error> lookup_error;
  std::size_t lookups = 0;
  std::function<void()> on_apply;  // runs before each batch is answered

  const core::Capabilities& capabilities() const override { return caps; }
  const std::vector<core::FieldSpec>& fields() const override { return fields_; }
  std::size_t batch_size() const override { return batch; }
  std::string describe() const override { return "scripted"; }
  core::CreateRecovery create_recovery() const override { return recovery; }
  core::Result<std::vector<std::optional<core::Found>>> lookup(std::span<const Change> creates) override {
    ++lookups;
    if (lookup_error) return *lookup_error;
    std::vector<std::optional<core::Found>> out;
    for (const auto& c : creates) {
      auto it = found_for.find(c.key);
      out.push_back(it == found_for.end() ? std::nullopt : std::optional<core::Found>(it->second));
    }
    return out;
  }
  // set_managed calls, each with the members' keys, sorted (the engine's order is the snapshot's).
  std::vector<std::vector<std::string>> managed;
  void set_managed(std::vector<core::Member> members) override {
    std::vector<std::string> keys;
    for (const auto& m : members) keys.push_back(m.key);
    std::sort(keys.begin(), keys.end());
    managed.push_back(std::move(keys));
  }
  core::Result<std::vector<Outcome>> apply(std::span<const Change> changes) override {
    ++calls;
    if (on_apply) on_apply();
    batch_sizes.push_back(changes.size());
    if (error) return *error;
    std::vector<Outcome> out;
    for (const auto& c : changes) {
      sent.push_back(c);
      auto it = outcome_for.find(c.key);
      if (it != outcome_for.end()) out.push_back(it->second);
      else out.push_back(Outcome::applied(c.op == Op::kCreate ? std::to_string(next_id++) : ""));
    }
    if (short_answer) out.pop_back();
    return out;
  }
  std::size_t count(Op op) const {
    return static_cast<std::size_t>(std::count_if(sent.begin(), sent.end(), [&](const Change& c) { return c.op == op; }));
  }

  core::Capabilities caps{true, true, true, false, 1000};
  std::vector<std::size_t> batch_sizes;  // size of every apply() call

 private:
  std::vector<core::FieldSpec> fields_;
};

class SyncEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("dirsync-engine-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    job_.name = "job";
    job_.source = "src";
    job_.target = "tgt";
    job_.max_detach = {500, 10.0, 2, true};
    auto store = state::StateStore::open(dir_.string());
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(store).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  RunReport run(RunOptions opts = {}) {
    core::Mapping mapping({{"name", core::Template::parse("{name}"), core::FieldType::kString}});
    SyncEngine engine(job_, *store_, source_, target_, mapping);
    return engine.run(opts);
  }

  RunReport apply_plan(const std::vector<Change>& changes) {
    core::Mapping mapping({{"name", core::Template::parse("{name}"), core::FieldType::kString}});
    SyncEngine engine(job_, *store_, source_, target_, mapping);
    return engine.apply_plan(changes);
  }

  std::vector<core::Record> users(int n, int from = 1, const std::string& suffix = "") {
    std::vector<core::Record> out;
    for (int i = from; i < from + n; ++i) out.push_back(rec("u" + std::to_string(i), "User " + std::to_string(i) + suffix));
    return out;
  }

  std::filesystem::path dir_;
  config::JobConfig job_;
  std::unique_ptr<state::StateStore> store_;
  ListSource source_;
  ScriptedTarget target_;
};

TEST_F(SyncEngineTest, CreatesEveryNewRecordThenPushesNothingOnRerun) {
  source_.set_records(users(5));
  auto first = run();
  EXPECT_EQ(first.outcome, RunOutcome::kOk);
  EXPECT_EQ(first.counts.created, 5u);
  EXPECT_EQ(target_.calls, 3u);  // batches of 2
  EXPECT_EQ(store_->snapshot_size("job"), 5u);
  EXPECT_EQ(store_->get("job", "u1")->target_id, "100");

  target_.calls = 0;
  auto second = run();
  EXPECT_EQ(second.outcome, RunOutcome::kOk);
  EXPECT_EQ(second.counts.unchanged, 5u);
  EXPECT_EQ(second.counts.created + second.counts.updated + second.counts.detached, 0u);
  EXPECT_EQ(target_.calls, 0u);
}

TEST_F(SyncEngineTest, UpdatesChangedRecordsWithTheirTargetId) {
  source_.set_records(users(3));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  auto edited = users(3);
  edited[1] = rec("u2", "Renamed");
  source_.set_records(edited);
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.counts.updated, 1u);
  ASSERT_EQ(target_.sent.size(), 1u);
  EXPECT_EQ(target_.sent[0].op, Op::kUpdate);
  EXPECT_EQ(target_.sent[0].target_id, "101");
  EXPECT_EQ(target_.sent[0].changed_fields, std::vector<std::string>{"name"});
  EXPECT_EQ(store_->get("job", "u2")->payload, json({{"name", "Renamed"}}));
  EXPECT_EQ(store_->get("job", "u2")->target_id, "101");
  EXPECT_TRUE(target_.managed.empty()) << "only full-set targets are told every user the job manages";
}

TEST_F(SyncEngineTest, CommitsOnlyAcknowledgedRecords) {
  source_.set_records(users(4));
  target_.outcome_for["u2"] = Outcome::rejected("The resources.1.email has already been taken.");
  target_.outcome_for["u3"] = Outcome::unknown("HTTP 500 after the request was sent");
  target_.outcome_for["u4"] = Outcome::retry("HTTP 429");
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kPartial);
  EXPECT_EQ(report.counts.created, 1u);
  EXPECT_EQ(report.counts.rejected, 1u);
  EXPECT_EQ(report.counts.unknown, 1u);
  EXPECT_EQ(report.counts.retry, 1u);
  EXPECT_EQ(store_->snapshot_size("job"), 1u);
  EXPECT_TRUE(store_->get("job", "u1"));
  EXPECT_FALSE(store_->get("job", "u2"));
  ASSERT_EQ(report.problems.size(), 3u);
  EXPECT_EQ(report.problems[0].key, "u2");
  EXPECT_EQ(report.problems[0].message, "The resources.1.email has already been taken.");

  // What was not acknowledged comes back in the next run.
  target_.outcome_for.clear();
  target_.sent.clear();
  auto again = run();
  EXPECT_EQ(again.counts.created, 3u);
  EXPECT_EQ(store_->snapshot_size("job"), 4u);
}

TEST_F(SyncEngineTest, DetachesUsersGoneFromACompletePull) {
  source_.set_records(users(30));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  auto fewer = users(30);
  fewer.erase(fewer.begin() + 5);  // u6 leaves
  source_.set_records(fewer);
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kOk);
  EXPECT_EQ(report.counts.detached, 1u);
  ASSERT_EQ(target_.sent.size(), 1u);
  EXPECT_EQ(target_.sent[0].op, Op::kDetach);
  EXPECT_EQ(target_.sent[0].key, "u6");
  EXPECT_EQ(target_.sent[0].target_id, "105");
  EXPECT_FALSE(store_->get("job", "u6"));
  EXPECT_EQ(store_->snapshot_size("job"), 29u);
}

TEST_F(SyncEngineTest, FailedPullDetachesNothingButKeepsWhatWasPushed) {
  source_.set_records(users(10));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  // The new pull has only two pages' worth before the source fails.
  auto partial = users(4);
  partial.push_back(rec("new1", "Newcomer"));
  source_.set_records(partial);
  source_.pages.emplace_back();  // a page that will fail
  source_.fail_at_page = 3;
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kFailed);
  EXPECT_EQ(report.error, "source 'src' failed mid-pull: connection reset");
  EXPECT_FALSE(report.pull_complete);
  EXPECT_EQ(target_.count(Op::kDetach), 0u);
  EXPECT_EQ(report.counts.created, 1u);  // the newcomer still went out
  EXPECT_EQ(store_->snapshot_size("job"), 11u);
}

TEST_F(SyncEngineTest, SourceThatCannotStartFailsTheRun) {
  source_.set_records(users(3));
  source_.fail_at_page = 0;
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kFailed);
  EXPECT_EQ(target_.calls, 0u);
}

TEST_F(SyncEngineTest, RowWithUnreadableKeyMakesThePullIncomplete) {
  source_.set_records(users(10));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  source_.set_records(users(5));
  source_.pages[0].issues.push_back({"", "users.csv:7", "row has 2 fields, expected 4"});
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kPartial);
  EXPECT_FALSE(report.pull_complete);
  EXPECT_EQ(target_.count(Op::kDetach), 0u);
  EXPECT_EQ(store_->snapshot_size("job"), 10u);
  EXPECT_EQ(report.problems.at(0).origin, "users.csv:7");
}

TEST_F(SyncEngineTest, BadRowWithReadableKeyProtectsThatKeyOnly) {
  source_.set_records(users(30));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  auto rest = users(28);  // u29 and u30 are gone ...
  source_.set_records(rest);
  source_.pages[0].issues.push_back({"u30", "users.csv:31", "duplicate key 'u30' (also on line 32)"});  // ... u30 is bad
  target_.sent.clear();
  auto report = run();
  EXPECT_TRUE(report.pull_complete);
  ASSERT_EQ(target_.count(Op::kDetach), 1u);
  EXPECT_EQ(target_.sent[0].key, "u29");
  EXPECT_TRUE(store_->get("job", "u30"));
}

TEST_F(SyncEngineTest, MappingErrorIsReportedAndProtectsTheKey) {
  source_.set_records(users(3));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  auto recs = users(3);
  recs[2].attributes.clear();  // u3 lost its name attribute
  source_.set_records(recs);
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kPartial);
  EXPECT_EQ(report.counts.mapping_errors, 1u);
  EXPECT_EQ(report.problems.at(0).message, "field 'name': attribute 'name' is missing");
  EXPECT_EQ(report.problems.at(0).origin, "test:u3");
  EXPECT_TRUE(store_->get("job", "u3"));
  EXPECT_EQ(report.counts.detached, 0u);
}

TEST_F(SyncEngineTest, EmptyPullOverPopulatedSnapshotIsAFailureNotEveryoneLeaving) {
  source_.set_records(users(3));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  source_.set_records({});
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kFailed);
  EXPECT_EQ(report.error,
            "source 'src' returned no records while the snapshot holds 3 users; treating that as a failed pull "
            "(nothing was detached)");
  EXPECT_TRUE(target_.sent.empty());
  EXPECT_EQ(store_->snapshot_size("job"), 3u);
}

TEST_F(SyncEngineTest, MaxDetachBlocksEveryDetachButCreatesAndUpdatesStillGoOut) {
  source_.set_records(users(40));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  // 10 of 40 leave (limit: max(2, min(500, 10% of 40 = 4)) = 4), one joins, one changes.
  auto next = users(30);
  next[0] = rec("u1", "Changed");
  next.push_back(rec("n1", "Newcomer"));
  source_.set_records(next);
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kBlocked);
  EXPECT_EQ(report.counts.detach_planned, 10u);
  EXPECT_EQ(report.counts.detached, 0u);
  EXPECT_EQ(report.counts.created, 1u);
  EXPECT_EQ(report.counts.updated, 1u);
  EXPECT_EQ(target_.count(Op::kDetach), 0u);
  EXPECT_EQ(store_->snapshot_size("job"), 41u);
  EXPECT_EQ(report.blocked_note,
            "10 detaches exceed the limit of 4 for 40 users (max_detach: count 500, percent 10.0, floor 2); no "
            "detach was applied. Review them with 'dirsync plan job', then raise max_detach for the job if they "
            "are intended.");
}

TEST_F(SyncEngineTest, DetachLimitUsesTheFloorForSmallDirectories) {
  config::DetachGuard g{500, 10.0, 5, true};
  EXPECT_EQ(SyncEngine::detach_limit(g, 20), 5u);
  EXPECT_EQ(SyncEngine::detach_limit(g, 1000), 100u);
  EXPECT_EQ(SyncEngine::detach_limit(g, 100000), 500u);
}

TEST_F(SyncEngineTest, OnMissingIgnoreNeverDetaches) {
  job_.on_missing = config::OnMissing::kIgnore;
  source_.set_records(users(3));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  source_.set_records(users(2));
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kOk);
  EXPECT_EQ(target_.count(Op::kDetach), 0u);
  EXPECT_EQ(store_->snapshot_size("job"), 3u);
}

TEST_F(SyncEngineTest, DryRunTouchesNeitherTargetNorSnapshot) {
  source_.set_records(users(3));
  auto report = run({Mode::kSync, true});
  EXPECT_EQ(report.plan.size(), 3u);
  EXPECT_EQ(report.counts.created, 3u);
  EXPECT_EQ(target_.calls, 0u);
  EXPECT_EQ(store_->snapshot_size("job"), 0u);
  EXPECT_TRUE(store_->runs("job", 10).empty());
}

TEST_F(SyncEngineTest, AuthErrorStopsTheJobAndRecordsNothing) {
  source_.set_records(users(6));
  target_.error = core::Error{core::ErrorKind::kAuth, "PERSCOM refused the token (HTTP 401): Unauthenticated."};
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kFailed);
  EXPECT_EQ(report.error, "authentication error: PERSCOM refused the token (HTTP 401): Unauthenticated.");
  EXPECT_EQ(target_.calls, 1u);  // stopped at the first batch
  EXPECT_EQ(store_->snapshot_size("job"), 0u);
  auto runs = store_->runs("job", 1);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].outcome, "failed");
}

TEST_F(SyncEngineTest, WrongNumberOfOutcomesMovesNothing) {
  source_.set_records(users(2));
  target_.short_answer = true;
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kFailed);
  EXPECT_EQ(report.error, "target 'tgt' returned 1 outcomes for 2 changes; nothing of that batch was recorded");
  EXPECT_EQ(store_->snapshot_size("job"), 0u);
}

TEST_F(SyncEngineTest, ResyncPushesEveryRecordAgain) {
  source_.set_records(users(3));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  target_.sent.clear();
  auto report = run({Mode::kResync, false});
  EXPECT_EQ(report.counts.updated, 3u);
  ASSERT_EQ(target_.sent.size(), 3u);
  for (const auto& c : target_.sent) {
    EXPECT_EQ(c.op, Op::kUpdate);
    EXPECT_TRUE(c.resync);
  }
  EXPECT_EQ(store_->runs("job", 1).at(0).mode, "resync");
}

TEST_F(SyncEngineTest, SecondRunOfTheSameJobIsRefusedWhileOneHoldsTheLock) {
  auto held = state::JobLock::acquire(dir_.string(), "job");
  ASSERT_TRUE(held.ok());
  source_.set_records(users(1));
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kFailed);
  EXPECT_EQ(report.error, "job 'job' is running (pid " + std::to_string(::getpid()) + ")");
  EXPECT_TRUE(report.busy);
  EXPECT_EQ(target_.calls, 0u);
}

TEST_F(SyncEngineTest, RecordsEachRunInTheHistory) {
  source_.set_records(users(2));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  auto runs = store_->runs("job", 10);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].counts["created"], 0);  // newest first
  EXPECT_EQ(runs[1].counts["created"], 2);
  EXPECT_EQ(runs[0].outcome, "ok");
}

TEST_F(SyncEngineTest, CreateOnlyTargetSkipsUpdatesAndResyncResendsThemAsCreates) {
  target_.caps = {true, false, false, false, 1000};
  job_.on_missing = config::OnMissing::kIgnore;
  source_.set_records(users(3));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  auto edited = users(3);
  edited[0] = rec("u1", "Renamed");
  edited[1] = rec("u2", "Renamed too");
  source_.set_records(edited);
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.counts.skipped, 2u);
  EXPECT_TRUE(target_.sent.empty());
  EXPECT_EQ(store_->get("job", "u1")->payload, json({{"name", "User 1"}}));  // the target was not told
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_EQ(report.notes[0].message,
            "2 changed users were not pushed: target 'tgt' cannot update users (resync re-sends them as creates)");

  // The target answers as create-only APIs do for users they already have:
  // applied, no id, a note. The snapshot keeps the id it had.
  target_.outcome_for["u2"] = Outcome::applied("", "already existed (skipped by the target)");
  auto resync = run({Mode::kResync, false});
  ASSERT_EQ(target_.sent.size(), 3u);
  for (const auto& c : target_.sent) {
    EXPECT_EQ(c.op, Op::kCreate);
    EXPECT_TRUE(c.resync);
  }
  // u1 was created again (a new id); u2 was only confirmed as existing: the
  // snapshot keeps u2's old payload, which is what the target has.
  EXPECT_EQ(store_->get("job", "u1")->payload, json({{"name", "Renamed"}}));
  EXPECT_EQ(store_->get("job", "u2")->target_id, "101");
  EXPECT_EQ(store_->get("job", "u2")->payload, json({{"name", "User 2"}}));
  ASSERT_EQ(resync.notes.size(), 1u);
  EXPECT_EQ(resync.notes[0].key, "u2");
  EXPECT_EQ(resync.notes[0].message, "already existed (skipped by the target)");
}

TEST_F(SyncEngineTest, FullSetTargetGetsEveryChangeOfTheRunInOneCall) {
  target_.caps = {true, true, true, true, SIZE_MAX};
  source_.set_records(users(30));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  EXPECT_EQ(target_.batch_sizes, std::vector<std::size_t>{30});
  auto next = users(29);  // u30 leaves
  next[0] = rec("u1", "Changed");
  next.push_back(rec("n1", "New"));
  source_.set_records(next);
  target_.sent.clear();
  target_.batch_sizes.clear();
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kOk);
  EXPECT_EQ(target_.batch_sizes, std::vector<std::size_t>{3});
  EXPECT_EQ(target_.count(Op::kCreate), 1u);
  EXPECT_EQ(target_.count(Op::kUpdate), 1u);
  EXPECT_EQ(target_.count(Op::kDetach), 1u);
  EXPECT_EQ(store_->snapshot_size("job"), 30u);
}

TEST_F(SyncEngineTest, FullSetTargetAfterAnIncompletePullGetsNoDetaches) {
  target_.caps = {true, true, true, true, SIZE_MAX};
  source_.set_records(users(10));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  auto next = users(5);
  next.push_back(rec("n1", "New"));
  source_.set_records(next);
  source_.pages[0].issues.push_back({"", "users.csv:3", "unterminated quoted field"});
  target_.sent.clear();
  target_.batch_sizes.clear();
  auto report = run();
  EXPECT_FALSE(report.pull_complete);
  EXPECT_EQ(target_.batch_sizes, std::vector<std::size_t>{1});
  EXPECT_EQ(target_.count(Op::kCreate), 1u);
  EXPECT_EQ(target_.count(Op::kDetach), 0u);
}

TEST_F(SyncEngineTest, StopsWhenRequestAfterRequestFailsTheSameWay) {
  source_.set_records(users(20));
  for (int i = 1; i <= 20; ++i) target_.outcome_for["u" + std::to_string(i)] = Outcome::rejected("HTTP 404: Not Found");
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kFailed);
  EXPECT_EQ(report.error,
            "stopped after 3 requests in a row to target 'tgt' failed the same way: HTTP 404: Not Found (check the "
            "target's base_url, credentials and the job's mapping)");
  EXPECT_EQ(target_.calls, 3u);  // not ten
  EXPECT_EQ(store_->snapshot_size("job"), 0u);
}

TEST_F(SyncEngineTest, DifferentRejectionsDoNotTripTheBreaker) {
  source_.set_records(users(10));
  for (int i = 1; i <= 10; ++i) {
    target_.outcome_for["u" + std::to_string(i)] = Outcome::rejected("bad email for user " + std::to_string(i));
  }
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kPartial);
  EXPECT_EQ(report.counts.rejected, 10u);
  EXPECT_EQ(target_.calls, 5u);
}

TEST_F(SyncEngineTest, OnMissingUpdateMarksGoneUsersInsteadOfDetachingThem) {
  job_.on_missing = config::OnMissing::kUpdate;
  job_.missing_update = {{"active", false}};
  source_.set_records(users(30));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  source_.set_records(users(29));  // u30 leaves
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kOk);
  ASSERT_EQ(target_.sent.size(), 1u);
  EXPECT_EQ(target_.sent[0].op, Op::kUpdate);
  EXPECT_TRUE(target_.sent[0].missing);
  EXPECT_EQ(target_.sent[0].changed_fields, std::vector<std::string>{"active"});
  EXPECT_EQ(store_->get("job", "u30")->payload, json({{"name", "User 30"}, {"active", false}}));

  // Marked once; not again on the next run.
  target_.sent.clear();
  run();
  EXPECT_TRUE(target_.sent.empty());
  // Back in the source: the mapped payload restores the user.
  source_.set_records(users(30));
  run();
  ASSERT_EQ(target_.sent.size(), 1u);
  EXPECT_EQ(target_.sent[0].changed_fields, std::vector<std::string>{"active"});
  EXPECT_FALSE(target_.sent[0].missing);
}

TEST_F(SyncEngineTest, OnMissingUpdateCountsAgainstMaxDetach) {
  job_.on_missing = config::OnMissing::kUpdate;
  job_.missing_update = {{"active", false}};
  source_.set_records(users(30));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  source_.set_records(users(20));
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kBlocked);
  EXPECT_TRUE(target_.sent.empty());
}

}  // namespace
}  // namespace dirsync::engine

namespace dirsync::engine {
namespace {

// Records with a department, for filter tests.
std::vector<core::Record> staff(const std::vector<std::pair<std::string, std::string>>& key_dept) {
  std::vector<core::Record> out;
  for (const auto& [key, dept] : key_dept) {
    auto r = rec(key, "User " + key);
    r.set("dept", {dept});
    out.push_back(std::move(r));
  }
  return out;
}

TEST_F(SyncEngineTest, FilteredOutRecordsAreNeitherCreatedNorKeptFromDetach) {
  job_.filter = core::Filter(std::nullopt, core::Condition::equals("dept", "Contractors"));
  source_.set_records(staff({{"u1", "Sales"}, {"u2", "Contractors"}, {"u3", "Sales"}}));
  auto first = run();
  EXPECT_EQ(first.counts.created, 2u);
  EXPECT_EQ(first.counts.filtered, 1u);
  EXPECT_FALSE(store_->get("job", "u2")) << "a filtered-out record is never created";

  // u3 moves to the contractors: to this job it is gone, and is detached.
  source_.set_records(staff({{"u1", "Sales"}, {"u2", "Contractors"}, {"u3", "Contractors"}}));
  target_.sent.clear();
  auto second = run();
  EXPECT_EQ(second.counts.detached, 1u);
  ASSERT_EQ(target_.sent.size(), 1u);
  EXPECT_EQ(target_.sent[0].op, Op::kDetach);
  EXPECT_EQ(target_.sent[0].key, "u3");
  EXPECT_TRUE(target_.sent[0].filtered) << "the change says the filter is why";
  EXPECT_FALSE(store_->get("job", "u3"));
}

TEST_F(SyncEngineTest, PlanSaysWhichDetachesTheFilterCauses) {
  source_.set_records(staff({{"u1", "Sales"}, {"u2", "Sales"}, {"u3", "Sales"}}));
  ASSERT_EQ(run().counts.created, 3u);
  job_.filter = core::Filter(core::Condition::equals("dept", "Sales"), std::nullopt);
  source_.set_records(staff({{"u1", "Sales"}, {"u2", "HR"}}));  // u2 filtered, u3 gone
  auto plan = run({Mode::kSync, true});
  ASSERT_EQ(plan.plan.size(), 2u);
  std::map<std::string, bool> filtered;
  for (const auto& c : plan.plan) filtered[c.key] = c.filtered;
  EXPECT_TRUE(filtered.at("u2"));
  EXPECT_FALSE(filtered.at("u3"));
  const auto text = format_plan(plan);
  EXPECT_NE(text.find("- detach u2 (id 101)  [dropped by the job's filter]"), std::string::npos) << text;
  EXPECT_NE(text.find("- detach u3 (id 102)\n"), std::string::npos) << text;
  EXPECT_EQ(report_to_json(plan, true)["changes"][0]["filtered"], true);
}

// A filter regex that gives up (catastrophic backtracking) decides nothing: the
// record is reported and not sent, and its user is never detached for it.
TEST_F(SyncEngineTest, ARecordTheFilterCannotDecideIsReportedNotSentAndNotDetached) {
  job_.filter = core::Filter(std::nullopt, core::Condition::regex("dept", "(a+)+$"));
  source_.set_records(staff({{"u1", "Sales"}, {"u2", "HR"}}));
  ASSERT_EQ(run().counts.created, 2u);
  const std::string pathological = std::string(40, 'a') + "b";
  source_.set_records(staff({{"u1", "Sales"}, {"u2", pathological}, {"u3", pathological}}));
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kPartial);
  EXPECT_EQ(report.counts.invalid, 2u);
  EXPECT_EQ(report.counts.detached, 0u);
  EXPECT_TRUE(target_.sent.empty()) << "neither u2 (changed) nor u3 (new) is sent, nobody detached";
  EXPECT_TRUE(store_->get("job", "u2"));
  EXPECT_FALSE(store_->get("job", "u3"));
  ASSERT_EQ(report.problems.size(), 2u);
  EXPECT_EQ(report.problems[0].stage, "filter");
  EXPECT_EQ(report.problems[0].outcome, "invalid");
  EXPECT_NE(report.problems[0].message.find("undecided"), std::string::npos) << report.problems[0].message;
}

TEST_F(SyncEngineTest, AFilterThatDropsEveryRecordTripsTheEmptyPullGuard) {
  source_.set_records(users(3));
  ASSERT_EQ(run().counts.created, 3u);
  job_.filter = core::Filter(core::Condition::equals("dept", "Nobody"), std::nullopt);
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kFailed);
  EXPECT_NE(report.error.find("returned no records the job's filter keeps (it dropped 3)"), std::string::npos)
      << report.error;
  EXPECT_TRUE(target_.sent.empty());
  EXPECT_EQ(store_->snapshot_size("job"), 3u);
}

TEST_F(SyncEngineTest, ExplainsACreate) {
  source_.set_records(users(3));
  RunOptions opts{Mode::kSync, true, "u2"};
  auto report = run(opts);
  ASSERT_TRUE(report.explanation);
  const auto& ex = *report.explanation;
  EXPECT_TRUE(ex.in_source);
  EXPECT_EQ(ex.record.origin, "test:u2");
  EXPECT_EQ(ex.filter_reason, "no filter");
  EXPECT_EQ(ex.payload, json({{"name", "User 2"}}));
  EXPECT_FALSE(ex.snapshot);
  EXPECT_EQ(ex.action, "create");
  EXPECT_EQ(store_->snapshot_size("job"), 0u) << "explaining is a dry run";
  const auto text = format_explanation(report);
  EXPECT_NE(text.find("name: [\"User 2\"]"), std::string::npos) << text;
  EXPECT_NE(text.find("next sync:\n  create: "), std::string::npos) << text;
}

TEST_F(SyncEngineTest, ExplainsAnUpdateWithItsChangedFields) {
  source_.set_records(users(2));
  ASSERT_EQ(run().counts.created, 2u);
  source_.set_records({rec("u1", "User 1"), rec("u2", "Renamed")});
  auto report = run({Mode::kSync, true, "u2"});
  ASSERT_TRUE(report.explanation);
  EXPECT_EQ(report.explanation->action, "update");
  EXPECT_EQ(report.explanation->why, "fields changed since the target acknowledged it: name");
  ASSERT_TRUE(report.explanation->snapshot);
  EXPECT_EQ(report.explanation->snapshot->target_id, "101");
  EXPECT_NE(format_explanation(report).find("name \"User 2\" -> \"Renamed\""), std::string::npos);
}

TEST_F(SyncEngineTest, ExplainsAnUnchangedUser) {
  source_.set_records(users(2));
  ASSERT_EQ(run().counts.created, 2u);
  auto report = run({Mode::kSync, true, "u1"});
  EXPECT_EQ(report.explanation->action, "nothing");
  EXPECT_NE(report.explanation->why.find("unchanged"), std::string::npos);
}

TEST_F(SyncEngineTest, ExplainsAUserTheFilterDrops) {
  source_.set_records(staff({{"u1", "Sales"}, {"u2", "Sales"}}));
  ASSERT_EQ(run().counts.created, 2u);
  job_.filter = core::Filter(std::nullopt, core::Condition::regex("dept", "^Sal"));
  source_.set_records(staff({{"u1", "HR"}, {"u2", "Sales"}}));
  auto report = run({Mode::kSync, true, "u2"});
  const auto& ex = *report.explanation;
  EXPECT_TRUE(ex.in_source);
  EXPECT_FALSE(ex.filter_kept);
  EXPECT_EQ(ex.filter_reason, "excluded: dept matches /^Sal/");
  EXPECT_EQ(ex.action, "detach");
  EXPECT_NE(ex.why.find("the job's filter drops it (excluded: dept matches /^Sal/)"), std::string::npos) << ex.why;
  EXPECT_EQ(explanation_to_json(report)["filter"]["kept"], false);
}

TEST_F(SyncEngineTest, ExplainsAUserGoneFromTheSourceAndBlockedDetaches) {
  job_.max_detach = {1, 10.0, 0, true};
  source_.set_records(users(4));
  ASSERT_EQ(run().counts.created, 4u);
  source_.set_records(users(2));
  auto report = run({Mode::kSync, true, "u4"});
  const auto& ex = *report.explanation;
  EXPECT_FALSE(ex.in_source);
  EXPECT_EQ(ex.action, "detach (blocked)");
  EXPECT_NE(ex.why.find("it is not in the source; on_missing: detach. Blocked this run:"), std::string::npos)
      << ex.why;
}

TEST_F(SyncEngineTest, ExplainsThatAnIncompletePullDetachesNothing) {
  source_.set_records(users(4));
  ASSERT_EQ(run().counts.created, 4u);
  source_.set_records(users(4));
  source_.fail_at_page = 1;
  auto report = run({Mode::kSync, true, "u4"});
  const auto& ex = *report.explanation;
  EXPECT_FALSE(ex.in_source);
  EXPECT_EQ(ex.action, "nothing");
  EXPECT_NE(ex.why.find("no detach is computed from an incomplete pull"), std::string::npos) << ex.why;
}

TEST_F(SyncEngineTest, ExplainsAKeyNobodyKnows) {
  source_.set_records(users(2));
  auto report = run({Mode::kSync, true, "stranger"});
  EXPECT_FALSE(report.explanation->in_source);
  EXPECT_EQ(report.explanation->action, "nothing");
  EXPECT_NE(report.explanation->why.find("never pushed this user"), std::string::npos);
  EXPECT_NE(format_explanation(report).find("not in the source (the pull was complete)"), std::string::npos);
}

TEST_F(SyncEngineTest, ExplainsAMappingFailure) {
  auto broken = users(1);
  broken[0].attributes.clear();
  source_.set_records(broken);
  auto report = run({Mode::kSync, true, "u1"});
  EXPECT_EQ(report.explanation->action, "nothing");
  EXPECT_NE(report.explanation->why.find("the mapping failed"), std::string::npos) << report.explanation->why;
  EXPECT_NE(report.explanation->why.find("protected from detach"), std::string::npos);
}

}  // namespace
}  // namespace dirsync::engine

namespace dirsync::engine {
namespace {

TEST_F(SyncEngineTest, DetachAfterWaitsForConsecutiveAbsentPulls) {
  job_.detach_after = 3;
  source_.set_records(users(4));
  ASSERT_EQ(run().counts.created, 4u);
  source_.set_records(users(3));  // u4 is gone
  for (int pull = 1; pull <= 2; ++pull) {
    auto report = run();
    EXPECT_EQ(report.counts.detached, 0u) << "pull " << pull;
    EXPECT_EQ(report.counts.detach_deferred, 1u) << "pull " << pull;
    EXPECT_EQ(store_->absences("job").at("u4"), static_cast<std::uint32_t>(pull));
  }
  auto third = run();
  EXPECT_EQ(third.counts.detached, 1u);
  EXPECT_FALSE(store_->get("job", "u4"));
  auto fourth = run();
  EXPECT_TRUE(store_->absences("job").empty()) << "a detached user is no longer counted";
}

TEST_F(SyncEngineTest, DetachAfterStartsOverWhenTheUserComesBack) {
  job_.detach_after = 2;
  source_.set_records(users(3));
  ASSERT_EQ(run().counts.created, 3u);
  source_.set_records(users(2));
  EXPECT_EQ(run().counts.detach_deferred, 1u);
  source_.set_records(users(3));  // u3 is back (a page skipped it last time)
  EXPECT_EQ(run().counts.detach_deferred, 0u);
  EXPECT_TRUE(store_->absences("job").empty());
  source_.set_records(users(2));
  auto report = run();
  EXPECT_EQ(report.counts.detached, 0u) << "one absence after coming back is not two in a row";
  EXPECT_EQ(report.counts.detach_deferred, 1u);
}

TEST_F(SyncEngineTest, DetachAfterCountsNeitherDryRunsNorIncompletePulls) {
  job_.detach_after = 2;
  source_.set_records(users(3));
  ASSERT_EQ(run().counts.created, 3u);
  source_.set_records(users(2));
  auto plan = run({Mode::kSync, true, "u3"});
  EXPECT_EQ(plan.counts.detach_deferred, 1u);
  EXPECT_EQ(plan.explanation->action, "nothing");
  EXPECT_NE(plan.explanation->why.find("absent from 1 complete pull(s) in a row, detach_after is 2"), std::string::npos)
      << plan.explanation->why;
  EXPECT_TRUE(store_->absences("job").empty()) << "a plan changes no state";

  source_.set_records(users(2), 1);  // two pages: the second fails
  source_.fail_at_page = 1;
  EXPECT_FALSE(run().pull_complete);
  EXPECT_TRUE(store_->absences("job").empty()) << "an incomplete pull proves no absence";
  source_.fail_at_page = -1;
  EXPECT_EQ(run().counts.detach_deferred, 1u);
  EXPECT_EQ(run().counts.detached, 1u);
}

}  // namespace
}  // namespace dirsync::engine

namespace dirsync::engine {
namespace {

TEST(CheckConfig, ReportsABadScimPathWithItsSource) {
  config::Config cfg;
  config::ScimSourceSettings scim;
  scim.base_url = "https://idp.example.com/scim/v2";
  scim.attributes.push_back({"email", {"emails[primary eq true].value", "emails[primary true].value"}});
  config::SourceConfig source{"idp", "scim", {"dirsync.yaml", 3, 3}, scim};
  cfg.sources.emplace("idp", source);
  const auto errors = check_config(cfg);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("dirsync.yaml:3:3: source 'idp' attribute 'email': bad SCIM path "
                           "'emails[primary true].value': "),
            std::string::npos)
      << errors[0];
}

}  // namespace
}  // namespace dirsync::engine

namespace dirsync::engine {
namespace {

TEST_F(SyncEngineTest, AStopRequestEndsTheRunAfterTheBatchInFlight) {
  source_.set_records(users(3));
  ASSERT_EQ(run().counts.created, 3u);
  source_.set_records(users(6, 4), 2);  // u1..u3 gone; u4..u9 new, three pages
  int polls = 0;
  RunOptions opts;
  // Let the first page and its batch through, then ask to stop.
  opts.stop_requested = [&] { return ++polls > 2; };
  auto report = run(opts);
  EXPECT_TRUE(report.stopped);
  EXPECT_EQ(report.outcome, RunOutcome::kPartial);
  EXPECT_FALSE(report.pull_complete);
  EXPECT_EQ(report.counts.detached, 0u) << "no detach from a stopped run";
  EXPECT_EQ(report.counts.created, 2u) << "the batch in flight finished";
  EXPECT_EQ(store_->snapshot_size("job"), 5u) << "and its acknowledgements were committed";
  EXPECT_NE(report.pull_note.find("stopped before its end"), std::string::npos) << report.pull_note;
}

}  // namespace
}  // namespace dirsync::engine

namespace dirsync::engine {
namespace {

TEST_F(SyncEngineTest, TellsTheOutcomeHookAboutEveryAnsweredChangeWithoutPayloads) {
  source_.set_records(users(3));
  target_.outcome_for["u2"] = Outcome::rejected("email taken");
  std::vector<PushedChange> seen;
  core::Mapping mapping({{"name", core::Template::parse("{name}"), core::FieldType::kString}});
  SyncEngine engine(job_, *store_, source_, target_, mapping);
  engine.on_outcome([&](const PushedChange& p) { seen.push_back(p); });
  engine.run({});
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].key, "u1");
  EXPECT_EQ(seen[0].outcome, core::OutcomeKind::kApplied);
  EXPECT_EQ(seen[0].target_id, "100");
  EXPECT_EQ(seen[1].key, "u2");
  EXPECT_EQ(seen[1].outcome, core::OutcomeKind::kRejected);
  EXPECT_EQ(seen[1].message, "email taken");
}


// ---- the outbox ----------------------------------------------------------

TEST_F(SyncEngineTest, RecordsEachBatchInTheOutboxBeforeSendingAndClearsItWithTheSnapshot) {
  source_.set_records(users(3));
  std::vector<std::size_t> intents_seen;
  target_.on_apply = [&] {
    const auto intents = store_->intents("job");
    intents_seen.push_back(intents.empty() ? 0 : intents.back().items.size());
  };
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  EXPECT_EQ(intents_seen, (std::vector<std::size_t>{2, 1})) << "each batch was durable before it was sent";
  EXPECT_TRUE(store_->intents("job").empty());
  EXPECT_EQ(store_->snapshot_size("job"), 3u);
}

TEST_F(SyncEngineTest, KeepsAnUnknownCreatePendingAndNeverSendsItAgainBlindly) {
  target_.recovery = core::CreateRecovery::kLookup;
  source_.set_records(users(2));
  target_.outcome_for["u2"] = Outcome::unknown("the connection dropped after the request was sent");
  EXPECT_EQ(run().counts.unknown, 1u);
  ASSERT_EQ(store_->intents("job").size(), 1u);
  EXPECT_EQ(store_->intents("job")[0].items.at(0).key, "u2");

  // The lookup fails: u2 stays pending and is not sent.
  target_.outcome_for.clear();
  target_.sent.clear();
  target_.lookup_error = core::Error{core::ErrorKind::kTarget, "search unavailable"};
  auto report = run();
  EXPECT_EQ(target_.count(Op::kCreate), 0u);
  EXPECT_EQ(report.counts.pending, 1u);
  EXPECT_EQ(report.outcome, RunOutcome::kPartial);
  ASSERT_EQ(store_->intents("job").size(), 1u);
  EXPECT_THAT(store_->intents("job")[0].note, HasSubstr("search unavailable"));
}

TEST_F(SyncEngineTest, RecordsAnUnknownCreateTheTargetTurnsOutToHaveWithoutCreatingItAgain) {
  target_.recovery = core::CreateRecovery::kLookup;
  source_.set_records(users(2));
  target_.outcome_for["u2"] = Outcome::unknown("lost answer");
  run();
  target_.outcome_for.clear();
  target_.sent.clear();
  target_.found_for["u2"] = core::Found{"777", json{{"name", "User 2"}}};
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kOk) << report.error;
  EXPECT_EQ(report.counts.reconciled, 1u);
  EXPECT_EQ(target_.sent.size(), 0u) << "found by the lookup, so neither created nor updated";
  EXPECT_EQ(store_->get("job", "u2")->target_id, "777");
  EXPECT_TRUE(store_->intents("job").empty());
}

TEST_F(SyncEngineTest, CreatesAgainAnUnknownCreateTheLookupDoesNotFind) {
  target_.recovery = core::CreateRecovery::kLookup;
  source_.set_records(users(2));
  target_.outcome_for["u2"] = Outcome::unknown("lost answer");
  run();
  target_.outcome_for.clear();
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(target_.lookups, 1u);
  ASSERT_EQ(target_.sent.size(), 1u);
  EXPECT_EQ(target_.sent[0].key, "u2");
  EXPECT_EQ(report.counts.created, 1u);
  EXPECT_TRUE(store_->intents("job").empty());
}

TEST_F(SyncEngineTest, SettlesABatchInterruptedBeforeItsAnswerWasRecorded) {
  // What a kill between sending and recording leaves behind: an intent.
  target_.recovery = core::CreateRecovery::kLookup;
  state::IntentItem create{"u1", Op::kCreate, core::canonical_hash(json{{"name", "User 1"}}), "",
                           json{{"name", "User 1"}}};
  state::IntentItem update{"u9", Op::kUpdate, 1, "900", nullptr};
  ASSERT_TRUE(store_->add_intent("job", {create, update}).ok());
  target_.found_for["u1"] = core::Found{"555", json{{"name", "Old name"}}};
  source_.set_records(users(1));
  auto report = run();
  EXPECT_EQ(report.counts.reconciled, 1u);
  EXPECT_TRUE(store_->intents("job").empty());
  // The target's user differed from the source: this run updated it.
  ASSERT_EQ(target_.sent.size(), 1u);
  EXPECT_EQ(target_.sent[0].op, Op::kUpdate);
  EXPECT_EQ(target_.sent[0].target_id, "555");
  EXPECT_EQ(store_->get("job", "u1")->payload, json({{"name", "User 1"}}));
}

TEST_F(SyncEngineTest, ResendsInterruptedCreatesWhereTheTargetMakesThatHarmless) {
  state::IntentItem create{"u1", Op::kCreate, 1, "", json{{"name", "User 1"}}};
  ASSERT_TRUE(store_->add_intent("job", {create}).ok());
  source_.set_records(users(1));
  auto report = run();
  EXPECT_EQ(target_.lookups, 0u);
  EXPECT_EQ(report.counts.created, 1u);
  EXPECT_TRUE(store_->intents("job").empty());
}

TEST_F(SyncEngineTest, RecordsAnAdoptedUserAsTheTargetHoldsItSoTheNextRunUpdatesIt) {
  source_.set_records(users(1));
  target_.outcome_for["u1"] = Outcome::adopted("42", json{{"name", "Legacy"}}, "already existed: adopted");
  auto first = run();
  EXPECT_EQ(first.counts.adopted, 1u);
  EXPECT_EQ(first.counts.created, 0u);
  EXPECT_EQ(store_->get("job", "u1")->payload, json({{"name", "Legacy"}}));
  target_.outcome_for.clear();
  target_.sent.clear();
  auto second = run();
  ASSERT_EQ(target_.sent.size(), 1u);
  EXPECT_EQ(target_.sent[0].op, Op::kUpdate);
  EXPECT_EQ(target_.sent[0].target_id, "42");
}

// ---- quarantine ------------------------------------------------------------

TEST_F(SyncEngineTest, QuarantinesARecordRejectedRunAfterRunUntilItChanges) {
  job_.quarantine_after = 2;
  source_.set_records(users(2));
  target_.outcome_for["u2"] = Outcome::rejected("The email field must be a valid email address.");
  run();
  run();
  target_.sent.clear();
  auto third = run();
  EXPECT_EQ(third.counts.quarantined, 1u);
  EXPECT_EQ(target_.sent.size(), 0u) << "a quarantined record is not sent again";
  const auto q = store_->quarantine("job");
  ASSERT_EQ(q.count("u2"), 1u);
  EXPECT_EQ(q.at("u2").rejections, 2u);
  EXPECT_EQ(q.at("u2").message, "The email field must be a valid email address.");
  ASSERT_FALSE(third.problems.empty());
  EXPECT_EQ(third.problems.back().outcome, "quarantined");

  // The source record changes: it is sent again, and accepted.
  target_.outcome_for.clear();
  auto changed = users(2);
  changed[1] = rec("u2", "Fixed");
  source_.set_records(changed);
  auto fourth = run();
  EXPECT_EQ(fourth.counts.created, 1u);
  EXPECT_TRUE(store_->quarantine("job").empty());
}

TEST_F(SyncEngineTest, SendsAQuarantinedRecordAgainOnceAnOperatorReleasesIt) {
  job_.quarantine_after = 1;
  source_.set_records(users(1));
  target_.outcome_for["u1"] = Outcome::rejected("no");
  run();
  target_.sent.clear();
  EXPECT_EQ(run().counts.quarantined, 1u);
  EXPECT_EQ(store_->release("job", {"u1"}).value(), 1u);
  target_.outcome_for.clear();
  EXPECT_EQ(run().counts.created, 1u);
}

TEST_F(SyncEngineTest, NeverQuarantinesWhenQuarantineIsOff) {
  job_.quarantine_after = 0;
  source_.set_records(users(1));
  target_.outcome_for["u1"] = Outcome::rejected("no");
  for (int i = 0; i < 4; ++i) run();
  target_.sent.clear();
  run();
  EXPECT_EQ(target_.sent.size(), 1u);
}

// ---- protect: users the job never updates or detaches -----------------------

// The job's protect filter as the loader builds it: the condition is the include.
core::Filter protect_if(core::Condition condition) { return core::Filter(std::move(condition), std::nullopt); }

TEST_F(SyncEngineTest, AProtectedUserGetsNoUpdateWhateverTheSourceSays) {
  job_.protect = protect_if(core::Condition::in("key", {"u1", "breakglass"}));
  source_.set_records(users(3));
  ASSERT_EQ(run().counts.created, 3u);
  target_.sent.clear();
  source_.set_records(users(3, 1, " (renamed)"));
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kOk);
  EXPECT_EQ(report.counts.updated, 2u);
  EXPECT_EQ(report.counts.protected_users, 1u);
  ASSERT_EQ(target_.sent.size(), 2u);
  EXPECT_EQ(target_.sent[0].key, "u2");
  ASSERT_EQ(report.protected_changes.size(), 1u);
  EXPECT_EQ(report.protected_changes[0].key, "u1");
  EXPECT_EQ(report.protected_changes[0].stage, "update");
  EXPECT_EQ(report.protected_changes[0].message, "protected by the job's protect filter: key in ['u1', 'breakglass']");
  EXPECT_EQ(store_->get("job", "u1")->payload, json({{"name", "User 1"}})) << "the snapshot keeps what the target has";
  EXPECT_THAT(format_summary(report), HasSubstr("  key u1: update withheld — protected by the job's protect filter: "
                                                "key in ['u1', 'breakglass']\n"));
  EXPECT_EQ(report_to_json(report, false)["counts"]["protected"], 1);
}

TEST_F(SyncEngineTest, ProtectLooksAtWhatTheTargetHoldsNotAtWhatTheSourceSays) {
  job_.protect = protect_if(core::Condition::equals("name", "Admin"));
  source_.set_records({rec("u1", "Admin"), rec("u2", "User 2")});
  run();
  target_.sent.clear();
  // The source demotes u1 and promotes u2: the target still holds u1 as Admin
  // (protected), and u2 as a plain user (updated).
  source_.set_records({rec("u1", "Mallory"), rec("u2", "Admin")});
  auto report = run();
  EXPECT_EQ(report.counts.protected_users, 1u);
  ASSERT_EQ(target_.sent.size(), 1u);
  EXPECT_EQ(target_.sent[0].key, "u2");
  EXPECT_EQ(report.protected_changes[0].message, "protected by the job's protect filter: name equals 'Admin'");
}

TEST_F(SyncEngineTest, ProtectedUsersAreNeverDetachedNorCountedByMaxDetach) {
  job_.protect = protect_if(core::Condition::regex("key", "^u[1-5]$"));
  source_.set_records(users(40));
  run();
  target_.sent.clear();
  // Six leave (limit 4): five are protected, so one detach remains, within the limit.
  source_.set_records(users(34, 7));
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kOk) << report.blocked_note;
  EXPECT_EQ(report.counts.detached, 1u);
  EXPECT_EQ(report.counts.detach_planned, 1u);
  EXPECT_EQ(report.counts.protected_users, 5u);
  ASSERT_EQ(target_.sent.size(), 1u);
  EXPECT_EQ(target_.sent[0].key, "u6");
  EXPECT_EQ(report.protected_changes[0].stage, "detach");
  EXPECT_EQ(store_->snapshot_size("job"), 39u);
}

TEST_F(SyncEngineTest, AProtectedUserIsNotMarkedByOnMissingUpdate) {
  job_.on_missing = config::OnMissing::kUpdate;
  job_.missing_update = {{"name", "(gone)"}};
  job_.protect = protect_if(core::Condition::in("key", {"u1"}));
  source_.set_records(users(3));
  run();
  target_.sent.clear();
  source_.set_records(users(1, 3));
  auto report = run();
  ASSERT_EQ(target_.sent.size(), 1u);
  EXPECT_EQ(target_.sent[0].key, "u2");
  ASSERT_EQ(report.protected_changes.size(), 1u);
  EXPECT_EQ(report.protected_changes[0].stage, "on_missing update");
}

TEST_F(SyncEngineTest, ProtectDoesNotStopACreate) {
  // A user the target never acknowledged has nothing to protect.
  job_.protect = protect_if(core::Condition::in("key", {"u1"}));
  source_.set_records(users(1));
  auto report = run();
  EXPECT_EQ(report.counts.created, 1u);
  EXPECT_EQ(report.counts.protected_users, 0u);
}

TEST_F(SyncEngineTest, ExplainsThatAProtectedUserIsLeftAlone) {
  job_.protect = protect_if(core::Condition::any({core::Condition::in("key", {"admin"}),
                                                  core::Condition::equals("name", "Root")}));
  source_.set_records({rec("u1", "Root")});
  run();
  RunOptions opts;
  opts.dry_run = true;
  opts.explain_key = "u1";
  source_.set_records({rec("u1", "Changed")});
  auto in_source = run(opts);
  ASSERT_TRUE(in_source.explanation);
  EXPECT_EQ(in_source.explanation->action, "nothing");
  EXPECT_EQ(in_source.explanation->why, "protected by the job's protect filter: name equals 'Root'. The job never "
                                        "updates or detaches it, whatever the source says");
  EXPECT_EQ(explanation_to_json(in_source)["protected_by"], "name equals 'Root'");
  EXPECT_TRUE(in_source.plan.empty());

  source_.set_records({rec("u2", "Someone")});
  auto gone = run(opts);
  EXPECT_EQ(gone.explanation->action, "nothing");
  EXPECT_EQ(gone.explanation->why, "it is not in the source, but it is protected by the job's protect filter: name "
                                   "equals 'Root'. The job never detaches or updates it, whatever the source says");
}

// ---- max_update: a run that would change an unusual share of users --------

TEST_F(SyncEngineTest, MaxUpdateBlocksEveryUpdateButCreatesGoOutAndDetachesAreJudgedAsUsual) {
  job_.max_update = {500, 10.0, 2, true};
  source_.set_records(users(40));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  // A broken mapping would change everyone; here 5 of 40 change (limit 4), one joins, one leaves.
  auto next = users(39);
  for (int i = 0; i < 5; ++i) next[i] = rec("u" + std::to_string(i + 1), "Broken");
  next.push_back(rec("n1", "Newcomer"));
  source_.set_records(next);
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kBlocked);
  EXPECT_EQ(report.counts.updated, 0u);
  EXPECT_EQ(report.counts.created, 1u);
  EXPECT_EQ(report.counts.detached, 1u);
  EXPECT_EQ(target_.count(Op::kUpdate), 0u);
  EXPECT_EQ(store_->get("job", "u1")->payload, json({{"name", "User 1"}}));
  EXPECT_EQ(report.blocked_note,
            "5 updates exceed the limit of 4 for 40 users (max_update: count 500, percent 10.0, floor 2); no update "
            "was applied (creates still went out). Review them with 'dirsync plan job', then raise max_update for "
            "the job if they are intended.");
  EXPECT_EQ(store_->runs("job", 1)[0].outcome, "blocked");

  // Nothing changed: the next run is blocked again.
  target_.sent.clear();
  EXPECT_EQ(run().outcome, RunOutcome::kBlocked);
  EXPECT_EQ(target_.count(Op::kUpdate), 0u);
}

TEST_F(SyncEngineTest, MaxUpdateSendsTheHeldUpdatesOnceThePullHasEndedWithinTheLimit) {
  job_.max_update = {500, 10.0, 2, true};
  source_.set_records(users(40));
  run();
  auto next = users(40);
  next[0] = rec("u1", "Changed");
  next[39] = rec("u40", "Changed");
  source_.set_records(next);
  target_.sent.clear();
  target_.batch_sizes.clear();
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kOk);
  EXPECT_EQ(report.counts.updated, 2u);
  // Held until the end of the pull, then sent together (batch size 2).
  EXPECT_EQ(target_.batch_sizes, std::vector<std::size_t>{2});
}

TEST_F(SyncEngineTest, PlanListsTheUpdatesMaxUpdateHoldsBack) {
  job_.max_update = {500, 10.0, 2, true};
  source_.set_records(users(20));
  run();
  source_.set_records(users(20, 1, " (broken)"));
  RunOptions opts;
  opts.dry_run = true;
  auto plan = run(opts);
  EXPECT_EQ(plan.outcome, RunOutcome::kBlocked);
  EXPECT_EQ(plan.plan.size(), 20u);
  EXPECT_EQ(plan.counts.updated, 0u) << "held updates are not counted as applied";
  EXPECT_EQ(plan.held.size(), 20u);
  EXPECT_EQ(plan.held.at("u7"), "max_update");
  const std::string text = format_plan(plan);
  EXPECT_THAT(text, HasSubstr("  ~ update u1 (id 100): name \"User 1\" -> \"User 1 (broken)\"  [blocked by max_update]\n"));
  const auto j = report_to_json(plan, true);
  EXPECT_EQ(j["changes"][0]["blocked_by"], "max_update");
  EXPECT_EQ(j["changes"][0]["blocked"], true);

  opts.explain_key = "u3";
  auto explained = run(opts);
  EXPECT_EQ(explained.explanation->action, "update (blocked)");
  EXPECT_THAT(explained.explanation->why, HasSubstr(". Blocked this run: 20 updates exceed the limit of 2"));
}

TEST_F(SyncEngineTest, MaxUpdateLeavesResyncsAndProtectedUsersOut) {
  job_.max_update = {0, 0.0, 1, true};  // one update per run
  job_.protect = protect_if(core::Condition::in("key", {"u1", "u2"}));
  source_.set_records(users(3));
  run();
  source_.set_records(users(3, 1, " v2"));
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kOk) << report.blocked_note;
  EXPECT_EQ(report.counts.updated, 1u);
  EXPECT_EQ(report.counts.protected_users, 2u);
  // A resync re-sends everyone on purpose: max_update does not hold it.
  job_.protect = {};
  RunOptions resync;
  resync.mode = Mode::kResync;
  EXPECT_EQ(run(resync).counts.updated, 3u);
}

TEST_F(SyncEngineTest, MaxUpdateOffByDefault) {
  EXPECT_FALSE(config::JobConfig{}.max_update.enabled);
  source_.set_records(users(20));
  run();
  source_.set_records(users(20, 1, " v2"));
  EXPECT_EQ(run().counts.updated, 20u);
}

TEST_F(SyncEngineTest, BothGuardsBlockingSayBothInTheNote) {
  job_.max_update = {500, 10.0, 2, true};
  source_.set_records(users(40));
  run();
  auto next = users(30, 1, " v2");  // 30 updates, 10 leave
  source_.set_records(next);
  RunOptions opts;
  opts.dry_run = true;
  auto plan = run(opts);
  EXPECT_EQ(plan.outcome, RunOutcome::kBlocked);
  EXPECT_THAT(plan.blocked_note, HasSubstr("30 updates exceed the limit of 4"));
  EXPECT_THAT(plan.blocked_note, HasSubstr(" 10 detaches exceed the limit of 4"));
  EXPECT_EQ(plan.held.at("u1"), "max_update");
  EXPECT_EQ(plan.held.at("u40"), "max_detach");
  EXPECT_THAT(format_plan(plan), HasSubstr("  - detach u40 (id 139)  [blocked by max_detach]\n"));
}

// ---- full-set targets: updates replace members of the set -------------------

TEST_F(SyncEngineTest, FullSetTargetCountsTheMembersUpdatesReplaceAsDetaches) {
  target_.caps = {true, true, true, true, SIZE_MAX};
  source_.set_records(users(40));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  // Every update of a full-set target replaces a member (Healvi: a new
  // user_id): 3 leave and 2 change, 5 > the limit of 4. A newcomer still goes.
  auto next = users(37);
  next[0] = rec("u1", "Other");
  next[1] = rec("u2", "Other");
  next.push_back(rec("n1", "New"));
  source_.set_records(next);
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.outcome, RunOutcome::kBlocked);
  EXPECT_EQ(report.blocked_note,
            "5 detaches (2 of them updates, each replacing a user of the full set) exceed the limit of 4 for 40 "
            "users (max_detach: count 500, percent 10.0, floor 2); no detach was applied and those updates were "
            "held back. Review them with 'dirsync plan job', then raise max_detach for the job if they are "
            "intended.");
  ASSERT_EQ(target_.sent.size(), 1u);
  EXPECT_EQ(target_.sent[0].op, Op::kCreate);
  EXPECT_EQ(store_->get("job", "u1")->payload, json({{"name", "User 1"}}));

  // Within the limit they all go out.
  job_.max_detach = {500, 10.0, 5, true};
  target_.sent.clear();
  EXPECT_EQ(run().outcome, RunOutcome::kOk);
  EXPECT_EQ(target_.count(Op::kUpdate), 2u);
  EXPECT_EQ(target_.count(Op::kDetach), 3u);
}

// A full-set API's listing of its current set may be partial: the target must
// know every user the job manages, or the set it sends drops the unlisted ones.
TEST_F(SyncEngineTest, FullSetTargetIsToldEveryUserTheJobManagesBeforeItsOneCall) {
  target_.caps = {true, true, true, true, SIZE_MAX};
  target_.batch = SIZE_MAX;
  target_.recovery = core::CreateRecovery::kReport;
  source_.set_records(users(6));
  target_.outcome_for["u6"] = Outcome::unknown("the answer was lost");
  ASSERT_EQ(run().outcome, RunOutcome::kPartial);
  EXPECT_EQ(target_.managed, std::vector<std::vector<std::string>>{{}}) << "a first run manages nobody yet";

  // u1 changes, u2 changes but is protected, u3 and u5 stay as they are, u4
  // leaves, u6's create is still pending.
  job_.protect = protect_if(core::Condition::in("key", {"u2"}));
  auto next = users(6);
  next[0] = rec("u1", "Changed");
  next[1] = rec("u2", "Changed");
  next.erase(next.begin() + 3);
  source_.set_records(next);
  target_.outcome_for.clear();
  target_.managed.clear();
  target_.sent.clear();
  auto report = run();
  EXPECT_EQ(report.counts.pending, 1u);
  EXPECT_EQ(report.counts.protected_users, 1u);
  EXPECT_EQ(target_.count(Op::kUpdate), 1u);
  EXPECT_EQ(target_.count(Op::kDetach), 1u);
  // The whole snapshot (the batch's own users too: their changes decide for
  // them), and the pending create.
  EXPECT_EQ(target_.managed, (std::vector<std::vector<std::string>>{{"u1", "u2", "u3", "u4", "u5", "u6"}}));

  // A resync and a saved plan's apply tell it too.
  target_.managed.clear();
  RunOptions resync;
  resync.mode = Mode::kResync;
  run(resync);
  EXPECT_EQ(target_.managed, (std::vector<std::vector<std::string>>{{"u1", "u2", "u3", "u5", "u6"}}));
  source_.set_records(users(2, 10));
  RunOptions dry;
  dry.dry_run = true;
  auto plan = run(dry);
  target_.managed.clear();
  apply_plan(plan.plan);
  EXPECT_EQ(target_.managed, (std::vector<std::vector<std::string>>{{"u1", "u2", "u3", "u5", "u6"}}));
}

// ---- apply_plan re-checks protect ------------------------------------------

TEST_F(SyncEngineTest, ApplyingAPlanWithholdsUsersAProtectFilterAddedSinceThePlan) {
  source_.set_records(users(30));
  ASSERT_EQ(run().outcome, RunOutcome::kOk);
  auto next = users(30);
  next[0] = rec("u1", "Changed");
  next[1] = rec("u2", "Changed");
  next.erase(next.begin() + 2);  // u3 leaves
  next.erase(next.begin() + 2);  // u4 leaves
  source_.set_records(next);
  RunOptions dry;
  dry.dry_run = true;
  const auto plan = run(dry);
  ASSERT_EQ(plan.plan.size(), 4u);

  // The operator protects u1 and u3 after saving the plan.
  job_.protect = protect_if(core::Condition::in("key", {"u1", "u3"}));
  target_.sent.clear();
  auto report = apply_plan(plan.plan);
  EXPECT_EQ(report.outcome, RunOutcome::kOk) << report.error;
  EXPECT_EQ(report.counts.updated, 1u);
  EXPECT_EQ(report.counts.detached, 1u);
  EXPECT_EQ(report.counts.detach_planned, 1u);
  EXPECT_EQ(report.counts.protected_users, 2u);
  ASSERT_EQ(target_.sent.size(), 2u);
  EXPECT_EQ(target_.sent[0].key, "u2");
  EXPECT_EQ(target_.sent[1].key, "u4");
  EXPECT_EQ(store_->get("job", "u1")->payload, json({{"name", "User 1"}}));
  EXPECT_TRUE(store_->get("job", "u3"));
  EXPECT_FALSE(store_->get("job", "u4"));
  ASSERT_EQ(report.protected_changes.size(), 2u);
  EXPECT_EQ(report.protected_changes[0].key, "u1");
  EXPECT_EQ(report.protected_changes[0].stage, "update");
  EXPECT_EQ(report.protected_changes[1].key, "u3");
  EXPECT_EQ(report.protected_changes[1].stage, "detach");
  EXPECT_THAT(format_summary(report), HasSubstr("  key u3: detach withheld — protected by the job's protect filter: "
                                                "key in ['u1', 'u3']\n"));
  EXPECT_EQ(report_to_json(report, false)["counts"]["protected"], 2);
}

}  // namespace
}  // namespace dirsync::engine
