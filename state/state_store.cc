#include "state/state_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>

#include "state/lmdb.h"

namespace dirsync::state {
namespace {

constexpr unsigned kMaxDbs = 8;
// Growth is bounded: each commit doubles the map at most this often, and never
// beyond StateStoreOptions::max_map_size.
constexpr int kMaxGrowthsPerCommit = 16;
// Another process grew the map; adopting its size is retried this often.
constexpr int kMaxAdoptions = 4;
// A write body returns this (not an LMDB or errno code) when it set its own error.
constexpr int kBodyFailed = INT_MIN;
// Resume for_each after this many entries, so no lock is held during callbacks.
constexpr std::size_t kForEachChunk = 256;

constexpr std::string_view kSchemaKey = "schema_version";

core::Error state_error(std::string message) { return core::Error{core::ErrorKind::kState, std::move(message)}; }

std::string errno_text(int err) { return std::strerror(err); }

// Below this much free space a short write means the disk is full.
constexpr unsigned long long kNearlyFull = 1 << 20;
// LMDB's lock file with its default 126 reader slots: a 192-byte header and
// 64 bytes per slot (the header and the first slots are what a process touches).
constexpr off_t kLockFileBytes = 8192;

// Why a write to the state in `dir` failed for want of space, or "" when `rc`
// is another failure. A full disk is ENOSPC, EDQUOT or EFBIG (a file size
// limit, ulimit -f) — or EIO, because LMDB reports a write the kernel cut short
// (it wrote what still fitted) as EIO; that case is told apart by looking at
// the free space and the size limit.
std::string lack_of_space(const std::string& dir, int rc) {
  rlimit limit{};
  const bool limited = ::getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY;
  const std::string limit_text =
      limited ? "the state file reached the file size limit of " + std::to_string(limit.rlim_cur) + " bytes (ulimit -f)"
              : std::string();
  switch (rc) {
    case ENOSPC:
    case EDQUOT: return errno_text(rc);
    case EFBIG: return errno_text(rc) + (limited ? ": " + limit_text : std::string());
    case EIO: break;
    default: return {};
  }
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) == 0) {
    // root may use the blocks reserved for it; others only f_bavail.
    const unsigned long long left =
        static_cast<unsigned long long>(::geteuid() == 0 ? fs.f_bfree : fs.f_bavail) * fs.f_frsize;
    if (left < kNearlyFull) return "a write was cut short with " + std::to_string(left) + " bytes left";
  }
  struct stat st {};
  if (limited && ::stat((dir + "/data.mdb").c_str(), &st) == 0 && static_cast<rlim_t>(st.st_size) >= limit.rlim_cur) {
    return "a write was cut short: " + limit_text;
  }
  return {};
}

// "cannot <what> in <dir>: <LMDB's reason>", or for a full disk a message that
// says so, and that nothing of the failed write was kept (LMDB commits all or nothing).
std::string write_failure(const std::string& dir, const std::string& what, int rc) {
  const std::string cause = lack_of_space(dir, rc);
  if (cause.empty()) return lmdb::describe("cannot " + what + " in " + dir, rc);
  return "cannot " + what + " in " + dir + ": the disk holding " + dir + " is full (" + cause +
         "); nothing of this write was recorded: free space there and run again";
}

