// Microbenchmarks of dirsync's hot paths (issue 7, item 8), each through the
// real component: the CSV reader and source, the mapping, canonical hashing,
// snapshot lookups in LMDB, and PERSCOM's batch encoder.
//
//   dirsync_micro_bench [--smoke] [--benchmark_filter=REGEX] [--benchmark_out=FILE --benchmark_out_format=json]
//
// Throughput is reported where it means something: bytes/s for parsing and
// encoding, items/s (records, lookups) elsewhere. Data is generated
// deterministically: the end-to-end suite's seeded directory (bench/gen_users.h),
// read through the real CSV source. Files live in a temp directory
// removed at exit. Not a test: nothing here asserts a time. A benchmark whose
// component fails is skipped with the error and the program exits 1, so a
// broken path cannot pass for a fast one; --smoke (small data, brief runs) is
// what CI runs to keep this program working.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench/gen_users.h"
#include "connectors/sources/csv/csv_reader.h"
#include "connectors/sources/csv/csv_source.h"
#include "connectors/targets/perscom/perscom_target.h"
#include "core/diff.h"
#include "state/state_store.h"

namespace dirsync::bench {
namespace {

namespace fs = std::filesystem;

// Sizes: a real export (~2.8 MB, beyond L2) and snapshot; --smoke shrinks them
// so that CI can run every benchmark once in a moment.
std::size_t g_csv_rows = 20'000;
std::size_t g_snapshot_entries = 100'000;
constexpr std::size_t kRecordPool = 4096;         // records cycled through by per-record benchmarks
constexpr std::size_t kBatch = 1000;              // PERSCOM's largest batch (perscom::kMaxBatch)
constexpr const char* kJob = "hr-to-perscom";
constexpr std::uint64_t kSeed = DirectorySpec{}.seed;  // the end-to-end suite's directory

bool g_scratch_made = false;   // scratch_dir() was created: main removes it
bool g_snapshot_made = false;  // snapshot() was built: main closes it first
int g_failures = 0;  // benchmarks that failed (see fail())

// Marks a benchmark failed: Google Benchmark only skips it, so main counts
// failures to exit non-zero; a broken path must not pass as a fast one.
void fail(benchmark::State& state, const char* why) {
  ++g_failures;
  state.SkipWithError(why);
}

// The process's scratch directory: created on first use, removed by main.
const fs::path& scratch_dir() {
  static const fs::path dir = [] {
    g_scratch_made = true;
    std::string tmpl = (fs::temp_directory_path() / "dirsync-micro-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("cannot create a temp directory");
    return fs::path(tmpl);
  }();
  return dir;
}

// The seeded directory of the end-to-end suite (bench/gen_users.h), as CSV.
std::string users_csv(std::size_t count) {
  std::ostringstream out;
  write_csv({kSeed, count, false}, out);
  return out.str();
}

const std::string& csv_text() {
  static const std::string text = users_csv(g_csv_rows);
  return text;
}

// The first `count` users as the CSV source yields them (read through it from
// a file), so that every benchmark sees the records a real pull makes. Empty
// when the pull fails (the benchmarks using them then fail).
std::vector<core::Record> pulled_records(std::size_t count) {
  const fs::path path = scratch_dir() / ("users-" + std::to_string(count) + ".csv");
  std::ofstream(path, std::ios::binary) << users_csv(count);
  config::CsvSourceSettings settings;
  settings.path = path.string();
  settings.key = "employee_id";
  auto pull = sources::make_csv_source(settings)->start();
  std::vector<core::Record> records;
  for (bool last = !pull.ok(); !last;) {
    auto page = pull.value()->next();
    if (!page.ok() || !page->issues.empty()) return {};
    for (auto& r : page->records) records.push_back(std::move(r));
    last = page->last;
  }
  return records.size() == count ? records : std::vector<core::Record>{};
}

const std::vector<core::Record>& record_pool() {
  static const std::vector<core::Record> records = pulled_records(kRecordPool);
  return records;
}

// The benchmark job's mapping (bench/gen_users.h, kPerscomMapping) plus what
// production PERSCOM jobs add (examples/ad-to-perscom.yaml): a phone number
// in E.164 and a lookup table; field types as PERSCOM declares them.
core::Mapping perscom_mapping() {
  core::Lookups lookups;
  lookups["positions"] = std::make_shared<const core::LookupTable>(std::vector<core::LookupTable::Entry>{
      {"Director", "5"}, {"Team Lead", "4"}, {"Operations Manager", "4"}, {"Senior Analyst", "3"},
      {"Software Engineer", "2"}});
  auto field = [&](std::string name, std::string_view text, core::FieldType type) {
    return core::MappedField{std::move(name), core::Template::parse(text, &lookups), type};
  };
  using core::FieldType;
  return core::Mapping({
      field("name", "{first_name} {last_name}", FieldType::kString),
      field("email", "{email | trim | lower}", FieldType::kString),
      field("phone_number", "{phone | e164:'+44'}", FieldType::kString),
      field("position_id", "{title | map:positions | first | default:'1'}", FieldType::kInt),
      field("rank_id", "{rank_id}", FieldType::kInt),
      field("unit_id", "{unit_id}", FieldType::kInt),
      field("notes", "{title}, {department} ({location})", FieldType::kString),
      core::MappedField{"approved", core::Template::constant(true), FieldType::kBool},
  });
}

const core::Mapping& mapping() {
  static const core::Mapping m = perscom_mapping();
  return m;
}

// Mapped payloads of the record pool; empty when the mapping failed (reported by the caller).
const std::vector<nlohmann::json>& payload_pool() {
  static const std::vector<nlohmann::json> payloads = [] {
    std::vector<nlohmann::json> out;
    for (const auto& r : record_pool()) {
      auto p = mapping().apply(r);
      if (!p.ok()) return std::vector<nlohmann::json>{};
      out.push_back(std::move(p.value()));
    }
    return out;
  }();
  return payloads;
}

// --- CSV ----------------------------------------------------------------------

// The RFC 4180 reader alone, over memory: the parser's own speed.
void BM_CsvReaderParse(benchmark::State& state) {
  const std::string& text = csv_text();
  std::size_t rows = 0;
  for (auto _ : state) {
    std::istringstream in(text);
    sources::CsvReader reader(in);
    sources::CsvRow row;
    rows = 0;
    while (reader.next(row)) ++rows;
    benchmark::DoNotOptimize(row);
  }
  if (rows != g_csv_rows + 1) fail(state, "the reader did not read every row");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rows));
}
BENCHMARK(BM_CsvReaderParse)->Unit(benchmark::kMillisecond);

// The whole CSV source from a file: its duplicate-key pre-pass, the pass that
// yields pages of records, and the Record building. MB/s of the file.
void BM_CsvSourcePull(benchmark::State& state) {
  const fs::path path = scratch_dir() / "users.csv";
  if (!fs::exists(path)) std::ofstream(path, std::ios::binary) << csv_text();
  config::CsvSourceSettings settings;
  settings.path = path.string();
  settings.key = "employee_id";
  settings.page_size = 1000;
  auto source = sources::make_csv_source(settings);
  std::size_t records = 0;
  for (auto _ : state) {
    auto pull = source->start();
    if (!pull.ok()) {
      fail(state, pull.error().message.c_str());
      return;
    }
    records = 0;
    for (;;) {
      auto page = pull.value()->next();
      if (!page.ok()) {
        fail(state, page.error().message.c_str());
        return;
      }
      records += page->records.size();
      if (!page->issues.empty()) {
        fail(state, page->issues.front().message.c_str());
        return;
      }
      if (page->last) break;
    }
  }
  if (records != g_csv_rows) fail(state, "the source did not yield every row");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * csv_text().size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * records));
}
BENCHMARK(BM_CsvSourcePull)->Unit(benchmark::kMillisecond);

