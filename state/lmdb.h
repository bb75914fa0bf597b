#pragma once
// Small RAII wrappers over liblmdb's C API, private to the state module.
//
// Contract:
// - `Txn` aborts on destruction unless `commit()` succeeded; after commit or
//   abort it holds nothing.
// - `Cursor` must not outlive the transaction it was opened in (LMDB's rule;
//   declare it after the Txn so it is destroyed first).
// - `MDB_val`s returned by LMDB point into the memory map and are valid only
//   until the transaction ends or the map is resized: copy them (`to_string`).
#include <lmdb.h>

#include <string>
#include <string_view>
#include <utility>

namespace dirsync::state::lmdb {

inline MDB_val val(std::string_view bytes) {
  // LMDB never writes through mv_data for keys and values passed in.
  return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}

inline std::string_view view(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

inline std::string to_string(const MDB_val& v) { return std::string(view(v)); }

// "what failed: mdb_strerror(rc)".
inline std::string describe(std::string_view what, int rc) {
  return std::string(what) + ": " + mdb_strerror(rc);
}

class Env {
 public:
  Env() = default;
  explicit Env(MDB_env* env) : env_(env) {}
  ~Env() {
    if (env_ != nullptr) mdb_env_close(env_);
  }
  Env(Env&& other) noexcept : env_(std::exchange(other.env_, nullptr)) {}
  Env& operator=(Env&& other) noexcept {
    if (this != &other) {
      if (env_ != nullptr) mdb_env_close(env_);
      env_ = std::exchange(other.env_, nullptr);
    }
    return *this;
  }
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* get() const { return env_; }

 private:
  MDB_env* env_ = nullptr;
};

class Txn {
 public:
  Txn() = default;
  explicit Txn(MDB_txn* txn) : txn_(txn) {}
  ~Txn() { abort(); }
  Txn(Txn&& other) noexcept : txn_(std::exchange(other.txn_, nullptr)) {}
  Txn& operator=(Txn&& other) noexcept {
    if (this != &other) {
      abort();
      txn_ = std::exchange(other.txn_, nullptr);
    }
    return *this;
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  MDB_txn* get() const { return txn_; }
  explicit operator bool() const { return txn_ != nullptr; }

  // The transaction is gone afterwards whatever the outcome (LMDB frees it).
  int commit() { return mdb_txn_commit(std::exchange(txn_, nullptr)); }
  void abort() {
    if (txn_ != nullptr) mdb_txn_abort(std::exchange(txn_, nullptr));
  }

 private:
  MDB_txn* txn_ = nullptr;
};

class Cursor {
 public:
  Cursor() = default;
  ~Cursor() { close(); }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  int open(MDB_txn* txn, MDB_dbi dbi) {
    close();
    return mdb_cursor_open(txn, dbi, &cursor_);
  }
  void close() {
    if (cursor_ != nullptr) mdb_cursor_close(std::exchange(cursor_, nullptr));
  }
  int get(MDB_val* key, MDB_val* data, MDB_cursor_op op) { return mdb_cursor_get(cursor_, key, data, op); }
  int del() { return mdb_cursor_del(cursor_, 0); }
  MDB_cursor* get() const { return cursor_; }

 private:
  MDB_cursor* cursor_ = nullptr;
};

}  // namespace dirsync::state::lmdb
