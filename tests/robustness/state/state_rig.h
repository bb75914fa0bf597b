#pragma once
// Shared by the state robustness tests: a scratch directory, the files of a
// CSV → file-target job, and raw access to the LMDB environment through the C
// API (to see reader slots and to plant another schema version, as nothing in
// dirsync itself can).
//
// Not thread safe; one per test.
#include <gtest/gtest.h>
#include <lmdb.h>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace dirsync::testing {

// A fresh directory under /tmp, mode 0755 so that the unprivileged users of the
// permission tests can reach what is in it; removed at the end.
class Scratch {
 public:
  Scratch() {
    std::string tmpl = "/tmp/dirsync-state-rig-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
    std::filesystem::permissions(path_, std::filesystem::perms(0755));
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

  // Writes `content` to `name` and gives it `mode` (whatever the umask).
  std::string write(const std::string& name, const std::string& content, mode_t mode = 0644) const {
    const std::string p = *this / name;
    std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
    if (::chmod(p.c_str(), mode) != 0) ADD_FAILURE() << "chmod " << p << " failed";
    return p;
  }

 private:
  std::filesystem::path path_;
};

// `n` users (E1..En, userI@example.com), one CSV row each.
inline std::string users_csv(int n) {
  std::string csv = "employee_id,first_name,last_name,email\n";
  for (int i = 1; i <= n; ++i) {
    const std::string s = std::to_string(i);
    csv += "E" + s + ",First" + s + ",Last" + s + ",user" + s + "@example.com\n";
  }
  return csv;
}

// Job `hr-to-file`: users.csv → a JSON-lines file, state in `state_dir`.
inline std::string file_job_config(const std::string& state_dir, const std::string& out_file) {
  return "state_dir: " + state_dir +
         "\n"
         "sources:\n"
         "  hr: {type: csv, path: users.csv, key: employee_id}\n"
         "targets:\n"
         "  out: {type: file, path: " +
         out_file +
         "}\n"
         "jobs:\n"
         "  hr-to-file:\n"
         "    source: hr\n"
         "    target: out\n"
         "    mapping:\n"
         "      name: \"{first_name} {last_name}\"\n"
         "      email: \"{email}\"\n";
}

// The state's LMDB environment opened through the C API. While it is open the
// environment's lock file is shared, as it is while a daemon runs: a process
// opening it then does not reset the reader table (an exclusive opener does).
class RawEnv {
 public:
  RawEnv(const std::string& dir, unsigned flags) {
    EXPECT_EQ(mdb_env_create(&env_), 0);
    EXPECT_EQ(mdb_env_set_maxdbs(env_, 8), 0);
    const int rc = mdb_env_open(env_, dir.c_str(), flags | MDB_NOTLS, 0600);
    EXPECT_EQ(rc, 0) << mdb_strerror(rc);
  }
  ~RawEnv() { mdb_env_close(env_); }
  RawEnv(const RawEnv&) = delete;
  RawEnv& operator=(const RawEnv&) = delete;

  // The pid of every occupied reader slot (mdb_reader_list's rows).
  std::vector<long> reader_pids() const {
    std::string table;
    mdb_reader_list(
        env_,
        [](const char* line, void* ctx) {
          *static_cast<std::string*>(ctx) += line;
          return 0;
        },
        &table);
    std::vector<long> pids;
    std::size_t start = 0;
    while (start < table.size()) {
      const std::size_t end = std::min(table.find('\n', start), table.size());
      const std::string line = table.substr(start, end - start);
      start = end + 1;
      try {
        std::size_t used = 0;
        const long pid = std::stol(line, &used);  // the header ("pid thread txnid") and "(no active readers)" are not numbers
        if (used > 0) pids.push_back(pid);
      } catch (const std::exception&) {
      }
    }
    return pids;
  }

  // Writes meta[key] = value in one transaction.
  void put_meta(const std::string& key, const std::string& value) {
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env_, nullptr, 0, &txn), 0);
    MDB_dbi meta = 0;
    ASSERT_EQ(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v{value.size(), const_cast<char*>(value.data())};
    ASSERT_EQ(mdb_put(txn, meta, &k, &v, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
  }

  std::string get_meta(const std::string& key) const {
    MDB_txn* txn = nullptr;
    EXPECT_EQ(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), 0);
    MDB_dbi meta = 0;
    std::string value = "<none>";
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v{};
    if (mdb_dbi_open(txn, "meta", 0, &meta) == 0 && mdb_get(txn, meta, &k, &v) == 0) {
      value.assign(static_cast<const char*>(v.mv_data), v.mv_size);
    }
    mdb_txn_abort(txn);
    return value;
  }

 private:
  MDB_env* env_ = nullptr;
};

}  // namespace dirsync::testing
