// Top-level `lookups` and the job templates that use them (map:NAME): tables
// come out in file order, templates find them wherever they are written, and
// every mistake is reported with its position.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "core/record.h"
#include "tests/config/test_util.h"

namespace dirsync::config {
namespace {

using ::testing::ElementsAre;
using testing::errors_of;
using testing::yaml;

// Lines 1-8: a valid file up to "jobs:", which comes next (line 9).
constexpr std::string_view kHead = R"(
state_dir: /var/lib/dirsync
sources:
  ldap:
    type: csv
    path: /srv/users.csv
    key: uid
targets:
  out: {type: file, path: /tmp/out.jsonl}
)";

// A job whose mapping has one field, `field: <tmpl>` at line 14 (column 14 for
// the template's first character after the opening double quote).
std::string job_with(std::string_view tmpl) {
  return std::string(kHead) + "jobs:\n  j:\n    source: ldap\n    target: out\n    mapping:\n      role: \"" +
         std::string(tmpl) + "\"\n";
}

core::Record member_of(std::vector<std::string> groups) {
  core::Record r;
  r.key = "u1";
  r.set("memberOf", std::move(groups));
  return r;
}

TEST(ConfigLookups, TablesKeepFileOrderAndJobTemplatesUseThem) {
  // The lookups come after the jobs in the file: they are read first anyway.
  const std::string text = std::string(kHead) + R"(jobs:
  j:
    source: ldap
    target: out
    mapping:
      role_id: "{memberOf | map:roles | first | default:'3'}"
      admin: "{memberOf | map:'roles' | equals:'1' | if:'yes','no'}"
lookups:
  roles:
    "cn=admins,ou=groups,dc=example,dc=com": 1
    "cn=staff,ou=groups,dc=example,dc=com": 2
    "cn=interns,ou=groups,dc=example,dc=com": two
    "cn=old,ou=groups,dc=example,dc=com": true
  unused: {a: b}
)";
  const Config cfg = load_string(yaml(text), "dirsync.yaml");
  ASSERT_EQ(cfg.lookups.size(), 2u);
  const auto& roles = *cfg.lookups.at("roles");
  ASSERT_EQ(roles.entries().size(), 4u);
  EXPECT_EQ(roles.entries()[0].key, "cn=admins,ou=groups,dc=example,dc=com");
  EXPECT_EQ(roles.entries()[0].value, "1");
  EXPECT_EQ(roles.entries()[2].value, "two");
  EXPECT_EQ(roles.entries()[3].value, "true");

  const auto& mapping = cfg.jobs.at("j").mapping;
  ASSERT_EQ(mapping.size(), 2u);
  // DNs match case-insensitively; the table's order decides which one `first` keeps.
  const auto staff_and_admin =
      member_of({"cn=staff,ou=groups,dc=example,dc=com", "CN=Admins,OU=Groups,DC=Example,DC=Com"});
  EXPECT_EQ(mapping[0].tmpl.render(staff_and_admin).value(), "1");
  EXPECT_EQ(mapping[1].tmpl.render(staff_and_admin).value(), "yes");
  EXPECT_EQ(mapping[0].tmpl.render(member_of({"cn=staff,ou=groups,dc=example,dc=com"})).value(), "2");
  EXPECT_EQ(mapping[0].tmpl.render(member_of({"cn=nobody"})).value(), "3");
  EXPECT_EQ(mapping[1].tmpl.render(member_of({"cn=nobody"})).value(), "no");
}

TEST(ConfigLookups, NoLookupsIsAnEmptySet) {
  const Config cfg = load_string(yaml(job_with("{memberOf | first}")), "dirsync.yaml");
  EXPECT_TRUE(cfg.lookups.empty());
}

