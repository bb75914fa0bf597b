#pragma once
// The source contract. A Source is a configured connector; each pull starts a
// fresh Pull that yields pages until one is marked `last`.
//
// Contract:
// - End of data is a value (`Page::last`), never an error.
// - A pull that returns an Error at any point is incomplete: the engine applies
//   the creates and updates it has seen but computes no detach.
// - Per-record problems are data (`Page::issues`), never an Error: a bad row is
//   reported and the pull goes on.
// - A Pull is used from one thread at a time.
#include <memory>
#include <string>
#include <vector>

#include "core/record.h"
#include "core/result.h"

namespace dirsync::core {

struct RecordIssue {
  // The record's key when it could be read: that key is protected from detach
  // in this run. Empty when the key itself could not be read: the pull is then
  // incomplete and no detach happens at all.
  std::string key;
  std::string origin;   // "users.csv:12"
  std::string message;  // what is wrong, e.g. "unterminated quoted field"
};

struct Page {
  std::vector<Record> records;
  std::vector<RecordIssue> issues;
  bool last = false;  // true on the final page of a complete pull
};

class Pull {
 public:
  virtual ~Pull() = default;
  // The next page. After a page with `last == true` the pull is over and must
  // not be called again.
  virtual Result<Page> next() = 0;
};

class Source {
 public:
  virtual ~Source() = default;
  // Starts a pull; opens files or connections lazily or here. Errors opening the
  // source come back as an Error (the pull is then incomplete, nothing detaches).
  virtual Result<std::unique_ptr<Pull>> start() = 0;
  // A short description for logs and status, e.g. "csv /srv/hr/users.csv". Never secrets.
  virtual std::string describe() const = 0;
};

}  // namespace dirsync::core
