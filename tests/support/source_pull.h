#pragma once
// Runs a whole pull of a core::Source and keeps everything it yielded, for the
// source tests (ldap, scim, http_json). Header-only; link dirsync::core.
//
// Contract:
// - `error` set: start() or a next() returned that Error; the records and
//   issues of the pages before it are kept, `complete` is false.
// - `complete`: a page with `last` arrived (and no Error before it).
// - A pull that neither ends nor fails within `max_pages` pages is a test
//   failure (ADD_FAILURE), so a looping source fails the test instead of
//   hanging it; what was read so far is returned, incomplete.
// - Not thread safe: one call drives one Pull from the calling thread.
#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/result.h"
#include "core/source.h"

namespace dirsync::testing {

struct Pulled {
  std::vector<core::Record> records;
  std::vector<core::RecordIssue> issues;
  std::optional<core::Error> error;  // the Error that ended the pull, if one did
  std::size_t pages = 0;             // pages returned before the end or the Error
  bool complete = false;             // a page with `last` arrived
};

inline Pulled pull_all(core::Source& source, int max_pages = 100'000) {
  Pulled out;
  auto pull = source.start();
  if (!pull.ok()) {
    out.error = pull.error();
    return out;
  }
  for (int i = 0; i < max_pages; ++i) {
    auto page = pull.value()->next();
    if (!page.ok()) {
      out.error = page.error();
      return out;
    }
    ++out.pages;
    for (auto& r : page->records) out.records.push_back(std::move(r));
    for (auto& issue : page->issues) out.issues.push_back(std::move(issue));
    if (page->last) {
      out.complete = true;
      return out;
    }
  }
  ADD_FAILURE() << "the pull did not end within " << max_pages << " pages";
  return out;
}

}  // namespace dirsync::testing
