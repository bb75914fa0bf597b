// The settings of the targets beyond PERSCOM, and the shared HTTP keys for
// concurrency and rate limits.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/config/test_util.h"

namespace dirsync::config {
namespace {

using ::testing::ElementsAre;
using testing::errors_of;
using testing::yaml;

TEST(TargetSettings, ReadsEveryTargetType) {
  const Config cfg = load_string(yaml(R"(
state_dir: /var/lib/dirsync
targets:
  hesh:
    type: hesh
    tenant_id: 40dd0c53-2fa7-4193-82ae-14d4e62c20fb
    api_key: key-1
    batch_size: 50
  royalti:
    type: royalti
    base_url: https://royalti.example/
    token: tok
    message: Welcome
  healvi:
    type: healvi
    base_url: https://h.example/third-party/v1
    token: tok
    customer_id: 42
  auth:
    type: auth_sync_user
    base_url: https://auth.example
    password_secret: s3cret
    max_in_flight: 16
)"),
                                 "dirsync.yaml");
  const auto& hesh = std::get<HeshTargetSettings>(cfg.targets.at("hesh").settings);
  EXPECT_EQ(hesh.base_url, "https://api.hesh.app");
  EXPECT_EQ(hesh.tenant_id.reveal(), "40dd0c53-2fa7-4193-82ae-14d4e62c20fb");
  EXPECT_EQ(hesh.batch_size, 50u);
  EXPECT_FALSE(hesh.http.rate_limits.has_value());  // the target's documented defaults
  const auto& royalti = std::get<RoyaltiTargetSettings>(cfg.targets.at("royalti").settings);
  EXPECT_EQ(royalti.base_url, "https://royalti.example");
  EXPECT_FALSE(royalti.send_email);  // invitations are opt-in
  EXPECT_EQ(royalti.message, "Welcome");
  const auto& healvi = std::get<HealviTargetSettings>(cfg.targets.at("healvi").settings);
  EXPECT_EQ(healvi.customer_id, 42);
  EXPECT_FALSE(healvi.allow_empty);
  const auto& auth = std::get<AuthSyncUserTargetSettings>(cfg.targets.at("auth").settings);
  EXPECT_EQ(auth.http.max_in_flight, 16u);
  EXPECT_EQ(auth.api_key_header, "X-API-Key");
}

TEST(TargetSettings, RejectsATenantIdThatIsNotAUuidV4WithoutEchoingIt) {
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
targets:
  hesh:
    type: hesh
    tenant_id: 40dd0c53-2fa7-1193-82ae-14d4e62c20fb
)"),
              ElementsAre("dirsync.yaml:5:16: tenant_id from (literal) is not a UUID v4; expected the form "
                          "xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx"));
}

TEST(TargetSettings, ReadsRateLimitWindowsAndOff) {
  const Config cfg = load_string(yaml(R"(
state_dir: /var/lib/dirsync
targets:
  a:
    type: perscom
    base_url: https://p.example
    token: t
    rate_limits: [15/s, 300/min, 4000/h]
  b:
    type: perscom
    base_url: https://p.example
    token: t
    rate_limits: off
)"),
                                 "dirsync.yaml");
  const auto& a = std::get<PerscomTargetSettings>(cfg.targets.at("a").settings);
  ASSERT_TRUE(a.http.rate_limits.has_value());
  EXPECT_THAT(*a.http.rate_limits,
              ElementsAre(RateWindow{15, std::chrono::seconds(1)}, RateWindow{300, std::chrono::minutes(1)},
                          RateWindow{4000, std::chrono::hours(1)}));
  const auto& b = std::get<PerscomTargetSettings>(cfg.targets.at("b").settings);
  ASSERT_TRUE(b.http.rate_limits.has_value());
  EXPECT_TRUE(b.http.rate_limits->empty());
}

TEST(TargetSettings, RejectsMalformedRateLimitsAndConcurrency) {
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
targets:
  a:
    type: perscom
    base_url: https://p.example
    token: t
    rate_limits: [15/s, 3/fortnight]
    max_in_flight: 0
)"),
              ElementsAre("dirsync.yaml:7:25: bad rate limit '3/fortnight'; expected a list such as [15/s, 300/min, "
                          "4000/h], or off",
                          "dirsync.yaml:8:20: bad value '0' for 'max_in_flight'; expected an integer from 1 to 256"));
}

TEST(TargetSettings, RequiresTheHealviCustomerAndTheAuthSyncPasswordSecret) {
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
targets:
  h:
    type: healvi
    base_url: https://h.example/third-party/v1
    token: t
  a:
    type: auth_sync_user
    base_url: https://a.example
)"),
              ElementsAre("dirsync.yaml:3:3: missing required key 'customer_id' in target 'h'; expected an integer",
                          "dirsync.yaml:7:3: missing required key 'password_secret' in target 'a'; expected a secret"));
}

TEST(JobSettings, OnMissingUpdateSetsTypedConstants) {
  const Config cfg = load_string(yaml(R"(
state_dir: /var/lib/dirsync
sources:
  s: {type: csv, path: u.csv, key: id}
targets:
  t: {type: file, path: out.jsonl}
jobs:
  j:
    source: s
    target: t
    mapping: {name: "{name}"}
    on_missing: {update: {approved: false, status_id: 3, notes: "left the company"}}
)"),
                                 "dirsync.yaml");
  const auto& job = cfg.jobs.at("j");
  EXPECT_EQ(job.on_missing, OnMissing::kUpdate);
  EXPECT_EQ(job.missing_update, nlohmann::json({{"approved", false}, {"status_id", 3}, {"notes", "left the company"}}));
}

TEST(JobSettings, RejectsAMalformedOnMissing) {
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
sources:
  s: {type: csv, path: u.csv, key: id}
targets:
  t: {type: file, path: out.jsonl}
jobs:
  j:
    source: s
    target: t
    mapping: {name: "{name}"}
    on_missing: {suspend: true}
)"),
              ElementsAre("dirsync.yaml:11:17: bad value (a map) for 'on_missing'; expected detach, ignore, or "
                          "{update: {field: value, ...}}"));
}

}  // namespace
}  // namespace dirsync::config
