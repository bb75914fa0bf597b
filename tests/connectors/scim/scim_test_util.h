#pragma once
// Shared by the scim source tests: users, settings and a pull loop.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "tests/support/scim_test_server.h"
#include "tests/support/source_pull.h"

namespace dirsync::sources::scim_test {

inline constexpr const char* kToken = "s3cr3t-scim-token";
inline constexpr const char* kEnterpriseUrn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

// "u001", "u002", ...: sorts like the server's order.
inline std::string id_of(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "u%03d", i);
  return buf;
}

// A full RFC 7643 §8.2-style user, number i: even users are active.
inline nlohmann::json make_user(int i) {
  const std::string n = std::to_string(i);
  return {
      {"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User", kEnterpriseUrn}},
      {"id", id_of(i)},
      {"externalId", "ext-" + n},
      {"userName", "user" + n + "@example.com"},
      {"name", {{"givenName", "Given" + n}, {"familyName", "Family" + n}}},
      {"active", i % 2 == 0},
      {"emails",
       {{{"value", "home" + n + "@example.org"}, {"type", "home"}},
        {{"value", "user" + n + "@example.com"}, {"type", "work"}, {"primary", true}}}},
      {"phoneNumbers",
       {{{"value", "+1 555 01" + n}, {"type", "mobile"}}, {{"value", "+1 555 02" + n}, {"type", "work"}}}},
      {kEnterpriseUrn,
       {{"employeeNumber", "E" + n}, {"department", "Dept" + std::to_string(i % 3)}, {"manager", {{"value", "u001"}}}}},
      {"meta", {{"resourceType", "User"}, {"version", "W/\"" + n + "\""}}},
  };
}

inline config::ScimSourceSettings settings_for(const std::string& base_url, std::size_t page_size = 100) {
  config::ScimSourceSettings s;
  s.base_url = base_url;
  s.auth.token = core::Secret(kToken, "${env:SCIM_TOKEN}");
  s.page_size = page_size;
  s.http.max_attempts = 3;
  s.http.backoff_initial = std::chrono::milliseconds(1);
  s.http.backoff_max = std::chrono::milliseconds(2);
  s.http.connect_timeout = std::chrono::milliseconds(5'000);
  s.http.timeout = std::chrono::milliseconds(10'000);
  s.http.rate_limits = std::vector<config::RateWindow>{};  // off
  return s;
}

// The pull loop is shared with the other source tests.
using dirsync::testing::pull_all;
using dirsync::testing::Pulled;

}  // namespace dirsync::sources::scim_test
