// The loader: a valid file becomes the expected structs; every kind of mistake
// is reported with its exact wording and position.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "config/schema.h"
#include "core/record.h"
#include "tests/config/test_util.h"

namespace dirsync::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;
using testing::errors_of;
using testing::ScopedEnv;
using testing::TempDir;
using testing::yaml;

// A valid configuration's sections, for tests that break just one thing.
constexpr std::string_view kSources = R"(
sources:
  hr:
    type: csv
    path: /srv/hr/users.csv
    key: employee_id
)";
constexpr std::string_view kTargets = R"(
targets:
  out:
    type: file
    path: /var/log/dirsync/out.jsonl
)";

// Lines 1-11 are the fixed sections and "jobs:"; `job` starts at line 12.
std::string with_job(std::string_view job) {
  if (!job.empty() && job.front() == '\n') job.remove_prefix(1);
  return "state_dir: /var/lib/dirsync" + std::string(kSources) + std::string(kTargets).substr(1) + "jobs:\n" +
         std::string(job);
}

nlohmann::json render(const core::Template& t, const core::Record& r = {}) {
  auto v = t.render(r);
  EXPECT_TRUE(v.ok()) << v.error().message;
  return v.ok() ? v.value() : nlohmann::json();
}

const MappingConfig& field(const JobConfig& job, const std::string& name) {
  for (const auto& m : job.mapping) {
    if (m.field == name) return m;
  }
  throw std::runtime_error("no field " + name);
}

