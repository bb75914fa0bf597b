// The guards through the `dirsync` binary: a blocked run in `status` (text,
// JSON, and the daemon's view and metrics), quarantined users and pending
// creates in `status`, `dirsync release`, `protect` (in runs and in `dirsync
// apply`) and `max_update`.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "connectors/http/http_client.h"
#include "state/state_store.h"
#include "tests/daemon/daemon_process.h"
#include "tests/e2e/process.h"

namespace dirsync::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class GuardsEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dirsync-guards-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    static int counter = 0;  // Unix socket paths must stay short
    socket_ = "/tmp/dsgrd-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + ".sock";
    write_users(10);
    write_config();
  }
  void TearDown() override {
    daemon_.reset();
    fs::remove_all(dir_);
  }

  // Users 1..n; `dept` for all of them.
  void write_users(int n, int skip_from = 0, int skip_to = -1) {
    std::ofstream out(dir_ / "users.csv");
    out << "id,name,dept\n";
    for (int i = 1; i <= n; ++i) {
      if (i >= skip_from && i <= skip_to) continue;
      out << i << ",User " << i << ",Dept " << i << "\n";
    }
  }

  // `job_extra`: more keys of the job, each line indented by four spaces.
  void write_config(const std::string& job_extra = "", const std::string& mapping = "{name: \"{name}\", dept: \"{dept}\"}",
                    const std::string& daemon = "") {
    std::ofstream(dir_ / "dirsync.yaml") << "state_dir: state\n"
                                            "sources:\n  hr: {type: csv, path: users.csv, key: id}\n"
                                            "targets:\n  out: {type: file, path: changes.jsonl}\n"
                                            "jobs:\n  hr-to-file:\n    source: hr\n    target: out\n"
                                            "    mapping: "
                                         << mapping << "\n    max_detach: {count: 500, percent: 10, floor: 2}\n"
                                         << job_extra << "daemon: {control_socket: " << socket_
                                         << (daemon.empty() ? "" : ", " + daemon) << "}\n";
  }

  ProcessResult dirsync(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", (dir_ / "dirsync.yaml").string()});
    return run_dirsync(args);
  }

  // Quarantine entries and an unsettled create, as runs against a target that
  // kept rejecting leave them (written directly: the file target never rejects).
  void seed_quarantine_and_outbox() {
    auto opened = state::StateStore::open((dir_ / "state").string());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto store = std::move(opened).value();
    state::Settlement s;
    s.quarantine.emplace_back("3", state::QuarantineEntry{3, 11, "The email has already been taken.", 1000, 3000});
    s.quarantine.emplace_back("4", state::QuarantineEntry{4, 12, "Invalid phone.", 2000, 3000});
    s.quarantine.emplace_back("5", state::QuarantineEntry{1, 13, "Rejected once.", 2500, 3000});  // not (yet) quarantined
    ASSERT_TRUE(store->settle("hr-to-file", s).ok());
    ASSERT_TRUE(store->add_intent("hr-to-file", {{"99", core::Op::kCreate, 7, "", json{{"name", "N"}}}}).ok());
  }

  fs::path dir_;
  std::string socket_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(GuardsEndToEnd, StatusShowsABlockedRunUntilARunThatIsNotBlocked) {
  ASSERT_EQ(dirsync({"sync", "hr-to-file"}).exit_code, 0);
  write_users(10, 3, 6);  // four leave: over the limit of 2
  auto blocked = dirsync({"sync", "hr-to-file"});
  ASSERT_EQ(blocked.exit_code, 4) << blocked.out << blocked.err;

  auto status = dirsync({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("job hr-to-file: csv"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("\n  BLOCKED: 4 detaches exceed the limit of 2 for 10 users (max_detach: count 500, "
                            "percent 10.0, floor 2); no detach was applied."),
            std::string::npos)
      << status.out;
  EXPECT_NE(status.out.find("(run #2, "), std::string::npos) << status.out;
  auto as_json = dirsync({"status", "--json"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  const json j = json::parse(as_json.out);
  EXPECT_EQ(j[0]["blocked"]["run"], 2);
  EXPECT_NE(j[0]["blocked"]["note"].get<std::string>().find("4 detaches exceed"), std::string::npos);

  write_users(10);  // they come back: the next run is not blocked
  ASSERT_EQ(dirsync({"sync", "hr-to-file"}).exit_code, 0);
  status = dirsync({"status"});
  EXPECT_EQ(status.out.find("BLOCKED"), std::string::npos) << status.out;
  EXPECT_TRUE(json::parse(dirsync({"status", "--json"}).out)[0]["blocked"].is_null());
}

TEST_F(GuardsEndToEnd, StatusListsQuarantinedUsersAndPendingCreatesAndReleaseFreesThem) {
  ASSERT_EQ(dirsync({"sync", "hr-to-file"}).exit_code, 0);
  seed_quarantine_and_outbox();

  auto status = dirsync({"status"});
  EXPECT_NE(status.out.find("  quarantined: 2 users, not sent until their source record changes or 'dirsync "
                            "release hr-to-file KEY' frees them\n    3: rejected 3 times since "),
            std::string::npos)
      << status.out;
  EXPECT_NE(status.out.find(" — The email has already been taken.\n    4: rejected 4 times since "), std::string::npos)
      << status.out;
  EXPECT_EQ(status.out.find("Rejected once."), std::string::npos) << "below quarantine_after: still sent";
  EXPECT_NE(status.out.find("  pending creates: 1 with an unknown outcome"), std::string::npos) << status.out;
  const json j = json::parse(dirsync({"status", "--json"}).out)[0];
  EXPECT_EQ(j["quarantine"]["count"], 2);
  EXPECT_EQ(j["quarantine"]["users"][0], json({{"key", "3"}, {"rejections", 3}, {"message",
                                                "The email has already been taken."}, {"since", 1000}}));
  EXPECT_EQ(j["pending_creates"], 1);

  auto one = dirsync({"release", "hr-to-file", "3", "nobody"});
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(one.out, "released 1 user of job 'hr-to-file' from quarantine: 3 (the next run sends them again)\n"
                     "not quarantined (nothing to release): nobody\n");
  EXPECT_NE(dirsync({"status"}).out.find("  quarantined: 1 user,"), std::string::npos);

  {
    // A run in progress holds the job's lock: release never races it.
    auto held = state::JobLock::acquire((dir_ / "state").string(), "hr-to-file");
    ASSERT_TRUE(held.ok());
    auto busy = dirsync({"release", "hr-to-file", "--all"});
    EXPECT_EQ(busy.exit_code, 3) << busy.out;
    EXPECT_NE(busy.err.find("job 'hr-to-file' is running (pid "), std::string::npos) << busy.err;
  }
  auto all = dirsync({"release", "hr-to-file", "--all", "--json"});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(json::parse(all.out)["released"], json({"4", "5"}));
  EXPECT_NE(dirsync({"status"}).out.find("pending creates: 1"), std::string::npos) << "release leaves the outbox";
  EXPECT_EQ(dirsync({"status"}).out.find("quarantined:"), std::string::npos);

  EXPECT_EQ(dirsync({"release", "hr-to-file"}).exit_code, 2) << "keys or --all";
  EXPECT_EQ(dirsync({"release", "hr-to-file", "3", "--all"}).exit_code, 2);
  EXPECT_EQ(dirsync({"release", "nosuchjob", "--all"}).exit_code, 2);
}

TEST_F(GuardsEndToEnd, TheDaemonAnswersStatusAndReleaseAndExportsTheBlockedGauge) {
  ASSERT_EQ(dirsync({"sync", "hr-to-file"}).exit_code, 0);
  write_users(10, 3, 6);
  ASSERT_EQ(dirsync({"sync", "hr-to-file"}).exit_code, 4);
  seed_quarantine_and_outbox();
  write_config("    run_at_start: false\n", "{name: \"{name}\", dept: \"{dept}\"}", "metrics: '127.0.0.1:0'");
  NotifySocket notify("/tmp/dsgrn-" + std::to_string(::getpid()) + ".sock");
  daemon_ = std::make_unique<DaemonProcess>(
      std::vector<std::string>{"--config", (dir_ / "dirsync.yaml").string(), "daemon"},
      std::vector<std::string>{"NOTIFY_SOCKET=" + notify.path()}, (dir_ / "daemon.log").string());
  ASSERT_TRUE(notify.wait_for("READY=1")) << daemon_->log();

  auto status = dirsync({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("job hr-to-file: idle; schedule manual"), std::string::npos) << "the daemon's view\n"
                                                                                          << status.out;
  EXPECT_NE(status.out.find("  BLOCKED: 4 detaches exceed the limit of 2"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("  quarantined: 2 users"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("  pending creates: 1"), std::string::npos) << status.out;
  const json j = json::parse(dirsync({"status", "--json"}).out);
  EXPECT_EQ(j[0]["state"], "idle");
  EXPECT_EQ(j[0]["quarantine"]["count"], 2);
  EXPECT_EQ(j[0]["blocked"]["run"], 2);

  auto release = dirsync({"release", "hr-to-file", "4"});
  EXPECT_EQ(release.exit_code, 0) << release.err;
  EXPECT_EQ(release.out, "released 1 user of job 'hr-to-file' from quarantine: 4 (the next run sends them again)\n");
  EXPECT_NE(daemon_->log().find("hr-to-file: released from quarantine: 1 user(s)"), std::string::npos);
  EXPECT_NE(dirsync({"status"}).out.find("  quarantined: 1 user,"), std::string::npos);

  // A run blocked before the daemon started is in its metrics from the start.
  const std::string log = daemon_->log();
  const std::string marker = "/healthz on 127.0.0.1:0 (port ";
  const auto at = log.find(marker);
  ASSERT_NE(at, std::string::npos) << log;
  const auto from = at + marker.size();
  http::HttpClient client(config::HttpSettings{});
  http::Request scrape;
  scrape.url = "http://127.0.0.1:" + log.substr(from, log.find(')', from) - from) + "/metrics";
  scrape.idempotent = true;
  auto res = client.send(scrape);
  ASSERT_EQ(res.status, 200) << res.error;
  EXPECT_NE(res.body.find("\ndirsync_job_blocked{job=\"hr-to-file\"} 1\n"), std::string::npos) << res.body;

  // The users come back; a run through the daemon is not blocked, and the gauge drops.
  write_users(10);
  ASSERT_EQ(dirsync({"sync", "hr-to-file"}).exit_code, 0);
  res = client.send(scrape);
  EXPECT_NE(res.body.find("\ndirsync_job_blocked{job=\"hr-to-file\"} 0\n"), std::string::npos) << res.body;
  EXPECT_EQ(dirsync({"status"}).out.find("BLOCKED"), std::string::npos);
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(), 0) << daemon_->log();
}

TEST_F(GuardsEndToEnd, AProtectedUserIsNeitherDetachedNorUpdatedAndPlansSayWhy) {
  write_config("    protect: {any: [{attribute: key, in: [\"1\"]}, {attribute: dept, equals: Admins}]}\n");
  ASSERT_EQ(dirsync({"sync", "hr-to-file"}).exit_code, 0);
  write_users(10, 1, 1);  // user 1 leaves the source
  auto run = dirsync({"sync", "hr-to-file"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("  protected  1\n"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("  key 1: detach withheld — protected by the job's protect filter: key in ['1']\n"),
            std::string::npos)
      << run.out;
  EXPECT_EQ(read_file(dir_ / "changes.jsonl").find(R"("key":"1","op":"detach")"), std::string::npos);

  auto explain = dirsync({"plan", "hr-to-file", "--explain", "1"});
  EXPECT_EQ(explain.exit_code, 0) << explain.err;
  EXPECT_NE(explain.out.find("nothing: it is not in the source, but it is protected by the job's protect filter: "
                             "key in ['1']"),
            std::string::npos)
      << explain.out;

  write_config("    protect: {attribute: key, equal: \"1\"}\n");
  auto check = dirsync({"check-config"});
  EXPECT_EQ(check.exit_code, 2);
  EXPECT_NE(check.err.find("dirsync.yaml:12:31: unknown key 'equal' in filter condition; did you mean 'equals'?"),
            std::string::npos)
      << check.err;
}

TEST_F(GuardsEndToEnd, ApplyingASavedPlanWithholdsUsersProtectedSinceThePlanWasMade) {
  ASSERT_EQ(dirsync({"sync", "hr-to-file"}).exit_code, 0);
  // Users 1 and 2 leave, user 3 is renamed: the plan detaches two and updates one.
  {
    std::ofstream out(dir_ / "users.csv");
    out << "id,name,dept\n3,Renamed 3,Dept 3\n";
    for (int i = 4; i <= 10; ++i) out << i << ",User " << i << ",Dept " << i << "\n";
  }
  const std::string plan_path = (dir_ / "plan.json").string();
  auto plan = dirsync({"plan", "hr-to-file", "--out", plan_path});
  ASSERT_EQ(plan.exit_code, 0) << plan.out << plan.err;
  ASSERT_NE(plan.out.find("saved 3 changes to " + plan_path), std::string::npos) << plan.out;

  // The operator protects users 1 and 3 after saving the plan; applying it leaves them alone.
  write_config("    protect: {attribute: key, in: [\"1\", \"3\"]}\n");
  const auto pushed_before = read_file(dir_ / "changes.jsonl").size();
  auto applied = dirsync({"apply", plan_path});
  EXPECT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  EXPECT_NE(applied.out.find("  detached   1\n"), std::string::npos) << applied.out;
  EXPECT_NE(applied.out.find("  protected  2\n"), std::string::npos) << applied.out;
  EXPECT_NE(applied.out.find("  key 1: detach withheld — protected by the job's protect filter: key in ['1', '3']\n"),
            std::string::npos)
      << applied.out;
  EXPECT_NE(applied.out.find("  key 3: update withheld — protected by the job's protect filter: key in ['1', '3']\n"),
            std::string::npos)
      << applied.out;
  const std::string pushed = read_file(dir_ / "changes.jsonl").substr(pushed_before);
  EXPECT_NE(pushed.find(R"("key":"2","op":"detach")"), std::string::npos) << pushed;
  EXPECT_EQ(pushed.find(R"("key":"1")"), std::string::npos) << pushed;
  EXPECT_EQ(pushed.find(R"("key":"3")"), std::string::npos) << pushed;
}

TEST_F(GuardsEndToEnd, MaxUpdateHoldsBackAMappingMistake) {
  write_config("    max_update: {count: 500, percent: 10, floor: 2}\n");
  ASSERT_EQ(dirsync({"sync", "hr-to-file"}).exit_code, 0);
  // A config edit maps dept from the wrong column: every user would change.
  write_config("    max_update: {count: 500, percent: 10, floor: 2}\n", "{name: \"{name}\", dept: \"{name}\"}");
  auto plan = dirsync({"plan", "hr-to-file"});
  EXPECT_EQ(plan.exit_code, 4) << plan.err;
  EXPECT_NE(plan.out.find("  ~ update 1 (id 1): dept \"Dept 1\" -> \"User 1\"  [blocked by max_update]\n"), std::string::npos)
      << plan.out;
  auto run = dirsync({"sync", "hr-to-file"});
  EXPECT_EQ(run.exit_code, 4) << run.out;
  EXPECT_NE(run.out.find("BLOCKED: 10 updates exceed the limit of 2 for 10 users (max_update: count 500, percent "
                         "10.0, floor 2); no update was applied"),
            std::string::npos)
      << run.out;
  EXPECT_EQ(read_file(dir_ / "changes.jsonl").find(R"("op":"update")"), std::string::npos);
}

}  // namespace
}  // namespace dirsync::testing
