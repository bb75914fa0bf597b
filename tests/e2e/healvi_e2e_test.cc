// The real `dirsync` binary against the loopback Healvi: a CSV export synced
// as one full set, edited (an id changed, users removed and added), synced
// again with nothing to do, and resynced after someone changed the customer's
// users by hand — with users attached by someone else left alone throughout.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/e2e/process.h"
#include "tests/support/healvi_test_server.h"

namespace dirsync::testing::healvi {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Ids = std::set<std::int64_t>;

// Distinctive, so that a leak anywhere is found by a plain substring search.
constexpr const char* kToken = "tok-e2e-healvi-Hq81Zr-do-not-log";
constexpr std::int64_t kCustomer = 7;

struct Row {
  std::string key;
  std::string healvi_id;
};

std::vector<Row> rows(int first, int last) {
  std::vector<Row> out;
  for (int i = first; i <= last; ++i) out.push_back({"E" + std::to_string(i), std::to_string(i)});
  return out;
}

Ids range(std::int64_t first, std::int64_t last) {
  Ids out;
  for (auto i = first; i <= last; ++i) out.insert(i);
  return out;
}

class HealviEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    HealviServerOptions o;
    o.token = kToken;
    server_.set_options(o);
    server_.start();
    server_.add_customer(kCustomer);
    server_.add_users(30);
    server_.attach(kCustomer, 25);  // attached by someone else, in Healvi's UI
    server_.attach(kCustomer, 26);
    dir_ = fs::temp_directory_path() / ("dirsync-e2e-healvi-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_config(false);
  }
  void TearDown() override {
    server_.stop();
    fs::remove_all(dir_);
  }

  void write_config(bool allow_empty) {
    std::ofstream(dir_ / "dirsync.yaml") << "state_dir: state\n"
                                            "sources:\n"
                                            "  hr:\n"
                                            "    type: csv\n"
                                            "    path: users.csv\n"
                                            "    key: employee_id\n"
                                            "targets:\n"
                                            "  healvi:\n"
                                            "    type: healvi\n"
                                            "    base_url: "
                                         << server_.base_url()
                                         << "\n"
                                            "    token: ${env:E2E_HEALVI_TOKEN}\n"
                                            "    customer_id: "
                                         << kCustomer << "\n"
                                         << "    allow_empty: " << (allow_empty ? "true" : "false") << "\n"
                                         << "    backoff_initial: 10ms\n"
                                            "    backoff_max: 50ms\n"
                                            "    retry_after_max: 50ms\n"
                                            "    max_attempts: 3\n"
                                            "jobs:\n"
                                            "  hr-to-healvi:\n"
                                            "    source: hr\n"
                                            "    target: healvi\n"
                                            "    mapping:\n"
                                            "      user_id: \"{healvi_id}\"\n"
                                            "    on_missing: detach\n"
                                            "    max_detach: {count: 500, percent: 100, floor: 5}\n";
  }

  void write_csv(const std::vector<Row>& users) {
    std::ofstream out(dir_ / "users.csv");
    out << "employee_id,healvi_id\n";
    for (const auto& u : users) out << u.key << ',' << u.healvi_id << "\n";
  }

  ProcessResult dirsync(std::vector<std::string> args, std::string token = kToken) {
    args.insert(args.begin(), {"--config", (dir_ / "dirsync.yaml").string()});
    auto r = run_dirsync(args, {"E2E_HEALVI_TOKEN=" + token});
    // The token must never reach an operator's screen, whatever happened.
    EXPECT_EQ(r.out.find(token), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find(token), std::string::npos) << r.err;
    return r;
  }

  std::vector<Ids> posted_lists() const {
    std::vector<Ids> out;
    for (const auto& r : server_.request_log()) {
      if (r.method != "POST") continue;
      const json body = json::parse(r.body);
      Ids ids;
      for (const auto& id : body["user_ids"]) ids.insert(id.get<std::int64_t>());
      out.push_back(ids);
    }
    return out;
  }

  static bool has(const ProcessResult& r, const std::string& text) { return r.out.find(text) != std::string::npos; }

  HealviTestServer server_;
  fs::path dir_;
};

