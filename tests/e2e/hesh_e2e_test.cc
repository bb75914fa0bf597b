// The real `dirsync` binary against the loopback Hesh test server: a CSV export
// synced, edited (Hesh cannot update: skipped), trimmed (Hesh cannot delete:
// on_missing: ignore), re-synced, and synced again with nothing to do; plus the
// failures an operator meets, and the tenant id and key never shown.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/e2e/process.h"
#include "tests/support/hesh_test_server.h"

namespace dirsync::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Distinctive, so that a leak anywhere is found by a plain substring search.
constexpr const char* kTenant = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
constexpr const char* kApiKey = "hesh-key-e2e-Qw8zP1-do-not-log";

struct User {
  std::string id, first, last, email, phone;
};

std::vector<User> v1_users(int n) {
  std::vector<User> out;
  for (int i = 1; i <= n; ++i) {
    const std::string s = std::to_string(i);
    out.push_back({"E" + s, "First" + s, "Last" + s, "User" + s + "@Example.com", "+1 555 01" + s});
  }
  return out;
}

class HeshEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.require_api_key(std::string(kApiKey));
    server_.start();
    dir_ = fs::temp_directory_path() / ("dirsync-e2e-hesh-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_config();
  }
  void TearDown() override {
    server_.stop();
    fs::remove_all(dir_);
  }

  void write_config(const std::string& on_missing = "ignore", const std::string& extra = "", int batch_size = 10) {
    std::ofstream(dir_ / "dirsync.yaml") << "state_dir: state\n"
                                            "sources:\n"
                                            "  hr:\n"
                                            "    type: csv\n"
                                            "    path: users.csv\n"
                                            "    key: employee_id\n"
                                            "targets:\n"
                                            "  hesh:\n"
                                            "    type: hesh\n"
                                            "    base_url: "
                                         << server_.base_url()
                                         << "\n"
                                            "    tenant_id: ${env:E2E_HESH_TENANT}\n"
                                            "    api_key: ${env:E2E_HESH_KEY}\n"
                                            "    batch_size: "
                                         << batch_size
                                         << "\n"
                                            "    backoff_initial: 10ms\n"
                                            "    backoff_max: 50ms\n"
                                            "    retry_after_max: 50ms\n"
                                            "    max_attempts: 3\n"
                                         << extra
                                         << "jobs:\n"
                                            "  hr-to-hesh:\n"
                                            "    source: hr\n"
                                            "    target: hesh\n"
                                            "    mapping:\n"
                                            "      external_user_id: \"{employee_id}\"\n"
                                            "      email: \"{email | lower | trim}\"\n"
                                            "      first_name: \"{first_name}\"\n"
                                            "      last_name: \"{last_name}\"\n"
                                            "      phone: \"{phone}\"\n"
                                            "    on_missing: "
                                         << on_missing << "\n";
  }

  void write_csv(const std::vector<User>& users) {
    std::ofstream out(dir_ / "users.csv");
    out << "employee_id,first_name,last_name,email,phone\n";
    for (const auto& u : users) {
      out << u.id << ',' << u.first << ',' << u.last << ',' << u.email << ",\"" << u.phone << "\"\n";
    }
  }

  ProcessResult dirsync(std::vector<std::string> args, std::string tenant = kTenant) {
    args.insert(args.begin(), {"--config", (dir_ / "dirsync.yaml").string()});
    auto r = run_dirsync(args, {"E2E_HESH_TENANT=" + tenant, std::string("E2E_HESH_KEY=") + kApiKey});
    // The tenant id is the credential: it must never reach an operator's screen.
    for (const std::string& secret : {tenant, std::string(kTenant), std::string(kApiKey)}) {
      EXPECT_EQ(r.out.find(secret), std::string::npos) << r.out;
      EXPECT_EQ(r.err.find(secret), std::string::npos) << r.err;
    }
    return r;
  }

  static std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  void expect_server_has(const std::vector<User>& users) {
    for (const auto& u : users) {
      const json stored = server_.find_user_by_email(u.email);
      ASSERT_FALSE(stored.is_null()) << u.email;
      EXPECT_EQ(stored["email"], lower(u.email));
      EXPECT_EQ(stored["external_user_id"], u.id);
      EXPECT_EQ(stored["first_name"], u.first);
      EXPECT_EQ(stored["last_name"], u.last);
      EXPECT_EQ(stored["phone"], u.phone);
    }
  }

  bool contains(const ProcessResult& r, const std::string& text) { return r.out.find(text) != std::string::npos; }

  HeshTestServer server_{HeshServerOptions{{kTenant}, std::nullopt, true}};
  fs::path dir_;
};

