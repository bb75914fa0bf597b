// A job's guards: `max_update` (the shape of max_detach, off unless set) and
// `protect` (a filter condition on what the target holds), with positioned
// errors as for `max_detach` and `filter`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "tests/config/test_util.h"

namespace dirsync::config {
namespace {

using ::testing::ElementsAre;
using ::testing::StartsWith;
using testing::errors_of;

// The job's guard starts on line 12.
std::string with_guard(std::string_view guard) { return testing::one_job(guard); }

JobConfig job_of(std::string_view guard) { return load_string(with_guard(guard), "dirsync.yaml").jobs.at("j"); }

core::Record held(const std::string& key, std::vector<std::pair<std::string, std::string>> fields) {
  core::Record r;
  r.key = key;
  for (auto& [n, v] : fields) r.set(n, {v});
  r.set("key", {key});
  return r;
}

TEST(GuardsConfig, MaxUpdateIsOffUnlessTheJobSetsIt) {
  const auto job = job_of("");
  EXPECT_FALSE(job.max_update.enabled);
  EXPECT_TRUE(job.max_detach.enabled);
  EXPECT_TRUE(job.protect.empty());
}

TEST(GuardsConfig, AMaxUpdateMapTurnsItOnWithTheDefaultsForWhatItLeavesOut) {
  const auto job = job_of("    max_update: {count: 50, percent: 2.5%}\n");
  EXPECT_TRUE(job.max_update.enabled);
  EXPECT_EQ(job.max_update.max_count, 50u);
  EXPECT_DOUBLE_EQ(job.max_update.max_percent, 2.5);
  EXPECT_EQ(job.max_update.floor, 5u);
  EXPECT_TRUE(job.max_detach.enabled) << "max_detach keeps its own settings";
  EXPECT_EQ(job.max_detach.max_count, 500u);
}

TEST(GuardsConfig, MaxUpdateAcceptsOnAndOffAndEnabledFalse) {
  EXPECT_TRUE(job_of("    max_update: on\n").max_update.enabled);
  EXPECT_EQ(job_of("    max_update: on\n").max_update.max_count, 500u);
  EXPECT_FALSE(job_of("    max_update: off\n").max_update.enabled);
  EXPECT_FALSE(job_of("    max_update: {count: 3, enabled: false}\n").max_update.enabled);
}

TEST(GuardsConfig, MaxUpdateMistakesArePositionedAsForMaxDetach) {
  EXPECT_THAT(errors_of(with_guard(R"(
    max_update: {count: -1, flor: 5}
)")),
              ElementsAre("dirsync.yaml:12:25: bad value '-1' for 'count'; expected an integer from 0 to 1000000000",
                          "dirsync.yaml:12:29: unknown key 'flor' in max_update of job 'j'; did you mean 'floor'?"));
  EXPECT_THAT(errors_of(with_guard("    max_update: always\n")),
              ElementsAre("dirsync.yaml:12:17: bad value 'always' for 'max_update'; expected a map (count, percent, "
                          "floor, enabled) or off"));
}

TEST(GuardsConfig, ProtectReadsAConditionOnTheKeyAndTheTargetsFields) {
  const auto job = job_of(R"(
    protect:
      any:
        - {attribute: key, in: [admin, breakglass]}
        - {attribute: name, equals: Root}
)");
  ASSERT_FALSE(job.protect.empty());
  EXPECT_TRUE(job.protect.keeps(held("breakglass", {{"name", "Ada"}})));
  EXPECT_TRUE(job.protect.keeps(held("1044", {{"name", "Root"}})));
  EXPECT_FALSE(job.protect.keeps(held("1045", {{"name", "Ada"}})));
  EXPECT_EQ(job.protect.decide(held("admin", {})).reason, "included: key in ['admin', 'breakglass']");
}

TEST(GuardsConfig, ProtectMistakesArePositionedAsForAFilter) {
  EXPECT_THAT(errors_of(with_guard(R"(
    protect: {attribute: key, equal: admin}
)")),
              ElementsAre("dirsync.yaml:12:31: unknown key 'equal' in filter condition; did you mean 'equals'?"));
  const auto bad_regex = errors_of(with_guard(R"(
    protect:
      all:
        - {attribute: role, equals: admin}
        - {attribute: mail, regex: '(unclosed'}
)"));
  ASSERT_EQ(bad_regex.size(), 1u);
  EXPECT_THAT(bad_regex[0], StartsWith("dirsync.yaml:15:36: bad regex in filter on 'mail': "));
  EXPECT_THAT(errors_of(with_guard("    protect: admin\n")),
              ElementsAre("dirsync.yaml:12:14: bad value 'admin' for 'protect'; expected a filter condition, e.g. "
                          "{attribute: key, in: [admin]} or {any: [...]}"));
  EXPECT_THAT(errors_of(with_guard("    protect:\n")),
              ElementsAre(StartsWith("dirsync.yaml:12:5: missing value for 'protect'")));
}

TEST(GuardsConfig, ProtectOnAFieldTheTargetDoesNotHoldIsAnError) {
  // A misspelt field would protect nobody, silently.
  EXPECT_THAT(errors_of(with_guard(R"(
    protect: {any: [{attribute: key, in: [root]}, {attribute: nmae, equals: Root}]}
)")),
              ElementsAre("dirsync.yaml:12:63: protect condition on 'nmae' in job 'j', which is neither 'key' nor a "
                          "field of the job's mapping; did you mean 'name'?"));
  // What on_missing sets is held too, and so is a member of a mapped field.
  const auto job = job_of(R"(
    on_missing: {update: {approved: false}}
    protect: {any: [{attribute: Approved, equals: "false"}, {attribute: name.first, present: true}]}
)");
  EXPECT_FALSE(job.protect.empty());
}

}  // namespace
}  // namespace dirsync::config
