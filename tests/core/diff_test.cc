#include <gtest/gtest.h>

#include "core/diff.h"

namespace dirsync::core {
namespace {

using nlohmann::json;

SnapshotEntry entry_for(const json& payload, std::string id = "17") {
  return SnapshotEntry{canonical_hash(payload), std::move(id), payload};
}

TEST(CanonicalHash, IgnoresMemberOrder) {
  const json a = json::parse(R"({"name":"Ada","email":"a@x.io"})");
  const json b = json::parse(R"({"email":"a@x.io","name":"Ada"})");
  EXPECT_EQ(canonical_json(a), R"({"email":"a@x.io","name":"Ada"})");
  EXPECT_EQ(canonical_hash(a), canonical_hash(b));
  EXPECT_NE(canonical_hash(a), canonical_hash(json::parse(R"({"email":"a@x.io","name":"Bob"})")));
}

TEST(CanonicalHash, DistinguishesTypes) { EXPECT_NE(canonical_hash(json{{"n", 1}}), canonical_hash(json{{"n", "1"}})); }

TEST(DiffRecord, NewKeyIsACreate) {
  auto change = diff_record("1001", json{{"name", "Ada"}}, std::nullopt);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->op, Op::kCreate);
  EXPECT_EQ(change->key, "1001");
  EXPECT_EQ(change->hash, canonical_hash(json{{"name", "Ada"}}));
  EXPECT_TRUE(change->target_id.empty());
}

TEST(DiffRecord, UnchangedPayloadYieldsNothing) {
  const json p = {{"name", "Ada"}, {"email", "a@x.io"}};
  EXPECT_FALSE(diff_record("1001", p, entry_for(p)));
}

TEST(DiffRecord, ChangedPayloadIsAnUpdateListingChangedFields) {
  const json before = {{"name", "Ada"}, {"email", "a@x.io"}, {"phone_number", "1"}};
  const json after = {{"name", "Ada L"}, {"email", "a@x.io"}, {"notes", "n"}};
  auto change = diff_record("1001", after, entry_for(before, "42"));
  ASSERT_TRUE(change);
  EXPECT_EQ(change->op, Op::kUpdate);
  EXPECT_EQ(change->target_id, "42");
  EXPECT_EQ(change->previous, before);
  EXPECT_EQ(change->changed_fields, (std::vector<std::string>{"name", "notes", "phone_number"}));
}

TEST(DiffRecord, ResyncUpdatesEvenUnchangedRecordsWithEveryField) {
  const json p = {{"name", "Ada"}, {"email", "a@x.io"}};
  auto change = diff_record("1001", p, entry_for(p), /*resync=*/true);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->op, Op::kUpdate);
  EXPECT_TRUE(change->resync);
  EXPECT_EQ(change->changed_fields, (std::vector<std::string>{"email", "name"}));
}

TEST(SeenKeys, ContainsOnlyAddedKeysOnceSealed) {
  SeenKeys seen;
  seen.add("a");
  seen.add("b");
  seen.add("a");
  EXPECT_FALSE(seen.contains("a"));  // not sealed yet
  seen.seal();
  EXPECT_TRUE(seen.contains("a"));
  EXPECT_TRUE(seen.contains("b"));
  EXPECT_FALSE(seen.contains("c"));
  EXPECT_EQ(seen.size(), 2u);
}

}  // namespace
}  // namespace dirsync::core

namespace dirsync::core {
namespace {

TEST(PullKeys, ReportsTheFirstOccurrenceOfAKeySeenAgain) {
  PullKeys keys;
  EXPECT_FALSE(keys.add("u1", 1));
  EXPECT_FALSE(keys.add("u2", 2));
  EXPECT_FALSE(keys.add("U1", 3)) << "keys compare exactly";
  ASSERT_TRUE(keys.add("u1", 4));
  EXPECT_EQ(*keys.add("u1", 5), 1u) << "always the first occurrence";
  EXPECT_EQ(keys.size(), 3u);
}

}  // namespace
}  // namespace dirsync::core
