// The Healvi target through the engine, against the loopback Healvi: a run
// whose full set would drop more of the job's users than max_detach allows
// sends no smaller set — whether the users left the source or an update (a
// remapped user_id) would replace them — and its creates still go out. And a
// listing of the customer's set that shows only some users (a 2xx with
// partial results, laid over the server by its FaultPlan) detaches none of the
// users the job manages, in a run, a resync or a saved plan's apply.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "connectors/targets/healvi/healvi_target.h"
#include "engine/sync_engine.h"
#include "tests/support/engine_fixture.h"
#include "tests/support/healvi_test_server.h"

namespace dirsync::targets {
namespace {

using std::chrono::milliseconds;
using Ids = std::set<std::int64_t>;

constexpr std::int64_t kCustomer = 7;
constexpr const char* kToken = "tok-healvi-engine-4k2p";

// Serves `records` as one complete page.
class OnePageSource : public core::Source {
 public:
  std::vector<core::Record> records;
  core::Result<std::unique_ptr<core::Pull>> start() override {
    class P : public core::Pull {
     public:
      explicit P(std::vector<core::Record> r) : records_(std::move(r)) {}
      core::Result<core::Page> next() override {
        core::Page page;
        page.records = records_;
        page.last = true;
        return page;
      }

     private:
      std::vector<core::Record> records_;
    };
    return std::unique_ptr<core::Pull>(std::make_unique<P>(records));
  }
  std::string describe() const override { return "one page"; }
};

class HealviEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    {
      // The server's faults are this test's plan.
      testing::FaultPlanScope scope(faults_);
      server_ = std::make_unique<testing::healvi::HealviTestServer>(testing::healvi::HealviServerOptions{kToken});
    }
    server_->start();
    server_->add_customer(kCustomer);
    server_->add_users(70);  // ids 1..70
    ASSERT_TRUE(store_.ok());
    job_.name = "job";
    job_.source = "hr";
    job_.target = "healvi";
    job_.max_detach = {500, 10.0, 5, true};  // 40 users: at most 5 may leave in a run
  }

  // Employees e1..eN whose Healvi id is `offset + i`.
  void employees(int n, std::int64_t offset = 0) {
    source_.records.clear();
    for (int i = 1; i <= n; ++i) {
      core::Record r;
      r.key = "e" + std::to_string(i);
      r.set("healvi_id", {std::to_string(offset + i)});
      source_.records.push_back(std::move(r));
    }
  }

  engine::RunReport run(const engine::RunOptions& options = {}) {
    return with_engine([&](engine::SyncEngine& engine) { return engine.run(options); });
  }
  engine::RunReport apply_plan(const std::vector<core::Change>& plan) {
    return with_engine([&](engine::SyncEngine& engine) { return engine.apply_plan(plan); });
  }
  template <class Fn>
  engine::RunReport with_engine(Fn fn) {
    config::HealviTargetSettings s;
    s.base_url = server_->base_url();
    s.token = core::Secret(kToken, "${env:HEALVI_TOKEN}");
    s.customer_id = kCustomer;
    s.http.max_attempts = 1;
    HealviTarget target(s, [](milliseconds) {}, nullptr, [] { return 0.5; });
    core::Mapping mapping({{"user_id", core::Template::parse("{healvi_id | int}"), core::FieldType::kInt}});
    engine::SyncEngine engine(job_, *store_, source_, target, mapping);
    return fn(engine);
  }

  // The next GET of the customer's set lists only the first half of it.
  void partial_listing() {
    testing::FaultSpec spec;
    spec.kind = testing::FaultKind::kPartialResults;
    spec.phase = testing::FaultPhase::kAfter;
    spec.method = "GET";
    faults_->add(spec);
  }
  // The ids the run's POSTs sent, one set per POST.
  std::vector<Ids> posted() const {
    std::vector<Ids> out;
    for (const auto& r : server_->request_log()) {
      if (r.method != "POST") continue;
      const auto body = nlohmann::json::parse(r.body);
      out.push_back(body.at("user_ids").get<Ids>());
    }
    return out;
  }

  static Ids range(std::int64_t from, std::int64_t to) {
    Ids out;
    for (auto i = from; i <= to; ++i) out.insert(i);
    return out;
  }

  std::shared_ptr<testing::FaultPlan> faults_ = std::make_shared<testing::FaultPlan>();
  std::unique_ptr<testing::healvi::HealviTestServer> server_;
  testing::TempStateStore store_;
  config::JobConfig job_;
  OnePageSource source_;
};

TEST_F(HealviEngineTest, UsersLeavingTheSourceBeyondTheLimitKeepTheFullSetWhole) {
  employees(40);
  ASSERT_EQ(run().outcome, engine::RunOutcome::kOk);
  ASSERT_EQ(server_->attached(kCustomer), range(1, 40));

  employees(34);  // six leave
  server_->clear_log();
  auto report = run();
  EXPECT_EQ(report.outcome, engine::RunOutcome::kBlocked);
  EXPECT_EQ(report.counts.detached, 0u);
  EXPECT_EQ(server_->count("POST"), 0u) << "nothing else changed: no list is sent";
  EXPECT_EQ(server_->attached(kCustomer), range(1, 40));
}

