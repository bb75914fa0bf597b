// `dirsync daemon` as systemd runs it: the real binary as a child process,
// sd_notify messages on a socket the test owns ($NOTIFY_SOCKET), jobs on short
// schedules against a CSV source and a file target (and a loopback JSON API
// that the test can hold mid-pull), signals for stop and reload.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/daemon/daemon_process.h"
#include "tests/e2e/process.h"
#include "connectors/http/http_client.h"
#include "tests/support/loopback_http_server.h"

namespace dirsync::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::size_t count_lines(const fs::path& p) {
  const std::string text = read_file(p);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dirsync-daemon-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_csv({{"1", "Ada", "Engineering"}, {"2", "Grace", "Navy"}, {"3", "Alan", "Research"}});
    // Unix socket paths must stay under 108 bytes: short names in /tmp.
    static int counter = 0;
    const std::string id = std::to_string(::getpid()) + "-" + std::to_string(++counter);
    socket_ = "/tmp/dsctl-" + id + ".sock";
    notify_ = std::make_unique<NotifySocket>("/tmp/dsntf-" + id + ".sock");
  }
  void TearDown() override {
    daemon_.reset();
    notify_.reset();
    fs::remove_all(dir_);
  }

  void write_csv(const std::vector<std::vector<std::string>>& rows) {
    std::ofstream out(dir_ / "users.csv.tmp");
    out << "id,name,dept\n";
    for (const auto& r : rows) out << r[0] << "," << r[1] << "," << r[2] << "\n";
    out.close();
    fs::rename(dir_ / "users.csv.tmp", dir_ / "users.csv");  // a replaced file is read consistently
  }

  // One CSV → file job, `schedule` as YAML, plus `extra` at the end of the file
  // and `daemon` inside the daemon section (the control socket is always set:
  // a Unix socket path must stay short).
  void write_config(const std::string& schedule, const std::string& extra = "", const std::string& job_extra = "",
                    const std::string& daemon = "") {
    std::ofstream(dir_ / "dirsync.yaml") << "state_dir: state\n"
                                            "sources:\n  hr: {type: csv, path: users.csv, key: id}\n"
                                            "targets:\n  out: {type: file, path: changes.jsonl}\n"
                                            "jobs:\n  hr-to-file:\n    source: hr\n    target: out\n"
                                            "    mapping: {name: \"{name}\", dept: \"{dept}\"}\n"
                                            "    schedule: "
                                         << schedule << "\n"
                                         << job_extra << extra << "daemon: {control_socket: " << socket_
                                         << (daemon.empty() ? "" : ", " + daemon) << "}\n";
  }

  void start(std::vector<std::string> env = {}) {
    env.push_back("NOTIFY_SOCKET=" + notify_->path());
    daemon_ = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", (dir_ / "dirsync.yaml").string(), "daemon"}, env,
        (dir_ / "daemon.log").string());
  }

  // One job from a cursor-paged JSON API at `url` to a file, run at start only.
  void write_api_config(const std::string& url) {
    std::ofstream(dir_ / "dirsync.yaml")
        << "state_dir: state\n"
           "sources:\n  api: {type: http_json, url: '" + url + "', records: /data, key: /id,\n"
           "        pagination: cursor, cursor_path: /next}\n"
           "targets:\n  out: {type: file, path: changes.jsonl}\n"
           "jobs:\n  api-to-file:\n    source: api\n    target: out\n    mapping: {name: \"{id}\"}\n"
           "    schedule: manual\n"
           "daemon: {control_socket: " + socket_ + "}\n";
  }

  ProcessResult cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", (dir_ / "dirsync.yaml").string()});
    return run_dirsync(args);
  }

  fs::path dir_;
  std::string socket_;
  std::unique_ptr<NotifySocket> notify_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(DaemonTest, RunsAtStartThenOnScheduleAndStopsCleanlyOnSigterm) {
  write_config("{every: 1s}");
  start();
  ASSERT_TRUE(notify_->wait_for("READY=1")) << daemon_->log();
  const fs::path changes = dir_ / "changes.jsonl";
  ASSERT_TRUE(eventually([&] { return count_lines(changes) == 3; })) << daemon_->log();

  // Grace moves: a scheduled run (not a start-up run) pushes the update.
  write_csv({{"1", "Ada", "Engineering"}, {"2", "Grace", "Research"}, {"3", "Alan", "Research"}});
  ASSERT_TRUE(eventually([&] { return count_lines(changes) == 4; })) << daemon_->log();
  EXPECT_NE(read_file(changes).find(R"("changed_fields":["dept"],"key":"2","op":"update")"), std::string::npos);

  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(), 0) << daemon_->log();
  EXPECT_TRUE(notify_->wait_for("STOPPING=1", 1, 5s));
  EXPECT_GE(count_of(daemon_->log(), "hr-to-file: sync ok"), 2u) << daemon_->log();

  // Every answered change is in the audit log, by field name only.
  const std::string audit = read_file(dir_ / "state/audit.jsonl");
  EXPECT_EQ(count_of(audit, "\n"), 4u) << audit;
  EXPECT_NE(audit.find(R"("key":"2","op":"update","changed_fields":["dept"],"outcome":"applied")"), std::string::npos)
      << audit;
  EXPECT_EQ(audit.find("Research"), std::string::npos) << "no payload value in the audit log";
}

