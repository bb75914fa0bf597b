#pragma once
// Shared by the http_json tests: settings that point at the loopback server,
// and a pull run to its end.
#include <chrono>
#include <optional>
#include <vector>

#include "config/config.h"
#include "core/source.h"
#include "tests/support/http_json_test_server.h"

namespace dirsync::sources::testing {

// The server's users with the source's defaults for each style; fast retries
// (no test waits on a real backoff).
inline config::HttpJsonSourceSettings settings_for(const dirsync::testing::http_json::HttpJsonTestServer& server,
                                                   config::Pagination pagination) {
  config::HttpJsonSourceSettings s;
  s.url = server.users_url();
  s.records = "/data";
  s.key = "/id";
  s.pagination = pagination;
  s.page_size = 10;
  s.size_param = "per_page";
  s.cursor_path = "/meta/next_cursor";
  s.next_url_path = "/links/next";
  s.http.rate_limits = std::vector<config::RateWindow>{};
  s.http.max_attempts = 3;
  s.http.backoff_initial = std::chrono::milliseconds(1);
  s.http.backoff_max = std::chrono::milliseconds(2);
  s.http.retry_after_max = std::chrono::milliseconds(2);
  s.http.connect_timeout = std::chrono::milliseconds(5'000);
  s.http.timeout = std::chrono::milliseconds(10'000);
  return s;
}

struct Pulled {
  std::vector<core::Record> records;
  std::vector<core::RecordIssue> issues;
  std::optional<core::Error> error;  // the Error that ended the pull, if one did
  std::size_t pages = 0;             // pages returned before the end or the Error
  bool complete = false;             // a page with `last` arrived
};

inline Pulled pull_all(core::Source& source) {
  Pulled out;
  auto pull = source.start();
  if (!pull.ok()) {
    out.error = pull.error();
    return out;
  }
  // Bounded: a looping pull must fail the test, not hang it.
  for (int i = 0; i < 1000; ++i) {
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
  return out;
}

}  // namespace dirsync::sources::testing