TEST(ConfigLoader, ParsesAFullConfigIntoTheExpectedStructs) {
  TempDir dir;
  dir.write("perscom_id.txt", "tenant-7\n");
  ScopedEnv token("DIRSYNC_TEST_TOKEN", "tok-123");
  const auto path = dir.write("dirsync.yaml", yaml(R"(
state_dir: state
sources:
  hr:
    type: csv
    path: data/users.csv
    key: employee_id
    delimiter: ";"
    page_size: 250
targets:
  perscom:
    type: perscom
    base_url: https://api.perscom.io/
    api_version: v1
    token: ${env:DIRSYNC_TEST_TOKEN}
    perscom_id: ${file:perscom_id.txt}
    batch_size: 50
    connect_timeout: 5s
    timeout: 2m
    ca_file: perscom_id.txt
    max_attempts: 3
    backoff_initial: 250ms
    backoff_max: 10
    retry_after_max: 1m
  audit:
    type: file
    path: /var/log/dirsync/changes.jsonl
jobs:
  hr-to-perscom:
    source: hr
    target: perscom
    mapping:
      name: "{first_name} {last_name}"
      email: "{email | lower | trim}"
      rank_id: 5
      active: true
      code: '5'
    on_missing: ignore
    max_detach:
      count: 20
      percent: 2.5
      floor: 3
  hr-to-audit:
    source: hr
    target: audit
    mapping:
      email: "{email}"
    max_detach: off
)"));
  const Config cfg = load_file(path.string());
  const std::string d = dir.path().string();

  EXPECT_EQ(cfg.file, path.string());
  EXPECT_EQ(cfg.state_dir, d + "/state");

  ASSERT_EQ(cfg.sources.size(), 1u);
  const SourceConfig& hr = cfg.sources.at("hr");
  EXPECT_EQ(hr.name, "hr");
  EXPECT_EQ(hr.type, "csv");
  EXPECT_EQ(hr.where.str(), path.string() + ":3:3");
  const auto& csv = std::get<CsvSourceSettings>(hr.settings);
  EXPECT_EQ(csv.path, d + "/data/users.csv");
  EXPECT_EQ(csv.key, "employee_id");
  EXPECT_EQ(csv.delimiter, ';');
  EXPECT_EQ(csv.page_size, 250u);

  ASSERT_EQ(cfg.targets.size(), 2u);
  const auto& perscom = std::get<PerscomTargetSettings>(cfg.targets.at("perscom").settings);
  EXPECT_EQ(cfg.targets.at("perscom").type, "perscom");
  EXPECT_EQ(perscom.base_url, "https://api.perscom.io");
  EXPECT_EQ(perscom.api_version, "v1");
  EXPECT_EQ(perscom.token.reveal(), "tok-123");
  EXPECT_EQ(perscom.token.describe(), "${env:DIRSYNC_TEST_TOKEN}");
  ASSERT_TRUE(perscom.perscom_id.has_value());
  EXPECT_EQ(perscom.perscom_id->reveal(), "tenant-7");
  EXPECT_EQ(perscom.perscom_id->describe(), "${file:perscom_id.txt}");
  EXPECT_EQ(perscom.batch_size, 50u);
  EXPECT_EQ(perscom.http.connect_timeout, 5s);
  EXPECT_EQ(perscom.http.timeout, 2min);
  EXPECT_EQ(perscom.http.ca_file, d + "/perscom_id.txt");
  EXPECT_EQ(perscom.http.max_attempts, 3);
  EXPECT_EQ(perscom.http.backoff_initial, 250ms);
  EXPECT_EQ(perscom.http.backoff_max, 10s);
  EXPECT_EQ(perscom.http.retry_after_max, 1min);
  const auto& audit = std::get<FileTargetSettings>(cfg.targets.at("audit").settings);
  EXPECT_EQ(audit.path, "/var/log/dirsync/changes.jsonl");

  ASSERT_EQ(cfg.jobs.size(), 2u);
  const JobConfig& job = cfg.jobs.at("hr-to-perscom");
  EXPECT_EQ(job.name, "hr-to-perscom");
  EXPECT_EQ(job.source, "hr");
  EXPECT_EQ(job.target, "perscom");
  EXPECT_EQ(job.where.str(), path.string() + ":28:3");
  EXPECT_EQ(job.mapping_where.str(), path.string() + ":31:5");
  EXPECT_EQ(job.on_missing, OnMissing::kIgnore);
  EXPECT_EQ(job.max_detach.max_count, 20u);
  EXPECT_DOUBLE_EQ(job.max_detach.max_percent, 2.5);
  EXPECT_EQ(job.max_detach.floor, 3u);
  EXPECT_TRUE(job.max_detach.enabled);

  // Mapping order is the file's order.
  ASSERT_EQ(job.mapping.size(), 5u);
  EXPECT_EQ(job.mapping[0].field, "name");
  EXPECT_EQ(job.mapping[4].field, "code");
  EXPECT_EQ(job.mapping[1].where.str(), path.string() + ":33:14");
  EXPECT_THAT(field(job, "name").tmpl.attributes(), ElementsAre("first_name", "last_name"));
  core::Record r;
  r.key = "1";
  r.set("email", {"  Ann@Example.ORG "});
  EXPECT_EQ(render(field(job, "email").tmpl, r), "ann@example.org");
  // Plain 5 and true are typed constants; a quoted '5' is a string.
  EXPECT_EQ(render(field(job, "rank_id").tmpl), 5);
  EXPECT_EQ(render(field(job, "active").tmpl), true);
  EXPECT_EQ(render(field(job, "code").tmpl), "5");

  const JobConfig& audit_job = cfg.jobs.at("hr-to-audit");
  EXPECT_EQ(audit_job.on_missing, OnMissing::kDetach);
  EXPECT_FALSE(audit_job.max_detach.enabled);
}

TEST(ConfigLoader, AppliesDefaultsForOptionalKeys) {
  ScopedEnv token("DIRSYNC_TEST_TOKEN", "x");
  const Config cfg = load_string(yaml(R"(
state_dir: /var/lib/dirsync
sources:
  hr: {type: csv, path: /a.csv, key: id}
targets:
  p: {type: perscom, base_url: "http://127.0.0.1:8080", token: "${env:DIRSYNC_TEST_TOKEN}"}
jobs:
  j: {source: hr, target: p, mapping: {email: "{email}"}}
)"),
                                 "dirsync.yaml");
  const auto& csv = std::get<CsvSourceSettings>(cfg.sources.at("hr").settings);
  EXPECT_EQ(csv.delimiter, ',');
  EXPECT_EQ(csv.page_size, 1000u);
  const auto& p = std::get<PerscomTargetSettings>(cfg.targets.at("p").settings);
  EXPECT_EQ(p.base_url, "http://127.0.0.1:8080");
  EXPECT_EQ(p.api_version, "v2");
  EXPECT_FALSE(p.perscom_id.has_value());
  EXPECT_EQ(p.batch_size, 100u);
  EXPECT_EQ(p.http.connect_timeout, 10s);
  EXPECT_EQ(p.http.timeout, 60s);
  EXPECT_EQ(p.http.ca_file, "");
  EXPECT_EQ(p.http.max_attempts, 5);
  const JobConfig& j = cfg.jobs.at("j");
  EXPECT_EQ(j.on_missing, OnMissing::kDetach);
  EXPECT_EQ(j.max_detach.max_count, 500u);
  EXPECT_DOUBLE_EQ(j.max_detach.max_percent, 10.0);
  EXPECT_EQ(j.max_detach.floor, 5u);
  EXPECT_TRUE(j.max_detach.enabled);
}

TEST(ConfigLoader, ResolvesARelativeStateDirAgainstTheCurrentDirectoryForStrings) {
  const Config cfg = load_string("state_dir: state\n", "inline.yaml");
  EXPECT_EQ(cfg.state_dir, (std::filesystem::current_path() / "state").string());
  EXPECT_TRUE(cfg.jobs.empty());
}

TEST(ConfigLoader, RejectsUnknownKeyWithSuggestion) {
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
sources:
  hr:
    type: csv
    pth: /srv/hr/users.csv
    path: /srv/hr/users.csv
    key: id
)"),
              ElementsAre("dirsync.yaml:5:5: unknown key 'pth' in source 'hr'; did you mean 'path'?"));
}

