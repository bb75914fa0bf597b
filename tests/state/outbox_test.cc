#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "state/state_store.h"

namespace dirsync::state {
namespace {

using nlohmann::json;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "dirsync-outbox-XXXXXX";
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

IntentItem create_item(std::string key) {
  IntentItem item;
  item.key = std::move(key);
  item.op = core::Op::kCreate;
  item.payload = {{"email", item.key + "@example.org"}};
  item.hash = core::canonical_hash(item.payload);
  return item;
}

TEST(Outbox, RecordsIntentsDurablyWithIncreasingIdsPerJob) {
  TempDir dir;
  {
    auto store = StateStore::open(dir.path()).value();
    EXPECT_EQ(store->add_intent("a", {create_item("u1"), create_item("u2")}).value(), 1u);
    EXPECT_EQ(store->add_intent("a", {create_item("u3")}).value(), 2u);
    EXPECT_EQ(store->add_intent("b", {create_item("u9")}).value(), 1u);
  }
  auto store = StateStore::open(dir.path()).value();
  const auto intents = store->intents("a");
  ASSERT_EQ(intents.size(), 2u);
  EXPECT_EQ(intents[0].id, 1u);
  ASSERT_EQ(intents[0].items.size(), 2u);
  EXPECT_EQ(intents[0].items[1].key, "u2");
  EXPECT_EQ(intents[0].items[1].payload, json({{"email", "u2@example.org"}}));
  EXPECT_EQ(intents[0].items[1].hash, core::canonical_hash(intents[0].items[1].payload));
  EXPECT_GT(intents[0].created_at, 0);
  EXPECT_EQ(store->intents("b").size(), 1u);
  EXPECT_TRUE(store->intents("c").empty());
}

TEST(Outbox, SettlingMovesTheSnapshotAndClearsTheIntentInOneTransaction) {
  TempDir dir;
  auto store = StateStore::open(dir.path()).value();
  const auto id = store->add_intent("a", {create_item("u1"), create_item("u2")}).value();
  Settlement settlement;
  settlement.intent_id = id;
  core::SnapshotEntry entry{1, "17", json{{"email", "u1@example.org"}}};
  settlement.writes.push_back({"u1", entry});
  settlement.still_pending.push_back(create_item("u2"));
  settlement.pending_note = "the answer was lost";
  ASSERT_TRUE(store->settle("a", settlement).ok());
  EXPECT_EQ(store->get("a", "u1")->target_id, "17");
  auto intents = store->intents("a");
  ASSERT_EQ(intents.size(), 1u);
  EXPECT_EQ(intents[0].id, id);
  EXPECT_EQ(intents[0].note, "the answer was lost");
  ASSERT_EQ(intents[0].items.size(), 1u);
  EXPECT_EQ(intents[0].items[0].key, "u2");

  Settlement done;
  done.intent_id = id;
  ASSERT_TRUE(store->settle("a", done).ok());
  EXPECT_TRUE(store->intents("a").empty());
}

TEST(Outbox, AFailedSettlementKeepsTheIntentAndTheSnapshot) {
  TempDir dir;
  auto store = StateStore::open(dir.path()).value();
  const auto id = store->add_intent("a", {create_item("u1")}).value();
  Settlement settlement;
  settlement.intent_id = id;
  settlement.writes.push_back({std::string(600, 'k'), core::SnapshotEntry{1, "", json::object()}});
  EXPECT_FALSE(store->settle("a", settlement).ok());
  EXPECT_EQ(store->intents("a").size(), 1u) << "a failed settlement keeps the intent";
}

TEST(Quarantine, CountsAreKeptPerJobAndReleasedByKeyOrAll) {
  TempDir dir;
  auto store = StateStore::open(dir.path()).value();
  Settlement settlement;
  settlement.quarantine.push_back({"u1", QuarantineEntry{3, 42, "invalid email", 100, 200}});
  settlement.quarantine.push_back({"u2", QuarantineEntry{1, 43, "too long", 100, 100}});
  ASSERT_TRUE(store->settle("a", settlement).ok());
  Settlement other;
  other.quarantine.push_back({"u1", QuarantineEntry{1, 1, "x", 1, 1}});
  ASSERT_TRUE(store->settle("b", other).ok());

  auto q = store->quarantine("a");
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q.at("u1").rejections, 3u);
  EXPECT_EQ(q.at("u1").hash, 42u);
  EXPECT_EQ(q.at("u1").message, "invalid email");
  EXPECT_EQ(q.at("u1").last_at, 200);

  EXPECT_EQ(store->release("a", {"u1", "nobody"}).value(), 1u);
  EXPECT_EQ(store->quarantine("a").count("u1"), 0u);
  EXPECT_EQ(store->release("a", {}).value(), 1u);
  EXPECT_TRUE(store->quarantine("a").empty());
  EXPECT_EQ(store->quarantine("b").size(), 1u) << "another job's entries stay";

  Settlement clear;
  clear.quarantine.push_back({"u1", std::nullopt});
  ASSERT_TRUE(store->settle("b", clear).ok());
  EXPECT_TRUE(store->quarantine("b").empty());
}

}  // namespace
}  // namespace dirsync::state
