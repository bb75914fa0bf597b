// The real `dirsync` binary against the loopback PERSCOM test server: a CSV
// export synced, edited, re-synced, and synced again with nothing to do; plus
// the failures an operator meets (422s, a wrong token, a 500, a lost answer,
// a mass removal) and what dirsync does about them.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/e2e/process.h"
#include "tests/support/perscom_test_server.h"

namespace dirsync::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Distinctive, so that a leak anywhere is found by a plain substring search.
constexpr const char* kToken = "tok-e2e-7Qz93LwX-do-not-log";

struct User {
  std::string id, first, last, email, phone, rank;
};

std::vector<User> v1_users(int n) {
  std::vector<User> out;
  for (int i = 1; i <= n; ++i) {
    const std::string s = std::to_string(i);
    out.push_back({"E" + s, "First" + s, "Last" + s, "User" + s + "@Example.com", "+1 555 01" + s, std::to_string(i % 5)});
  }
  return out;
}

class PerscomEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.start();
    dir_ = fs::temp_directory_path() / ("dirsync-e2e-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_config();
  }
  void TearDown() override {
    server_.stop();
    fs::remove_all(dir_);
  }

  void write_config(const std::string& max_detach = "{count: 500, percent: 10, floor: 5}") {
    std::ofstream(dir_ / "dirsync.yaml") << "state_dir: state\n"
                                            "sources:\n"
                                            "  hr:\n"
                                            "    type: csv\n"
                                            "    path: users.csv\n"
                                            "    key: employee_id\n"
                                            "targets:\n"
                                            "  perscom:\n"
                                            "    type: perscom\n"
                                            "    base_url: "
                                         << server_.base_url()
                                         << "\n"
                                            "    api_version: v2\n"
                                            "    token: ${env:E2E_PERSCOM_TOKEN}\n"
                                            "    batch_size: 10\n"
                                            "    backoff_initial: 10ms\n"
                                            "    backoff_max: 50ms\n"
                                            "    retry_after_max: 50ms\n"
                                            "    max_attempts: 3\n"
                                            "jobs:\n"
                                            "  hr-to-perscom:\n"
                                            "    source: hr\n"
                                            "    target: perscom\n"
                                            "    mapping:\n"
                                            "      name: \"{first_name} {last_name}\"\n"
                                            "      email: \"{email | lower | trim}\"\n"
                                            "      phone_number: \"{phone}\"\n"
                                            "      rank_id: \"{rank}\"\n"
                                            "      approved: true\n"
                                            "    on_missing: detach\n"
                                            "    max_detach: "
                                         << max_detach << "\n";
  }

  void write_csv(const std::vector<User>& users) {
    std::ofstream out(dir_ / "users.csv");
    out << "employee_id,first_name,last_name,email,phone,rank\n";
    for (const auto& u : users) {
      out << u.id << ',' << u.first << ',' << u.last << ',' << u.email << ",\"" << u.phone << "\"," << u.rank << "\n";
    }
  }

  ProcessResult dirsync(std::vector<std::string> args, std::string token = kToken) {
    args.insert(args.begin(), {"--config", (dir_ / "dirsync.yaml").string()});
    auto r = run_dirsync(args, {"E2E_PERSCOM_TOKEN=" + token});
    // The token must never reach an operator's screen, whatever happened.
    EXPECT_EQ(r.out.find(token), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find(token), std::string::npos) << r.err;
    return r;
  }

  // The server's users as email → user.
  std::map<std::string, json> server_users() {
    std::map<std::string, json> out;
    for (const auto& u : server_.users()) out[u["email"].get<std::string>()] = u;
    return out;
  }

  void expect_server_matches(const std::vector<User>& users) {
    auto stored = server_users();
    ASSERT_EQ(stored.size(), users.size());
    for (const auto& u : users) {
      std::string email = u.email;
      for (auto& c : email) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto it = stored.find(email);
      ASSERT_NE(it, stored.end()) << email;
      EXPECT_EQ(it->second["name"], u.first + " " + u.last);
      EXPECT_EQ(it->second["phone_number"], u.phone);
      EXPECT_EQ(it->second["rank_id"], std::stoi(u.rank));
      EXPECT_EQ(it->second["approved"], true);
    }
  }

  std::size_t count_requests(const std::string& method) {
    std::size_t n = 0;
    for (const auto& r : server_.request_log()) n += r.method == method && r.path.find("/users/batch") != std::string::npos;
    return n;
  }

  PerscomTestServer server_{PerscomServerOptions{kToken, ErrorStyle::kPerscom, std::nullopt}};
  fs::path dir_;
};