TEST(ConfigLoader, RejectsUnknownKeyWithoutCloseMatchByListingKnownKeys) {
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
schedule: hourly
)"),
              ElementsAre("dirsync.yaml:2:1: unknown key 'schedule' at the top level; "
                          "expected one of: daemon, jobs, lookups, sources, state_dir, targets"));
}

TEST(ConfigLoader, RejectsMissingRequiredKey) {
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
sources:
  hr:
    type: csv
    path: /srv/hr/users.csv
)"),
              ElementsAre("dirsync.yaml:3:3: missing required key 'key' in source 'hr'; expected a string"));
  EXPECT_THAT(errors_of("sources: {}\n"),
              ElementsAre("dirsync.yaml:1:1: missing required key 'state_dir' at the top level; expected a path"));
}

TEST(ConfigLoader, RejectsWrongTypeSayingWhatWasExpected) {
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
sources:
  hr:
    type: csv
    path: /srv/hr/users.csv
    key: id
    page_size: ten
)"),
              ElementsAre("dirsync.yaml:7:16: bad value 'ten' for 'page_size'; expected an integer from 1 to 1000000"));
}

TEST(ConfigLoader, RejectsAMapWhereAScalarBelongs) {
  EXPECT_THAT(errors_of(R"(
state_dir: [a, b]
)"),
              ElementsAre("dirsync.yaml:1:12: bad value (a list) for 'state_dir'; expected a path"));
}

TEST(ConfigLoader, RejectsAnEmptyValueAtItsKey) {
  EXPECT_THAT(errors_of(R"(
state_dir:
sources: {}
)"),
              ElementsAre("dirsync.yaml:1:1: missing value for 'state_dir'; expected a path"));
}

TEST(ConfigLoader, RejectsBadEnumValueListingTheChoices) {
  EXPECT_THAT(errors_of(with_job(R"(
  j:
    source: hr
    target: out
    mapping:
      email: "{email}"
    on_missing: delete
)")),
              ElementsAre("dirsync.yaml:17:17: bad value 'delete' for 'on_missing'; expected detach, ignore, or "
                          "{update: {field: value, ...}}"));
}

TEST(ConfigLoader, RejectsUnknownSourceTypeListingKnownTypes) {
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
sources:
  hr:
    type: active_directory
    url: ldap://example.org
)"),
              ElementsAre("dirsync.yaml:4:11: unknown source type 'active_directory' in source 'hr'; expected one "
                          "of: csv, http_json, ldap, scim"));
}

TEST(ConfigLoader, RejectsUnknownTargetTypeListingKnownTypes) {
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
targets:
  t:
    url: x
)"),
              ElementsAre("dirsync.yaml:3:3: missing required key 'type' in target 't'; expected one of: auth_sync_user, file, healvi, hesh, perscom, royalti"));
}

