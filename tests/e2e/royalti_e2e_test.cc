// The real `dirsync` binary against the loopback Royalti test server: a CSV
// export synced (two people share a display name), edited (Royalti cannot
// update: skipped), trimmed (nor remove: on_missing: ignore), re-synced, and
// synced again with nothing to do; plus invitations, rejected emails, a wrong
// token and lost answers — and the token never shown.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "tests/e2e/process.h"
#include "tests/support/royalti_test_server.h"

namespace dirsync::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Distinctive, so that a leak anywhere is found by a plain substring search.
constexpr const char* kToken = "eyJroyalti-e2e-Jw7Tq2-do-not-log";

struct User {
  std::string id, first, last, email, phone, country;
};

std::vector<User> v1_users(int n) {
  std::vector<User> out;
  for (int i = 1; i <= n; ++i) {
    const std::string s = std::to_string(i);
    out.push_back({"E" + s, "First" + s, "Last" + s, "User" + s + "@Example.com", "+234 80 01" + s, "NG"});
  }
  return out;
}

class RoyaltiEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.start();
    dir_ = fs::temp_directory_path() / ("dirsync-e2e-royalti-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_config();
  }
  void TearDown() override {
    server_.stop();
    fs::remove_all(dir_);
  }

  void write_config(const std::string& extra = "", const std::string& on_missing = "ignore") {
    std::ofstream(dir_ / "dirsync.yaml") << "state_dir: state\n"
                                            "sources:\n"
                                            "  hr:\n"
                                            "    type: csv\n"
                                            "    path: users.csv\n"
                                            "    key: employee_id\n"
                                            "targets:\n"
                                            "  royalti:\n"
                                            "    type: royalti\n"
                                            "    base_url: "
                                         << server_.base_url()
                                         << "\n"
                                            "    token: ${env:E2E_ROYALTI_TOKEN}\n"
                                            "    batch_size: 10\n"
                                            "    backoff_initial: 10ms\n"
                                            "    backoff_max: 50ms\n"
                                            "    retry_after_max: 50ms\n"
                                            "    max_attempts: 3\n"
                                         << extra
                                         << "jobs:\n"
                                            "  hr-to-royalti:\n"
                                            "    source: hr\n"
                                            "    target: royalti\n"
                                            "    mapping:\n"
                                            "      firstName: \"{first_name}\"\n"
                                            "      lastName: \"{last_name}\"\n"
                                            "      email: \"{email | lower | trim}\"\n"
                                            "      phone: \"{phone}\"\n"
                                            "      country: \"{country}\"\n"
                                            "    on_missing: "
                                         << on_missing << "\n";
  }

  void write_csv(const std::vector<User>& users) {
    std::ofstream out(dir_ / "users.csv");
    out << "employee_id,first_name,last_name,email,phone,country\n";
    for (const auto& u : users) {
      out << u.id << ',' << u.first << ',' << u.last << ',' << u.email << ",\"" << u.phone << "\"," << u.country
          << "\n";
    }
  }

  ProcessResult dirsync(std::vector<std::string> args, std::string token = kToken) {
    args.insert(args.begin(), {"--config", (dir_ / "dirsync.yaml").string()});
    auto r = run_dirsync(args, {"E2E_ROYALTI_TOKEN=" + token});
    // The token must never reach an operator's screen, whatever happened.
    for (const std::string& secret : {token, std::string(kToken)}) {
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
      EXPECT_EQ(stored, json({{"firstName", u.first},
                              {"lastName", u.last},
                              {"email", lower(u.email)},
                              {"phone", u.phone},
                              {"country", u.country}}));
    }
  }

  bool contains(const ProcessResult& r, const std::string& text) { return r.out.find(text) != std::string::npos; }

  RoyaltiTestServer server_{RoyaltiServerOptions{kToken, ProcessedCount::kSeed, false, true}};
  fs::path dir_;
};

