// The `dirsync` binary end to end on the file target: the bundled quickstart,
// exit codes, and configuration errors as an operator sees them.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "state/state_store.h"
#include "tests/e2e/process.h"

namespace dirsync::testing {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
}

std::size_t count_lines(const fs::path& p) {
  const std::string text = read_file(p);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dirsync-cli-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "examples");
    const std::string src = source_dir();
    fs::copy_file(fs::path(src) / "examples/quickstart.yaml", dir_ / "examples/quickstart.yaml");
    fs::copy_file(fs::path(src) / "examples/users.csv", dir_ / "examples/users.csv");
    config_ = (dir_ / "examples/quickstart.yaml").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  ProcessResult dirsync(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config_});
    return run_dirsync(args);
  }

  fs::path dir_;
  std::string config_;
};

TEST_F(CliTest, QuickstartSyncsEveryUserThenPushesNothing) {
  auto check = dirsync({"check-config"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_NE(check.out.find("OK — 1 source(s), 1 target(s), 1 job(s)"), std::string::npos) << check.out;

  auto plan = dirsync({"plan", "hr-to-file"});
  EXPECT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find("+ create 1004 "), std::string::npos) << plan.out;
  EXPECT_FALSE(fs::exists(dir_ / ".quickstart/changes.jsonl"));  // a plan sends nothing

  auto first = dirsync({"sync", "hr-to-file"});
  EXPECT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_NE(first.out.find("created    12"), std::string::npos) << first.out;
  const fs::path changes = dir_ / ".quickstart/changes.jsonl";
  EXPECT_EQ(count_lines(changes), 12u);
  const std::string text = read_file(changes);
  EXPECT_NE(text.find(R"("email":"ada.lovelace@example.com")"), std::string::npos);
  EXPECT_NE(text.find(R"("name":"Émilie du Châtelet")"), std::string::npos);
  EXPECT_NE(text.find(R"("department":"Philosophy, Ethics")"), std::string::npos);
  EXPECT_NE(text.find(R"("department":"R&D \"Frequency Hopping\"")"), std::string::npos);

  auto second = dirsync({"sync", "hr-to-file"});
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("created    0"), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("unchanged  12"), std::string::npos) << second.out;
  EXPECT_EQ(count_lines(changes), 12u);

  auto status = dirsync({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("snapshot: 12 users"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("#2 "), std::string::npos) << status.out;
}

TEST_F(CliTest, EditsAndRemovalsBecomeUpdatesAndDetaches) {
  ASSERT_EQ(dirsync({"sync", "hr-to-file"}).exit_code, 0);
  std::string csv = read_file(dir_ / "examples/users.csv");
  // Grace changes department; Alan leaves; a new hire joins.
  csv.replace(csv.find("+1 202 555 0102,Engineering"), 27, "+1 202 555 0102,Navy");
  csv.erase(csv.find("1003,Alan"), csv.find('\n', csv.find("1003,Alan")) - csv.find("1003,Alan") + 1);
  csv += "1013,Barbara,Liskov,barbara.liskov@example.com,,Engineering\n";
  write_file(dir_ / "examples/users.csv", csv);

  auto plan = dirsync({"plan", "hr-to-file", "--json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find(R"("changed_fields": [)"), std::string::npos) << plan.out;

  auto run = dirsync({"sync", "hr-to-file"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("created    1"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("updated    1"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("detached   1"), std::string::npos) << run.out;
  const std::string text = read_file(dir_ / ".quickstart/changes.jsonl");
  EXPECT_NE(text.find(R"("changed_fields":["department"],"key":"1002","op":"update")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("key":"1003","op":"detach")"), std::string::npos) << text;
}

TEST_F(CliTest, EmptySourceOverPopulatedSnapshotFailsAndDetachesNothing) {
  ASSERT_EQ(dirsync({"sync", "hr-to-file"}).exit_code, 0);
  write_file(dir_ / "examples/users.csv", "employee_id,first_name,last_name,email,phone,department\n");
  auto run = dirsync({"sync", "hr-to-file"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.out.find("returned no records while the snapshot holds 12 users"), std::string::npos) << run.out;
  EXPECT_EQ(count_lines(dir_ / ".quickstart/changes.jsonl"), 12u);
}

TEST_F(CliTest, ConfigErrorsExitTwoWithPositions) {
  write_file(config_, "state_dir: ../state\nsources:\n  hr:\n    type: csv\n    pth: users.csv\n    key: id\n");
  auto check = dirsync({"check-config"});
  EXPECT_EQ(check.exit_code, 2);
  EXPECT_NE(check.err.find(config_ + ":5:5: "), std::string::npos) << check.err;
  EXPECT_NE(check.err.find("did you mean 'path'?"), std::string::npos) << check.err;
  auto sync = dirsync({"sync", "hr-to-file"});
  EXPECT_EQ(sync.exit_code, 2);
}

TEST_F(CliTest, SecondRunOfARunningJobExitsThreeNamingThePid) {
  auto held = state::JobLock::acquire((dir_ / ".quickstart/state").string(), "hr-to-file");
  ASSERT_TRUE(held.ok()) << held.error().message;
  auto run = dirsync({"sync", "hr-to-file"});
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_NE(run.out.find("job 'hr-to-file' is running (pid " + std::to_string(::getpid()) + ")"), std::string::npos)
      << run.out;
  EXPECT_FALSE(fs::exists(dir_ / ".quickstart/changes.jsonl"));
}

TEST_F(CliTest, UnknownJobIsAUsageError) {
  auto run = dirsync({"sync", "nope"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("no job 'nope'"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace dirsync::testing

namespace dirsync::testing {
namespace {

TEST_F(CliTest, PlanExplainsWhyAUserIsOrIsNotSynced) {
  ASSERT_EQ(dirsync({"sync", "hr-to-file"}).exit_code, 0);
  // The job now leaves Research out: Alan (1003) is detached because of the filter.
  std::string yaml = read_file(config_);
  yaml.replace(yaml.find("    on_missing: detach\n"), 23,
               "    on_missing: detach\n    filter:\n      exclude: {attribute: department, equals: Research}\n");
  write_file(config_, yaml);

  auto plan = dirsync({"plan", "hr-to-file"});
  EXPECT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find("- detach 1003 (id 1003)  [dropped by the job's filter]"), std::string::npos) << plan.out;

  auto alan = dirsync({"plan", "hr-to-file", "--explain", "1003"});
  EXPECT_EQ(alan.exit_code, 0) << alan.err;
  EXPECT_NE(alan.out.find("found at "), std::string::npos) << alan.out;
  EXPECT_NE(alan.out.find("users.csv:4"), std::string::npos) << alan.out;
  EXPECT_NE(alan.out.find("dropped (excluded: department equals 'Research')"), std::string::npos) << alan.out;
  EXPECT_NE(alan.out.find("\"email\":\"alan.turing@example.com\""), std::string::npos) << alan.out;
  EXPECT_NE(alan.out.find("next sync:\n  detach: the job's filter drops it"), std::string::npos) << alan.out;

  auto ada = dirsync({"plan", "hr-to-file", "--explain", "1001", "--json"});
  EXPECT_EQ(ada.exit_code, 0) << ada.err;
  const auto j = nlohmann::json::parse(ada.out);
  EXPECT_EQ(j["action"], "nothing");
  EXPECT_EQ(j["filter"]["kept"], true);
  EXPECT_EQ(j["record"]["attributes"]["first_name"], nlohmann::json::array({"Ada"}));
  EXPECT_EQ(j["snapshot"]["payload"]["email"], "ada.lovelace@example.com");
  EXPECT_EQ(count_lines(dir_ / ".quickstart/changes.jsonl"), 12u) << "explaining sends nothing";
}

}  // namespace
}  // namespace dirsync::testing

namespace dirsync::testing {
namespace {

// The bundled examples are documentation: each one must pass check-config.
TEST(Examples, EveryBundledConfigPassesCheckConfig) {
  const std::vector<std::string> env = {"AD_BIND_PASSWORD=x", "PERSCOM_TOKEN=x", "SCIM_TOKEN=x",
                                        "HESH_TENANT_ID=3f2504e0-4f89-41d3-9a0c-0305e82c3301", "HESH_API_KEY=x",
                                        "HRIS_API_KEY=x", "ROYALTI_TOKEN=x"};
  std::size_t checked = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(source_dir()) / "examples")) {
    if (entry.path().extension() != ".yaml") continue;
    auto result = run_dirsync({"--config", entry.path().string(), "check-config"}, env);
    EXPECT_EQ(result.exit_code, 0) << entry.path() << "\n" << result.err << result.out;
    ++checked;
  }
  EXPECT_GE(checked, 5u);
}


TEST(ConfigReference, PrintsEverySectionWithItsKeys) {
  auto ref = run_dirsync({"config-reference"});
  EXPECT_EQ(ref.exit_code, 0) << ref.err;
  for (const char* text : {"sources.<name> (type: ldap)", "jobs.<name>.schedule", "  detach_after (integer, default 1)",
                           "filter conditions", "daemon\n  max_concurrent_jobs"}) {
    EXPECT_NE(ref.out.find(text), std::string::npos) << text << "\n" << ref.out;
  }
}

}  // namespace
}  // namespace dirsync::testing

namespace dirsync::testing {
namespace {

// scripts/quickstart is the README's first command. It must work in a checkout
// dirsync would refuse to read a config from: one made with umask 002 (the
// example config group-writable) and, when we are root, owned by a normal user
// and run through sudo.
TEST_F(CliTest, QuickstartScriptRunsInACheckoutDirsyncWouldNotTrust) {
  fs::create_directories(dir_ / "scripts");
  fs::copy_file(fs::path(source_dir()) / "scripts/quickstart", dir_ / "scripts/quickstart");
  fs::permissions(dir_ / "examples/quickstart.yaml", fs::perms::group_write, fs::perm_options::add);
  if (::geteuid() == 0) {
    for (const auto& entry : fs::recursive_directory_iterator(dir_)) {
      ASSERT_EQ(::chown(entry.path().c_str(), 65534, 65534), 0) << entry.path();
    }
    ASSERT_EQ(::chown(dir_.c_str(), 65534, 65534), 0);
  }
  // The checkout's own config is refused, so the script must not use it as is.
  auto direct = dirsync({"check-config"});
  EXPECT_EQ(direct.exit_code, 2) << direct.out << direct.err;
  EXPECT_NE(direct.err.find("writable by group/others"), std::string::npos) << direct.err;

  const std::string command = "DIRSYNC_BIN='" + dirsync_binary() + "' bash '" + (dir_ / "scripts/quickstart").string() + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  const int status = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_EQ(count_lines(dir_ / ".quickstart/changes.jsonl"), 12u) << output;
  EXPECT_NE(output.find("created    12"), std::string::npos) << output;
  EXPECT_NE(output.find("unchanged  12"), std::string::npos) << output;
  const auto mode = fs::status(dir_ / ".quickstart/quickstart.yaml").permissions();
  EXPECT_EQ(mode & (fs::perms::group_write | fs::perms::others_write), fs::perms::none);
}

}  // namespace
}  // namespace dirsync::testing