TEST_F(PerscomEndToEnd, SyncsEditsRemovalsAndAdditionsThenSendsNothing) {
  auto users = v1_users(25);
  write_csv(users);
  auto first = dirsync({"sync", "hr-to-perscom"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_NE(first.out.find("created    25"), std::string::npos) << first.out;
  expect_server_matches(users);
  EXPECT_EQ(count_requests("POST"), 3u);  // batches of 10
  for (const auto& r : server_.request_log()) {
    bool has_auth = false;
    for (const auto& [name, value] : r.headers) has_auth |= name == "authorization" && value == std::string("Bearer ") + kToken;
    EXPECT_TRUE(has_auth);
  }

  // v2: three renames, one new email, two leave, three join.
  auto v2 = users;
  v2[0].first = "Renamed";
  v2[1].last = "Changed";
  v2[2].first = "Émile";
  v2[3].email = "moved4@example.com";
  v2.erase(v2.begin() + 10);  // E11
  v2.erase(v2.begin() + 10);  // E12
  for (int i = 26; i <= 28; ++i) v2.push_back(v1_users(i).back());
  write_csv(v2);
  server_.clear_log();
  auto second = dirsync({"sync", "hr-to-perscom"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_NE(second.out.find("created    3"), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("updated    4"), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("detached   2"), std::string::npos) << second.out;
  expect_server_matches(v2);
  // A PATCH carries only the changed fields: PERSCOM's unique email rule has
  // no exception for the user itself, so an unchanged email is never re-sent.
  for (const auto& r : server_.request_log()) {
    if (r.method != "PATCH") continue;
    const json body = json::parse(r.body);
    for (const auto& [id, fields] : body["resources"].items()) {
      if (fields.contains("email")) EXPECT_EQ(fields["email"], "moved4@example.com");
      else EXPECT_TRUE(fields.contains("name"));
    }
  }

  server_.clear_log();
  auto third = dirsync({"sync", "hr-to-perscom"});
  EXPECT_EQ(third.exit_code, 0) << third.out << third.err;
  EXPECT_NE(third.out.find("unchanged  26"), std::string::npos) << third.out;
  EXPECT_EQ(server_.request_count(), 0u);

  auto status = dirsync({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0);
  const json st = json::parse(status.out);
  EXPECT_EQ(st[0]["snapshot_size"], 26);
  EXPECT_EQ(st[0]["runs"].size(), 3u);
}

TEST_F(PerscomEndToEnd, PlanAndResyncDryRunSendNothing) {
  write_csv(v1_users(5));
  auto plan = dirsync({"plan", "hr-to-perscom", "--json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_EQ(json::parse(plan.out)["changes"].size(), 5u);
  ASSERT_EQ(dirsync({"sync", "hr-to-perscom"}).exit_code, 0);
  server_.clear_log();
  auto dry = dirsync({"resync", "hr-to-perscom", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("~ update E1"), std::string::npos) << dry.out;
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(PerscomEndToEnd, PlanSaysHowLongTheRateLimitsMakeALargePush) {
  std::string cfg;
  {
    std::ifstream in(dir_ / "dirsync.yaml");
    cfg.assign(std::istreambuf_iterator<char>(in), {});
  }
  cfg.replace(cfg.find("batch_size: 10"), 14, "batch_size: 1\n    rate_limits: [5/min]");
  std::ofstream(dir_ / "dirsync.yaml") << cfg;
  write_csv(v1_users(25));
  auto plan = dirsync({"plan", "hr-to-perscom"});
  ASSERT_EQ(plan.exit_code, 0) << plan.out << plan.err;
  // 25 requests at 5 per minute: four more minutes after the first burst.
  EXPECT_NE(plan.out.find("pace: ~4 min at 5/min (the target's rate limits)"), std::string::npos) << plan.out;
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(PerscomEndToEnd, ResyncRepairsDriftWithoutResendingTheUniqueEmail) {
  auto users = v1_users(5);
  write_csv(users);
  ASSERT_EQ(dirsync({"sync", "hr-to-perscom"}).exit_code, 0);
  // Someone edits a user inside PERSCOM; the snapshot does not know.
  const auto id = server_.find_user_by_email("user2@example.com")["id"].get<std::int64_t>();
  ServerRequest drift;
  drift.method = "PATCH";
  drift.target = "/v2/users/batch";
  drift.headers = {{"authorization", std::string("Bearer ") + kToken}, {"content-type", "application/json"}};
  drift.body = json{{"resources", {{std::to_string(id), {{"name", "Drifted"}, {"rank_id", 4}}}}}}.dump();
  ASSERT_EQ(server_.handle(drift).status, 200);
  ASSERT_EQ(dirsync({"sync", "hr-to-perscom"}).exit_code, 0);
  EXPECT_EQ(server_.find_user_by_email("user2@example.com")["name"], "Drifted");  // sync trusts the snapshot

  server_.clear_log();
  auto resync = dirsync({"resync", "hr-to-perscom"});
  ASSERT_EQ(resync.exit_code, 0) << resync.out << resync.err;
  expect_server_matches(users);
  ASSERT_GE(count_requests("PATCH"), 1u);
  for (const auto& r : server_.request_log()) {
    const json body = json::parse(r.body);
    for (const auto& [rid, fields] : body["resources"].items()) EXPECT_FALSE(fields.contains("email"));
  }
}

TEST_F(PerscomEndToEnd, InvalidRecordsAreRejectedAndEveryValidOneLands) {
  auto users = v1_users(12);
  users[3].email = users[7].email;  // a duplicate email within the batch
  users[9].email = "not-an-email";
  write_csv(users);
  auto run = dirsync({"sync", "hr-to-perscom"});
  EXPECT_EQ(run.exit_code, 4) << run.out << run.err;
  // PERSCOM names only the first bad record of a 422: E4 (a duplicate of E8's
  // email) is rejected, then E8 goes through alone. E10's invalid email never
  // leaves dirsync: it is reported with its CSV line.
  EXPECT_NE(run.out.find("created    10"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("rejected   1"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("invalid    1"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("key E4: create rejected: The resources.3.email field has a duplicate value."),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("users.csv:11 key E10: validation invalid: field 'email': \"not-an-email\" is not a valid "
                         "email address"),
            std::string::npos)
      << run.out;
  EXPECT_EQ(server_.users().size(), 10u);

  // Fixed at the source: the rejected users go out on the next run.
  users[3].email = "user4@example.com";
  users[9].email = "user10@example.com";
  write_csv(users);
  auto fixed = dirsync({"sync", "hr-to-perscom"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.out << fixed.err;
  expect_server_matches(users);
}

TEST_F(PerscomEndToEnd, WrongTokenStopsTheJobWithoutLeakingEitherToken) {
  write_csv(v1_users(5));
  auto run = dirsync({"sync", "hr-to-perscom"}, "wrong-token-Zx81");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.out.find("(HTTP 401)"), std::string::npos) << run.out;
  EXPECT_EQ(count_requests("POST"), 1u);  // stopped at the first batch
  EXPECT_TRUE(server_.users().empty());
  auto status = dirsync({"status", "--json"});
  EXPECT_EQ(json::parse(status.out)[0]["snapshot_size"], 0);
}

TEST_F(PerscomEndToEnd, ServerErrorOnCreateIsNeverBlindlyResent) {
  write_csv(v1_users(5));
  server_.inject(Fault::k500);
  auto run = dirsync({"sync", "hr-to-perscom"});
  EXPECT_EQ(run.exit_code, 4) << run.out << run.err;
  EXPECT_NE(run.out.find("unknown    5"), std::string::npos) << run.out;
  EXPECT_EQ(count_requests("POST"), 1u);
  // The 500 processed nothing; the next run creates them.
  auto again = dirsync({"sync", "hr-to-perscom"});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  expect_server_matches(v1_users(5));
}

TEST_F(PerscomEndToEnd, LostAnswerToACreateNeverDuplicatesUsers) {
  write_csv(v1_users(5));
  server_.inject(Fault::kCloseAfterApplying);  // created, but the answer never arrives
  auto run = dirsync({"sync", "hr-to-perscom"});
  EXPECT_EQ(run.exit_code, 4) << run.out << run.err;
  EXPECT_EQ(server_.users().size(), 5u);
  // The outbox kept the creates whose outcome is unknown: the next run looks
  // them up by email and records them instead of creating anyone twice.
  auto again = dirsync({"sync", "hr-to-perscom"});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("recorded, not created again"), std::string::npos) << again.out;
  EXPECT_EQ(server_.users().size(), 5u);
  EXPECT_EQ(count_requests("POST"), 1u) << "one create request in all: none was re-sent";
  auto third = dirsync({"sync", "hr-to-perscom"});
  EXPECT_EQ(third.exit_code, 0) << third.out << third.err;
  EXPECT_NE(third.out.find("unchanged  5"), std::string::npos) << third.out;
}

TEST_F(PerscomEndToEnd, MassRemovalIsBlockedByMaxDetach) {
  auto users = v1_users(30);
  write_csv(users);
  ASSERT_EQ(dirsync({"sync", "hr-to-perscom"}).exit_code, 0);
  users.resize(20);  // a third of the directory vanishes
  users[0].first = "StillUpdated";
  write_csv(users);
  server_.clear_log();
  auto run = dirsync({"sync", "hr-to-perscom"});
  EXPECT_EQ(run.exit_code, 4) << run.out << run.err;
  EXPECT_NE(run.out.find("BLOCKED: 10 detaches exceed the limit of 5 for 30 users"), std::string::npos) << run.out;
  EXPECT_EQ(count_requests("DELETE"), 0u);
  EXPECT_EQ(count_requests("PATCH"), 1u);  // the update still went out
  EXPECT_EQ(server_.users().size(), 30u);

  // The operator reviewed the plan and raises the limit for this job.
  write_config("{count: 500, percent: 50, floor: 5}");
  auto approved = dirsync({"sync", "hr-to-perscom"});
  EXPECT_EQ(approved.exit_code, 0) << approved.out << approved.err;
  expect_server_matches(users);
}

TEST_F(PerscomEndToEnd, EmptyExportDetachesNobody) {
  write_csv(v1_users(8));
  ASSERT_EQ(dirsync({"sync", "hr-to-perscom"}).exit_code, 0);
  write_csv({});
  server_.clear_log();
  auto run = dirsync({"sync", "hr-to-perscom"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(server_.request_count(), 0u);
  EXPECT_EQ(server_.users().size(), 8u);
}

TEST_F(PerscomEndToEnd, ABlockedRunIsApprovedThroughASavedPlanAndAppliesExactlyIt) {
  auto users = v1_users(30);
  write_csv(users);
  ASSERT_EQ(dirsync({"sync", "hr-to-perscom"}).exit_code, 0);
  users.resize(20);  // a third of the directory vanishes: max_detach blocks it
  write_csv(users);
  ASSERT_EQ(dirsync({"sync", "hr-to-perscom"}).exit_code, 4);
  ASSERT_EQ(server_.users().size(), 30u);

  const std::string plan_path = (dir_ / "plan.json").string();
  auto plan = dirsync({"plan", "hr-to-perscom", "--out", plan_path});
  ASSERT_EQ(plan.exit_code, 0) << plan.out << plan.err;
  EXPECT_NE(plan.out.find("saved 10 changes to " + plan_path), std::string::npos) << plan.out;
  EXPECT_EQ(fs::status(plan_path).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
  const auto saved = json::parse(std::ifstream(plan_path));
  ASSERT_EQ(saved["changes"].size(), 10u);
  EXPECT_EQ(saved["changes"][0]["op"], "detach");
  EXPECT_TRUE(saved.contains("blocked")) << "the plan says the run it shows was blocked";

  // Meanwhile E30 comes back edited, and a sync (still blocked for the other
  // detaches) updates it: its snapshot entry moved, so its approved detach is
  // refused as stale; the other nine are still valid.
  users.push_back(v1_users(30)[29]);
  users.back().first = "Changed";
  write_csv(users);
  ASSERT_EQ(dirsync({"sync", "hr-to-perscom"}).exit_code, 4);

  auto applied = dirsync({"apply", plan_path});
  EXPECT_EQ(applied.exit_code, 4) << applied.out << applied.err;
  EXPECT_NE(applied.out.find("detached   9"), std::string::npos) << applied.out;
  EXPECT_NE(applied.out.find("stale      1"), std::string::npos) << applied.out;
  EXPECT_NE(applied.out.find("key E30: detach stale"), std::string::npos) << applied.out;
  EXPECT_EQ(server_.users().size(), 21u);
  EXPECT_EQ(server_users().count("user30@example.com"), 1u);

  auto status = dirsync({"status", "hr-to-perscom"});
  EXPECT_NE(status.out.find("apply"), std::string::npos) << status.out;
}

TEST_F(PerscomEndToEnd, ApplyRefusesAPlanThatWasEdited) {
  write_csv(v1_users(3));
  const std::string plan_path = (dir_ / "plan.json").string();
  ASSERT_EQ(dirsync({"plan", "hr-to-perscom", "--out", plan_path}).exit_code, 0);
  auto saved = json::parse(std::ifstream(plan_path));
  saved["changes"][1]["payload"]["name"] = "Mallory";
  std::ofstream(plan_path) << saved.dump();
  auto applied = dirsync({"apply", plan_path});
  EXPECT_EQ(applied.exit_code, 2) << applied.out << applied.err;
  EXPECT_NE(applied.err.find("changes[1]: payload does not match its hash"), std::string::npos) << applied.err;
  EXPECT_TRUE(server_.users().empty());
}

TEST_F(PerscomEndToEnd, AdoptsUsersPerscomAlreadyHasAfterTheStateWasLost) {
  const auto users = v1_users(6);
  write_csv(users);
  ASSERT_EQ(dirsync({"sync", "hr-to-perscom"}).exit_code, 0);
  fs::remove_all(dir_ / "state");  // the state directory is lost
  server_.clear_log();

  auto look = dirsync({"adopt", "hr-to-perscom"});
  ASSERT_EQ(look.exit_code, 0) << look.out << look.err;
  EXPECT_NE(look.out.find("6 users the target already has, 0 it does not"), std::string::npos) << look.out;
  EXPECT_NE(look.out.find("nothing was recorded"), std::string::npos) << look.out;
  auto adopt = dirsync({"adopt", "hr-to-perscom", "--apply"});
  ASSERT_EQ(adopt.exit_code, 0) << adopt.out << adopt.err;
  EXPECT_NE(adopt.out.find("recorded 6 users"), std::string::npos) << adopt.out;

  auto sync = dirsync({"sync", "hr-to-perscom"});
  EXPECT_EQ(sync.exit_code, 0) << sync.out << sync.err;
  EXPECT_NE(sync.out.find("unchanged  6"), std::string::npos) << sync.out;
  EXPECT_EQ(count_requests("POST"), 0u) << "nobody was created again";
  EXPECT_EQ(server_.users().size(), 6u);
}

TEST_F(PerscomEndToEnd, AdoptsAutomaticallyWhenPerscomSaysTheEmailIsTaken) {
  const auto users = v1_users(4);
  write_csv(users);
  ASSERT_EQ(dirsync({"sync", "hr-to-perscom"}).exit_code, 0);
  fs::remove_all(dir_ / "state");
  auto sync = dirsync({"sync", "hr-to-perscom"});
  EXPECT_EQ(sync.exit_code, 0) << sync.out << sync.err;
  EXPECT_NE(sync.out.find("adopted    4"), std::string::npos) << sync.out;
  EXPECT_EQ(server_.users().size(), 4u);
  auto again = dirsync({"sync", "hr-to-perscom"});
  EXPECT_NE(again.out.find("unchanged  4"), std::string::npos) << again.out;
}

}  // namespace
}  // namespace dirsync::testing