TEST_F(HealviEndToEnd, SyncsEditsAndRemovalsAsOneFullSetThenSendsNothing) {
  auto users = rows(1, 10);
  write_csv(users);
  auto first = dirsync({"sync", "hr-to-healvi"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_TRUE(has(first, "created    10")) << first.out;
  Ids expected = range(1, 10);
  expected.insert({25, 26});
  EXPECT_EQ(server_.attached(kCustomer), expected) << "25 and 26 were attached by someone else";
  EXPECT_EQ(server_.count("GET"), 1u);
  EXPECT_EQ(posted_lists(), std::vector<Ids>{expected}) << "one request for the whole run";

  // v2: E3 now points at another Healvi user, E9 and E10 leave, E11 joins.
  users[2].healvi_id = "13";
  users.resize(8);
  users.push_back({"E11", "11"});
  write_csv(users);
  server_.clear_log();
  auto second = dirsync({"sync", "hr-to-healvi"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_TRUE(has(second, "created    1")) << second.out;
  EXPECT_TRUE(has(second, "updated    1")) << second.out;
  EXPECT_TRUE(has(second, "detached   2")) << second.out;
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, 2, 4, 5, 6, 7, 8, 11, 13, 25, 26}));
  EXPECT_EQ(server_.count("POST"), 1u);

  server_.clear_log();
  auto third = dirsync({"sync", "hr-to-healvi"});
  EXPECT_EQ(third.exit_code, 0) << third.out << third.err;
  EXPECT_TRUE(has(third, "unchanged  9")) << third.out;
  EXPECT_EQ(server_.request_count(), 0u);

  auto status = dirsync({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(json::parse(status.out)[0]["snapshot_size"], 9);
}

TEST_F(HealviEndToEnd, ResyncReattachesWhatWasDetachedByHandAndKeepsOthersUsers) {
  write_csv(rows(1, 5));
  ASSERT_EQ(dirsync({"sync", "hr-to-healvi"}).exit_code, 0);
  server_.detach(kCustomer, 2);  // someone removes a managed user in Healvi
  server_.attach(kCustomer, 27); // and adds one of their own
  server_.clear_log();
  ASSERT_EQ(dirsync({"sync", "hr-to-healvi"}).exit_code, 0);
  EXPECT_EQ(server_.request_count(), 0u) << "a sync trusts the snapshot";

  auto resync = dirsync({"resync", "hr-to-healvi"});
  ASSERT_EQ(resync.exit_code, 0) << resync.out << resync.err;
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, 2, 3, 4, 5, 25, 26, 27}));
  EXPECT_EQ(server_.count("POST"), 1u);

  // Nothing drifted: the resync reads the set and sends nothing.
  server_.clear_log();
  auto again = dirsync({"resync", "hr-to-healvi"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(server_.count("GET"), 1u);
  EXPECT_EQ(server_.count("POST"), 0u);
}

TEST_F(HealviEndToEnd, NeverSendsAnEmptyListUnlessTheJobAllowsIt) {
  server_.detach(kCustomer, 25);
  server_.detach(kCustomer, 26);
  write_csv(rows(1, 2));
  ASSERT_EQ(dirsync({"sync", "hr-to-healvi"}).exit_code, 0);
  // Both users leave; the one row left has no usable id (a mapping error, so
  // the pull is not empty and the detaches are planned).
  write_csv({{"E9", "not-a-number"}});
  server_.clear_log();
  auto run = dirsync({"sync", "hr-to-healvi"});
  EXPECT_EQ(run.exit_code, 4) << run.out << run.err;
  EXPECT_TRUE(has(run, "would be empty")) << run.out;
  EXPECT_TRUE(has(run, "allow_empty: true")) << run.out;
  EXPECT_EQ(server_.count("POST"), 0u);
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, 2}));

  write_config(true);
  auto allowed = dirsync({"sync", "hr-to-healvi"});
  EXPECT_EQ(allowed.exit_code, 4) << allowed.out << allowed.err << "(the unmapped row remains a problem)";
  EXPECT_TRUE(has(allowed, "detached   2")) << allowed.out;
  EXPECT_EQ(posted_lists(), std::vector<Ids>{Ids{}});
  EXPECT_TRUE(server_.attached(kCustomer).empty());
}

TEST_F(HealviEndToEnd, AServerErrorIsRetriedBecauseTheFullListIsIdempotent) {
  write_csv(rows(1, 3));
  server_.inject(Fault::k500, 1, 1, "POST");
  auto run = dirsync({"sync", "hr-to-healvi"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(server_.count("POST"), 2u);
  EXPECT_EQ(server_.attached(kCustomer), (Ids{1, 2, 3, 25, 26}));
}

TEST_F(HealviEndToEnd, WrongTokenStopsTheJobWithoutLeakingEitherToken) {
  write_csv(rows(1, 3));
  auto run = dirsync({"sync", "hr-to-healvi"}, "wrong-token-Pq07");
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_TRUE(has(run, "Healvi refused the token (HTTP 401)")) << run.out;
  EXPECT_EQ(server_.count("POST"), 0u);
  EXPECT_EQ(server_.attached(kCustomer), (Ids{25, 26}));
  auto status = dirsync({"status", "--json"});
  EXPECT_EQ(json::parse(status.out)[0]["snapshot_size"], 0);
}

}  // namespace
}  // namespace dirsync::testing::healvi