// mkdir -p, giving every directory it creates mode 0700 (state and locks are private).
std::optional<std::string> make_dirs(const std::string& path) {
  if (path.empty()) return std::string("state_dir is empty");
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    const std::string prefix = path.substr(0, pos);
    if (prefix.empty() || prefix == "/") continue;
    if (::mkdir(prefix.c_str(), 0700) == 0) continue;
    const int err = errno;
    struct stat st {};
    if (err == EEXIST && ::stat(prefix.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    return "cannot create directory " + prefix + ": " + errno_text(err == EEXIST ? ENOTDIR : err);
  }
  return std::nullopt;
}

// Directories with an open environment in this process: LMDB forbids opening
// the same environment twice in one process (its POSIX locks are per process).
std::mutex g_open_mutex;
std::set<std::string> g_open_dirs;

std::string prefix_of(std::string_view job) {
  std::string prefix(job);
  prefix.push_back('\0');
  return prefix;
}

bool has_prefix(std::string_view key, std::string_view prefix) { return key.substr(0, prefix.size()) == prefix; }

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool get_varint(std::string_view& in, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    const auto byte = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

std::string run_key(std::string_view job, std::uint64_t seq) {
  std::string key = prefix_of(job);
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>((seq >> (8 * i)) & 0xff));
  return key;
}

std::uint64_t run_seq(std::string_view key) {
  std::uint64_t seq = 0;
  for (char c : key.substr(key.size() - 8)) seq = (seq << 8) | static_cast<unsigned char>(c);
  return seq;
}

nlohmann::json run_to_json(const RunRecord& run) {
  return nlohmann::json{{"id", run.id},           {"started_at", run.started_at}, {"finished_at", run.finished_at},
                        {"mode", run.mode},       {"outcome", run.outcome},       {"message", run.message},
                        {"counts", run.counts}};
}

std::optional<RunRecord> run_from_json(std::string_view text) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  try {
    RunRecord run;
    run.id = j.value("id", std::uint64_t{0});
    run.started_at = j.value("started_at", std::int64_t{0});
    run.finished_at = j.value("finished_at", std::int64_t{0});
    run.mode = j.value("mode", std::string());
    run.outcome = j.value("outcome", std::string());
    run.message = j.value("message", std::string());
    run.counts = j.value("counts", nlohmann::json::object());
    return run;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

// Positions `cursor` on the job's last key in `dbi` (keys "<job>\0..."); false when it has none.
int seek_last_of(lmdb::Cursor& cursor, std::string_view prefix, MDB_val& key, MDB_val& data) {
  // Every key of the job sorts before "<job>\1" and after anything of a job
  // whose name is a proper prefix ("<job>\0" < "<job>x").
  std::string after(prefix);
  after.back() = '\1';
  key = lmdb::val(after);
  int rc = cursor.get(&key, &data, MDB_SET_RANGE);
  if (rc == 0) {
    rc = cursor.get(&key, &data, MDB_PREV);
  } else if (rc == MDB_NOTFOUND) {
    rc = cursor.get(&key, &data, MDB_LAST);
  }
  if (rc == 0 && !has_prefix(lmdb::view(key), prefix)) return MDB_NOTFOUND;
  return rc;
}

// The next sequence number of `prefix` in the database `cursor` is open on
// (the largest + 1, from 1). Returns 0 or an LMDB code.
int next_seq(lmdb::Cursor& cursor, std::string_view prefix, std::uint64_t& seq) {
  MDB_val k{};
  MDB_val d{};
  const int rc = seek_last_of(cursor, prefix, k, d);
  if (rc != 0 && rc != MDB_NOTFOUND) return rc;
  seq = rc == 0 ? run_seq(lmdb::view(k)) + 1 : 1;
  return 0;
}

}  // namespace

std::string encode_entry(const core::SnapshotEntry& entry) {
  std::string out;
  out.reserve(16 + entry.target_id.size());
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((entry.hash >> (8 * i)) & 0xff));
  put_varint(out, entry.target_id.size());
  out += entry.target_id;
  const std::vector<std::uint8_t> payload = nlohmann::json::to_msgpack(entry.payload);
  out.append(payload.begin(), payload.end());
  return out;
}

std::optional<core::SnapshotEntry> decode_entry(std::string_view bytes) {
  if (bytes.size() < 9) return std::nullopt;
  core::SnapshotEntry entry;
  for (int i = 0; i < 8; ++i) entry.hash |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  bytes.remove_prefix(8);
  std::uint64_t id_size = 0;
  if (!get_varint(bytes, id_size) || id_size > bytes.size()) return std::nullopt;
  entry.target_id = std::string(bytes.substr(0, id_size));
  bytes.remove_prefix(id_size);
  if (bytes.empty()) return std::nullopt;
  entry.payload = nlohmann::json::from_msgpack(bytes.begin(), bytes.end(), /*strict=*/true, /*allow_exceptions=*/false);
  if (entry.payload.is_discarded()) return std::nullopt;
  return entry;
}

// ---------------------------------------------------------------------------

struct StateStore::Impl {
  std::string dir;
  std::string registered;  // key in g_open_dirs
  lmdb::Env env;
  MDB_dbi meta = 0;
  MDB_dbi snapshot = 0;
  MDB_dbi runs = 0;
  MDB_dbi outbox = 0;
  MDB_dbi absent = 0;
  MDB_dbi quarantine = 0;
  std::size_t max_map_size = 0;
  std::atomic<std::size_t> map_size{0};

  // Resizing the map remaps it: no thread may be inside a transaction's page
  // access meanwhile. Reads hold `map_mutex` shared while they touch the map;
  // every write holds `write_mutex` (LMDB runs one writer at a time anyway), and
  // a resize takes both, exclusively. Idle read transactions (a SnapshotReader
  // between calls) survive a remap: LMDB reaches pages through the env's map
  // pointer, and readers copy every value out before releasing the lock.
  std::mutex write_mutex;
  std::shared_mutex map_mutex;

  ~Impl() {
    if (!registered.empty()) {
      std::lock_guard lock(g_open_mutex);
      g_open_dirs.erase(registered);
    }
  }

  std::string where() const { return " in " + dir; }

  void refresh_map_size() {
    MDB_envinfo info{};
    if (mdb_env_info(env.get(), &info) == 0) map_size = info.me_mapsize;
  }

  // Another process grew the map beyond ours: adopt its size (LMDB's documented
  // answer to MDB_MAP_RESIZED). Caller holds write_mutex and no transaction is
  // being used by this thread.
  int adopt_map_size_locked() {
    std::unique_lock map_lock(map_mutex);
    const int rc = mdb_env_set_mapsize(env.get(), 0);
    refresh_map_size();
    return rc;
  }

  int adopt_map_size() {
    std::lock_guard write_lock(write_mutex);
    return adopt_map_size_locked();
  }

  // Doubles the map. Caller holds write_mutex with its write transaction aborted.
  bool grow_locked() {
    std::unique_lock map_lock(map_mutex);
    const std::size_t current = map_size;
    if (current >= max_map_size) return false;
    const std::size_t next = std::min(max_map_size, current * 2);
    if (mdb_env_set_mapsize(env.get(), next) != 0) return false;
    refresh_map_size();
    return true;
  }

