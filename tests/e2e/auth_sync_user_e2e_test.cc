// The real `dirsync` binary against the loopback auth_sync_user service: a CSV
// export synced (one request per user, several at once), edited (the same
// derived password resent), trimmed (no delete endpoint: on_missing: ignore),
// synced again with nothing to do, re-synced; the password secret rotated
// without rewriting anyone; and no secret or password ever on screen or in
// the state directory.
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "tests/e2e/process.h"
#include "tests/support/auth_sync_user_test_server.h"

namespace dirsync::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Distinctive, so that a leak anywhere is found by a plain substring search.
constexpr const char* kPasswordSecret = "pw-secret-e2e-Hn4vT9-do-not-log";
constexpr const char* kToken = "auth-token-e2e-Lm2xQ8-do-not-log";
constexpr const char* kApiKey = "auth-key-e2e-Zr5cW1-do-not-log";

// The README's formula, computed independently of the target's code:
// "Ds1-" + base64url(HMAC-SHA256(secret, "dirsync/auth_sync_user/v1\n" + key)), unpadded.
std::string expected_password(const std::string& secret, const std::string& key) {
  const std::string message = "dirsync/auth_sync_user/v1\n" + key;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  unsigned char b64[2 * EVP_MAX_MD_SIZE];
  const int n = EVP_EncodeBlock(b64, digest, static_cast<int>(length));
  std::string out(reinterpret_cast<const char*>(b64), static_cast<std::size_t>(n));
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!out.empty() && out.back() == '=') out.pop_back();
  return "Ds1-" + out;
}

struct User {
  std::string id, first, last, email, phone, device;
};

std::vector<User> v1_users(int n) {
  std::vector<User> out;
  for (int i = 1; i <= n; ++i) {
    const std::string s = std::to_string(i);
    out.push_back({"E" + s, "First" + s, "Last" + s, "User" + s + "@Example.com", "55501" + s,
                   i % 2 ? "device-" + s : ""});
  }
  return out;
}

class AuthSyncUserEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.require_bearer(std::string(kToken));
    server_.require_header("X-API-Key", std::string(kApiKey));
    server_.start();
    dir_ = fs::temp_directory_path() / ("dirsync-e2e-auth-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_config();
  }
  void TearDown() override {
    server_.stop();
    fs::remove_all(dir_);
  }

  void write_config(const std::string& on_missing = "ignore") {
    std::ofstream(dir_ / "dirsync.yaml") << "state_dir: state\n"
                                            "sources:\n"
                                            "  hr:\n"
                                            "    type: csv\n"
                                            "    path: users.csv\n"
                                            "    key: employee_id\n"
                                            "targets:\n"
                                            "  auth:\n"
                                            "    type: auth_sync_user\n"
                                            "    base_url: "
                                         << server_.base_url()
                                         << "\n"
                                            "    password_secret: ${env:E2E_AUTH_PASSWORD_SECRET}\n"
                                            "    token: ${env:E2E_AUTH_TOKEN}\n"
                                            "    api_key: ${env:E2E_AUTH_KEY}\n"
                                            "    max_in_flight: 4\n"
                                            "    backoff_initial: 10ms\n"
                                            "    backoff_max: 50ms\n"
                                            "    retry_after_max: 50ms\n"
                                            "    max_attempts: 3\n"
                                            "jobs:\n"
                                            "  hr-to-auth:\n"
                                            "    source: hr\n"
                                            "    target: auth\n"
                                            "    mapping:\n"
                                            "      id: \"{employee_id}\"\n"
                                            "      email: \"{email | lower | trim}\"\n"
                                            "      organization_id: org-1\n"
                                            "      role_id: member\n"
                                            "      first_name: \"{first_name}\"\n"
                                            "      last_name: \"{last_name}\"\n"
                                            "      phone_number: \"{phone}\"\n"
                                            "      phone_country_code: \"+1\"\n"
                                            "      device_id: \"{device}\"\n"
                                            "    on_missing: "
                                         << on_missing << "\n";
  }

  void write_csv(const std::vector<User>& users) {
    std::ofstream out(dir_ / "users.csv");
    out << "employee_id,first_name,last_name,email,phone,device\n";
    for (const auto& u : users) {
      out << u.id << ',' << u.first << ',' << u.last << ',' << u.email << ',' << u.phone << ',' << u.device << '\n';
    }
  }

  ProcessResult dirsync(std::vector<std::string> args, const std::string& secret = kPasswordSecret,
                        const std::string& token = kToken) {
    args.insert(args.begin(), {"--config", (dir_ / "dirsync.yaml").string()});
    auto r = run_dirsync(args, {"E2E_AUTH_PASSWORD_SECRET=" + secret, "E2E_AUTH_TOKEN=" + token,
                                std::string("E2E_AUTH_KEY=") + kApiKey});
    for (const std::string& s : leak_candidates(secret, token)) {
      EXPECT_EQ(r.out.find(s), std::string::npos) << "leaked " << s << " in: " << r.out;
      EXPECT_EQ(r.err.find(s), std::string::npos) << "leaked " << s << " in: " << r.err;
    }
    return r;
  }

  // Every secret value, and every password the job derives (for E1..E40).
  static std::vector<std::string> leak_candidates(const std::string& secret, const std::string& token) {
    std::vector<std::string> out = {secret, token, kPasswordSecret, kToken, kApiKey};
    for (int i = 1; i <= 40; ++i) out.push_back(expected_password(secret, "E" + std::to_string(i)));
    return out;
  }

  // Every byte under the state directory (LMDB files, run history, outbox).
  std::string state_bytes() const {
    std::string all;
    for (const auto& entry : fs::recursive_directory_iterator(dir_ / "state")) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return all;
  }

  void expect_server_has(const std::vector<User>& users, const std::string& secret = kPasswordSecret) {
    for (const auto& u : users) {
      const json stored = server_.user(u.id);
      ASSERT_FALSE(stored.is_null()) << u.id;
      EXPECT_EQ(stored["email"], lower(u.email));
      EXPECT_EQ(stored["first_name"], u.first);
      EXPECT_EQ(stored["last_name"], u.last);
      EXPECT_EQ(stored["phone_number"], u.phone);
      EXPECT_EQ(stored["phone_country_code"], "+1");
      EXPECT_EQ(stored["organization_id"], "org-1");
      EXPECT_EQ(stored["role_id"], "member");
      if (u.device.empty()) {
        EXPECT_TRUE(stored["device_id"].is_null()) << u.id << ": an empty optional field is left out";
      } else {
        EXPECT_EQ(stored["device_id"], u.device);
      }
      EXPECT_EQ(stored["password"], expected_password(secret, u.id)) << u.id;
    }
  }

  static std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  static bool contains(const ProcessResult& r, const std::string& text) {
    return r.out.find(text) != std::string::npos;
  }
  std::set<std::string> ids_sent() const {
    std::set<std::string> ids;
    for (const auto& r : server_.request_log()) ids.insert(json::parse(r.body)["id"].get<std::string>());
    return ids;
  }

  AuthSyncUserTestServer server_;
  fs::path dir_;
};