TEST_F(HealviEngineTest, ARemappedUserIdCountsTheIdsItWouldDropAndNewcomersStillGetAttached) {
  employees(40);
  ASSERT_EQ(run().outcome, engine::RunOutcome::kOk);

  // A mapping mistake: every employee now points at another Healvi user. A
  // full-set POST would detach all 40; one real newcomer joins as well.
  employees(41, 20);
  server_->clear_log();
  auto report = run();
  EXPECT_EQ(report.outcome, engine::RunOutcome::kBlocked);
  EXPECT_EQ(report.blocked_note,
            "40 detaches (40 of them updates, each replacing a user of the full set) exceed the limit of 5 for 40 "
            "users (max_detach: count 500, percent 10.0, floor 5); no detach was applied and those updates were held "
            "back. Review them with 'dirsync plan job', then raise max_detach for the job if they are intended.");
  EXPECT_EQ(report.counts.created, 1u);
  EXPECT_EQ(report.counts.updated, 0u);
  Ids expected = range(1, 40);
  expected.insert(61);  // e41 → 20 + 41
  EXPECT_EQ(server_->attached(kCustomer), expected);
  EXPECT_EQ(store_->get("job", "e1")->payload, nlohmann::json({{"user_id", 1}}));
}

TEST_F(HealviEngineTest, ChangesWithinTheLimitGoOutInOneList) {
  employees(40);
  ASSERT_EQ(run().outcome, engine::RunOutcome::kOk);
  employees(38);  // two leave
  source_.records[0].set("healvi_id", {"50"});  // one moves: drops id 1
  auto report = run();
  EXPECT_EQ(report.outcome, engine::RunOutcome::kOk) << report.blocked_note << report.error;
  EXPECT_EQ(report.counts.detached, 2u);
  EXPECT_EQ(report.counts.updated, 1u);
  Ids expected = range(2, 38);
  expected.insert(50);
  EXPECT_EQ(server_->attached(kCustomer), expected);
}

// ---- a listing that shows only some users ----------------------------------

TEST_F(HealviEngineTest, APartialListingDetachesNoneOfTheUsersTheJobManages) {
  employees(40);
  ASSERT_EQ(run().outcome, engine::RunOutcome::kOk);

  // A newcomer; Healvi's answer to the GET lists only some of the 41 attached users.
  employees(41);
  partial_listing();
  server_->clear_log();
  auto report = run();
  EXPECT_EQ(report.outcome, engine::RunOutcome::kOk) << report.error;
  EXPECT_EQ(report.counts.created, 1u);
  ASSERT_EQ(faults_->faults_applied(), 1u) << "the GET met no fault";
  Ids expected = range(1, 41);
  EXPECT_EQ(posted(), std::vector<Ids>{expected}) << "the set sent names every managed user";
  EXPECT_EQ(server_->attached(kCustomer), expected) << "every managed user is still attached";
  EXPECT_EQ(store_->snapshot_size("job"), 41u);

  // The next run, with a whole listing, finds nothing to do.
  server_->clear_log();
  auto again = run();
  EXPECT_EQ(again.outcome, engine::RunOutcome::kOk);
  EXPECT_EQ(again.counts.created + again.counts.updated + again.counts.detached, 0u);
  EXPECT_EQ(server_->count("POST"), 0u);
}

TEST_F(HealviEngineTest, ManagedUsersWhoseChangesAreWithheldStayInTheSetDespiteAPartialListing) {
  employees(40);
  ASSERT_EQ(run().outcome, engine::RunOutcome::kOk);
  // e40 is protected and leaves the source; e39 moves to another Healvi user.
  job_.protect = core::Filter(core::Condition::in("key", {"e40"}), std::nullopt);
  employees(39);
  source_.records[38].set("healvi_id", {"60"});
  partial_listing();
  auto report = run();
  EXPECT_EQ(report.outcome, engine::RunOutcome::kOk) << report.error;
  EXPECT_EQ(report.counts.protected_users, 1u);
  EXPECT_EQ(report.counts.updated, 1u);
  Ids expected = range(1, 38);
  expected.insert({40, 60});
  EXPECT_EQ(server_->attached(kCustomer), expected);
}

TEST_F(HealviEngineTest, AResyncOverAPartialListingKeepsTheUsersItDoesNotResend) {
  employees(40);
  ASSERT_EQ(run().outcome, engine::RunOutcome::kOk);
  // The source loses e31..e40 (an incomplete directory export): the guard
  // keeps their detaches back, and a resync re-sends only e1..e30.
  employees(30);
  engine::RunOptions resync;
  resync.mode = engine::Mode::kResync;
  partial_listing();
  auto report = run(resync);
  EXPECT_EQ(report.outcome, engine::RunOutcome::kBlocked) << report.error;
  ASSERT_EQ(faults_->faults_applied(), 1u);
  EXPECT_EQ(server_->attached(kCustomer), range(1, 40));
}

TEST_F(HealviEngineTest, ASavedPlanAppliedOverAPartialListingKeepsEveryManagedUser) {
  employees(40);
  ASSERT_EQ(run().outcome, engine::RunOutcome::kOk);
  employees(42);
  engine::RunOptions dry;
  dry.dry_run = true;
  const auto plan = run(dry);
  ASSERT_EQ(plan.plan.size(), 2u);
  partial_listing();
  auto report = apply_plan(plan.plan);
  EXPECT_EQ(report.outcome, engine::RunOutcome::kOk) << report.error;
  EXPECT_EQ(report.counts.created, 2u);
  ASSERT_EQ(faults_->faults_applied(), 1u);
  EXPECT_EQ(server_->attached(kCustomer), range(1, 42));
}

}  // namespace
}  // namespace dirsync::targets