TEST_F(HeshEndToEnd, SyncsNewUsersSkipsEditsAndRemovalsThenSendsNothing) {
  auto users = v1_users(25);
  write_csv(users);
  auto first = dirsync({"sync", "hr-to-hesh"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_TRUE(contains(first, "created    25")) << first.out;
  EXPECT_EQ(server_.users().size(), 25u);
  expect_server_has(users);
  const auto log = server_.request_log();
  EXPECT_EQ(log.size(), 3u);  // batches of 10
  for (const auto& r : log) {
    EXPECT_EQ(r.status, 200);
    bool tenant = false, key = false;
    for (const auto& [name, value] : r.headers) {
      tenant |= name == "x-tenant-id" && value == kTenant;
      key |= name == "x-api-key" && value == kApiKey;
    }
    EXPECT_TRUE(tenant);
    EXPECT_TRUE(key);
  }

  // v2: one rename (Hesh has no update endpoint), two leave (nor a delete
  // one: on_missing is ignore), three join.
  auto v2 = users;
  v2[0].first = "Renamed";
  v2.erase(v2.begin() + 10);  // E11
  v2.erase(v2.begin() + 10);  // E12
  for (int i = 26; i <= 28; ++i) v2.push_back(v1_users(i).back());
  write_csv(v2);
  server_.clear_log();
  auto second = dirsync({"sync", "hr-to-hesh"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_TRUE(contains(second, "created    3")) << second.out;
  EXPECT_TRUE(contains(second, "skipped    1")) << second.out;
  EXPECT_TRUE(contains(second, "cannot update users")) << second.out;
  EXPECT_EQ(server_.request_count(), 1u);
  EXPECT_EQ(server_.users().size(), 28u) << "nobody was deleted";
  EXPECT_EQ(server_.find_user_by_email("user1@example.com")["first_name"], "First1");
  expect_server_has(std::vector<User>(v2.end() - 3, v2.end()));

  server_.clear_log();
  auto third = dirsync({"sync", "hr-to-hesh"});
  EXPECT_EQ(third.exit_code, 0) << third.out << third.err;
  EXPECT_TRUE(contains(third, "created    0")) << third.out;
  EXPECT_EQ(server_.request_count(), 0u);

  auto status = dirsync({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const json st = json::parse(status.out);
  EXPECT_EQ(st[0]["snapshot_size"], 28);
  EXPECT_EQ(st[0]["runs"].size(), 3u);
}

TEST_F(HeshEndToEnd, ReportsUsersThatAlreadyExistedInHesh) {
  server_.add_user({{"email", "user2@example.com"}, {"external_user_id", "someone-else"}});
  server_.add_user({{"email", "other@example.com"}, {"phone", "+1 555 013"}});  // user 3's phone
  write_csv(v1_users(5));
  auto run = dirsync({"sync", "hr-to-hesh"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_TRUE(contains(run, "created    5")) << run.out;
  EXPECT_TRUE(contains(run, "key E2: create applied: already existed (skipped by Hesh)")) << run.out;
  EXPECT_TRUE(contains(run, "key E3: create applied: already existed (skipped by Hesh)")) << run.out;
  EXPECT_FALSE(contains(run, "key E1: create applied")) << run.out;
  EXPECT_EQ(server_.users().size(), 5u);  // 2 seeded + 3 created
  server_.clear_log();
  auto again = dirsync({"sync", "hr-to-hesh"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_EQ(server_.request_count(), 0u) << "skipped users are in the snapshot: not sent again";
}

TEST_F(HeshEndToEnd, ResyncResendsEveryUserAndRecreatesOneDeletedInHesh) {
  auto users = v1_users(5);
  write_csv(users);
  ASSERT_EQ(dirsync({"sync", "hr-to-hesh"}).exit_code, 0);
  ASSERT_TRUE(server_.remove_user_by_email("user4@example.com"));  // deleted inside Hesh
  server_.clear_log();
  auto sync = dirsync({"sync", "hr-to-hesh"});
  EXPECT_EQ(sync.exit_code, 0);
  EXPECT_EQ(server_.request_count(), 0u) << "a sync trusts the snapshot";

  auto dry = dirsync({"resync", "hr-to-hesh", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.out << dry.err;
  EXPECT_EQ(server_.request_count(), 0u);

  auto resync = dirsync({"resync", "hr-to-hesh"});
  ASSERT_EQ(resync.exit_code, 0) << resync.out << resync.err;
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(json::parse(log[0].body)["users"].size(), 5u);
  EXPECT_EQ(log[0].created, 1u);
  EXPECT_EQ(log[0].skipped, 4u);
  EXPECT_EQ(server_.users().size(), 5u);
  expect_server_has(users);
  EXPECT_TRUE(contains(resync, "key E1: create applied: already existed (skipped by Hesh)")) << resync.out;
  EXPECT_FALSE(contains(resync, "key E4: create applied")) << resync.out;
}

TEST_F(HeshEndToEnd, WrongTenantStopsTheJobWithoutShowingEitherTenantId) {
  write_csv(v1_users(5));
  auto run = dirsync({"sync", "hr-to-hesh"}, "0f8fad5b-d9cb-469f-a165-70867728950e");
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_TRUE(contains(run, "Hesh refused the tenant id (HTTP 401)")) << run.out;
  EXPECT_TRUE(contains(run, "${env:E2E_HESH_TENANT}")) << run.out;
  EXPECT_EQ(server_.request_count(), 1u);
  EXPECT_TRUE(server_.users().empty());
  auto status = dirsync({"status", "--json"});
  EXPECT_EQ(json::parse(status.out)[0]["snapshot_size"], 0);
}

TEST_F(HeshEndToEnd, ServerErrorAfterCreatingIsRetriedWithoutDuplicates) {
  write_csv(v1_users(5));
  server_.inject(HeshFault::k500AfterApplying);
  auto run = dirsync({"sync", "hr-to-hesh"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_TRUE(contains(run, "created    5")) << run.out;
  EXPECT_EQ(server_.request_count(), 2u);
  EXPECT_EQ(server_.users().size(), 5u);
}

TEST_F(HeshEndToEnd, LostAnswerIsRetriedWithoutDuplicates) {
  write_csv(v1_users(5));
  server_.inject(HeshFault::kCloseAfterApplying);
  auto run = dirsync({"sync", "hr-to-hesh"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(server_.users().size(), 5u);
  expect_server_has(v1_users(5));
}

TEST_F(HeshEndToEnd, InvalidRecordIsRejectedAndTheOthersLand) {
  auto users = v1_users(4);
  users[2].email = "not-an-email";
  write_csv(users);
  auto run = dirsync({"sync", "hr-to-hesh"});
  EXPECT_EQ(run.exit_code, 4) << run.out << run.err;
  EXPECT_TRUE(contains(run, "created    3")) << run.out;
  // Caught before sending (core::validate_payload); Hesh's own 422 is covered by the target tests.
  EXPECT_TRUE(contains(run, "key E3: validation invalid: field 'email': \"not-an-email\" is not a valid email")) << run.out;
  EXPECT_EQ(server_.users().size(), 3u);
}

TEST_F(HeshEndToEnd, PacesRequestsSoARateLimitedServerNeverAnswers429) {
  server_.set_rate_limits({{3, std::chrono::milliseconds(1000)}});
  write_config("ignore", "    rate_limits: [3/s, 300/min]\n", 2);
  write_csv(v1_users(10));
  auto run = dirsync({"sync", "hr-to-hesh"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(server_.request_count(), 5u);
  EXPECT_EQ(server_.throttled_count(), 0u) << "no 429 seen";
  EXPECT_EQ(server_.users().size(), 10u);
}

TEST_F(HeshEndToEnd, CheckConfigRefusesDetachOnACreateOnlyTarget) {
  write_config("detach");
  write_csv(v1_users(1));
  auto check = dirsync({"check-config"});
  EXPECT_NE(check.exit_code, 0);
  EXPECT_NE((check.out + check.err).find("cannot detach users"), std::string::npos) << check.out << check.err;
  EXPECT_EQ(server_.request_count(), 0u);
}

}  // namespace
}  // namespace dirsync::testing