  // Begins a read transaction; the caller holds `lock` (shared on map_mutex).
  // On MDB_MAP_RESIZED, releases the lock, adopts the new size and retries.
  lmdb::Txn begin_read(std::shared_lock<std::shared_mutex>& lock, std::string_view what) {
    for (int attempt = 0;; ++attempt) {
      MDB_txn* raw = nullptr;
      const int rc = mdb_txn_begin(env.get(), nullptr, MDB_RDONLY, &raw);
      if (rc == 0) return lmdb::Txn(raw);
      if (rc == MDB_MAP_RESIZED && attempt < kMaxAdoptions) {
        lock.unlock();
        const int adopted = adopt_map_size();
        lock.lock();
        if (adopted == 0) continue;
      }
      throw StateError(lmdb::describe("cannot " + std::string(what) + where(), rc));
    }
  }

  // Runs `body(txn)` in a write transaction and commits it; on MDB_MAP_FULL
  // (from a put or from the commit) aborts, doubles the map and runs it again.
  // `body` returns 0, an LMDB/errno code, or kBodyFailed after setting `failure`.
  template <typename Body>
  core::Status write(const std::string& what, Body&& body) {
    std::lock_guard write_lock(write_mutex);
    int growths = 0;
    int adoptions = 0;
    for (;;) {
      MDB_txn* raw = nullptr;
      int rc = mdb_txn_begin(env.get(), nullptr, 0, &raw);
      if (rc == MDB_MAP_RESIZED && adoptions++ < kMaxAdoptions && adopt_map_size_locked() == 0) continue;
      if (rc != 0) return state_error(write_failure(dir, what, rc));
      lmdb::Txn txn(raw);
      std::optional<core::Error> failure;
      rc = body(txn.get(), failure);
      if (rc == kBodyFailed) return *failure;
      if (rc == 0) rc = txn.commit();
      if (rc == 0) return core::Ok{};
      txn.abort();
      if (rc == MDB_MAP_FULL) {
        if (growths++ < kMaxGrowthsPerCommit && grow_locked()) continue;
        return state_error(lmdb::describe("cannot " + what + where(), rc) + " (the map is at " +
                           std::to_string(map_size) + " bytes and may not grow further)");
      }
      return state_error(write_failure(dir, what, rc));
    }
  }

  // Runs `fn(txn)` in a short read transaction, holding the map shared.
  template <typename Fn>
  auto read(std::string_view what, Fn&& fn) {
    std::shared_lock lock(map_mutex);
    lmdb::Txn txn = begin_read(lock, what);
    return fn(txn.get());
  }

  core::SnapshotEntry decode_or_throw(std::string_view bytes, std::string_view job, std::string_view key) const {
    auto entry = decode_entry(bytes);
    if (!entry) {
      throw StateError("snapshot entry of job '" + std::string(job) + "' for key '" + std::string(key) + "'" + where() +
                       " cannot be decoded (corrupt state?)");
    }
    return std::move(*entry);
  }
};

// ---------------------------------------------------------------------------

struct SnapshotReader::Impl {
  StateStore::Impl* store = nullptr;
  std::string job;
  std::string prefix;
  lmdb::Txn txn;
};

SnapshotReader::SnapshotReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SnapshotReader::~SnapshotReader() {
  if (impl_ && impl_->txn) {
    // Aborting a read transaction only releases its reader slot.
    impl_->txn.abort();
  }
}

std::optional<core::SnapshotEntry> SnapshotReader::find(std::string_view key) {
  auto& s = *impl_->store;
  std::shared_lock lock(s.map_mutex);
  const std::string full = impl_->prefix + std::string(key);
  MDB_val k = lmdb::val(full);
  MDB_val d{};
  const int rc = mdb_get(impl_->txn.get(), s.snapshot, &k, &d);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  if (rc != 0) throw StateError(lmdb::describe("cannot read the snapshot of job '" + impl_->job + "'" + s.where(), rc));
  return s.decode_or_throw(lmdb::view(d), impl_->job, key);
}

void SnapshotReader::refresh() {
  auto& s = *impl_->store;
  std::shared_lock lock(s.map_mutex);
  mdb_txn_reset(impl_->txn.get());
  const int rc = mdb_txn_renew(impl_->txn.get());
  if (rc == 0) return;
  // A failed renew leaves a finished transaction: drop it and begin afresh
  // (begin_read adopts a map another process grew).
  impl_->txn.abort();
  if (rc != MDB_MAP_RESIZED) {
    throw StateError(lmdb::describe("cannot refresh the snapshot reader of job '" + impl_->job + "'" + s.where(), rc));
  }
  impl_->txn = s.begin_read(lock, "refresh the snapshot reader of job '" + impl_->job + "'");
}

