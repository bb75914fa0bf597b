// Bad source data through the real `dirsync` binary (issue 6): invalid
// emails, over-long fields, control characters, invalid UTF-8, duplicate and
// empty keys. Each bad record is reported once, with its key (printable), its
// file:line and a reason naming the field; every good record still lands; the
// run ends "partial" (exit 4); no bad user reaches a target; and every output
// (text, --json, status, explain) stays printable, valid JSON — including when
// a mapping or a server hands dirsync bytes that are not UTF-8.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/validate.h"
#include "tests/config/test_util.h"
#include "tests/e2e/process.h"
#include "tests/support/loopback_http_server.h"
#include "tests/support/perscom_test_server.h"

namespace dirsync::testing {
namespace {

using nlohmann::json;

constexpr const char* kToken = "tok-bad-data-R4nd0m-do-not-log";
constexpr int kExitFailed = 1;
constexpr int kExitProblems = 4;  // the documented "finished with problems" (partial) code

// One CSV line per entry; a bad row's line number is its index + 1. Row 7
// holds a quoted line break, so it spans lines 7-8 and the next row is 9.
const std::string kHeader = "employee_id,first_name,last_name,email,phone\n";
std::string bad_csv() {
  return kHeader +
         "E1,Ada,Lovelace,ada@example.com,+1 555 0101\n"                    // 2 good
         "E2,Grace,Hopper,grace@example.com,+1 555 0102\n"                  // 3 good
         "E3,Bob,Double,bob@@example.com,+1 555 0103\n"                     // 4 bad email (targets that check)
         "E4," + std::string(300, 'L') + ",Long,long@example.com,+1 555 0104\n"  // 5 name of 305 characters
         "E5,\"Tab\there\",Tabby,tab@example.com,+1 555 0105\n"            // 6 tab in a quoted field
         "E6,Multi,\"Line\nBreak\",multi@example.com,+1 555 0106\n"        // 7-8 line break in a quoted field
         "E7,Ctrl,Char,ctrl@example.com,\"+1 555\x01 0107\"\n"             // 9 \x01 in a quoted field
         "E8,Ren\xE9,Latin,rene@example.com,+1 555 0108\n"                  // 10 Latin-1, not UTF-8, in a value
         "E\xFF" "9,Bad,Key,badkey@example.com,+1 555 0109\n"               // 11 ... in the key
         "\"E\t13\",Tab,Key,tabkey@example.com,+1 555 0113\n"               // 12 a control character in the key
         "E10,Alan,Turing,alan@example.com,+1 555 0110\n"                   // 13 good
         "E11,Dup,One,dup1@example.com,+1 555 0111\n"                       // 14 duplicate key
         "E11,Dup,Two,dup2@example.com,+1 555 0112\n"                       // 15 duplicate key
         ",No,Key,nokey@example.com,+1 555 0100\n"                          // 16 empty key
         "E12,Katherine,Johnson,kj@example.com,+1 555 0114\n";              // 17 good
}

// A bad row as the report must show it.
struct Expected {
  int line;
  std::string key;                   // printable form; empty: the row has no usable key
  std::vector<std::string> reasons;  // substrings of the message (the field, what is wrong)
};

// Bad for every target (the file target has no field specs: only encoding,
// control characters and keys count there).
std::vector<Expected> bad_everywhere() {
  return {
      {6, "E5", {"field 'name'", "control character (U+0009"}},
      {7, "E6", {"field 'name'", "control character (U+000A"}},
      {9, "E7", {"field 'phone_number'", "control character (U+0001"}},
      {10, "E8", {"invalid UTF-8", "'first_name'"}},
      {11, "", {"invalid UTF-8", "'employee_id'"}},
      {12, "E\\x0913", {"key", "control character (U+0009"}},
      {14, "E11", {"duplicate key 'E11'"}},
      {15, "E11", {"duplicate key 'E11'"}},
      {16, "", {"'employee_id' is empty"}},
  };
}

// Also bad for PERSCOM: its email field is an address, its name at most 255 characters.
std::vector<Expected> bad_for_perscom() {
  auto out = bad_everywhere();
  out.push_back({4, "E3", {"field 'email'", "\"bob@@example.com\"", "is not a valid email address"}});
  out.push_back({5, "E4", {"field 'name'", "305 characters", "at most 255"}});
  return out;
}

// Every line of an output is printable as it is: no control character, no
// byte that is not UTF-8 (a report must not garble a terminal or a log).
void expect_printable_lines(const std::string& text) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) EXPECT_EQ(core::printable(line, 0), line);
}