TEST_F(RoyaltiEndToEnd, SyncsNewUsersSkipsEditsAndRemovalsThenSendsNothing) {
  auto users = v1_users(25);
  users[5].first = users[4].first = "Sam";  // E5 and E6: one display name, two people
  users[5].last = users[4].last = "Park";
  write_csv(users);
  // Debug logging shows every request: still never the token (dirsync() checks).
  auto first = dirsync({"--log-level", "debug", "sync", "hr-to-royalti"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_TRUE(contains(first, "created    25")) << first.out;
  EXPECT_FALSE(first.err.empty()) << "debug logging is on";
  EXPECT_EQ(server_.users().size(), 25u);
  expect_server_has(users);
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 4u) << "batches of 10, the first split in two for its two Sam Parks";
  for (const auto& r : log) {
    EXPECT_EQ(r.status, 201);
    bool auth = false;
    for (const auto& [name, value] : r.headers) auth |= name == "authorization" && value == std::string("Bearer ") + kToken;
    EXPECT_TRUE(auth);
    const json body = json::parse(r.body);
    EXPECT_EQ(body["sendEmail"], false) << "Royalti invites by default: dirsync must say no";
    std::set<std::string> names;
    for (const auto& u : body["users"]) {
      EXPECT_TRUE(names.insert(u["firstName"].get<std::string>() + " " + u["lastName"].get<std::string>()).second)
          << "a display name twice in one request: " << r.body;
    }
  }
  EXPECT_TRUE(server_.invitations().empty());

  // v2: one rename (Royalti has no update endpoint), two leave (nor a remove
  // one: on_missing is ignore), three join.
  auto v2 = users;
  v2[0].first = "Renamed";
  v2.erase(v2.begin() + 10);  // E11
  v2.erase(v2.begin() + 10);  // E12
  for (int i = 26; i <= 28; ++i) v2.push_back(v1_users(i).back());
  write_csv(v2);
  server_.clear_log();
  auto second = dirsync({"sync", "hr-to-royalti"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_TRUE(contains(second, "created    3")) << second.out;
  EXPECT_TRUE(contains(second, "skipped    1")) << second.out;
  EXPECT_TRUE(contains(second, "cannot update users")) << second.out;
  EXPECT_EQ(server_.request_count(), 1u);
  EXPECT_EQ(server_.users().size(), 28u) << "nobody was removed";
  EXPECT_EQ(server_.find_user_by_email("user1@example.com")["firstName"], "First1");
  expect_server_has(std::vector<User>(v2.end() - 3, v2.end()));

  server_.clear_log();
  auto third = dirsync({"sync", "hr-to-royalti"});
  EXPECT_EQ(third.exit_code, 0) << third.out << third.err;
  EXPECT_TRUE(contains(third, "created    0")) << third.out;
  EXPECT_EQ(server_.request_count(), 0u);

  auto status = dirsync({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const json st = json::parse(status.out);
  EXPECT_EQ(st[0]["snapshot_size"], 28);
  EXPECT_EQ(st[0]["runs"].size(), 3u);
}

TEST_F(RoyaltiEndToEnd, ReportsUsersAlreadyAssociatedWithTheWorkspace) {
  server_.add_user({{"firstName", "Someone"}, {"lastName", "Else"}, {"email", "user2@example.com"}});
  write_csv(v1_users(5));
  auto run = dirsync({"sync", "hr-to-royalti"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_TRUE(contains(run, "created    5")) << run.out;
  EXPECT_TRUE(contains(run, "key E2: create applied: already associated with the workspace")) << run.out;
  EXPECT_FALSE(contains(run, "key E1: create applied")) << run.out;
  EXPECT_EQ(server_.users().size(), 5u);
  server_.clear_log();
  auto again = dirsync({"sync", "hr-to-royalti"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_EQ(server_.request_count(), 0u) << "associated users are in the snapshot: not sent again";
}

TEST_F(RoyaltiEndToEnd, ResyncResendsEveryUserAndCreatesAgainOnesRemovedInRoyalti) {
  auto users = v1_users(12);
  write_csv(users);
  ASSERT_EQ(dirsync({"sync", "hr-to-royalti"}).exit_code, 0);
  ASSERT_TRUE(server_.remove_user("user7@example.com"));  // an administrator removed E7 in Royalti

  server_.clear_log();
  auto dry = dirsync({"resync", "hr-to-royalti", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.out << dry.err;
  EXPECT_EQ(server_.request_count(), 0u);

  auto resync = dirsync({"resync", "hr-to-royalti"});
  ASSERT_EQ(resync.exit_code, 0) << resync.out << resync.err;
  EXPECT_EQ(server_.request_count(), 2u) << "every user again, in batches of 10";
  EXPECT_TRUE(contains(resync, "key E1: create applied: already associated with the workspace")) << resync.out;
  EXPECT_FALSE(contains(resync, "key E7: create applied")) << "E7 was created again, not associated: " << resync.out;
  EXPECT_EQ(server_.users().size(), 12u);
  expect_server_has(users);
  EXPECT_TRUE(server_.invitations().empty());

  server_.clear_log();
  EXPECT_EQ(dirsync({"sync", "hr-to-royalti"}).exit_code, 0);
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(RoyaltiEndToEnd, InvitesOnlyWhenTheJobTurnsInvitationsOn) {
  write_config(
      "    send_email: true\n"
      "    redirect_url: https://app.example/welcome\n"
      "    message: \"Welcome to the label\"\n");
  server_.add_user({{"firstName", "Old"}, {"lastName", "Timer"}, {"email", "user1@example.com"}});
  write_csv(v1_users(4));
  auto run = dirsync({"sync", "hr-to-royalti"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const auto invited = server_.invitations();
  ASSERT_EQ(invited.size(), 3u) << "the user already in the workspace is not invited";
  for (const auto& i : invited) {
    EXPECT_NE(i.email, "user1@example.com");
    EXPECT_EQ(i.redirect_url, "https://app.example/welcome");
    EXPECT_EQ(i.message, "Welcome to the label");
  }
}

TEST_F(RoyaltiEndToEnd, InvalidEmailsAreRejectedAndGoOutOnceFixed) {
  auto users = v1_users(6);
  users[2].email = "user3-at-example.com";
  write_csv(users);
  auto run = dirsync({"sync", "hr-to-royalti"});
  EXPECT_EQ(run.exit_code, 4) << run.out << run.err;
  EXPECT_TRUE(contains(run, "created    5")) << run.out;
  // Caught before sending (core::validate_payload); Royalti's own answer is covered by the target tests.
  EXPECT_TRUE(contains(run, "invalid    1")) << run.out;
  EXPECT_TRUE(contains(run, "key E3: validation invalid: field 'email': \"user3-at-example.com\" is not a valid email"))
      << run.out;
  EXPECT_EQ(server_.users().size(), 5u);

  users[2].email = "user3@example.com";
  write_csv(users);
  server_.clear_log();
  auto fixed = dirsync({"sync", "hr-to-royalti"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.out << fixed.err;
  EXPECT_EQ(server_.request_count(), 1u);
  expect_server_has(users);
}

TEST_F(RoyaltiEndToEnd, WrongTokenStopsTheJobWithoutLeakingEitherToken) {
  write_csv(v1_users(5));
  auto run = dirsync({"sync", "hr-to-royalti"}, "wrong-token-Zx81");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(contains(run, "Royalti refused the token (HTTP 401): Unauthorized")) << run.out;
  EXPECT_EQ(server_.request_count(), 1u) << "stopped at the first request";
  EXPECT_TRUE(server_.users().empty());
  auto status = dirsync({"status", "--json"});
  EXPECT_EQ(json::parse(status.out)[0]["snapshot_size"], 0);
}

TEST_F(RoyaltiEndToEnd, LostAnswerIsRetriedWithoutDuplicatingOrReinvitingAnyone) {
  write_config("    send_email: true\n");
  write_csv(v1_users(5));
  server_.inject(RoyaltiFault::kCloseAfterApplying);  // created and invited, but the answer never arrives
  auto run = dirsync({"sync", "hr-to-royalti"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_TRUE(contains(run, "created    5")) << run.out;
  EXPECT_TRUE(contains(run, "already associated with the workspace (the request was sent 2 times")) << run.out;
  EXPECT_EQ(server_.request_count(), 2u);
  EXPECT_EQ(server_.users().size(), 5u);
  EXPECT_EQ(server_.invitations().size(), 5u);
}

TEST_F(RoyaltiEndToEnd, ServerErrorsOnEveryAttemptLeaveUsersUnknownUntilTheNextRun) {
  write_csv(v1_users(5));
  server_.inject(RoyaltiFault::k500AfterApplying, 3);  // max_attempts: 3
  auto run = dirsync({"sync", "hr-to-royalti"});
  EXPECT_EQ(run.exit_code, 4) << run.out << run.err;
  EXPECT_TRUE(contains(run, "unknown    5")) << run.out;
  EXPECT_EQ(server_.request_count(), 3u);
  EXPECT_EQ(server_.users().size(), 5u) << "the first attempt created them; the re-sends duplicated nobody";
  auto status = dirsync({"status", "--json"});
  EXPECT_EQ(json::parse(status.out)[0]["snapshot_size"], 0) << "nothing acknowledged, nothing recorded";

  auto again = dirsync({"sync", "hr-to-royalti"});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_TRUE(contains(again, "key E1: create applied: already associated with the workspace")) << again.out;
  EXPECT_EQ(server_.users().size(), 5u);
}

TEST_F(RoyaltiEndToEnd, CheckConfigRefusesToDetachUsersRoyaltiCannotRemove) {
  write_config("", "detach");
  write_csv(v1_users(2));
  auto check = dirsync({"check-config"});
  EXPECT_EQ(check.exit_code, 2) << check.out << check.err;
  EXPECT_NE((check.out + check.err).find("target 'royalti' cannot detach users; expected on_missing: ignore"),
            std::string::npos)
      << check.out << check.err;
  EXPECT_EQ(server_.request_count(), 0u);
}

}  // namespace
}  // namespace dirsync::testing