TEST_F(DaemonTest, ReportsItsActivityAndPetsTheWatchdog) {
  write_config("manual");
  start({"WATCHDOG_USEC=200000"});
  ASSERT_TRUE(notify_->wait_for("READY=1")) << daemon_->log();
  EXPECT_TRUE(notify_->wait_for("WATCHDOG=1", 3)) << "WATCHDOG=1 from the event loop, twice per interval";
  EXPECT_TRUE(notify_->wait_for("STATUS=running: hr-to-file"));
  EXPECT_TRUE(notify_->wait_for("STATUS=idle"));
  daemon_->signal(SIGINT);
  EXPECT_EQ(daemon_->wait(), 0) << daemon_->log();
}

TEST_F(DaemonTest, ABrokenConfigOnReloadIsLoggedAndTheOldOneKeepsRunning) {
  write_config("{every: 1s}");
  start();
  ASSERT_TRUE(notify_->wait_for("READY=1")) << daemon_->log();
  const fs::path changes = dir_ / "changes.jsonl";
  ASSERT_TRUE(eventually([&] { return count_lines(changes) == 3; })) << daemon_->log();

  write_config("{every: 1s}", "bogus_key: 1\n");
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(daemon_->wait_for_log([](const std::string& log) {
    return log.find("reload failed with 1 error(s); still running the previous configuration") != std::string::npos;
  })) << daemon_->log();
  EXPECT_NE(daemon_->log().find("unknown key 'bogus_key' at the top level"), std::string::npos) << daemon_->log();
  EXPECT_TRUE(notify_->wait_for("READY=1", 2)) << "READY=1 again after RELOADING=1";

  // The old configuration still syncs on its schedule.
  write_csv({{"1", "Ada", "Engineering"}, {"2", "Grace", "Navy"}});
  ASSERT_TRUE(eventually([&] { return count_lines(changes) == 4; })) << daemon_->log();
  EXPECT_NE(read_file(changes).find(R"("key":"3","op":"detach")"), std::string::npos);
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(), 0) << daemon_->log();
}

TEST_F(DaemonTest, AReloadAddsAJobAndRunsIt) {
  write_config("manual");
  start();
  ASSERT_TRUE(notify_->wait_for("READY=1")) << daemon_->log();
  ASSERT_TRUE(eventually([&] { return count_lines(dir_ / "changes.jsonl") == 3; })) << daemon_->log();
  write_config("manual",
               "  second:\n    source: hr\n    target: other\n    mapping: {name: \"{name}\"}\n"
               "    schedule: manual\n",
               "");
  // `other` must exist: append a target to the file.
  std::ofstream(dir_ / "dirsync.yaml", std::ios::app) << "";
  {
    std::string yaml = read_file(dir_ / "dirsync.yaml");
    yaml.replace(yaml.find("targets:\n"), 9, "targets:\n  other: {type: file, path: second.jsonl}\n");
    std::ofstream(dir_ / "dirsync.yaml") << yaml;
  }
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return count_lines(dir_ / "second.jsonl") == 3; })) << daemon_->log();
  EXPECT_NE(daemon_->log().find("reload: job 'second' added"), std::string::npos);
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(), 0) << daemon_->log();
}

TEST_F(DaemonTest, AFailingJobBacksOffInsteadOfHotLooping) {
  write_config("{every: 1s}", "", "", "failure_backoff: 1h, failure_backoff_max: 2h");
  fs::remove(dir_ / "users.csv");  // every pull fails
  start();
  ASSERT_TRUE(notify_->wait_for("READY=1")) << daemon_->log();
  ASSERT_TRUE(daemon_->wait_for_log([](const std::string& log) {
    return log.find("hr-to-file: 1 failed run(s) in a row; next try not before") != std::string::npos;
  })) << daemon_->log();
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(), 0) << daemon_->log();
  // Its 1s schedule would have run it again and again; the backoff (1h) did not.
  EXPECT_EQ(count_of(daemon_->log(), "hr-to-file: sync failed"), 1u) << daemon_->log();
}

