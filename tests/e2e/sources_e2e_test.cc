// Each network source end to end through the real binary: the YAML config, the
// registry, the source against its real (loopback) server, the engine and the
// file target. The connectors' own suites test every protocol detail; these
// tests prove the pieces are wired together the way an operator configures them.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/e2e/process.h"
#include "tests/support/http_json_test_server.h"
#include "tests/support/scim_test_server.h"
#include "tests/support/slapd_test_server.h"

namespace dirsync::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class SourcesE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dirsync-sources-e2e-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A config with `source` (the YAML of one source named "src") synced to a file.
  void write_config(const std::string& source, const std::string& mapping, const std::string& job_extra = "") {
    std::ofstream(dir_ / "dirsync.yaml") << "state_dir: state\nsources:\n  src:\n" << source
                                         << "targets:\n  out: {type: file, path: changes.jsonl}\n"
                                            "jobs:\n  j:\n    source: src\n    target: out\n    mapping:\n"
                                         << mapping << job_extra;
  }

  ProcessResult dirsync(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", (dir_ / "dirsync.yaml").string()});
    return run_dirsync(args, env_);
  }

  std::vector<json> changes() const {
    std::vector<json> out;
    std::ifstream in(dir_ / "changes.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
  }

  fs::path dir_;
  std::vector<std::string> env_;
};

TEST_F(SourcesE2E, LdapDirectoryIsSyncedWithAFilterAndExplained) {
  SlapdOptions options;
  options.ldif = users_ldif(30);
  options.size_limit = 10;  // below the entry count: paging must carry the pull
  SlapdServer slapd(options);
  slapd.start();
  env_ = {std::string("LDAP_PASSWORD=") + SlapdServer::kReaderPassword};
  write_config("    type: ldap\n    url: " + slapd.ldap_url() +
                   "\n    start_tls: false\n    bind_dn: " + SlapdServer::kReaderDn +
                   "\n    bind_password: ${env:LDAP_PASSWORD}\n    base_dn: ou=people,dc=example,dc=com\n"
                   "    filter: (objectClass=inetOrgPerson)\n    key: uid\n    page_size: 7\n",
               "      name: \"{cn}\"\n      email: \"{mail | first | lower}\"\n",
               "    filter:\n      exclude: {attribute: uid, equals: user00003}\n");
  ASSERT_EQ(dirsync({"check-config"}).exit_code, 0);

  auto run = dirsync({"sync", "j"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("created    29"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("filtered   1"), std::string::npos) << run.out;
  const auto written = changes();
  ASSERT_EQ(written.size(), 29u);
  const TestUser first = test_user(1);
  EXPECT_EQ(written[0]["key"], first.uid);
  EXPECT_EQ(written[0]["payload"]["name"], first.cn) << "UTF-8 names come through exactly";

  auto explain = dirsync({"plan", "j", "--explain", "user00003"});
  EXPECT_EQ(explain.exit_code, 0) << explain.err;
  EXPECT_NE(explain.out.find("dropped (excluded: uid equals 'user00003')"), std::string::npos) << explain.out;
  for (const auto* text : {&run.out, &run.err, &explain.out, &explain.err}) {
    EXPECT_EQ(text->find(SlapdServer::kReaderPassword), std::string::npos) << "the bind password leaked";
  }
}

TEST_F(SourcesE2E, ScimUsersAreSyncedAndALeaverIsDetached) {
  ScimTestServer scim;  // 50 users a page at most
  for (int i = 1; i <= 120; ++i) {
    scim.add_user({{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User"}},
                   {"id", "id-" + std::to_string(i)},
                   {"userName", "user" + std::to_string(i)},
                   {"emails", {{{"value", "home" + std::to_string(i) + "@example.org"}},
                               {{"value", "work" + std::to_string(i) + "@example.com"}, {"primary", true}}}}});
  }
  scim.start();
  env_ = {"SCIM_TOKEN=" + ScimServerOptions{}.token};
  write_config("    type: scim\n    base_url: " + scim.base_url() +
                   "\n    token: ${env:SCIM_TOKEN}\n    page_size: 100\n    attributes:\n"
                   "      email: ['emails[primary eq true].value', emails.value]\n",
               "      name: \"{userName}\"\n      email: \"{email | first}\"\n");
  auto first = dirsync({"sync", "j"});
  EXPECT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_NE(first.out.find("created    120"), std::string::npos) << first.out;
  EXPECT_EQ(changes()[0]["payload"]["email"], "work1@example.com") << "the primary email, not the first";

  ASSERT_TRUE(scim.remove_user("id-7"));
  auto second = dirsync({"sync", "j"});
  EXPECT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_NE(second.out.find("detached   1"), std::string::npos) << second.out;
  EXPECT_EQ(changes().back()["key"], "id-7");
  EXPECT_EQ(changes().back()["op"], "detach");
}

TEST_F(SourcesE2E, HttpJsonPageThatKeepsFailingDetachesNobody) {
  http_json::ServerOptions options;
  options.style = http_json::Style::kCursor;
  http_json::HttpJsonTestServer api(options);
  api.add_users(25);  // pages of 10
  api.start();
  write_config("    type: http_json\n    url: " + api.users_url() +
                   "\n    records: /data\n    key: /id\n    pagination: cursor\n    cursor_path: /meta/next_cursor\n"
                   "    max_attempts: 2\n    backoff_initial: 1ms\n    backoff_max: 2ms\n",
               "      name: \"{name.given} {name.family}\"\n      email: \"{email}\"\n");
  ASSERT_EQ(dirsync({"sync", "j"}).exit_code, 0);
  ASSERT_EQ(changes().size(), 25u);

  // User 25 leaves, a newcomer arrives on the first page, and page 2 fails on every attempt.
  auto users = api.users();
  users.pop_back();
  users.insert(users.begin(), json{{"id", "new"}, {"name", {{"given", "New"}, {"family", "Hire"}}},
                                  {"email", "new@example.com"}});
  api.set_users(users);
  api.inject(1, http_json::Fault::k500, 10);
  auto run = dirsync({"sync", "j"});
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_NE(run.out.find("failed mid-pull"), std::string::npos) << run.out;
  const auto written = changes();
  ASSERT_EQ(written.size(), 26u) << "the newcomer is created, and nothing is detached";
  EXPECT_EQ(written.back()["key"], "new");
  EXPECT_EQ(written.back()["op"], "create");

  api.clear_faults();
  auto healed = dirsync({"sync", "j"});
  EXPECT_EQ(healed.exit_code, 0) << healed.out << healed.err;
  EXPECT_EQ(changes().back()["key"], "u25");
  EXPECT_EQ(changes().back()["op"], "detach");
}

}  // namespace
}  // namespace dirsync::testing