void SnapshotReader::for_each(const std::function<bool(std::string_view, const core::SnapshotEntry&)>& fn) {
  auto& s = *impl_->store;
  const std::string& prefix = impl_->prefix;
  std::string resume = prefix;  // the full LMDB key to continue from
  bool skip_resume = false;     // `resume` was already delivered
  std::vector<std::pair<std::string, core::SnapshotEntry>> chunk;
  for (;;) {
    bool done = false;
    chunk.clear();
    {
      // The lock is held only while copying a chunk out, so callbacks may
      // commit (which can grow, i.e. remap, the map).
      std::shared_lock lock(s.map_mutex);
      lmdb::Cursor cursor;
      int rc = cursor.open(impl_->txn.get(), s.snapshot);
      if (rc != 0) throw StateError(lmdb::describe("cannot read the snapshot of job '" + impl_->job + "'" + s.where(), rc));
      MDB_val k = lmdb::val(resume);
      MDB_val d{};
      rc = cursor.get(&k, &d, MDB_SET_RANGE);
      if (rc == 0 && skip_resume && lmdb::view(k) == resume) rc = cursor.get(&k, &d, MDB_NEXT);
      while (rc == 0 && chunk.size() < kForEachChunk) {
        const std::string_view full = lmdb::view(k);
        if (!has_prefix(full, prefix)) break;
        const std::string_view key = full.substr(prefix.size());
        chunk.emplace_back(std::string(key), s.decode_or_throw(lmdb::view(d), impl_->job, key));
        rc = cursor.get(&k, &d, MDB_NEXT);
      }
      if (rc != 0 && rc != MDB_NOTFOUND) {
        throw StateError(lmdb::describe("cannot read the snapshot of job '" + impl_->job + "'" + s.where(), rc));
      }
      done = rc != 0 || !has_prefix(lmdb::view(k), prefix);
    }
    for (const auto& [key, entry] : chunk) {
      if (!fn(key, entry)) return;
    }
    if (done || chunk.empty()) return;
    resume = prefix + chunk.back().first;
    skip_resume = true;
  }
}

// ---------------------------------------------------------------------------

StateStore::StateStore(std::string dir, std::unique_ptr<Impl> impl) : dir_(std::move(dir)), impl_(std::move(impl)) {}

StateStore::~StateStore() = default;

core::Result<std::unique_ptr<StateStore>> StateStore::open(const std::string& state_dir) {
  return open(state_dir, StateStoreOptions{});
}

core::Result<std::unique_ptr<StateStore>> StateStore::open(const std::string& state_dir,
                                                          const StateStoreOptions& options) {
  if (auto problem = make_dirs(state_dir)) {
    return state_error(*problem);
  }
  auto impl = std::make_unique<Impl>();
  impl->dir = state_dir;
  impl->max_map_size = std::max(options.max_map_size, options.initial_map_size);
  {
    char* real = ::realpath(state_dir.c_str(), nullptr);
    std::string canonical = real != nullptr ? std::string(real) : state_dir;
    std::free(real);
    std::lock_guard lock(g_open_mutex);
    if (!g_open_dirs.insert(canonical).second) {
      return state_error("the state in " + state_dir + " is already open in this process");
    }
    impl->registered = std::move(canonical);
  }

  MDB_env* raw = nullptr;
  int rc = mdb_env_create(&raw);
  if (rc != 0) return state_error(lmdb::describe("cannot create an LMDB environment for " + state_dir, rc));
  impl->env = lmdb::Env(raw);
  const auto fail = [&](std::string_view what, int code) {
    // Opening a new state writes its first pages: the disk may be full already.
    return state_error(write_failure(state_dir, std::string(what) + " the state", code));
  };
  if ((rc = mdb_env_set_maxdbs(raw, kMaxDbs)) != 0) return fail("configure", rc);
  if ((rc = mdb_env_set_mapsize(raw, options.initial_map_size)) != 0) return fail("configure", rc);
  // LMDB sizes a new lock file with ftruncate and writes it through a shared
  // map: on a full disk that write is a SIGBUS, not an error. Allocating the
  // file first turns a full disk into ENOSPC here. fallocate(2) never changes
  // data, so racing another process that initialises the file is harmless;
  // filesystems without it keep LMDB's own behaviour.
  {
    const std::string lock_path = state_dir + "/lock.mdb";
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return fail("open", errno);
    struct stat st {};
    int err = ::fstat(fd, &st) == 0 ? 0 : errno;
    if (err == 0 && st.st_size < kLockFileBytes && ::fallocate(fd, 0, 0, kLockFileBytes) != 0 && errno != EOPNOTSUPP) {
      err = errno;
    }
    ::close(fd);
    if (err != 0) return fail("open", err);
  }
  // MDB_NOTLS: reader slots belong to transactions, not threads, so a thread
  // can hold a SnapshotReader and write, and readers can be reset and renewed.
  if ((rc = mdb_env_open(raw, state_dir.c_str(), MDB_NOTLS, 0600)) != 0) return fail("open", rc);
  // Clear reader slots left by processes that died mid-read; they would pin old
  // pages and make the file grow.
  int dead = 0;
  if ((rc = mdb_reader_check(raw, &dead)) != 0) return fail("check the readers of", rc);
  impl->refresh_map_size();

  Impl& s = *impl;
  const core::Status init = s.write("initialise the state", [&](MDB_txn* txn, std::optional<core::Error>& failure) {
    int code = mdb_dbi_open(txn, "meta", MDB_CREATE, &s.meta);
    if (code != 0) return code;
    MDB_val k = lmdb::val(kSchemaKey);
    MDB_val d{};
    code = mdb_get(txn, s.meta, &k, &d);
    const std::string expected = std::to_string(kSchemaVersion);
    if (code == MDB_NOTFOUND) {
      MDB_val v = lmdb::val(expected);
      code = mdb_put(txn, s.meta, &k, &v, 0);
    } else if (code == 0 && lmdb::view(d) != expected) {
      failure = state_error("state in " + state_dir + " has schema version " + lmdb::to_string(d) +
                            "; this dirsync expects " + expected);
      return kBodyFailed;
    }
    if (code != 0) return code;
    if ((code = mdb_dbi_open(txn, "snapshot", MDB_CREATE, &s.snapshot)) != 0) return code;
    if ((code = mdb_dbi_open(txn, "runs", MDB_CREATE, &s.runs)) != 0) return code;
    if ((code = mdb_dbi_open(txn, "absent", MDB_CREATE, &s.absent)) != 0) return code;
    if ((code = mdb_dbi_open(txn, "quarantine", MDB_CREATE, &s.quarantine)) != 0) return code;
    return mdb_dbi_open(txn, "outbox", MDB_CREATE, &s.outbox);
  });
  if (!init.ok()) return init.error();
  return std::unique_ptr<StateStore>(new StateStore(state_dir, std::move(impl)));
}