// The JSON on stdout; an empty object (so that the checks after it fail
// cleanly) when it does not parse.
json parse_json(const ProcessResult& r) {
  json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "exit " << r.exit_code << "\n" << r.out << "\n" << r.err;
  return j.is_discarded() ? json::object() : j;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Each expected row reported exactly once, and nothing else.
void expect_problems(const json& report, const std::vector<Expected>& expected) {
  ASSERT_TRUE(report.contains("problems")) << report.dump(2);
  const json& problems = report["problems"];
  EXPECT_EQ(problems.size(), expected.size()) << problems.dump(2);
  for (const auto& e : expected) {
    const std::string origin = "users.csv:" + std::to_string(e.line);
    std::vector<json> found;
    for (const auto& p : problems) {
      if (ends_with(p.value("origin", ""), origin)) found.push_back(p);
    }
    ASSERT_EQ(found.size(), 1u) << origin << " in " << problems.dump(2);
    const json& p = found[0];
    EXPECT_EQ(p.value("key", "?"), e.key) << p.dump();
    EXPECT_EQ(p.value("outcome", "?"), "invalid") << p.dump();
    const std::string message = p.value("message", "");
    for (const auto& reason : e.reasons) EXPECT_NE(message.find(reason), std::string::npos) << reason << " in " << message;
  }
}

class BadSourceData : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.start();
    write_config();
  }

  // `extra_source`: YAML for a source named `api` (indented as under `sources:`).
  void write_config(const std::string& extra_source = "") {
    const std::string mapping = "    mapping:\n"
                                "      name: \"{first_name} {last_name}\"\n"
                                "      email: \"{email | trim | lower}\"\n"
                                "      phone_number: \"{phone | default:''}\"\n"
                                "      approved: true\n"
                                "    on_missing: detach\n"
                                "    max_detach: {count: 500, percent: 10, floor: 5}\n";
    std::ostringstream yaml;
    yaml << "state_dir: state\n"
           "sources:\n"
           "  hr:\n"
           "    type: csv\n"
           "    path: users.csv\n"
           "    key: employee_id\n"
           "  people:\n"
           "    type: csv\n"
           "    path: people.csv\n"
           "    key: id\n"
        << extra_source
        << "targets:\n"
           "  file:\n"
           "    type: file\n"
           "    path: changes.jsonl\n"
           "  initials-file:\n"
           "    type: file\n"
           "    path: initials.jsonl\n"
           "  perscom:\n"
           "    type: perscom\n"
           "    base_url: "
        << server_.base_url()
        << "\n"
           "    api_version: v2\n"
           "    token: ${env:BAD_DATA_PERSCOM_TOKEN}\n"
           "    batch_size: 10\n"
           "    max_attempts: 1\n"
           "jobs:\n"
           "  hr-to-file:\n"
           "    source: hr\n"
           "    target: file\n"
        << mapping
        << "  hr-to-perscom:\n"
           "    source: hr\n"
           "    target: perscom\n"
        << mapping
        << "  initials:\n"
           "    source: people\n"
           "    target: initials-file\n"
           "    mapping:\n"
           "      name: \"{first_name}\"\n"
           // Regexes (Boost.Regex) work on bytes: the first "character" of "Émilie" is half of É.
           "      initial: \"{first_name | replace:'^(.).*$','$1'}\"\n"
        << (extra_source.empty() ? ""
                                 : "  from-api:\n"
                                   "    source: api\n"
                                   "    target: file\n"
                                   "    mapping:\n"
                                   "      name: \"{name}\"\n");
    write("dirsync.yaml", yaml.str());
  }

  void write(const std::string& name, const std::string& content) { dir_.write(name, content); }

  ProcessResult dirsync(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", (dir_.path() / "dirsync.yaml").string()});
    auto r = run_dirsync(args, {std::string("BAD_DATA_PERSCOM_TOKEN=") + kToken});
    // A crash (type_error 316 from a strict JSON dump, say) is never an answer.
    EXPECT_LT(r.exit_code, 128) << r.err;
    EXPECT_EQ(r.out.find(kToken), std::string::npos);
    EXPECT_EQ(r.err.find(kToken), std::string::npos);
    return r;
  }

  // Keys of the users written to a file target, one per line pushed.
  std::vector<std::string> pushed_keys(const std::string& file) {
    std::vector<std::string> keys;
    std::ifstream in(dir_.path() / file);
    for (std::string line; std::getline(in, line);) keys.push_back(json::parse(line)["key"].get<std::string>());
    return keys;
  }

  std::set<std::string> server_emails() {
    std::set<std::string> out;
    for (const auto& u : server_.users()) out.insert(u["email"].get<std::string>());
    return out;
  }

  PerscomTestServer server_{PerscomServerOptions{kToken, ErrorStyle::kPerscom, std::nullopt}};
  config::testing::TempDir dir_;
};

