// A job's `schedule:` / `run_at_start:` and the top-level `daemon:` section.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "tests/config/test_util.h"

namespace dirsync::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::errors_of;

// The job's schedule is on line 12; `extra` starts on line 13.
std::string with_schedule(const std::string& schedule, const std::string& extra = "") {
  return testing::one_job("    schedule: " + schedule + "\n" + extra);
}

TEST(ScheduleConfig, ReadsEveryWithJitter) {
  const auto cfg = load_string(with_schedule("{every: 15m, jitter: 1m}"), "dirsync.yaml");
  const auto& s = cfg.jobs.at("j").schedule;
  EXPECT_EQ(s.kind, Schedule::Kind::kEvery);
  EXPECT_EQ(s.every, std::chrono::minutes(15));
  EXPECT_EQ(s.jitter, std::chrono::minutes(1));
  EXPECT_EQ(s.text, "every 15m (jitter 1m)");
  EXPECT_TRUE(cfg.jobs.at("j").run_at_start);
}

TEST(ScheduleConfig, ReadsACronExpressionInUtc) {
  const auto cfg = load_string(with_schedule("{cron: \"*/15 9-17 * * mon-fri\", timezone: UTC}"), "dirsync.yaml");
  const auto& s = cfg.jobs.at("j").schedule;
  EXPECT_EQ(s.kind, Schedule::Kind::kCron);
  ASSERT_TRUE(s.cron);
  EXPECT_EQ(s.zone, core::TimeZone::kUtc);
  EXPECT_EQ(s.text, "cron */15 9-17 * * mon-fri (UTC)");
}

TEST(ScheduleConfig, DefaultsToManualAndReadsRunAtStart) {
  const auto cfg = load_string(with_schedule("manual", "    run_at_start: false\n"), "dirsync.yaml");
  EXPECT_EQ(cfg.jobs.at("j").schedule.kind, Schedule::Kind::kManual);
  EXPECT_FALSE(cfg.jobs.at("j").run_at_start);
}

TEST(ScheduleConfig, PointsAtTheBadFieldOfACronExpression) {
  EXPECT_THAT(errors_of(with_schedule("{cron: \"0 24 * * *\"}")),
              ElementsAre("dirsync.yaml:12:25: bad cron expression: hour 24 is out of range 0-23; expected minute hour "
                          "day-of-month month day-of-week, e.g. \"*/15 * * * *\""));
}

TEST(ScheduleConfig, RejectsEveryTogetherWithCron) {
  EXPECT_THAT(errors_of(with_schedule("{every: 1m, cron: \"* * * * *\"}")),
              ElementsAre(HasSubstr("both 'every' and 'cron' in schedule in job 'j'")));
}

TEST(ScheduleConfig, RejectsAnIntervalBelowOneSecond) {
  EXPECT_THAT(errors_of(with_schedule("{every: 500ms}")),
              ElementsAre(HasSubstr("bad value '500ms' for 'every'; expected a duration of at least 1s")));
}

TEST(ScheduleConfig, RejectsATimezoneOtherThanLocalOrUtc) {
  EXPECT_THAT(errors_of(with_schedule("{cron: \"@daily\", timezone: Europe/Berlin}")),
              ElementsAre(HasSubstr("'timezone'")));
}

TEST(DaemonConfig, ReadsTheDaemonSection) {
  const auto cfg = load_string(with_schedule("manual") + "daemon: {max_concurrent_jobs: 4, shutdown_timeout: 2m, "
                                                          "failure_backoff: 30s, failure_backoff_max: 10m}\n",
                               "dirsync.yaml");
  EXPECT_EQ(cfg.daemon.max_concurrent_jobs, 4u);
  EXPECT_EQ(cfg.daemon.shutdown_timeout, std::chrono::minutes(2));
  EXPECT_EQ(cfg.daemon.failure_backoff, std::chrono::seconds(30));
  EXPECT_EQ(cfg.daemon.failure_backoff_max, std::chrono::minutes(10));
}

TEST(DaemonConfig, RejectsABackoffLongerThanItsCap) {
  EXPECT_THAT(errors_of(with_schedule("manual") + "daemon: {failure_backoff: 2h, failure_backoff_max: 1h}\n"),
              ElementsAre(HasSubstr("failure_backoff (120m) is longer than failure_backoff_max (60m)")));
}

TEST(DaemonConfig, RejectsUnknownDaemonKeys) {
  EXPECT_THAT(errors_of(with_schedule("manual") + "daemon: {max_jobs: 3}\n"),
              ElementsAre(HasSubstr("unknown key 'max_jobs' in daemon")));
}

}  // namespace
}  // namespace dirsync::config

namespace dirsync::config {
namespace {

TEST(DaemonConfig, KeepsTheAuditLogNextToTheStateUnlessTurnedOff) {
  EXPECT_EQ(load_string(with_schedule("manual"), "dirsync.yaml").daemon.audit_log, "/var/lib/dirsync/audit.jsonl");
  EXPECT_EQ(load_string(with_schedule("manual") + "daemon: {audit_log: off}\n", "dirsync.yaml").daemon.audit_log, "");
  const auto cfg = load_string(with_schedule("manual") + "daemon: {audit_log: /var/log/dirsync/audit.jsonl, "
                                                          "audit_max_size: 8, audit_keep: 3, audit_max_age: 1h}\n",
                               "dirsync.yaml");
  EXPECT_EQ(cfg.daemon.audit_log, "/var/log/dirsync/audit.jsonl");
  EXPECT_EQ(cfg.daemon.audit_max_bytes, 8u << 20);
  EXPECT_EQ(cfg.daemon.audit_keep, 3u);
  EXPECT_EQ(cfg.daemon.audit_max_age, std::chrono::hours(1));
}

TEST(DaemonConfig, ServesMetricsOnlyOnLoopback) {
  EXPECT_EQ(load_string(with_schedule("manual") + "daemon: {metrics: '127.0.0.1:9187'}\n", "dirsync.yaml")
                .daemon.metrics_listen,
            "127.0.0.1:9187");
  EXPECT_EQ(load_string(with_schedule("manual"), "dirsync.yaml").daemon.metrics_listen, "") << "off by default";
  EXPECT_THAT(errors_of(with_schedule("manual") + "daemon: {metrics: '0.0.0.0:9187'}\n"),
              ElementsAre(HasSubstr("expected a loopback address and port such as 127.0.0.1:9187, or off")));
}

}  // namespace
}  // namespace dirsync::config
