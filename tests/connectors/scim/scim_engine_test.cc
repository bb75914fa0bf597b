// The scim source through the engine: a pull that fails mid-way pushes what it
// saw and detaches nobody, though the snapshot holds users it never reached.
#include <gtest/gtest.h>

#include "connectors/sources/scim/scim_source.h"
#include "engine/sync_engine.h"
#include "tests/connectors/scim/scim_test_util.h"
#include "tests/support/engine_fixture.h"

namespace dirsync::sources {
namespace {

using core::Op;
using nlohmann::json;
using scim_test::id_of;
using scim_test::make_user;

class ScimEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.start();
    ASSERT_TRUE(store_.ok());
    job_.name = "job";
    job_.source = "scim";
    job_.target = "recording";
    job_.max_detach = {500, 100.0, 50, true};  // the guard is not what stops detaches here
  }

  engine::RunReport run() {
    auto settings = scim_test::settings_for(server_.base_url(), 100);
    settings.http.max_attempts = 2;
    auto source = make_scim_source(settings);
    core::Mapping mapping(
        {{"name", core::Template::parse("{name.givenName} {name.familyName}"), core::FieldType::kString},
         {"email", core::Template::parse("{userName}"), core::FieldType::kString}});
    engine::SyncEngine engine(job_, *store_, *source, target_, mapping);
    return engine.run({});
  }

  testing::ScimTestServer server_{[] {
    testing::ScimServerOptions o;
    o.token = scim_test::kToken;
    o.max_page_size = 50;
    return o;
  }()};
  config::JobConfig job_;
  testing::TempStateStore store_;
  testing::RecordingTarget target_{100};
};

TEST_F(ScimEngineTest, PageFailingMidPullPushesWhatWasSeenAndDetachesNobody) {
  for (int i = 1; i <= 250; ++i) server_.add_user(make_user(i));
  auto first = run();
  ASSERT_EQ(first.outcome, engine::RunOutcome::kOk) << first.error;
  EXPECT_TRUE(first.pull_complete);
  EXPECT_EQ(first.counts.created, 250u);
  ASSERT_EQ(store_->snapshot_size("job"), 250u);

  // Now: a newcomer listed first, u002 renamed, u250 gone, and the third page fails on every attempt.
  json newcomer = make_user(900);
  newcomer["id"] = "n001";
  ASSERT_TRUE(server_.remove_user("u250"));
  json renamed = make_user(2);
  renamed["name"]["givenName"] = "Renamed";
  server_.before_request(server_.request_count() + 1, [&](std::vector<json>& users) {
    users.insert(users.begin(), newcomer);
    users[2] = renamed;  // u002, one place down after the insert
  });
  server_.fail_request(server_.request_count() + 3, testing::ScimFault::k500, 2);
  target_.sent.clear();

  auto second = run();
  EXPECT_EQ(second.outcome, engine::RunOutcome::kFailed);
  EXPECT_FALSE(second.pull_complete);
  EXPECT_EQ(second.error, "source 'scim' failed mid-pull: GET " + server_.base_url() +
                              "/Users?startIndex=101&count=100: HTTP 500: Internal error while listing users (after 2 "
                              "attempts)");
  EXPECT_EQ(second.counts.source_records, 100u);
  EXPECT_EQ(second.counts.created, 1u);
  EXPECT_EQ(second.counts.updated, 1u);
  EXPECT_EQ(target_.count(Op::kDetach), 0u);
  EXPECT_EQ(second.counts.detached, 0u);
  EXPECT_EQ(store_->snapshot_size("job"), 251u);
  EXPECT_TRUE(store_->get("job", "n001"));
  EXPECT_TRUE(store_->get("job", "u250"));  // unseen, and kept
  EXPECT_EQ(store_->get("job", id_of(2))->payload["name"], "Renamed Family2");
}

TEST_F(ScimEngineTest, CompletePullDetachesTheUserWhoLeft) {
  // The same change without the failure: the detach the failed run withheld
  // is real, so the test above proves the failure is what stopped it.
  for (int i = 1; i <= 120; ++i) server_.add_user(make_user(i));
  ASSERT_EQ(run().outcome, engine::RunOutcome::kOk);
  ASSERT_TRUE(server_.remove_user("u120"));
  target_.sent.clear();
  auto report = run();
  EXPECT_TRUE(report.pull_complete);
  EXPECT_EQ(target_.count(Op::kDetach), 1u);
  EXPECT_EQ(store_->snapshot_size("job"), 119u);
}

}  // namespace
}  // namespace dirsync::sources