TEST_F(BadSourceData, FileJobSyncsEveryGoodRowAndReportsEachBadOneOnce) {
  write("users.csv", bad_csv());
  auto run = dirsync({"sync", "hr-to-file"});
  EXPECT_EQ(run.exit_code, kExitProblems) << run.out << run.err;
  EXPECT_NE(run.out.find("created    6"), std::string::npos) << run.out;
  // The text report names each bad row by file:line and printable key.
  EXPECT_NE(run.out.find("users.csv:6 key E5: "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("users.csv:12 key E\\x0913: "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("users.csv:16 (no key): "), std::string::npos) << run.out;
  expect_printable_lines(run.out);
  expect_printable_lines(run.err);
  // Only the good users were written, each once.
  EXPECT_EQ(pushed_keys("changes.jsonl"), (std::vector<std::string>{"E1", "E2", "E3", "E4", "E10", "E12"}));

  // The same problems on every run, and the good users stay put.
  auto again = dirsync({"sync", "hr-to-file", "--json"});
  EXPECT_EQ(again.exit_code, kExitProblems) << again.out << again.err;
  json report = parse_json(again);
  EXPECT_EQ(report["outcome"], "partial");
  EXPECT_EQ(report["counts"]["created"], 0);
  EXPECT_EQ(report["counts"]["unchanged"], 6);
  expect_problems(report, bad_everywhere());
  EXPECT_EQ(pushed_keys("changes.jsonl").size(), 6u);
}

TEST_F(BadSourceData, PerscomJobAlsoRefusesBadAddressesAndOverlongNamesBeforeSending) {
  write("users.csv", bad_csv());
  auto run = dirsync({"sync", "hr-to-perscom", "--json"});
  EXPECT_EQ(run.exit_code, kExitProblems) << run.out << run.err;
  json report = parse_json(run);
  EXPECT_EQ(report["counts"]["created"], 4);
  EXPECT_EQ(report["counts"]["rejected"], 0);  // caught here, not by PERSCOM's 422
  expect_problems(report, bad_for_perscom());
  EXPECT_EQ(server_emails(),
            (std::set<std::string>{"ada@example.com", "grace@example.com", "alan@example.com", "kj@example.com"}));
  for (const auto& r : server_.request_log()) {
    EXPECT_EQ(r.body.find("bob@@"), std::string::npos);
    EXPECT_EQ(r.body.find("LLLLLLLLLL"), std::string::npos);
  }
}

TEST_F(BadSourceData, PlanJsonListsTheSameProblemsAndOnlyGoodChanges) {
  write("users.csv", bad_csv());
  auto plan = dirsync({"plan", "hr-to-perscom", "--json"});
  EXPECT_EQ(plan.exit_code, kExitProblems) << plan.out << plan.err;
  json report = parse_json(plan);
  expect_problems(report, bad_for_perscom());
  std::set<std::string> keys;
  for (const auto& c : report["changes"]) keys.insert(c["key"].get<std::string>());
  EXPECT_EQ(keys, (std::set<std::string>{"E1", "E2", "E10", "E12"}));

  // "Why was E3 not synced?" has an answer, not a crash.
  auto explain = dirsync({"plan", "hr-to-perscom", "--explain", "E3", "--json"});
  json why = parse_json(explain);
  EXPECT_EQ(why["key"], "E3");
  EXPECT_EQ(why["action"], "nothing") << why.dump(2);
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(BadSourceData, InvalidRecordsAreProtectedFromDetachAndGoOutOnceFixed) {
  auto csv = [](const std::string& e3_email, const std::string& e4_first, bool with_e2) {
    return kHeader + "E1,Ada,Lovelace,ada@example.com,+1 555 0101\n" +
           (with_e2 ? "E2,Grace,Hopper,grace@example.com,+1 555 0102\n" : "") + "E3,Bob,Smith," + e3_email +
           ",+1 555 0103\n" + "E4," + e4_first + ",Jones,jones@example.com,+1 555 0104\n" +
           "E5,Carl,Gauss,carl@example.com,+1 555 0105\n" + "E6,Emmy,Noether,emmy@example.com,+1 555 0106\n";
  };
  write("users.csv", csv("bob@example.com", "Jim", true));
  auto first = dirsync({"sync", "hr-to-perscom"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  ASSERT_EQ(server_.users().size(), 6u);

  // E2 leaves; E3 and E4 go bad at the source.
  write("users.csv", csv("bob@@example.com", "\"Ji\x01m\"", false));
  auto second = dirsync({"sync", "hr-to-perscom", "--json"});
  EXPECT_EQ(second.exit_code, kExitProblems) << second.out << second.err;
  json report = parse_json(second);
  EXPECT_EQ(report["counts"]["detached"], 1);  // E2 only: the bad records are not "gone"
  EXPECT_EQ(report["counts"]["updated"], 0);
  ASSERT_EQ(report["problems"].size(), 2u) << report.dump(2);
  EXPECT_EQ(report["problems"][0]["key"], "E3");
  EXPECT_EQ(report["problems"][1]["key"], "E4");
  EXPECT_NE(report["problems"][1]["message"].get<std::string>().find("field 'name': \"Ji\\x01m Jones\""),
            std::string::npos)
      << report.dump(2);
  EXPECT_EQ(server_emails(), (std::set<std::string>{"ada@example.com", "bob@example.com", "jones@example.com",
                                                    "carl@example.com", "emmy@example.com"}));
  EXPECT_EQ(server_.find_user_by_email("jones@example.com")["name"], "Jim Jones");

  // Fixed at the source: both go out on the next run.
  write("users.csv", csv("bob.smith@example.com", "Jimmy", false));
  auto third = dirsync({"sync", "hr-to-perscom"});
  EXPECT_EQ(third.exit_code, 0) << third.out << third.err;
  EXPECT_NE(third.out.find("updated    2"), std::string::npos) << third.out;
  EXPECT_FALSE(server_.find_user_by_email("bob.smith@example.com").is_null());
  EXPECT_EQ(server_.find_user_by_email("jones@example.com")["name"], "Jimmy Jones");
}

TEST_F(BadSourceData, JsonStaysValidWhenTheMappingBreaksUtf8) {
  write("people.csv", "id,first_name\nP1,Ada\nP2,Émilie\n");
  auto plan = dirsync({"plan", "initials", "--json"});
  EXPECT_EQ(plan.exit_code, kExitProblems) << plan.err;
  json report = parse_json(plan);
  ASSERT_EQ(report["changes"].size(), 1u) << report.dump(2);
  EXPECT_EQ(report["changes"][0]["key"], "P1");
  ASSERT_EQ(report["problems"].size(), 1u) << report.dump(2);
  EXPECT_EQ(report["problems"][0]["key"], "P2");
  EXPECT_TRUE(ends_with(report["problems"][0]["origin"].get<std::string>(), "people.csv:3"));
  EXPECT_NE(report["problems"][0]["message"].get<std::string>().find(
                "field 'initial': \"\\xC3\" is not valid UTF-8 (byte 0xC3 at offset 0)"),
            std::string::npos)
      << report.dump(2);

  json why = parse_json(dirsync({"plan", "initials", "--explain", "P2", "--json"}));
  EXPECT_EQ(why["key"], "P2");
  expect_printable_lines(dirsync({"plan", "initials", "--explain", "P2"}).out);

  auto sync = dirsync({"sync", "initials", "--json"});
  EXPECT_EQ(sync.exit_code, kExitProblems) << sync.err;
  EXPECT_EQ(parse_json(sync)["counts"]["created"], 1);
  EXPECT_EQ(pushed_keys("initials.jsonl"), std::vector<std::string>{"P1"});
  json status = parse_json(dirsync({"status", "--json"}));
  EXPECT_TRUE(status.is_array());
}

TEST_F(BadSourceData, ASourceErrorPageInLatin1FailsTheRunWithoutACrash) {
  // A gateway in front of the HR API answers with an ISO-8859-1 text page.
  LoopbackHttpServer api([](const ServerRequest&) {
    ServerResponse r;
    r.status = 400;
    r.content_type = "text/plain; charset=iso-8859-1";
    r.body = "Requ\xEAte invalide : donn\xE9" "es indisponibles";
    return r;
  });
  api.start();
  write_config("  api:\n"
               "    type: http_json\n"
               "    url: " + api.base_url() + "/users\n"
               "    key: /id\n"
               "    max_attempts: 1\n");
  auto run = dirsync({"sync", "from-api"});
  EXPECT_EQ(run.exit_code, kExitFailed) << run.out << run.err;
  EXPECT_NE(run.out.find("donn"), std::string::npos) << run.out;  // the server's words, made printable
  expect_printable_lines(run.out);
  expect_printable_lines(run.err);
  auto json_run = dirsync({"sync", "from-api", "--json"});
  EXPECT_EQ(json_run.exit_code, kExitFailed);
  EXPECT_NE(parse_json(json_run).value("error", "").find("donn"), std::string::npos) << json_run.out;
  json status = parse_json(dirsync({"status", "from-api", "--json"}));
  ASSERT_TRUE(status.is_array()) << status.dump(2);
  ASSERT_FALSE(status.empty());
  EXPECT_EQ(status[0]["runs"].size(), 2u) << status.dump(2);  // both runs were recorded
}

}  // namespace
}  // namespace dirsync::testing
