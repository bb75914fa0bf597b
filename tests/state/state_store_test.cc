#include <lmdb.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "state/state_store.h"

namespace dirsync::state {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "dirsync-state-XXXXXX";
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

core::SnapshotEntry entry(const json& payload, std::string id = "") {
  return core::SnapshotEntry{core::canonical_hash(payload), std::move(id), payload};
}

SnapshotWrite put(std::string key, const json& payload, std::string id = "") {
  return SnapshotWrite{std::move(key), entry(payload, std::move(id))};
}

SnapshotWrite erase(std::string key) { return SnapshotWrite{std::move(key), std::nullopt}; }

std::unique_ptr<StateStore> open_store(const std::string& dir, const StateStoreOptions& options = {}) {
  auto store = StateStore::open(dir, options);
  if (!store.ok()) ADD_FAILURE() << store.error().message;
  return store.ok() ? std::move(store).value() : nullptr;
}

std::vector<std::string> keys_of(SnapshotReader& reader) {
  std::vector<std::string> keys;
  reader.for_each([&](std::string_view key, const core::SnapshotEntry&) {
    keys.emplace_back(key);
    return true;
  });
  return keys;
}

TEST(SnapshotStore, CommitsOnlyWhatItIsGiven) {
  TempDir tmp;
  auto store = open_store(tmp.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->commit("hr", {put("1001", {{"name", "Ada"}}, "17"), put("1002", {{"name", "Bob"}})}).ok());

  auto ada = store->get("hr", "1001");
  ASSERT_TRUE(ada);
  EXPECT_EQ(ada->target_id, "17");
  EXPECT_EQ(ada->payload, (json{{"name", "Ada"}}));
  EXPECT_EQ(ada->hash, core::canonical_hash(json{{"name", "Ada"}}));
  EXPECT_TRUE(store->get("hr", "1002"));
  EXPECT_FALSE(store->get("hr", "1003"));
  EXPECT_FALSE(store->get("other", "1001")) << "snapshots are per job";

  ASSERT_TRUE(store->commit("hr", {erase("1001"), erase("never-there")}).ok());
  EXPECT_FALSE(store->get("hr", "1001"));
  EXPECT_TRUE(store->get("hr", "1002"));
  EXPECT_EQ(store->snapshot_size("hr"), 1u);
}

TEST(SnapshotStore, KeepsTheSnapshotAcrossReopen) {
  TempDir tmp;
  {
    auto store = open_store(tmp.path());
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->commit("hr", {put("1001", {{"name", "Ada"}, {"tags", {"a", "ü"}}}, "uuid-1")}).ok());
  }
  auto store = open_store(tmp.path());
  ASSERT_TRUE(store);
  auto ada = store->get("hr", "1001");
  ASSERT_TRUE(ada);
  EXPECT_EQ(ada->payload, (json{{"name", "Ada"}, {"tags", {"a", "ü"}}}));
  EXPECT_EQ(ada->target_id, "uuid-1");
}

TEST(SnapshotStore, ReplacesAJobsAbsenceCountsWholeAndKeepsThemPerJob) {
  TempDir tmp;
  {
    auto store = open_store(tmp.path());
    ASSERT_TRUE(store);
    EXPECT_TRUE(store->absences("hr").empty());
    ASSERT_TRUE(store->set_absences("hr", {{"1001", 1}, {"1002", 2}}).ok());
    ASSERT_TRUE(store->set_absences("other", {{"1001", 7}}).ok());
    ASSERT_TRUE(store->set_absences("hr", {{"1002", 3}}).ok());  // 1001 came back
  }
  auto store = open_store(tmp.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->absences("hr"), (std::map<std::string, std::uint32_t>{{"1002", 3}}));
  EXPECT_EQ(store->absences("other"), (std::map<std::string, std::uint32_t>{{"1001", 7}}));
  ASSERT_TRUE(store->set_absences("hr", {}).ok());
  EXPECT_TRUE(store->absences("hr").empty());
}

TEST(SnapshotStore, EncodesEntriesCompactly) {
  const json payload = {{"name", "Ada Lovelace"}, {"email", "ada.lovelace@example.com"}, {"phone_number", "+44 20 7946 0018"}};
  const core::SnapshotEntry e = entry(payload, "1234567");
  const std::string bytes = encode_entry(e);
  // 8 hash + 1 length + 7 id + MessagePack payload; JSON text alone would be longer.
  EXPECT_LT(bytes.size(), payload.dump().size() + 16);
  auto back = decode_entry(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->hash, e.hash);
  EXPECT_EQ(back->target_id, "1234567");
  EXPECT_EQ(back->payload, payload);
}