TEST(ConfigLoader, RejectsJobNamingAnUndefinedSource) {
  EXPECT_THAT(errors_of(with_job(R"(
  j:
    source: hrr
    target: audit
    mapping:
      email: "{email}"
)")),
              ElementsAre("dirsync.yaml:13:13: unknown source 'hrr' in job 'j'; did you mean 'hr'?",
                          "dirsync.yaml:14:13: unknown target 'audit' in job 'j'; expected one of: out"));
}

TEST(ConfigLoader, ReportsTemplateSyntaxErrorAtTheCaretInAPlainScalar) {
  // Column 30 is the 'l' of "lowr": the value starts at column 13, and the
  // template error is at its 18th character.
  EXPECT_THAT(errors_of(with_job(R"(
  j:
    source: hr
    target: out
    mapping:
      name: Dr {first_name | lowr}
)")),
              ElementsAre("dirsync.yaml:16:30: bad template for 'name': unknown function 'lowr'; "
                          "did you mean 'lower'?"));
}

TEST(ConfigLoader, ReportsTemplateSyntaxErrorAtTheCaretInQuotedScalars) {
  // Double quotes: the quote is column 14, "lowr" starts 9 characters into the
  // template, so column 24; an escape before it shifts it by its source width
  // ("\t" is two columns for one character), and so does a doubled single quote.
  EXPECT_THAT(errors_of(with_job(R"(
  j:
    source: hr
    target: out
    mapping:
      email: "{email | lowr}"
      phone: "\t{phone | lowr}"
      title: 'it''s {title'
)")),
              ElementsAre("dirsync.yaml:16:24: bad template for 'email': unknown function 'lowr'; "
                          "did you mean 'lower'?",
                          "dirsync.yaml:17:26: bad template for 'phone': unknown function 'lowr'; "
                          "did you mean 'lower'?",
                          "dirsync.yaml:18:21: bad template for 'title': '{' is never closed; expected '}'"));
}

TEST(ConfigLoader, ExplainsThatAnUnquotedTemplateIsAYamlMap) {
  EXPECT_THAT(errors_of(with_job(R"(
  j:
    source: hr
    target: out
    mapping:
      email: {email}
)")),
              ElementsAre("dirsync.yaml:16:14: bad value (a map) for 'email'; "
                          "expected a template string (quote it: an unquoted {...} is a YAML map)"));
}

TEST(ConfigLoader, RejectsMalformedYamlWithItsPosition) {
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
sources:
  hr:
    type: csv
   path: x
)"),
              ElementsAre("dirsync.yaml:5:4: malformed YAML: end of map not found; "
                          "expected well-formed YAML (check indentation and quoting)"));
}

TEST(ConfigLoader, RejectsDuplicateKeys) {
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
sources:
  hr:
    type: csv
    path: /a.csv
    key: id
    path: /b.csv
)"),
              ElementsAre("dirsync.yaml:7:5: duplicate key 'path' in source 'hr'; expected each key once (first at line 5)"));
}

TEST(ConfigLoader, RejectsDuplicateJobNames) {
  EXPECT_THAT(errors_of(with_job(R"(
  j:
    source: hr
    target: out
    mapping: {email: "{email}"}
  j:
    source: hr
)")),
              ElementsAre("dirsync.yaml:16:3: duplicate key 'j' in jobs; expected each key once (first at line 12)"));
}

TEST(ConfigLoader, RejectsUnsafeNames) {
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
sources:
  ../hr: {type: csv, path: /a.csv, key: id}
)"),
              ElementsAre("dirsync.yaml:3:3: bad source name '../hr'; "
                          "expected letters, digits, '-', '_' or '.', not starting with '.'"));
}

TEST(ConfigLoader, RejectsUnsetEnvironmentVariable) {
  ScopedEnv unset("DIRSYNC_TEST_UNSET", std::nullopt);
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
targets:
  p:
    type: perscom
    base_url: https://api.perscom.io
    token: ${env:DIRSYNC_TEST_UNSET}
)"),
              ElementsAre("dirsync.yaml:6:12: cannot resolve 'token' (${env:DIRSYNC_TEST_UNSET}): "
                          "environment variable DIRSYNC_TEST_UNSET is not set; "
                          "expected DIRSYNC_TEST_UNSET in dirsync's environment"));
}

TEST(ConfigLoader, RejectsUnreadableFileSecret) {
  TempDir dir;
  const auto path = dir.write("dirsync.yaml", yaml(R"(
state_dir: /var/lib/dirsync
targets:
  p:
    type: perscom
    base_url: https://api.perscom.io
    token: ${file:missing/token}
)"));
  try {
    load_file(path.string());
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.errors(), ElementsAre(path.string() + ":6:12: cannot resolve 'token' (${file:missing/token}): "
                                                        "cannot read " +
                                        dir.path().string() +
                                        "/missing/token: No such file or directory; expected a readable file"));
  }
}