TEST_F(AuthSyncUserEndToEnd, SyncsEditsAndAdditionsIgnoresRemovalsThenSendsNothing) {
  auto users = v1_users(25);
  write_csv(users);
  auto first = dirsync({"sync", "hr-to-auth"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_TRUE(contains(first, "created    25")) << first.out;
  EXPECT_EQ(server_.users().size(), 25u);
  expect_server_has(users);
  const auto log = server_.request_log();
  EXPECT_EQ(log.size(), 25u) << "one user per request";
  for (const auto& r : log) {
    EXPECT_EQ(r.status, 201);
    bool bearer = false, key = false;
    for (const auto& [name, value] : r.headers) {
      bearer |= name == "authorization" && value == std::string("Bearer ") + kToken;
      key |= name == "x-api-key" && value == kApiKey;
    }
    EXPECT_TRUE(bearer);
    EXPECT_TRUE(key);
  }
  EXPECT_LE(server_.max_concurrent(), 4u) << "max_in_flight: 4";
  EXPECT_LE(server_.connections_accepted(), 4u) << "connections are reused";

  // v2: two edits, two leave (no delete endpoint: on_missing is ignore), three join.
  auto v2 = users;
  v2[0].last = "Renamed";
  v2[1].email = "moved2@example.com";
  v2.erase(v2.begin() + 10);  // E11
  v2.erase(v2.begin() + 10);  // E12
  for (int i = 26; i <= 28; ++i) v2.push_back(v1_users(i).back());
  write_csv(v2);
  server_.clear_log();
  auto second = dirsync({"sync", "hr-to-auth"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_TRUE(contains(second, "created    3")) << second.out;
  EXPECT_TRUE(contains(second, "updated    2")) << second.out;
  EXPECT_EQ(ids_sent(), (std::set<std::string>{"E1", "E2", "E26", "E27", "E28"}));
  EXPECT_EQ(server_.request_count(), 5u);
  EXPECT_EQ(server_.users().size(), 28u) << "nobody was deleted";
  expect_server_has(v2);  // the edited users keep the password they were created with

  server_.clear_log();
  auto third = dirsync({"sync", "hr-to-auth"});
  EXPECT_EQ(third.exit_code, 0) << third.out << third.err;
  EXPECT_TRUE(contains(third, "created    0")) << third.out;
  EXPECT_EQ(server_.request_count(), 0u);

  auto status = dirsync({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const json st = json::parse(status.out);
  EXPECT_EQ(st[0]["snapshot_size"], 28) << "on_missing: ignore keeps the users who left";
  EXPECT_EQ(st[0]["runs"].size(), 3u);

  const std::string state = state_bytes();
  ASSERT_FALSE(state.empty());
  EXPECT_NE(state.find("moved2@example.com"), std::string::npos) << "the check can see the snapshot";
  for (const std::string& s : leak_candidates(kPasswordSecret, kToken)) {
    EXPECT_EQ(state.find(s), std::string::npos) << "the state holds " << s;
  }
  EXPECT_EQ(state.find("\"password\""), std::string::npos);
}

TEST_F(AuthSyncUserEndToEnd, RotatingThePasswordSecretRewritesNobodyUntilTheirNextUpdate) {
  auto users = v1_users(5);
  write_csv(users);
  ASSERT_EQ(dirsync({"sync", "hr-to-auth"}).exit_code, 0);
  server_.clear_log();

  const std::string rotated = "pw-secret-e2e-rotated-Yb3-do-not-log";
  auto rerun = dirsync({"sync", "hr-to-auth"}, rotated);
  ASSERT_EQ(rerun.exit_code, 0) << rerun.out << rerun.err;
  EXPECT_EQ(server_.request_count(), 0u) << "the secret is not part of the payload hash";

  users[2].first = "Edited";
  write_csv(users);
  auto edit = dirsync({"sync", "hr-to-auth"}, rotated);
  ASSERT_EQ(edit.exit_code, 0) << edit.out << edit.err;
  EXPECT_EQ(server_.request_count(), 1u);
  expect_server_has({users[2]}, rotated);
  expect_server_has({users[0], users[1], users[3], users[4]});
}

TEST_F(AuthSyncUserEndToEnd, ResyncSendsEveryUserAndRestoresOneDeletedInTheService) {
  auto users = v1_users(6);
  write_csv(users);
  ASSERT_EQ(dirsync({"sync", "hr-to-auth"}).exit_code, 0);
  ASSERT_TRUE(server_.remove_user("E4"));  // deleted by an admin of the service
  server_.clear_log();
  auto sync = dirsync({"sync", "hr-to-auth"});
  EXPECT_EQ(sync.exit_code, 0);
  EXPECT_EQ(server_.request_count(), 0u) << "a sync trusts the snapshot";

  auto dry = dirsync({"resync", "hr-to-auth", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.out << dry.err;
  EXPECT_EQ(server_.request_count(), 0u);

  auto resync = dirsync({"resync", "hr-to-auth"});
  ASSERT_EQ(resync.exit_code, 0) << resync.out << resync.err;
  EXPECT_EQ(server_.request_count(), 6u);
  EXPECT_EQ(ids_sent(), (std::set<std::string>{"E1", "E2", "E3", "E4", "E5", "E6"}));
  EXPECT_EQ(server_.users().size(), 6u);
  expect_server_has(users);
}

TEST_F(AuthSyncUserEndToEnd, InvalidRecordIsRejectedWithTheServicesFieldMessageAndTheOthersLand) {
  auto users = v1_users(4);
  users[2].email = "not-an-email";
  write_csv(users);
  auto run = dirsync({"sync", "hr-to-auth"});
  EXPECT_EQ(run.exit_code, 4) << run.out << run.err;
  EXPECT_TRUE(contains(run, "created    3")) << run.out;
  // Caught before sending (core::validate_payload); the service's own 422 is covered by the target tests.
  EXPECT_TRUE(contains(run, "key E3: validation invalid: field 'email': \"not-an-email\" is not a valid email"))
      << run.out;
  EXPECT_EQ(server_.users().size(), 3u);

  users[2].email = "user3@example.com";
  write_csv(users);
  server_.clear_log();
  auto fixed = dirsync({"sync", "hr-to-auth"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.out << fixed.err;
  EXPECT_EQ(ids_sent(), std::set<std::string>{"E3"});
  expect_server_has(users);
}

TEST_F(AuthSyncUserEndToEnd, RefusedTokenStopsTheJobWithoutShowingIt) {
  write_csv(v1_users(3));
  const std::string wrong = "wrong-token-e2e-Pp0-do-not-log";
  auto run = dirsync({"sync", "hr-to-auth"}, kPasswordSecret, wrong);
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_NE((run.out + run.err).find("refused the credentials (HTTP 401)"), std::string::npos)
      << run.out << run.err;
  EXPECT_TRUE(server_.users().empty());
  auto status = dirsync({"status", "--json"});
  EXPECT_EQ(json::parse(status.out)[0]["snapshot_size"], 0);
}

TEST_F(AuthSyncUserEndToEnd, ServerErrorsAndLostAnswersAreRetriedWithoutDuplicates) {
  write_csv(v1_users(5));
  server_.inject(AuthSyncFault::k500AfterProcessing);
  server_.inject(AuthSyncFault::kCloseAfterProcessing);
  server_.inject(AuthSyncFault::k429);
  auto run = dirsync({"sync", "hr-to-auth"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_TRUE(contains(run, "created    5")) << run.out;
  EXPECT_EQ(server_.request_count(), 8u) << "5 users, 3 of them sent twice";
  EXPECT_EQ(server_.users().size(), 5u);
  expect_server_has(v1_users(5));
}

TEST_F(AuthSyncUserEndToEnd, CheckConfigRefusesDetachOnATargetWithoutADeleteEndpoint) {
  write_config("detach");
  write_csv(v1_users(1));
  auto check = dirsync({"check-config"});
  EXPECT_NE(check.exit_code, 0);
  EXPECT_NE((check.out + check.err).find("cannot detach users"), std::string::npos) << check.out << check.err;
  EXPECT_EQ(server_.request_count(), 0u);
}

}  // namespace
}  // namespace dirsync::testing