TEST(SnapshotStore, RejectsEntriesThatDoNotDecode) {
  EXPECT_FALSE(decode_entry(""));
  EXPECT_FALSE(decode_entry(std::string(8, '\0')));
  EXPECT_FALSE(decode_entry(std::string(8, '\0') + "\x05" + "ab"));  // id longer than the bytes
  EXPECT_FALSE(decode_entry(std::string(8, '\0') + '\0'));           // no payload
  EXPECT_FALSE(decode_entry(std::string(8, '\0') + '\0' + "\xc1"));  // 0xc1 is never valid MessagePack
}

TEST(SnapshotStore, CreatesStateDirPrivately) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/var/lib/dirsync";
  auto store = open_store(dir);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->dir(), dir);
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((tmp.path() + "/var").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(SnapshotStore, ReportsAStateDirThatCannotBeCreated) {
  TempDir tmp;
  const std::string file = tmp.path() + "/file";
  { std::FILE* f = std::fopen(file.c_str(), "w"); std::fclose(f); }
  auto store = StateStore::open(file + "/state");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().kind, core::ErrorKind::kState);
  EXPECT_EQ(store.error().message, "cannot create directory " + file + ": Not a directory");
}

TEST(SnapshotStore, RejectsSchemaVersionMismatch) {
  TempDir tmp;
  { ASSERT_TRUE(open_store(tmp.path())); }
  // Rewrite the stored version with LMDB directly, as a future dirsync would have.
  {
    MDB_env* env = nullptr;
    ASSERT_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    ASSERT_EQ(mdb_env_open(env, tmp.path().c_str(), 0, 0600), 0);
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    MDB_dbi meta = 0;
    ASSERT_EQ(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    std::string k = "schema_version", v = "2";
    MDB_val key{k.size(), k.data()}, val{v.size(), v.data()};
    ASSERT_EQ(mdb_put(txn, meta, &key, &val, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
  }
  auto store = StateStore::open(tmp.path());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().kind, core::ErrorKind::kState);
  EXPECT_EQ(store.error().message,
            "state in " + tmp.path() + " has schema version 2; this dirsync expects " + std::to_string(kSchemaVersion));
}

TEST(SnapshotStore, RefusesToOpenTheSameStateTwiceInOneProcess) {
  TempDir tmp;
  auto first = open_store(tmp.path());
  ASSERT_TRUE(first);
  auto second = StateStore::open(tmp.path() + "/.");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().message, "the state in " + tmp.path() + "/. is already open in this process");
  first.reset();
  EXPECT_TRUE(StateStore::open(tmp.path()).ok()) << "closing releases it";
}

TEST(SnapshotStore, GrowsMapOnMapFull) {
  TempDir tmp;
  StateStoreOptions tiny;
  tiny.initial_map_size = 64 * 1024;
  auto store = open_store(tmp.path(), tiny);
  ASSERT_TRUE(store);
  const std::size_t initial = store->map_size();

  std::vector<SnapshotWrite> writes;
  for (int i = 0; i < 3000; ++i) {
    writes.push_back(put("user-" + std::to_string(i), {{"name", std::string(200, 'x')}, {"n", i}}));
  }
  const auto status = store->commit("hr", writes);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_GE(store->map_size(), initial * 8) << "a 3000 x 250 byte commit cannot fit in 64 KiB";
  EXPECT_EQ(store->snapshot_size("hr"), 3000u);
  auto last = store->get("hr", "user-2999");
  ASSERT_TRUE(last);
  EXPECT_EQ(last->payload["n"], 2999);

  store.reset();
  auto reopened = open_store(tmp.path(), tiny);  // LMDB keeps at least the data's size
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->snapshot_size("hr"), 3000u);
}

TEST(SnapshotStore, CommitIsAllOrNothingWhenTheMapMayNotGrow) {
  TempDir tmp;
  StateStoreOptions capped;
  capped.initial_map_size = 64 * 1024;
  capped.max_map_size = 64 * 1024;
  auto store = open_store(tmp.path(), capped);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->commit("hr", {put("first", {{"n", 1}})}).ok());
  std::vector<SnapshotWrite> writes;
  for (int i = 0; i < 1000; ++i) writes.push_back(put("user-" + std::to_string(i), {{"name", std::string(200, 'x')}}));

  const auto status = store->commit("hr", writes);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, core::ErrorKind::kState);
  EXPECT_THAT(status.error().message, HasSubstr("cannot commit the snapshot of job 'hr' in " + tmp.path() +
                                                ": MDB_MAP_FULL: Environment mapsize limit reached"));
  EXPECT_EQ(store->snapshot_size("hr"), 1u);
}

