// A job's `filter:` section: parsed into conditions that decide records, with
// positioned errors for everything malformed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "tests/config/test_util.h"

namespace dirsync::config {
namespace {

using ::testing::ElementsAre;
using testing::errors_of;
using testing::yaml;

// Line 12 is a comment; the filter starts on line 13.
std::string with_filter(std::string_view filter) {
  if (!filter.empty() && filter.front() == '\n') filter.remove_prefix(1);
  return testing::one_job("    # the filter:\n" + std::string(filter));
}

core::Record person(std::vector<std::pair<std::string, std::string>> attrs) {
  core::Record r;
  r.key = "k";
  for (auto& [n, v] : attrs) r.set(n, {v});
  return r;
}

TEST(FilterConfig, ReadsIncludeAndExcludeWithNestedCombinators) {
  const auto cfg = load_string(with_filter(R"(
    filter:
      include:
        all:
          - {attribute: objectClass, equals: person}
          - any:
              - {attribute: dept, in: [Sales, Support]}
              - {attribute: title, regex: '^Head of'}
      exclude:
        not: {attribute: mail, present: true}
)"),
                               "dirsync.yaml");
  const auto& f = cfg.jobs.at("j").filter;
  EXPECT_FALSE(f.empty());
  EXPECT_TRUE(f.keeps(person({{"objectClass", "person"}, {"dept", "Sales"}, {"mail", "a@x"}})));
  EXPECT_TRUE(f.keeps(person({{"objectClass", "person"}, {"title", "Head of IT"}, {"mail", "a@x"}})));
  EXPECT_FALSE(f.keeps(person({{"objectClass", "person"}, {"dept", "Sales"}})));  // no mail
  EXPECT_FALSE(f.keeps(person({{"objectClass", "device"}, {"dept", "Sales"}, {"mail", "a@x"}})));
}

TEST(FilterConfig, NoFilterKeepsEveryRecord) {
  const auto cfg = load_string(with_filter(""), "dirsync.yaml");
  EXPECT_TRUE(cfg.jobs.at("j").filter.empty());
}

TEST(FilterConfig, RejectsAnUnknownTestWithASuggestion) {
  EXPECT_THAT(errors_of(with_filter(R"(
    filter:
      include: {attribute: dept, equal: Sales}
)")),
              ElementsAre("dirsync.yaml:14:34: unknown key 'equal' in filter condition; did you mean 'equals'?"));
}

TEST(FilterConfig, RejectsTwoTestsInOneCondition) {
  EXPECT_THAT(errors_of(with_filter(R"(
    filter:
      exclude: {attribute: dept, equals: Sales, regex: x}
)")),
              ElementsAre("dirsync.yaml:14:49: two tests ('equals' and 'regex') in one filter condition; expected one "
                          "test per condition; combine them with all: [...]"));
}

// A huge repeat count too: Boost would accept it, and take N² steps on every long value.
TEST(FilterConfig, RejectsABadRegexAtItsPosition) {
  for (const auto& [pattern, problem] : {std::pair{"(unclosed", "unbalanced ( )"},
                                         std::pair{"a{99999999}", "a repeat count above 1000"}}) {
    EXPECT_THAT(errors_of(with_filter("    filter:\n      exclude: {attribute: title, regex: '" +
                                      std::string(pattern) + "'}\n")),
                ElementsAre("dirsync.yaml:14:42: bad regex in filter on 'title': " + std::string(problem) + " in '" +
                            pattern + "'; expected an ECMAScript regular expression"));
  }
}

// The loaded filter leaves a record its regex gives up on undecided, for the engine to report.
TEST(FilterConfig, ARegexThatGivesUpLeavesTheRecordUndecided) {
  const auto cfg = load_string(with_filter(R"(
    filter:
      exclude: {attribute: title, regex: '(a+)+$'}
)"),
                               "dirsync.yaml");
  const auto d = cfg.jobs.at("j").filter.decide(person({{"title", std::string(40, 'a') + "b"}}));
  EXPECT_FALSE(d.decided);
  EXPECT_THAT(d.reason, ::testing::StartsWith("undecided: filter condition on 'title' cannot be decided: regex "
                                              "/(a+)+$/ gave up on a value of 41 bytes: too much backtracking"));
  EXPECT_TRUE(cfg.jobs.at("j").filter.decide(person({{"title", "Engineer"}})).decided);
}

TEST(FilterConfig, RejectsAConditionWithoutAttribute) {
  EXPECT_THAT(errors_of(with_filter(R"(
    filter:
      include: {equals: Sales}
)")),
              ElementsAre(::testing::StartsWith("dirsync.yaml:14:16: filter condition without 'attribute'")));
}

TEST(FilterConfig, RejectsUnknownFilterKeys) {
  EXPECT_THAT(errors_of(with_filter(R"(
    filter:
      includes: {attribute: dept, equals: Sales}
)")),
              ElementsAre(::testing::StartsWith("dirsync.yaml:14:7: unknown key 'includes' in filter in job 'j'; "
                                                "did you mean 'include'?")));
}

TEST(FilterConfig, RejectsAnEmptyAny) {
  EXPECT_THAT(errors_of(with_filter(R"(
    filter:
      include: {any: []}
)")),
              ElementsAre(::testing::StartsWith("dirsync.yaml:14:22: bad value for 'any' in filter")));
}

TEST(FilterConfig, RejectsPresentThatIsNotABoolean) {
  EXPECT_THAT(errors_of(with_filter(R"(
    filter:
      include: {attribute: mail, present: maybe}
)")),
              ElementsAre("dirsync.yaml:14:43: bad value for 'present' in filter; expected true or false"));
}

}  // namespace
}  // namespace dirsync::config
