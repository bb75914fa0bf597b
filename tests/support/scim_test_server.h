#pragma once
// A loopback SCIM 2.0 service provider for tests: the read side of RFC 7644
// that the scim source uses, answering as the RFC says.
//
// Routes (under `base_path`, default "/scim/v2"):
//   GET  /Users?startIndex=S&count=C[&filter=F]  → 200 ListResponse (application/scim+json):
//        {"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
//         "totalResults":T,"itemsPerPage":n,"startIndex":S,"Resources":[...]}
//        §3.4.2.4: S defaults to 1 and a value below 1 means 1; C defaults to
//        `max_page_size`, a negative C means 0, and a C above `max_page_size`
//        is cut to it (servers may return fewer than asked). A bad integer →
//        400 invalidValue. Users are listed in the order they were added.
//   GET  /Users/{id}                              → 200 the user, or 404.
//   anything else                                 → 404 (unknown path) or 501 (other methods).
// Filters (§3.4.2.2): `ATTR eq VALUE` on a top-level attribute, VALUE a
// "string" (compared case-insensitively, caseExact false), true, false or a
// number — enough for `userName eq "x"` and `active eq true`. Anything else
// → 400 with scimType invalidFilter.
// Authentication: with a non-empty `token`, every request needs
// `Authorization: Bearer <token>`, else 401 (WWW-Authenticate: Bearer).
// Errors carry the §3.12 body:
//   {"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400",
//    "scimType":"invalidFilter","detail":"..."}
//
// Test switches beyond the RFC: faults on given requests, changes to the users
// between requests (to change totalResults mid-pull), and servers that page
// wrongly (see ScimServerOptions).
//
// Thread safety: every public member may be called while the server runs; the
// state is behind one mutex, and hooks run under it.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/loopback_http_server.h"

namespace dirsync::testing {

enum class ScimFault {
  k500,            // 500 with a SCIM error body
  k503,            // 503 with Retry-After: 0 and a SCIM error body
  kDrop,           // read the request, close the connection without answering
  kMalformedJson,  // 200 with the page's JSON cut in half
};

struct ScimServerOptions {
  std::string token = "test-token";  // empty: no authentication
  std::string base_path = "/scim/v2";
  std::size_t max_page_size = 50;  // most users one page holds, whatever `count` asks
  // Pagers that break the RFC, to test the client's guards:
  bool echo_start_index = true;       // send "startIndex" in ListResponses
  std::int64_t start_index_skew = 0;  // added to the "startIndex" sent back
  bool ignore_start_index = false;    // always list from the first user
  bool omit_empty_resources = false;  // leave "Resources" out of a page without users
  // Users from this 1-based index on are never listed (totalResults still
  // counts them), like servers that cap how deep offset paging goes. 0: no cap.
  std::size_t listing_cap = 0;
};

struct ScimLoggedRequest {
  std::string method;
  std::string target;                                        // path and query as sent (still percent-encoded)
  std::map<std::string, std::string> query;                  // decoded query parameters
  int status = 0;                                            // 0: the connection was dropped without an answer
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
};

class ScimTestServer {
 public:
  // Edits the users in place (add, remove, reorder) before a request is served.
  using Change = std::function<void(std::vector<nlohmann::json>& users)>;

  explicit ScimTestServer(ScimServerOptions options = {});
  ~ScimTestServer();

  void start(std::uint16_t port = 0);
  void stop();
  std::string base_url() const;  // "http://127.0.0.1:<port>/scim/v2": the source's base_url

  void set_options(ScimServerOptions options);

  // Users as SCIM resources; each should carry a string "id".
  void add_user(nlohmann::json user);
  bool remove_user(const std::string& id);
  std::vector<nlohmann::json> users() const;

  // Requests to /Users and below are numbered from 1 in arrival order.
  // Requests n, n+1, ..., n+times-1 get `fault` (instead of their answer).
  void fail_request(std::size_t n, ScimFault fault, std::size_t times = 1);
  // `change` runs just before request n is answered (retries count as requests).
  void before_request(std::size_t n, Change change);

  std::vector<ScimLoggedRequest> request_log() const;
  std::size_t request_count() const;  // requests to /Users and below so far

  // The handler itself (what the socket side calls); usable without sockets.
  ServerResponse handle(const ServerRequest& request);

 private:
  ServerResponse handle_locked(const ServerRequest& request, ScimLoggedRequest& entry);
  ServerResponse list_locked(const std::map<std::string, std::string>& query);

  mutable std::mutex mu_;
  ScimServerOptions options_;
  std::vector<nlohmann::json> users_;
  std::map<std::size_t, ScimFault> faults_;
  std::multimap<std::size_t, Change> changes_;
  std::vector<ScimLoggedRequest> log_;
  std::size_t numbered_ = 0;
  LoopbackHttpServer http_;
};

}  // namespace dirsync::testing
