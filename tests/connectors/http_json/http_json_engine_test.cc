// The http_json source inside a real sync: a page that fails mid-pull leaves
// the pull incomplete, so users on the pages never read are not detached,
// while the users that were read still go out.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/sources/http_json/http_json_source.h"
#include "engine/sync_engine.h"
#include "tests/connectors/http_json/test_util.h"
#include "tests/support/engine_fixture.h"

namespace dirsync::sources {
namespace {

using dirsync::testing::RecordingTarget;
using dirsync::testing::TempStateStore;
using dirsync::testing::http_json::Fault;
using dirsync::testing::http_json::HttpJsonTestServer;
using nlohmann::json;
using ::testing::HasSubstr;

class HttpJsonEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(store_.ok());
    job_.name = "job";
    job_.source = "api";
    job_.target = "tgt";
    server_.add_users(25);
    server_.start();
    source_ = make_http_json_source(testing::settings_for(server_, config::Pagination::kPage));
  }
  engine::RunReport run() {
    target_.sent.clear();
    core::Mapping mapping({{"email", core::Template::parse("{email}"), core::FieldType::kString}});
    engine::SyncEngine engine(job_, *store_, *source_, target_, mapping);
    return engine.run({});
  }

  config::JobConfig job_;
  TempStateStore store_;
  HttpJsonTestServer server_;
  std::unique_ptr<core::Source> source_;
  RecordingTarget target_{50};
};

TEST_F(HttpJsonEngineTest, PageFailingMidPullCreatesWhatWasSeenAndDetachesNothing) {
  auto first = run();
  ASSERT_EQ(first.outcome, engine::RunOutcome::kOk) << first.error;
  ASSERT_EQ(first.counts.created, 25u);

  // A newcomer arrives on page 1, u25 leaves; page 3 (u20..u24) then fails for good.
  auto users = server_.users();
  users.pop_back();
  users.insert(users.begin(), json{{"id", "n1"}, {"email", "newcomer@example.com"}});
  server_.set_users(users);
  server_.inject(2, Fault::k500, -1);

  auto report = run();
  EXPECT_EQ(report.outcome, engine::RunOutcome::kFailed);
  EXPECT_FALSE(report.pull_complete);
  EXPECT_THAT(report.error, HasSubstr("?page=3&per_page=10: HTTP 500: Server Error (after 3 attempts)"));
  EXPECT_EQ(report.counts.created, 1u);
  EXPECT_EQ(target_.count(core::Op::kCreate), 1u);
  EXPECT_EQ(target_.sent.at(0).key, "n1");
  EXPECT_EQ(report.counts.detached, 0u);
  EXPECT_EQ(target_.count(core::Op::kDetach), 0u);  // u20..u25 were not seen, and stay
  EXPECT_EQ(store_->snapshot_size("job"), 26u);

  // Once the page reads again the pull completes, and only the user who left goes.
  server_.clear_faults();
  auto healed = run();
  EXPECT_EQ(healed.outcome, engine::RunOutcome::kOk) << healed.error;
  EXPECT_TRUE(healed.pull_complete);
  ASSERT_EQ(target_.count(core::Op::kDetach), 1u);
  EXPECT_EQ(target_.sent.at(0).key, "u25");
  EXPECT_EQ(store_->snapshot_size("job"), 25u);
}

}  // namespace
}  // namespace dirsync::sources