TEST_F(DaemonTest, AConfigErrorAtStartExitsTwoWithoutReady) {
  write_config("{every: 0s}");
  start();
  EXPECT_EQ(daemon_->wait(), 2) << daemon_->log();
  EXPECT_NE(daemon_->log().find("bad value '0s' for 'every'"), std::string::npos) << daemon_->log();
  notify_->wait_for("READY=1", 1, 200ms);
  EXPECT_EQ(notify_->count("READY=1"), 0u);
}

// A JSON API whose second page is held until the test lets it go.
class HeldApi {
 public:
  HeldApi()
      : server_([this](const ServerRequest& req) {
          // Requests in flight at once: a job's runs must never overlap.
          const int now = ++in_flight_;
          for (int seen = max_in_flight_.load(); now > seen && !max_in_flight_.compare_exchange_weak(seen, now);) {
          }
          struct Done {
            std::atomic<int>& n;
            ~Done() { --n; }
          } done{in_flight_};
          ServerResponse res;
          if (req.target.find("cursor=2") == std::string::npos) {
            nlohmann::json page = {{"data", nlohmann::json::array()}, {"next", "2"}};
            for (int i = 1; i <= 5; ++i) page["data"].push_back({{"id", "a" + std::to_string(i)}});
            res.body = page.dump();
            return res;
          }
          std::unique_lock lock(mu_);
          held_ = true;
          cv_.notify_all();
          cv_.wait(lock, [&] { return released_; });
          res.body = R"({"data":[{"id":"b1"},{"id":"b2"}],"next":null})";
          return res;
        }) {
    server_.start();
  }
  ~HeldApi() { release(); }
  std::string url() const { return server_.base_url() + "/users"; }
  bool wait_held() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 30s, [&] { return held_; });
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int max_in_flight() const { return max_in_flight_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  bool released_ = false;
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
  LoopbackHttpServer server_;
};

TEST_F(DaemonTest, SigtermMidRunStopsAfterTheBatchInFlightWithTheSnapshotConsistent) {
  HeldApi api;
  write_api_config(api.url());
  start();
  ASSERT_TRUE(notify_->wait_for("READY=1")) << daemon_->log();
  ASSERT_TRUE(api.wait_held()) << daemon_->log();  // mid-pull: page 1 read, page 2 in flight
  daemon_->signal(SIGTERM);
  ASSERT_TRUE(notify_->wait_for("STOPPING=1")) << daemon_->log();
  api.release();
  EXPECT_EQ(daemon_->wait(), 0) << daemon_->log();
  EXPECT_NE(daemon_->log().find("stopped before its end"), std::string::npos) << daemon_->log();

  // Whatever reached the target is in the snapshot, and nothing else.
  auto status = run_dirsync({"--config", (dir_ / "dirsync.yaml").string(), "status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const auto j = nlohmann::json::parse(status.out);
  const auto& job = j.is_array() ? j[0] : j;
  EXPECT_EQ(job["snapshot_size"].get<std::size_t>(), count_lines(dir_ / "changes.jsonl")) << status.out;
}


TEST_F(DaemonTest, CommandsGoThroughTheControlSocketToTheRunningDaemon) {
  write_config("manual", "", "    run_at_start: false\n");
  start();
  ASSERT_TRUE(notify_->wait_for("READY=1")) << daemon_->log();
  EXPECT_EQ((fs::status(socket_).permissions() & fs::perms::all),
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::group_write)
      << "the control socket is 0660";

  auto status = cli({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("job hr-to-file: idle; schedule manual"), std::string::npos) << status.out;

  auto plan = cli({"plan", "hr-to-file"});
  EXPECT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find("+ create 1 "), std::string::npos) << plan.out;
  EXPECT_FALSE(fs::exists(dir_ / "changes.jsonl")) << "a plan sends nothing";

  auto sync = cli({"sync", "hr-to-file"});
  EXPECT_EQ(sync.exit_code, 0) << sync.out << sync.err;
  EXPECT_NE(sync.out.find("created    3"), std::string::npos) << sync.out;
  EXPECT_EQ(count_lines(dir_ / "changes.jsonl"), 3u);
  EXPECT_NE(daemon_->log().find("control: uid " + std::to_string(::geteuid()) + " asks for sync hr-to-file"),
            std::string::npos)
      << "the run happened inside the daemon: " << daemon_->log();

  auto resync = cli({"resync", "hr-to-file", "--json"});
  EXPECT_EQ(resync.exit_code, 0) << resync.err;
  EXPECT_EQ(nlohmann::json::parse(resync.out)["mode"], "resync") << resync.out;

  auto unknown = cli({"status", "nope"});
  EXPECT_EQ(unknown.exit_code, 2);
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(), 0) << daemon_->log();
  EXPECT_FALSE(fs::exists(socket_)) << "the socket is removed on exit";

  // No daemon: the same command runs in-process.
  auto local = cli({"sync", "hr-to-file"});
  EXPECT_EQ(local.exit_code, 0) << local.err;
  EXPECT_NE(local.out.find("unchanged  3"), std::string::npos) << local.out;
}

TEST_F(DaemonTest, AResyncAskedForDuringARunIsQueuedNotLost) {
  HeldApi api;
  write_api_config(api.url());
  start();
  ASSERT_TRUE(notify_->wait_for("READY=1")) << daemon_->log();
  ASSERT_TRUE(api.wait_held()) << daemon_->log();  // the start-up run is mid-pull
  ProcessResult resync;
  std::thread client([&] { resync = cli({"resync", "api-to-file"}); });
  ASSERT_TRUE(daemon_->wait_for_log([](const std::string& log) {
    return log.find("asks for resync api-to-file") != std::string::npos;
  })) << daemon_->log();
  api.release();
  client.join();
  EXPECT_EQ(resync.exit_code, 0) << resync.out << resync.err;
  EXPECT_NE(resync.err.find("queued behind the run in progress"), std::string::npos) << resync.err;
  EXPECT_NE(resync.out.find("api-to-file: resync ok"), std::string::npos) << resync.out;
  EXPECT_EQ(count_of(daemon_->log(), "api-to-file: resync started"), 1u) << daemon_->log();
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(), 0) << daemon_->log();
}