std::size_t StateStore::map_size() const { return impl_->map_size; }

std::unique_ptr<SnapshotReader> StateStore::reader(const std::string& job) {
  auto impl = std::make_unique<SnapshotReader::Impl>();
  impl->store = impl_.get();
  impl->job = job;
  impl->prefix = prefix_of(job);
  {
    std::shared_lock lock(impl_->map_mutex);
    impl->txn = impl_->begin_read(lock, "read the snapshot of job '" + job + "'");
  }
  return std::unique_ptr<SnapshotReader>(new SnapshotReader(std::move(impl)));
}

std::optional<core::SnapshotEntry> StateStore::get(const std::string& job, std::string_view key) {
  Impl& s = *impl_;
  const std::string what = "read the snapshot of job '" + job + "'";
  return s.read(what, [&](MDB_txn* txn) -> std::optional<core::SnapshotEntry> {
    const std::string full = prefix_of(job) + std::string(key);
    MDB_val k = lmdb::val(full);
    MDB_val d{};
    const int rc = mdb_get(txn, s.snapshot, &k, &d);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    if (rc != 0) throw StateError(lmdb::describe("cannot " + what + s.where(), rc));
    return s.decode_or_throw(lmdb::view(d), job, key);
  });
}

std::size_t StateStore::snapshot_size(const std::string& job) {
  Impl& s = *impl_;
  const std::string what = "count the snapshot of job '" + job + "'";
  return s.read(what, [&](MDB_txn* txn) {
    const std::string prefix = prefix_of(job);
    lmdb::Cursor cursor;
    int rc = cursor.open(txn, s.snapshot);
    if (rc != 0) throw StateError(lmdb::describe("cannot " + what + s.where(), rc));
    MDB_val k = lmdb::val(prefix);
    MDB_val d{};
    std::size_t n = 0;
    for (rc = cursor.get(&k, &d, MDB_SET_RANGE); rc == 0 && has_prefix(lmdb::view(k), prefix);
         rc = cursor.get(&k, &d, MDB_NEXT)) {
      ++n;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) throw StateError(lmdb::describe("cannot " + what + s.where(), rc));
    return n;
  });
}

core::Status StateStore::commit(const std::string& job, const std::vector<SnapshotWrite>& writes) {
  Settlement settlement;
  settlement.writes = writes;
  return settle(job, settlement);
}

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string intent_key(std::string_view job, std::uint64_t id) { return run_key(job, id); }

std::string encode_intent(std::int64_t created_at, const std::string& note, const std::vector<IntentItem>& items) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& item : items) {
    list.push_back({item.key, static_cast<int>(item.op), item.hash, item.target_id, item.payload});
  }
  const nlohmann::json doc = {{"t", created_at}, {"n", note}, {"i", std::move(list)}};
  const auto bytes = nlohmann::json::to_msgpack(doc);
  return std::string(bytes.begin(), bytes.end());
}