TEST(ConfigLoader, ReportsEveryErrorTogetherInFileOrder) {
  ScopedEnv unset("DIRSYNC_TEST_UNSET", std::nullopt);
  const auto errors = errors_of(R"(
sources:
  hr:
    type: csv
    path: /a.csv
    key: id
    delimter: ";"
targets:
  p:
    type: perscom
    base_url: ftp://example.org
    token: ${env:DIRSYNC_TEST_UNSET}
    batch_size: 5000
    backoff_initial: 1m
    backoff_max: 30s
jobs:
  j:
    source: hr
    target: q
    mapping: {}
    on_missing: detach
    max_detach: {count: -1, percnt: 5}
)");
  EXPECT_THAT(errors,
              ElementsAre("dirsync.yaml:1:1: missing required key 'state_dir' at the top level; expected a path",
                          "dirsync.yaml:6:5: unknown key 'delimter' in source 'hr'; did you mean 'delimiter'?",
                          "dirsync.yaml:10:15: bad value for 'base_url'; expected a URL starting with https:// or http://",
                          "dirsync.yaml:11:12: cannot resolve 'token' (${env:DIRSYNC_TEST_UNSET}): environment variable "
                          "DIRSYNC_TEST_UNSET is not set; expected DIRSYNC_TEST_UNSET in dirsync's environment",
                          "dirsync.yaml:12:17: bad value '5000' for 'batch_size'; expected an integer from 1 to 1000",
                          "dirsync.yaml:13:22: backoff_initial (1m) is longer than backoff_max (30s); "
                          "expected backoff_initial <= backoff_max",
                          "dirsync.yaml:18:13: unknown target 'q' in job 'j'; did you mean 'p'?",
                          "dirsync.yaml:19:14: empty mapping of job 'j'; expected at least one target field: template",
                          "dirsync.yaml:21:25: bad value '-1' for 'count'; expected an integer from 0 to 1000000000",
                          "dirsync.yaml:21:29: unknown key 'percnt' in max_detach of job 'j'; did you mean 'percent'?"));
}