TEST(SnapshotStore, RejectsKeysTooLongForLmdb) {
  TempDir tmp;
  auto store = open_store(tmp.path());
  ASSERT_TRUE(store);
  const auto status = store->commit("hr", {put("ok", {{"n", 1}}), put(std::string(600, 'k'), {{"n", 2}})});
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message, HasSubstr("is 600 bytes long; the state allows 508"));
  EXPECT_EQ(store->snapshot_size("hr"), 0u) << "nothing of a refused commit is written";
}

TEST(SnapshotReader, RefreshSeesCommits) {
  TempDir tmp;
  auto store = open_store(tmp.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->commit("hr", {put("1001", {{"name", "Ada"}})}).ok());
  auto reader = store->reader("hr");
  ASSERT_TRUE(reader->find("1001"));

  // The same thread writes while its reader is open (MDB_NOTLS).
  ASSERT_TRUE(store->commit("hr", {put("1002", {{"name", "Bob"}}), erase("1001")}).ok());
  EXPECT_TRUE(reader->find("1001")) << "a reader sees one consistent snapshot until refreshed";
  EXPECT_FALSE(reader->find("1002"));

  reader->refresh();
  EXPECT_FALSE(reader->find("1001"));
  auto bob = reader->find("1002");
  ASSERT_TRUE(bob);
  EXPECT_EQ(bob->payload, (json{{"name", "Bob"}}));
}

TEST(SnapshotReader, ForEachVisitsOnlyThisJobsKeysInOrder) {
  TempDir tmp;
  auto store = open_store(tmp.path());
  ASSERT_TRUE(store);
  // "a" is a prefix of "ab": their keys must not mix.
  ASSERT_TRUE(store->commit("a", {put("2", {{"n", 2}}), put("1", {{"n", 1}}), put("10", {{"n", 10}})}).ok());
  ASSERT_TRUE(store->commit("ab", {put("0", {{"n", 0}})}).ok());
  ASSERT_TRUE(store->commit("", {put("x", {{"n", 0}})}).ok());
  ASSERT_TRUE(store->commit("b", {put("0", {{"n", 0}})}).ok());

  auto reader = store->reader("a");
  EXPECT_THAT(keys_of(*reader), ElementsAre("1", "10", "2"));
  EXPECT_THAT(keys_of(*store->reader("ab")), ElementsAre("0"));
  EXPECT_TRUE(keys_of(*store->reader("nobody")).empty());
  EXPECT_EQ(store->snapshot_size("a"), 3u);
  EXPECT_EQ(store->snapshot_size("ab"), 1u);
}

TEST(SnapshotReader, ForEachWalksManyKeysAndStopsWhenAsked) {
  TempDir tmp;
  auto store = open_store(tmp.path());
  ASSERT_TRUE(store);
  std::vector<SnapshotWrite> writes;
  for (int i = 0; i < 1000; ++i) writes.push_back(put(std::to_string(10000 + i), {{"n", i}}));
  ASSERT_TRUE(store->commit("hr", writes).ok());
  ASSERT_TRUE(store->commit("hs", {put("0", {{"n", 0}})}).ok());

  auto reader = store->reader("hr");
  int seen = 0;
  int last = -1;
  bool ordered = true;
  reader->for_each([&](std::string_view, const core::SnapshotEntry& e) {
    ordered = ordered && e.payload["n"].get<int>() == last + 1;
    last = e.payload["n"].get<int>();
    ++seen;
    return true;
  });
  EXPECT_EQ(seen, 1000);
  EXPECT_TRUE(ordered);

  seen = 0;
  reader->for_each([&](std::string_view, const core::SnapshotEntry&) { return ++seen < 300; });
  EXPECT_EQ(seen, 300);
}

