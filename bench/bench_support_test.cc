// What the benchmarks stand on: the seeded directory generator, and the
// loopback PERSCOM's email index and counters (its lean store must answer
// exactly as the scanning one did).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bench/gen_users.h"
#include "tests/support/perscom_test_server.h"

namespace dirsync::bench {
namespace {

using nlohmann::json;
using testing::PerscomTestServer;
using testing::ServerRequest;
using testing::ServerResponse;

std::string csv(const DirectorySpec& spec) {
  std::ostringstream out;
  write_csv(spec, out);
  return out.str();
}

std::map<std::string, UserRow> by_key(const DirectorySpec& spec) {
  std::map<std::string, UserRow> rows;
  for_each_user(spec, [&](const UserRow& r) { rows.emplace(r.employee_id, r); });
  return rows;
}

TEST(GenUsers, WritesTheSameBytesForTheSameSeedAndOtherBytesForAnother) {
  EXPECT_EQ(csv({7, 500, false}), csv({7, 500, false}));
  EXPECT_EQ(csv({7, 500, true}), csv({7, 500, true}));
  EXPECT_NE(csv({7, 500, false}), csv({8, 500, false}));
}

TEST(GenUsers, WritesAHeaderAndOneQuotedLocationPerRow) {
  const std::string text = csv({7, 3, false});
  EXPECT_EQ(text.substr(0, text.find('\n')), csv_header());
  std::size_t lines = 0;
  for (const char c : text) lines += c == '\n';
  EXPECT_EQ(lines, 4u);
  EXPECT_NE(text.find(", "), std::string::npos);
  EXPECT_NE(text.find('"'), std::string::npos) << "the location holds a comma, so it is quoted";
}

TEST(GenUsers, GivesEveryUserAUniqueKeyAndEmail) {
  std::set<std::string> keys, emails;
  std::size_t rows = 0;
  for_each_user({7, 20'000, true}, [&](const UserRow& r) {
    ++rows;
    keys.insert(r.employee_id);
    emails.insert(r.email);
  });
  EXPECT_EQ(keys.size(), rows);
  EXPECT_EQ(emails.size(), rows);
}

TEST(GenUsers, ChurnsOnePercentAndAddsAndRemovesAQuarterPercent) {
  const auto base = by_key({7, 40'000, false});
  const auto churned = by_key({7, 40'000, true});
  std::size_t updated = 0, removed = 0, added = 0;
  for (const auto& [key, row] : base) {
    const auto it = churned.find(key);
    if (it == churned.end()) {
      ++removed;
    } else if (expected_perscom_fields(it->second) != expected_perscom_fields(row)) {
      ++updated;
      EXPECT_EQ(it->second.email, row.email) << "an update never touches the unique email";
    }
  }
  for (const auto& [key, row] : churned) added += base.count(key) == 0;
  EXPECT_EQ(updated, 400u);
  EXPECT_EQ(removed, 100u);
  EXPECT_EQ(added, 100u);
  const ChurnCounts at_million = churn_counts(1'000'000);
  EXPECT_EQ(at_million.updated, 10'000u);
  EXPECT_EQ(at_million.removed, 2'500u);
  EXPECT_EQ(at_million.added, 2'500u);
}

class LeanPerscomServer : public ::testing::Test {
 protected:
  ServerResponse send(const std::string& method, const std::string& path, const json& body) {
    return server_.handle(ServerRequest{method, path,
                                        {{"authorization", "Bearer test-token"}, {"content-type", "application/json"}},
                                        body.dump()});
  }
  static json user(const std::string& name, const std::string& email) { return {{"name", name}, {"email", email}}; }

  PerscomTestServer server_;
};

TEST_F(LeanPerscomServer, FreesAnEmailWhenItsUserIsDeletedOrPatchedAway) {
  send("POST", "/v2/users/batch", {{"resources", json::array({user("A", "a@x.org"), user("B", "b@x.org")})}});
  EXPECT_EQ(send("POST", "/v2/users/batch", {{"resources", json::array({user("A2", "A@x.org")})}}).status, 422);
  EXPECT_EQ(send("DELETE", "/v2/users/batch", {{"resources", json::array({1})}}).status, 200);
  EXPECT_EQ(send("POST", "/v2/users/batch", {{"resources", json::array({user("A2", "a@x.org")})}}).status, 200);

  EXPECT_EQ(send("PATCH", "/v2/users/batch", {{"resources", {{"2", {{"email", "c@x.org"}}}}}}).status, 200);
  EXPECT_EQ(server_.find_user_by_email("b@x.org"), nullptr);
  EXPECT_EQ(server_.find_user_by_email("C@X.org")["id"], 2);
  EXPECT_EQ(send("POST", "/v2/users/batch", {{"resources", json::array({user("D", "c@x.org")})}}).status, 422);
  EXPECT_EQ(send("POST", "/v2/users/batch", {{"resources", json::array({user("B2", "b@x.org")})}}).status, 200);
  EXPECT_EQ(server_.user_count(), 3u);
}

TEST_F(LeanPerscomServer, SearchesByEmailInIdOrderWithSeededDuplicates) {
  server_.add_user(user("First", "dup@x.org"));
  server_.add_user(user("Other", "other@x.org"));
  server_.add_user(user("Second", "DUP@x.org"));
  const ServerResponse r = send(
      "POST", "/v2/users/search?limit=10",
      {{"filters", json::array({{{"field", "email"}, {"operator", "in"}, {"value", json::array({"Dup@X.org"})}}})}});
  ASSERT_EQ(r.status, 200);
  const json page = json::parse(r.body);
  ASSERT_EQ(page["data"].size(), 2u);
  EXPECT_EQ(page["data"][0]["name"], "First");
  EXPECT_EQ(page["data"][1]["name"], "Second");
  EXPECT_EQ(page["meta"]["total"], 2);
  EXPECT_EQ(server_.find_user_by_email("dup@x.org")["name"], "First") << "the first in id order";
}

TEST_F(LeanPerscomServer, AnswersACreateWithTheFullUserItStored) {
  const ServerResponse r = send(
      "POST", "/v2/users/batch",
      {{"resources", json::array({{{"name", "A"}, {"email", "a@x.org"}, {"rank_id", "4"}, {"approved", 1}}})}});
  ASSERT_EQ(r.status, 200);
  const json created = json::parse(r.body)["data"][0];
  EXPECT_EQ(created, server_.users()[0]);
  EXPECT_EQ(created.size(), 24u) << "every field of a PERSCOM user, the defaults included";
  EXPECT_EQ(created["rank_id"], 4);
  EXPECT_EQ(created["approved"], true);
  EXPECT_EQ(created["id"], 1);
  EXPECT_TRUE(created["created_at"].is_string());
  EXPECT_TRUE(created["unit_id"].is_null());
}

TEST_F(LeanPerscomServer, CountsRequestsBytesAndChangesWithoutKeepingTheLog) {
  server_.set_request_log(false);
  const json create = {{"resources", json::array({user("A", "a@x.org"), user("B", "b@x.org")})}};
  send("POST", "/v2/users/batch", create);
  send("PATCH", "/v2/users/batch", {{"resources", {{"1", {{"name", "A2"}}}, {"99", {{"name", "nobody"}}}}}});
  send("DELETE", "/v2/users/batch", {{"resources", json::array({2, 98})}});
  const auto c = server_.counters();
  EXPECT_EQ(c.requests, 3u);
  EXPECT_EQ(c.created, 2u);
  EXPECT_EQ(c.updated, 1u) << "unknown ids are skipped, not counted";
  EXPECT_EQ(c.deleted, 1u);
  EXPECT_GT(c.body_bytes, create.dump().size());
  EXPECT_TRUE(server_.request_log().empty());
  EXPECT_EQ(server_.request_count(), 3u);
  server_.clear_log();
  EXPECT_EQ(server_.counters().requests, 0u);
  EXPECT_EQ(server_.user_count(), 1u) << "clearing the log keeps the users";
}

}  // namespace
}  // namespace dirsync::bench
