#pragma once
// Shared by the http_json tests: settings that point at the loopback server,
// and a pull run to its end.
#include <chrono>
#include <vector>

#include "config/config.h"
#include "tests/support/http_json_test_server.h"
#include "tests/support/source_pull.h"

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

// The pull loop is shared with the other source tests.
using dirsync::testing::pull_all;
using dirsync::testing::Pulled;

}  // namespace dirsync::sources::testing