TEST_F(DaemonTest, WithoutADaemonAForeignStateDirIsRefusedNotTakenOver) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the state to another user";
  write_config("manual");
  fs::create_directories(dir_ / "state");
  ASSERT_EQ(::chown((dir_ / "state").c_str(), 65534, 65534), 0);
  auto run = cli({"sync", "hr-to-file"});
  EXPECT_EQ(run.exit_code, 2) << run.out << run.err;
  EXPECT_NE(run.err.find("belongs to uid 65534"), std::string::npos) << run.err;
  EXPECT_TRUE(fs::is_empty(dir_ / "state")) << "no root-owned file was created in it";
}


TEST_F(DaemonTest, ServesPrometheusMetricsOfItsRuns) {
  write_config("manual", "", "", "metrics: '127.0.0.1:0'");
  start();
  ASSERT_TRUE(notify_->wait_for("READY=1")) << daemon_->log();
  ASSERT_TRUE(daemon_->wait_for_log([](const std::string& log) {
    return log.find("hr-to-file: sync ok") != std::string::npos;
  })) << daemon_->log();
  const std::string log = daemon_->log();
  const std::string marker = "/healthz on 127.0.0.1:0 (port ";
  const auto at = log.find(marker);
  ASSERT_NE(at, std::string::npos) << log;
  const auto from = at + marker.size();
  const std::string port = log.substr(from, log.find(')', from) - from);
  http::HttpClient client(config::HttpSettings{});
  http::Request scrape;
  scrape.url = "http://127.0.0.1:" + port + "/metrics";
  scrape.idempotent = true;
  const auto res = client.send(scrape);
  ASSERT_EQ(res.status, 200) << res.error;
  EXPECT_NE(res.body.find("dirsync_runs_total{job=\"hr-to-file\",outcome=\"ok\"} 1"), std::string::npos) << res.body;
  EXPECT_NE(res.body.find("dirsync_records_total{job=\"hr-to-file\",op=\"created\"} 3"), std::string::npos)
      << res.body;
  EXPECT_NE(res.body.find("dirsync_snapshot_users{job=\"hr-to-file\"} 3"), std::string::npos) << res.body;
  scrape.url = "http://127.0.0.1:" + port + "/healthz";
  EXPECT_EQ(client.send(scrape).body, "ok\n");
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(), 0) << daemon_->log();
}


TEST_F(DaemonTest, RunsOfOneJobNeverOverlapAndRequestsDuringARunShareTheNextOne) {
  HeldApi api;
  write_api_config(api.url());
  start();
  ASSERT_TRUE(notify_->wait_for("READY=1")) << daemon_->log();
  ASSERT_TRUE(api.wait_held()) << daemon_->log();  // the start-up run is mid-pull
  ProcessResult first, second;
  std::thread c1([&] { first = cli({"sync", "api-to-file"}); });
  std::thread c2([&] { second = cli({"sync", "api-to-file"}); });
  ASSERT_TRUE(daemon_->wait_for_log([](const std::string& log) {
    return count_of(log, "asks for sync api-to-file") == 2;
  })) << daemon_->log();
  api.release();
  c1.join();
  c2.join();
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(second.exit_code, 0) << second.err;
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(), 0) << daemon_->log();
  EXPECT_EQ(count_of(daemon_->log(), "api-to-file: sync started"), 2u)
      << "the start-up run, then one run for both requests: " << daemon_->log();
  EXPECT_EQ(api.max_in_flight(), 1) << "never two requests of the job at once";
}

}  // namespace
}  // namespace dirsync::testing