// --- mapping and hashing --------------------------------------------------------

// One record through the PERSCOM job's mapping (8 fields, lookups, e164, typed).
void BM_MappingApply(benchmark::State& state) {
  const auto& records = record_pool();
  if (records.empty()) {
    fail(state, "the CSV source did not yield the record pool");
    return;
  }
  const core::Mapping& m = mapping();
  std::size_t i = 0;
  for (auto _ : state) {
    auto payload = m.apply(records[i]);
    if (!payload.ok()) {
      fail(state, payload.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(payload);
    i = (i + 1) % records.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_MappingApply);

// canonical_hash of one mapped payload: the canonical JSON plus XXH3. Bytes are
// those of the canonical form.
void BM_CanonicalHash(benchmark::State& state) {
  const auto& payloads = payload_pool();
  if (payloads.empty()) {
    fail(state, "the mapping failed on the record pool");
    return;
  }
  std::size_t bytes = 0;
  for (const auto& p : payloads) bytes += core::canonical_json(p).size();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(core::canonical_hash(payloads[i]));
    i = (i + 1) % payloads.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes / payloads.size()));
}
BENCHMARK(BM_CanonicalHash);

// --- snapshot lookups -------------------------------------------------------------

// A state store holding g_snapshot_entries users of one job, as a completed
// initial sync leaves it (payload, hash, PERSCOM id), opened once per process.
struct Snapshot {
  std::unique_ptr<state::StateStore> store;
  std::vector<std::string> keys;    // the keys present, in a seeded random order
  std::vector<std::string> absent;  // keys of further users of the same directory
  std::string error;                // set when the store could not be built
};

Snapshot& snapshot() {
  static Snapshot s = [] {
    g_snapshot_made = true;
    Snapshot out;
    auto store = state::StateStore::open((scratch_dir() / "state").string());
    if (!store.ok()) {
      out.error = store.error().message;
      return out;
    }
    out.store = std::move(store.value());
    auto records = pulled_records(g_snapshot_entries + kRecordPool);
    if (records.empty()) {
      out.error = "the CSV source did not yield the snapshot's records";
      return out;
    }
    for (std::size_t i = g_snapshot_entries; i < records.size(); ++i) out.absent.push_back(records[i].key);
    std::vector<state::SnapshotWrite> writes;
    for (std::size_t i = 0; i < g_snapshot_entries; ++i) {
      auto payload = mapping().apply(records[i]);
      if (!payload.ok()) {
        out.error = payload.error().message;
        return out;
      }
      core::SnapshotEntry entry;
      entry.hash = core::canonical_hash(payload.value());
      entry.target_id = std::to_string(100'000 + i);
      entry.payload = std::move(payload.value());
      writes.push_back({records[i].key, std::move(entry)});
      out.keys.push_back(writes.back().key);
      // Bounded transactions, as the engine commits one batch at a time.
      if (writes.size() == kBatch || i + 1 == g_snapshot_entries) {
        auto status = out.store->commit(kJob, writes);
        if (!status.ok()) {
          out.error = status.error().message;
          return out;
        }
        writes.clear();
      }
    }
    // The directory's keys come in key order; a real pull need not (LDAP
    // returns entries in its own order): shuffle (Fisher-Yates over Knuth's
    // MMIX LCG: seeded, portable) so that lookups do not walk the tree in order.
    std::uint64_t x = kSeed;
    for (std::size_t i = out.keys.size(); i > 1; --i) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      std::swap(out.keys[i - 1], out.keys[(x >> 33) % i]);
    }
    return out;
  }();
  return s;
}

// The built snapshot, or nullptr after marking the benchmark skipped.
Snapshot* ready_snapshot(benchmark::State& state) {
  Snapshot& s = snapshot();
  if (s.error.empty()) return &s;
  fail(state, s.error.c_str());
  return nullptr;
}

// SnapshotReader::find over `keys` in turn, through one read view; skipped
// when a key is not found as `present` says it should be.
void find_keys(benchmark::State& state, Snapshot& s, const std::vector<std::string>& keys, bool present) {
  auto reader = s.store->reader(kJob);
  std::size_t i = 0;
  std::int64_t found = 0;
  for (auto _ : state) {
    auto entry = reader->find(keys[i]);
    found += entry.has_value();
    benchmark::DoNotOptimize(entry);
    if (++i == keys.size()) i = 0;
  }
  if (found != (present ? static_cast<std::int64_t>(state.iterations()) : 0)) {
    fail(state, present ? "a present key was not found" : "an absent key was found");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// A key that is present: what the engine does per record of a pull (one read
// transaction, refreshed between pages).
void BM_SnapshotFindHit(benchmark::State& state) {
  if (Snapshot* s = ready_snapshot(state)) find_keys(state, *s, s->keys, true);
}
BENCHMARK(BM_SnapshotFindHit);

// A key that is absent: a user new to the snapshot.
void BM_SnapshotFindMiss(benchmark::State& state) {
  Snapshot* s = ready_snapshot(state);
  if (s == nullptr) return;
  find_keys(state, *s, s->absent, false);
}
BENCHMARK(BM_SnapshotFindMiss);

// StateStore::get: a lookup in a transaction of its own, for comparison with
// the reader (what a caller pays without a long-lived read view).
void BM_SnapshotGet(benchmark::State& state) {
  Snapshot* s = ready_snapshot(state);
  if (s == nullptr) return;
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s->store->get(kJob, s->keys[i]));
    if (++i == s->keys.size()) i = 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_SnapshotGet);

// --- PERSCOM batch encoding ---------------------------------------------------------

config::PerscomTargetSettings perscom_settings() {
  config::PerscomTargetSettings s;
  s.base_url = "https://api.perscom.io";
  s.token = core::Secret("bench-token", "(literal)");
  s.batch_size = kBatch;
  return s;
}

// A batch of kBatch changes of one op, from the payload pool.
std::vector<core::Change> batch_of(core::Op op) {
  std::vector<core::Change> batch;
  const auto& payloads = payload_pool();
  for (std::size_t i = 0; i < kBatch && !payloads.empty(); ++i) {
    core::Change c;
    c.op = op;
    c.key = record_pool()[i % kRecordPool].key;
    c.payload = payloads[i % payloads.size()];
    c.hash = core::canonical_hash(c.payload);
    if (op == core::Op::kUpdate) {
      c.target_id = std::to_string(100'000 + i);
      c.changed_fields = {"name", "phone_number", "rank_id"};  // a typical HR change: a few fields
    }
    batch.push_back(std::move(c));
  }
  return batch;
}

void encode_batch(benchmark::State& state, core::Op op) {
  const auto settings = perscom_settings();
  const auto batch = batch_of(op);
  if (batch.size() != kBatch) {
    fail(state, "the mapping failed on the record pool");
    return;
  }
  std::size_t bytes = 0;
  for (auto _ : state) {
    const http::Request request = targets::perscom::encode(settings, batch);
    bytes = request.body.size();
    benchmark::DoNotOptimize(request);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch.size()));
  state.counters["body_bytes"] = static_cast<double>(bytes);
}

// perscom::encode of a create batch of 1000 (POST, every mapped field).
void BM_PerscomEncodeCreates(benchmark::State& state) { encode_batch(state, core::Op::kCreate); }
BENCHMARK(BM_PerscomEncodeCreates)->Unit(benchmark::kMicrosecond);

// perscom::encode of an update batch of 1000 (PATCH, the changed fields only).
void BM_PerscomEncodeUpdates(benchmark::State& state) { encode_batch(state, core::Op::kUpdate); }
BENCHMARK(BM_PerscomEncodeUpdates)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dirsync::bench

int main(int argc, char** argv) {
  // --smoke (ours, taken out before Google Benchmark sees the flags): small data,
  // each benchmark run briefly, for the CI test that keeps this program working.
  std::vector<char*> args(argv, argv + argc);
  std::string min_time = "--benchmark_min_time=0.001";
  if (auto it = std::find(args.begin(), args.end(), std::string_view("--smoke")); it != args.end()) {
    args.erase(it);
    args.push_back(min_time.data());
    dirsync::bench::g_csv_rows = 1000;
    dirsync::bench::g_snapshot_entries = 2000;
  }
  argc = static_cast<int>(args.size());
  args.push_back(nullptr);
  argv = args.data();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  // The store must close before its directory goes.
  if (dirsync::bench::g_snapshot_made) dirsync::bench::snapshot().store.reset();
  if (dirsync::bench::g_scratch_made) {
    std::error_code ignored;
    std::filesystem::remove_all(dirsync::bench::scratch_dir(), ignored);
  }
  if (dirsync::bench::g_failures > 0) {
    std::fprintf(stderr, "dirsync_micro_bench: %d benchmark(s) failed\n", dirsync::bench::g_failures);
    return 1;
  }
  return 0;
}
