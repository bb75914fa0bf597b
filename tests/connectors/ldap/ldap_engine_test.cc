// The engine's "an incomplete pull never detaches" rule with the real LDAP
// source: slapd dies between two pages of a run, in front of a real LMDB
// state store and a target that applies everything.
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/sources/ldap/ldap_source.h"
#include "engine/sync_engine.h"
#include "state/state_store.h"
#include "tests/support/engine_fixture.h"
#include "tests/support/slapd_test_server.h"

namespace dirsync::engine {
namespace {

using core::Op;
using ::testing::HasSubstr;
using testing::RecordingTarget;
using testing::SlapdServer;
using testing::TempStateStore;

constexpr int kUsers = 40;
constexpr int kPageSize = 10;
const std::vector<std::string> kGone = {"gone-1", "gone-2", "gone-3"};

// The real LDAP source, with slapd killed (SIGKILL) after `pages` pages were served.
class KillingSource : public core::Source {
 public:
  KillingSource(core::Source& inner, SlapdServer& server, int pages) : inner_(inner), server_(server), pages_(pages) {}

  core::Result<std::unique_ptr<core::Pull>> start() override {
    auto pull = inner_.start();
    if (!pull.ok()) return pull.error();
    class P : public core::Pull {
     public:
      P(std::unique_ptr<core::Pull> inner, KillingSource& s) : inner_(std::move(inner)), s_(s) {}
      core::Result<core::Page> next() override {
        if (served_++ == s_.pages_) s_.server_.kill();
        return inner_->next();
      }

     private:
      std::unique_ptr<core::Pull> inner_;
      KillingSource& s_;
      int served_ = 0;
    };
    return std::unique_ptr<core::Pull>(std::make_unique<P>(std::move(pull).value(), *this));
  }
  std::string describe() const override { return inner_.describe(); }

 private:
  core::Source& inner_;
  SlapdServer& server_;
  int pages_;
};

class LdapEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::SlapdOptions options;
    options.ldif = testing::users_ldif(kUsers);
    server_ = std::make_unique<SlapdServer>(options);
    ASSERT_NO_THROW(server_->start());
    ASSERT_TRUE(store_.ok());

    job_.name = "job";
    job_.source = "directory";
    job_.target = "tgt";
    job_.max_detach = {500, 10.0, 5, true};

    // Users the target has and the directory does not: a complete pull would detach them.
    std::vector<state::SnapshotWrite> writes;
    for (const auto& key : kGone) {
      nlohmann::json payload = {{"name", key}};
      writes.push_back({key, core::SnapshotEntry{core::canonical_hash(payload), "t-" + key, payload}});
    }
    ASSERT_TRUE(store_->commit("job", writes).ok());

    settings_.url = server_->ldap_url();
    settings_.start_tls = false;
    settings_.bind_dn = SlapdServer::kReaderDn;
    settings_.bind_password = core::Secret(SlapdServer::kReaderPassword, "${env:LDAP_PASSWORD}");
    settings_.base_dn = SlapdServer::kPeopleDn;
    settings_.filter = "(objectClass=inetOrgPerson)";
    settings_.page_size = kPageSize;
  }
  RunReport run(core::Source& source) {
    core::Mapping mapping({{"name", core::Template::parse("{cn}"), core::FieldType::kString}});
    SyncEngine engine(job_, *store_, source, target_, mapping);
    return engine.run({});
  }

  std::unique_ptr<SlapdServer> server_;
  TempStateStore store_;
  config::JobConfig job_;
  sources::LdapSourceSettings settings_;
  RecordingTarget target_;
};

TEST_F(LdapEngine, SlapdDyingMidPullCreatesWhatWasSeenAndDetachesNothing) {
  auto ldap = sources::make_ldap_source(settings_);
  KillingSource source(*ldap, *server_, 1);
  auto report = run(source);

  EXPECT_EQ(report.outcome, RunOutcome::kFailed);
  EXPECT_FALSE(report.pull_complete);
  EXPECT_THAT(report.error, HasSubstr("search (page 2, after 10 entries; connection lost) failed"));
  EXPECT_EQ(report.counts.created, static_cast<std::size_t>(kPageSize));
  EXPECT_EQ(target_.count(Op::kCreate), static_cast<std::size_t>(kPageSize));
  EXPECT_EQ(target_.count(Op::kDetach), 0u);
  EXPECT_EQ(report.counts.detached, 0u);
  for (const auto& key : kGone) EXPECT_TRUE(store_->get("job", key)) << key;
  EXPECT_EQ(store_->snapshot_size("job"), kGone.size() + kPageSize);
}

// The control: the same setup with a pull that completes does detach them.
TEST_F(LdapEngine, CompletePullDetachesWhatTheDirectoryNoLongerHas) {
  auto ldap = sources::make_ldap_source(settings_);
  auto report = run(*ldap);

  EXPECT_EQ(report.outcome, RunOutcome::kOk) << report.error;
  EXPECT_TRUE(report.pull_complete);
  EXPECT_EQ(report.counts.created, static_cast<std::size_t>(kUsers));
  EXPECT_EQ(target_.count(Op::kDetach), kGone.size());
  for (const auto& key : kGone) EXPECT_FALSE(store_->get("job", key)) << key;
  EXPECT_EQ(store_->snapshot_size("job"), static_cast<std::size_t>(kUsers));
}

}  // namespace
}  // namespace dirsync::engine