TEST(ConfigLoader, NeverPutsSecretValuesInErrors) {
  // A distinctive value, present through every kind of secret, next to errors of
  // every kind about the same sections.
  const std::string value = "s3cr3t-VALUE-0xC0FFEE";
  TempDir dir;
  dir.write("token", value + "\n");
  ScopedEnv env("DIRSYNC_TEST_SECRET", value);
  ScopedEnv creds("CREDENTIALS_DIRECTORY", dir.path().string());
  const auto path = dir.write("dirsync.yaml", yaml(R"(
targets:
  from-env:
    type: perscom
    base_url: https://api.perscom.io
    token: ${env:DIRSYNC_TEST_SECRET}
    perscom_id: [s3cr3t-VALUE-0xC0FFEE]
    tokn: s3cr3t-VALUE-0xC0FFEE
  from-file:
    type: perscom
    base_url: https://s3cr3t-VALUE-0xC0FFEE@api.perscom.io
    token: ${file:token}
    perscom_id: ${file:token/s3cr3t-VALUE-0xC0FFEE}
  from-cred:
    type: perscom
    base_url: https://api.perscom.io
    token: ${cred:token}
    perscom_id: s3cr3t-VALUE-0xC0FFEE
    batch_size: s3cr3t
  literal:
    type: perscom
    base_url: https://api.perscom.io
    token: s3cr3t-VALUE-0xC0FFEE
    api_version: v3
)"));
  try {
    load_file(path.string());
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_GE(e.errors().size(), 5u);
    EXPECT_THAT(std::string(e.what()), Not(HasSubstr("s3cr3t-VALUE-0xC0FFEE\n")));
    for (const auto& msg : e.errors()) {
      // The file-name reference above legitimately contains the text; nothing
      // else may. The value itself always follows a "-VALUE-" in this test.
      if (msg.find("${file:token/") != std::string::npos) continue;
      EXPECT_THAT(msg, Not(HasSubstr("0xC0FFEE"))) << msg;
    }
  }
}

TEST(ConfigLoader, AcceptsMaxDetachOffOrFalse) {
  for (const char* off : {"off", "false"}) {
    const Config cfg = load_string(with_job(std::string(R"(  j:
    source: hr
    target: out
    mapping: {email: "{email}"}
    max_detach: )") + off + "\n"),
                                   "dirsync.yaml");
    EXPECT_FALSE(cfg.jobs.at("j").max_detach.enabled) << off;
  }
  EXPECT_THAT(errors_of(with_job(R"(
  j:
    source: hr
    target: out
    mapping: {email: "{email}"}
    max_detach: sometimes
)")),
              ElementsAre("dirsync.yaml:16:17: bad value 'sometimes' for 'max_detach'; "
                          "expected a map (count, percent, floor, enabled) or off"));
}

TEST(ConfigLoader, AcceptsPercentWithAPercentSign) {
  const Config cfg = load_string(with_job(R"(  j:
    source: hr
    target: out
    mapping: {email: "{email}"}
    max_detach: {percent: 15%, enabled: true}
)"),
                                 "dirsync.yaml");
  EXPECT_DOUBLE_EQ(cfg.jobs.at("j").max_detach.max_percent, 15.0);
}

TEST(ConfigLoader, RejectsBaseUrlWithCredentialsWithoutEchoingIt) {
  ScopedEnv token("DIRSYNC_TEST_TOKEN", "x");
  EXPECT_THAT(errors_of(R"(
state_dir: /var/lib/dirsync
targets:
  p:
    type: perscom
    base_url: https://user:pw@api.perscom.io
    token: ${env:DIRSYNC_TEST_TOKEN}
)"),
              ElementsAre("dirsync.yaml:5:15: 'base_url' holds credentials; "
                          "expected a URL without user:password@ (the token goes in 'token')"));
}

TEST(ConfigLoader, RejectsAnEmptyDocument) {
  EXPECT_THAT(errors_of("# nothing yet\n"),
              ElementsAre("dirsync.yaml:1:1: the configuration is empty; "
                          "expected a map with state_dir, sources, targets and jobs"));
}

TEST(ConfigLoader, RejectsASecondDocument) {
  EXPECT_THAT(errors_of("state_dir: /a\n---\nstate_dir: /b\n"),
              ElementsAre("dirsync.yaml:3:1: a second YAML document; expected one document per file"));
}

// yaml-cpp 0.7 loops, allocating, on a ',' that cannot start a node (found by fuzz/config_fuzz).
TEST(ConfigLoader, RejectsAStrayCommaInsteadOfFillingMemory) {
  EXPECT_THAT(errors_of(","), ElementsAre("dirsync.yaml:1:1: malformed YAML: unexpected ','; "
                                          "expected well-formed YAML (check indentation and quoting)"));
  EXPECT_THAT(errors_of("state_dir: /a\n---\n  , x\n"),
              ElementsAre("dirsync.yaml:3:3: malformed YAML: unexpected ','; "
                          "expected well-formed YAML (check indentation and quoting)"));
}

TEST(ConfigLoader, ReportsAnUnreadableConfigFile) {
  TempDir dir;
  const std::string path = (dir.path() / "absent.yaml").string();
  try {
    load_file(path);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.errors(),
                ElementsAre(path + ": cannot read the file: No such file or directory; expected a readable YAML file"));
  }
}

TEST(ConfigLoader, ConfigErrorWhatListsEveryMessageOnItsOwnLine) {
  const ConfigError e({"a:1:1: x; y", "a:2:1: z; w"});
  EXPECT_STREQ(e.what(), "a:1:1: x; y\na:2:1: z; w");
}

TEST(ConfigSchema, DocumentsEverySectionInFileOrder) {
  std::vector<std::string> sections;
  for (const auto& s : schema()) sections.push_back(s.section);
  EXPECT_THAT(sections,
              ElementsAre("top level", "sources.<name> (type: csv)", "sources.<name> (type: http_json)",
                          "sources.<name> (type: ldap)", "sources.<name> (type: scim)",
                          "targets.<name> (type: auth_sync_user)",
                          "targets.<name> (type: file)", "targets.<name> (type: healvi)",
                          "targets.<name> (type: hesh)", "targets.<name> (type: perscom)",
                          "targets.<name> (type: royalti)", "jobs.<name>", "jobs.<name>.max_detach",
                          "jobs.<name>.max_update",
                          "jobs.<name>.filter", "filter conditions", "daemon", "jobs.<name>.schedule"));
  for (const auto& s : schema()) {
    for (const auto& k : s.keys) {
      EXPECT_FALSE(k.description.empty()) << s.section << " " << k.key;
      EXPECT_FALSE(k.required && !k.default_value.empty()) << s.section << " " << k.key;
    }
  }
  EXPECT_THAT(source_types(), ElementsAre("csv", "http_json", "ldap", "scim"));
  EXPECT_THAT(target_types(), ElementsAre("auth_sync_user", "file", "healvi", "hesh", "perscom", "royalti"));
}

}  // namespace
}  // namespace dirsync::config