TEST(SnapshotReader, ForEachCallbackMayCommitAndGrowTheMap) {
  TempDir tmp;
  StateStoreOptions tiny;
  tiny.initial_map_size = 64 * 1024;
  auto store = open_store(tmp.path(), tiny);
  ASSERT_TRUE(store);
  std::vector<SnapshotWrite> writes;
  for (int i = 0; i < 600; ++i) writes.push_back(put(std::to_string(1000 + i), {{"n", i}}));
  ASSERT_TRUE(store->commit("hr", writes).ok());

  // The way a detach pass works: walk the snapshot and commit as the target acknowledges.
  auto reader = store->reader("hr");
  int seen = 0;
  reader->for_each([&](std::string_view key, const core::SnapshotEntry&) {
    ++seen;
    EXPECT_TRUE(store->commit("hr", {erase(std::string(key)), put("big-" + std::string(key), {{"pad", std::string(400, 'p')}})}).ok());
    return true;
  });
  EXPECT_EQ(seen, 600) << "the reader's snapshot is stable while it walks";
  EXPECT_GT(store->map_size(), std::size_t{64 * 1024});
  reader->refresh();
  EXPECT_EQ(keys_of(*reader).size(), 600u);
  EXPECT_FALSE(reader->find("1000"));
  EXPECT_TRUE(reader->find("big-1000"));
}

TEST(SnapshotStore, ThreadsMayShareItWhileTheMapGrows) {
  TempDir tmp;
  StateStoreOptions tiny;
  tiny.initial_map_size = 64 * 1024;
  auto store = open_store(tmp.path(), tiny);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->commit("hr", {put("seed", {{"n", 0}})}).ok());
  std::atomic<bool> writing{true};
  std::atomic<int> failures{0};
  std::thread reader_thread([&] {
    auto reader = store->reader("hr");
    while (writing) {
      if (!store->get("hr", "seed")) ++failures;
      if (!reader->find("seed")) ++failures;
      std::size_t n = 0;
      reader->for_each([&](std::string_view, const core::SnapshotEntry&) { return ++n < 50; });
      reader->refresh();
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (int batch = 0; batch < 40; ++batch) {
        std::vector<SnapshotWrite> writes;
        for (int i = 0; i < 20; ++i) {
          writes.push_back(put(std::to_string(w) + "-" + std::to_string(batch * 20 + i), {{"pad", std::string(300, 'p')}}));
        }
        if (!store->commit("hr", writes).ok()) ++failures;
      }
    });
  }
  for (auto& t : writers) t.join();
  writing = false;
  reader_thread.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(store->snapshot_size("hr"), 1601u);
  EXPECT_GT(store->map_size(), std::size_t{64 * 1024});
}

RunRecord run(std::string outcome, std::int64_t started) {
  RunRecord r;
  r.started_at = started;
  r.finished_at = started + 5;
  r.mode = "sync";
  r.outcome = std::move(outcome);
  r.message = "3 created";
  r.counts = {{"created", 3}, {"updated", 0}};
  return r;
}

TEST(RunHistory, AssignsIncreasingIdsAndKeepsTheNewestN) {
  TempDir tmp;
  auto store = open_store(tmp.path());
  ASSERT_TRUE(store);
  for (int i = 1; i <= 5; ++i) {
    auto id = store->record_run("hr", run("ok", 1000 + i), /*keep=*/3);
    ASSERT_TRUE(id.ok()) << id.error().message;
    EXPECT_EQ(id.value(), static_cast<std::uint64_t>(i));
  }
  auto other = store->record_run("hr2", run("failed", 1), 3);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other.value(), 1u) << "ids are per job";

  const auto runs = store->runs("hr", 10);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].id, 5u);
  EXPECT_EQ(runs[1].id, 4u);
  EXPECT_EQ(runs[2].id, 3u);
  EXPECT_EQ(runs[0].started_at, 1005);
  EXPECT_EQ(runs[0].finished_at, 1010);
  EXPECT_EQ(runs[0].mode, "sync");
  EXPECT_EQ(runs[0].outcome, "ok");
  EXPECT_EQ(runs[0].message, "3 created");
  EXPECT_EQ(runs[0].counts, (json{{"created", 3}, {"updated", 0}}));
  EXPECT_EQ(store->runs("hr", 1).size(), 1u);
  EXPECT_EQ(store->runs("hr2", 10).size(), 1u);
  EXPECT_TRUE(store->runs("nobody", 10).empty());
}

TEST(RunHistory, IdsKeepIncreasingAfterOldRunsAreDropped) {
  TempDir tmp;
  auto store = open_store(tmp.path());
  ASSERT_TRUE(store);
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(store->record_run("hr", run("ok", i), 2).ok());
  const auto runs = store->runs("hr", 10);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].id, 300u) << "ids past 255 sort correctly (big-endian keys)";
  EXPECT_EQ(runs[1].id, 299u);
}

}  // namespace
}  // namespace dirsync::state