TEST(ConfigLookups, ReportsEveryMistakeInATableWithItsPosition) {
  EXPECT_THAT(errors_of(std::string(kHead) + R"(lookups:
  roles:
    "cn=a": 1
    "cn=b": [1, 2]
    "cn=c":
    "cn=a": 3
    ? [x]
    : 4
    "cn=d": {x: 1}
  flat: 5
  empty:
  bad name: {a: b}
)"),
              ElementsAre("dirsync.yaml:12:13: bad value (a list) for 'cn=b' in lookup table 'roles'; "
                          "expected a string, number or boolean",
                          "dirsync.yaml:13:5: missing value for 'cn=c' in lookup table 'roles'; "
                          "expected a string, number or boolean",
                          "dirsync.yaml:14:5: duplicate key 'cn=a' in lookup table 'roles'; "
                          "expected each key once (first at line 11)",
                          "dirsync.yaml:15:7: bad key (a list) in lookup table 'roles'; expected a source value",
                          "dirsync.yaml:17:13: bad value (a map) for 'cn=d' in lookup table 'roles'; "
                          "expected a string, number or boolean",
                          "dirsync.yaml:18:9: bad value '5' for lookup table 'flat'; "
                          "expected a map of source value: result",
                          "dirsync.yaml:19:3: missing value for lookup table 'empty'; "
                          "expected a map of source value: result",
                          "dirsync.yaml:20:3: bad lookup table name 'bad name'; "
                          "expected letters, digits, '-', '_' or '.', not starting with '.'"));
}

TEST(ConfigLookups, RejectsLookupsThatAreNotAMap) {
  EXPECT_THAT(errors_of(std::string(kHead) + "lookups: [roles]\n"),
              ElementsAre("dirsync.yaml:9:10: bad value (a list) for 'lookups'; "
                          "expected a map of lookup table name: settings"));
}

TEST(ConfigLookups, UnknownTableInATemplateIsReportedAtItsArgument) {
  const std::string tables = "lookups:\n  roles: {a: 1}\n  sites: {b: 2}\n";
  // "{memberOf | map:" is 16 characters: the name starts at column 14 + 16.
  EXPECT_THAT(errors_of(job_with("{memberOf | map:rols | first}") + tables),
              ElementsAre("dirsync.yaml:14:30: bad template for 'role': unknown lookup table 'rols'; "
                          "did you mean 'roles'?"));
  EXPECT_THAT(errors_of(job_with("{memberOf | map:'departments'}") + tables),
              ElementsAre("dirsync.yaml:14:30: bad template for 'role': unknown lookup table 'departments'; "
                          "known tables: roles, sites"));
  EXPECT_THAT(errors_of(job_with("{memberOf | map:roles}")),
              ElementsAre("dirsync.yaml:14:30: bad template for 'role': unknown lookup table 'roles'; "
                          "no lookup tables are defined"));
}

TEST(ConfigLookups, ATableWithErrorsIsStillKnownToTemplates) {
  // One mistake, one message: the template naming the broken table is not an error too.
  EXPECT_THAT(errors_of(job_with("{memberOf | map:roles}") + "lookups:\n  roles: 5\n"),
              ElementsAre("dirsync.yaml:16:10: bad value '5' for lookup table 'roles'; "
                          "expected a map of source value: result"));
}

TEST(ConfigLookups, TemplateFunctionErrorsArePositioned) {
  EXPECT_THAT(errors_of(job_with("{mail | lowr}")),
              ElementsAre("dirsync.yaml:14:22: bad template for 'role': unknown function 'lowr'; "
                          "did you mean 'lower'?"));
  EXPECT_THAT(errors_of(job_with("{mail | frobnicate}")),
              ElementsAre("dirsync.yaml:14:22: bad template for 'role': unknown function 'frobnicate'; "
                          "known functions: lower, upper, trim, default, int, bool, first, join, replace, split, "
                          "digits, e164, equals, present, if, map"));
  EXPECT_THAT(errors_of(job_with("{mail | replace:'(a','b'}")),
              ElementsAre("dirsync.yaml:14:30: bad template for 'role': bad regex '(a' for 'replace': "
                          "unbalanced ( ); expected an ECMAScript regular expression"));
  EXPECT_THAT(errors_of(job_with("{phone | e164:'+4x'}")),
              ElementsAre("dirsync.yaml:14:28: bad template for 'role': bad country code '+4x' for 'e164'; "
                          "expected + and 1 to 3 digits, such as '+49'"));
  EXPECT_THAT(errors_of(job_with("{phone | if}")),
              ElementsAre("dirsync.yaml:14:23: bad template for 'role': function 'if' takes 1 or 2 arguments, "
                          "got 0; expected a template such as \"{first_name} {last_name}\""));
}

}  // namespace
}  // namespace dirsync::config