std::optional<Intent> decode_intent(std::uint64_t id, std::string_view bytes) {
  try {
    const auto doc = nlohmann::json::from_msgpack(bytes.begin(), bytes.end());
    Intent intent;
    intent.id = id;
    intent.created_at = doc.at("t").get<std::int64_t>();
    intent.note = doc.at("n").get<std::string>();
    for (const auto& row : doc.at("i")) {
      IntentItem item;
      item.key = row.at(0).get<std::string>();
      const int op = row.at(1).get<int>();
      if (op < 0 || op > 2) return std::nullopt;
      item.op = static_cast<core::Op>(op);
      item.hash = row.at(2).get<std::uint64_t>();
      item.target_id = row.at(3).get<std::string>();
      item.payload = row.at(4);
      intent.items.push_back(std::move(item));
    }
    return intent;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::string encode_quarantine(const QuarantineEntry& e) {
  const nlohmann::json doc = {e.rejections, e.hash, e.message, e.first_at, e.last_at};
  const auto bytes = nlohmann::json::to_msgpack(doc);
  return std::string(bytes.begin(), bytes.end());
}

std::optional<QuarantineEntry> decode_quarantine(std::string_view bytes) {
  try {
    const auto doc = nlohmann::json::from_msgpack(bytes.begin(), bytes.end());
    QuarantineEntry e;
    e.rejections = doc.at(0).get<std::uint32_t>();
    e.hash = doc.at(1).get<std::uint64_t>();
    e.message = doc.at(2).get<std::string>();
    e.first_at = doc.at(3).get<std::int64_t>();
    e.last_at = doc.at(4).get<std::int64_t>();
    return e;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

}  // namespace

core::Status StateStore::settle(const std::string& job, const Settlement& settlement) {
  Impl& s = *impl_;
  const std::string prefix = prefix_of(job);
  const auto max_key = static_cast<std::size_t>(mdb_env_get_maxkeysize(s.env.get()));
  for (const auto& w : settlement.writes) {
    if (prefix.size() + w.key.size() > max_key) {
      return state_error("cannot commit the snapshot of job '" + job + "'" + s.where() + ": key '" +
                         w.key.substr(0, 40) + "...' is " + std::to_string(w.key.size()) +
                         " bytes long; the state allows " + std::to_string(max_key - prefix.size()));
    }
  }
  // Encode once, outside the transaction: a retry after MDB_MAP_FULL reuses it.
  const auto& writes = settlement.writes;
  std::vector<std::string> values(writes.size());
  for (std::size_t i = 0; i < writes.size(); ++i) {
    if (writes[i].entry) values[i] = encode_entry(*writes[i].entry);
  }
  std::string pending;
  if (settlement.intent_id != 0 && !settlement.still_pending.empty()) {
    pending = encode_intent(unix_now(), settlement.pending_note, settlement.still_pending);
  }
  std::vector<std::string> quarantined(settlement.quarantine.size());
  for (std::size_t i = 0; i < settlement.quarantine.size(); ++i) {
    if (settlement.quarantine[i].second) quarantined[i] = encode_quarantine(*settlement.quarantine[i].second);
  }
  return s.write("commit the snapshot of job '" + job + "'", [&](MDB_txn* txn, std::optional<core::Error>&) {
    std::string full;
    // Deletes a key; an absent key is not an error.
    auto erase = [&](MDB_dbi dbi, const std::string& k) {
      MDB_val mk = lmdb::val(k);
      const int rc = mdb_del(txn, dbi, &mk, nullptr);
      return rc == MDB_NOTFOUND ? 0 : rc;
    };
    auto put = [&](MDB_dbi dbi, const std::string& k, std::string_view v) {
      MDB_val mk = lmdb::val(k);
      MDB_val mv = lmdb::val(v);
      return mdb_put(txn, dbi, &mk, &mv, 0);
    };
    for (std::size_t i = 0; i < writes.size(); ++i) {
      full = prefix + writes[i].key;
      const int rc = writes[i].entry ? put(s.snapshot, full, values[i]) : erase(s.snapshot, full);
      if (rc != 0) return rc;
    }
    if (settlement.intent_id != 0) {
      const std::string k = intent_key(job, settlement.intent_id);
      const int rc = pending.empty() ? erase(s.outbox, k) : put(s.outbox, k, pending);
      if (rc != 0) return rc;
    }
    for (std::size_t i = 0; i < settlement.quarantine.size(); ++i) {
      full = prefix + settlement.quarantine[i].first;
      if (full.size() > max_key) continue;  // such a key never reached the snapshot either
      const int rc = settlement.quarantine[i].second ? put(s.quarantine, full, quarantined[i])
                                                     : erase(s.quarantine, full);
      if (rc != 0) return rc;
    }
    return 0;
  });
}

core::Result<std::uint64_t> StateStore::add_intent(const std::string& job, const std::vector<IntentItem>& items) {
  Impl& s = *impl_;
  const std::string prefix = prefix_of(job);
  const std::string value = encode_intent(unix_now(), {}, items);
  std::uint64_t id = 0;
  const core::Status status =
      s.write("record an intent of job '" + job + "' in the outbox", [&](MDB_txn* txn, std::optional<core::Error>&) {
        lmdb::Cursor cursor;
        int rc = cursor.open(txn, s.outbox);
        if (rc == 0) rc = next_seq(cursor, prefix, id);
        if (rc != 0) return rc;
        cursor.close();
        const std::string key = intent_key(job, id);
        MDB_val ik = lmdb::val(key);
        MDB_val iv = lmdb::val(value);
        return mdb_put(txn, s.outbox, &ik, &iv, 0);
      });
  if (!status.ok()) return status.error();
  return id;
}

std::vector<Intent> StateStore::intents(const std::string& job) {
  Impl& s = *impl_;
  const std::string what = "read the outbox of job '" + job + "'";
  return s.read(what, [&](MDB_txn* txn) {
    std::vector<Intent> out;
    const std::string prefix = prefix_of(job);
    lmdb::Cursor cursor;
    int rc = cursor.open(txn, s.outbox);
    if (rc != 0) throw StateError(lmdb::describe("cannot " + what + s.where(), rc));
    MDB_val k = lmdb::val(prefix);
    MDB_val d{};
    for (rc = cursor.get(&k, &d, MDB_SET_RANGE); rc == 0 && has_prefix(lmdb::view(k), prefix);
         rc = cursor.get(&k, &d, MDB_NEXT)) {
      auto intent = decode_intent(run_seq(lmdb::view(k)), lmdb::view(d));
      if (!intent) throw StateError("an intent of job '" + job + "'" + s.where() + " cannot be decoded (corrupt state?)");
      out.push_back(std::move(*intent));
    }
    if (rc != 0 && rc != MDB_NOTFOUND) throw StateError(lmdb::describe("cannot " + what + s.where(), rc));
    return out;
  });
}

std::map<std::string, QuarantineEntry> StateStore::quarantine(const std::string& job) {
  Impl& s = *impl_;
  const std::string what = "read the quarantine of job '" + job + "'";
  return s.read(what, [&](MDB_txn* txn) {
    std::map<std::string, QuarantineEntry> out;
    const std::string prefix = prefix_of(job);
    lmdb::Cursor cursor;
    int rc = cursor.open(txn, s.quarantine);
    if (rc != 0) throw StateError(lmdb::describe("cannot " + what + s.where(), rc));
    MDB_val k = lmdb::val(prefix);
    MDB_val d{};
    for (rc = cursor.get(&k, &d, MDB_SET_RANGE); rc == 0 && has_prefix(lmdb::view(k), prefix);
         rc = cursor.get(&k, &d, MDB_NEXT)) {
      auto entry = decode_quarantine(lmdb::view(d));
      if (!entry) {
        throw StateError("a quarantine entry of job '" + job + "'" + s.where() + " cannot be decoded (corrupt state?)");
      }
      out.emplace(std::string(lmdb::view(k).substr(prefix.size())), std::move(*entry));
    }
    if (rc != 0 && rc != MDB_NOTFOUND) throw StateError(lmdb::describe("cannot " + what + s.where(), rc));
    return out;
  });
}

core::Result<std::size_t> StateStore::release(const std::string& job, const std::vector<std::string>& keys) {
  Impl& s = *impl_;
  const std::string prefix = prefix_of(job);
  std::size_t cleared = 0;
  const core::Status status =
      s.write("release quarantined users of job '" + job + "'", [&](MDB_txn* txn, std::optional<core::Error>&) {
        cleared = 0;
        std::vector<std::string> doomed;
        if (keys.empty()) {
          lmdb::Cursor cursor;
          int rc = cursor.open(txn, s.quarantine);
          if (rc != 0) return rc;
          MDB_val k = lmdb::val(prefix);
          MDB_val d{};
          for (rc = cursor.get(&k, &d, MDB_SET_RANGE); rc == 0 && has_prefix(lmdb::view(k), prefix);
               rc = cursor.get(&k, &d, MDB_NEXT)) {
            doomed.push_back(lmdb::to_string(k));
          }
          if (rc != 0 && rc != MDB_NOTFOUND) return rc;
        } else {
          for (const auto& key : keys) doomed.push_back(prefix + key);
        }
        for (const auto& key : doomed) {
          MDB_val dk = lmdb::val(key);
          const int rc = mdb_del(txn, s.quarantine, &dk, nullptr);
          if (rc == 0) ++cleared;
          else if (rc != MDB_NOTFOUND) return rc;
        }
        return 0;
      });
  if (!status.ok()) return status.error();
  return cleared;
}

core::Result<std::uint64_t> StateStore::record_run(const std::string& job, RunRecord run, std::size_t keep) {
  Impl& s = *impl_;
  const std::string prefix = prefix_of(job);
  keep = std::max<std::size_t>(keep, 1);
  std::uint64_t id = 0;
  const core::Status status =
      s.write("record a run of job '" + job + "'", [&](MDB_txn* txn, std::optional<core::Error>&) {
        lmdb::Cursor cursor;
        int rc = cursor.open(txn, s.runs);
        if (rc == 0) rc = next_seq(cursor, prefix, id);
        if (rc != 0) return rc;
        MDB_val k{};
        MDB_val d{};
        run.id = id;
        const std::string key = run_key(job, id);
        const std::string value = run_to_json(run).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        MDB_val rk = lmdb::val(key);
        MDB_val rv = lmdb::val(value);
        if ((rc = mdb_put(txn, s.runs, &rk, &rv, 0)) != 0) return rc;

        // Oldest first: collect the keys beyond `keep`, then delete them.
        std::vector<std::string> keys;
        k = lmdb::val(prefix);
        for (rc = cursor.get(&k, &d, MDB_SET_RANGE); rc == 0 && has_prefix(lmdb::view(k), prefix);
             rc = cursor.get(&k, &d, MDB_NEXT)) {
          keys.push_back(lmdb::to_string(k));
        }
        if (rc != 0 && rc != MDB_NOTFOUND) return rc;
        cursor.close();
        for (std::size_t i = 0; i + keep < keys.size(); ++i) {
          MDB_val dk = lmdb::val(keys[i]);
          if ((rc = mdb_del(txn, s.runs, &dk, nullptr)) != 0) return rc;
        }
        return 0;
      });
  if (!status.ok()) return status.error();
  return id;
}

std::map<std::string, std::uint32_t> StateStore::absences(const std::string& job) {
  Impl& s = *impl_;
  const std::string what = "read the absence counts of job '" + job + "'";
  return s.read(what, [&](MDB_txn* txn) {
    std::map<std::string, std::uint32_t> out;
    const std::string prefix = prefix_of(job);
    lmdb::Cursor cursor;
    int rc = cursor.open(txn, s.absent);
    if (rc != 0) throw StateError(lmdb::describe("cannot " + what + s.where(), rc));
    MDB_val k = lmdb::val(prefix);
    MDB_val d{};
    for (rc = cursor.get(&k, &d, MDB_SET_RANGE); rc == 0 && has_prefix(lmdb::view(k), prefix);
         rc = cursor.get(&k, &d, MDB_NEXT)) {
      std::uint32_t count = 0;
      if (d.mv_size != sizeof count) throw StateError("an absence count of job '" + job + "'" + s.where() + " is corrupt");
      std::memcpy(&count, d.mv_data, sizeof count);
      out.emplace(std::string(lmdb::view(k).substr(prefix.size())), count);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) throw StateError(lmdb::describe("cannot " + what + s.where(), rc));
    return out;
  });
}

core::Status StateStore::set_absences(const std::string& job, const std::map<std::string, std::uint32_t>& counts) {
  Impl& s = *impl_;
  const std::string prefix = prefix_of(job);
  return s.write("record the absence counts of job '" + job + "'", [&](MDB_txn* txn, std::optional<core::Error>&) {
    lmdb::Cursor cursor;
    int rc = cursor.open(txn, s.absent);
    if (rc != 0) return rc;
    std::vector<std::string> old;
    MDB_val k = lmdb::val(prefix);
    MDB_val d{};
    for (rc = cursor.get(&k, &d, MDB_SET_RANGE); rc == 0 && has_prefix(lmdb::view(k), prefix);
         rc = cursor.get(&k, &d, MDB_NEXT)) {
      old.push_back(lmdb::to_string(k));
    }
    if (rc != 0 && rc != MDB_NOTFOUND) return rc;
    cursor.close();
    for (const auto& key : old) {
      MDB_val dk = lmdb::val(key);
      if ((rc = mdb_del(txn, s.absent, &dk, nullptr)) != 0) return rc;
    }
    std::string full;
    for (const auto& [key, count] : counts) {
      full = prefix + key;
      MDB_val ck = lmdb::val(full);
      MDB_val cv{sizeof count, const_cast<std::uint32_t*>(&count)};
      if ((rc = mdb_put(txn, s.absent, &ck, &cv, 0)) != 0) return rc;
    }
    return 0;
  });
}

std::vector<RunRecord> StateStore::runs(const std::string& job, std::size_t limit) {
  Impl& s = *impl_;
  const std::string what = "read the runs of job '" + job + "'";
  return s.read(what, [&](MDB_txn* txn) {
    std::vector<RunRecord> out;
    const std::string prefix = prefix_of(job);
    lmdb::Cursor cursor;
    int rc = cursor.open(txn, s.runs);
    if (rc != 0) throw StateError(lmdb::describe("cannot " + what + s.where(), rc));
    MDB_val k{};
    MDB_val d{};
    for (rc = seek_last_of(cursor, prefix, k, d); rc == 0 && out.size() < limit && has_prefix(lmdb::view(k), prefix);
         rc = cursor.get(&k, &d, MDB_PREV)) {
      auto run = run_from_json(lmdb::view(d));
      if (!run) throw StateError("a run record of job '" + job + "'" + s.where() + " cannot be decoded (corrupt state?)");
      out.push_back(std::move(*run));
    }
    if (rc != 0 && rc != MDB_NOTFOUND) throw StateError(lmdb::describe("cannot " + what + s.where(), rc));
    return out;
  });
}

// ---------------------------------------------------------------------------

namespace {

// The pid in a lock file, or 0. The holder writes it right after locking, so a
// reader that loses that race retries briefly.
long read_pid(int fd) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n > 0) {
      char* end = nullptr;
      const long pid = std::strtol(buf, &end, 10);
      if (pid > 0 && end != buf) return pid;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

}  // namespace

JobLock::~JobLock() {
  // Closing the only descriptor of this open file description releases the flock.
  if (fd_ >= 0) ::close(fd_);
}

core::Result<std::unique_ptr<JobLock>> JobLock::acquire(const std::string& state_dir, const std::string& job) {
  // Job names are validated by config; a name that could escape the locks
  // directory or hide its file is refused here too.
  if (job.empty() || job.front() == '.' || job.find('/') != std::string::npos ||
      job.find('\0') != std::string::npos) {
    return core::Error{core::ErrorKind::kInvalid, "job name '" + job + "' cannot name a lock file"};
  }
  const std::string dir = state_dir + "/locks";
  if (auto problem = make_dirs(dir)) return state_error(*problem);
  const std::string path = dir + "/" + job + ".lock";
  const int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return state_error("cannot open lock file " + path + ": " + errno_text(errno));
  int rc = 0;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      const long pid = read_pid(fd);
      ::close(fd);
      return core::Error{core::ErrorKind::kBusy, "job '" + job + "' is running (pid " +
                                                     (pid > 0 ? std::to_string(pid) : std::string("unknown")) + ")"};
    }
    ::close(fd);
    return state_error("cannot lock " + path + ": " + errno_text(err));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int err = errno;
    ::close(fd);
    return state_error("cannot write the pid to lock file " + path + ": " + errno_text(err));
  }
  return std::unique_ptr<JobLock>(new JobLock(fd));
}

}  // namespace dirsync::state
