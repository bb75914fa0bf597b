#pragma once
// A loopback Healvi for tests: the customer-users endpoints as the seed
// (shared/seeds/003) and Healvi's public docs describe them.
//
// Routes (every path under the prefix /third-party/v1, which base_url() includes):
//   GET  /third-party/v1/customers/{id}/users                → 200 {"data":[attached users, admins left out]}
//   POST /third-party/v1/customers/{id}/users {"user_ids":[…]} → the customer's set BECOMES the list
//        (attach what is new, detach what is missing) → 200 {"data":[attached users]}
//   other methods on that path → 405; other paths, or a non-integer {id} → 404 {"message":"Not Found"}.
//
// Checks, in Laravel's order: route; `Authorization: Bearer <token>` (401
// {"message":"Unauthenticated."}); the customer ({id} unknown → 404
// {"message":"No query results for model [App\\Models\\Customer] <id>"}); the
// body, which is read only when sent as `Content-Type: application/json`.
// Validation (422, Laravel's body {"message":"<first> (and N more errors)","errors":{key:[…]}}):
//   user_ids     present ("The user_ids field is required.") and an array
//                ("The user_ids field must be an array.")
//   user_ids.N   an integer ("The user_ids.N field must be an integer."), and by
//                default an existing user ("The selected user_ids.N is invalid.")
//
// Users carry the seed's User fields: id, name, email, roles, permissions,
// created_at, updated_at. `email` is typed integer in the seed's schema; real
// data holds strings and nulls: seeded users may have any of the three.
//
// Behaviour beyond the seed (vendor docs, or guesses at Laravel) is switchable:
//   HealviServerOptions::sync_keeps_admins      false (default): a POST detaches every id not
//                                               listed, admins included (the doc's "determine which
//                                               IDs to attach or detach"); true: admins stay.
//   HealviServerOptions::admins_in_post_response false (default): the POST answer lists users as
//                                               the GET does (admins left out); true: admins listed.
//   HealviServerOptions::unknown_ids            k422 (default: Laravel's `exists` rule) or kIgnore
//                                               (unknown ids silently not attached).
//   HealviServerOptions::reject_empty_list      false (default: [] detaches everyone); true: Laravel's
//                                               `required` rule refuses an empty array with 422.
//
// Thread safety: every public member may be called from the test while the
// server runs; state is behind one mutex.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/loopback_http_server.h"

namespace dirsync::testing::healvi {

// Injected failures, consumed one per request (of the given method, if any) in FIFO order.
enum class Fault {
  k429,                // 429 {"message":"Too Many Attempts."} with Retry-After; nothing processed
  k500,                // 500 {"message":"Server Error"}; nothing processed
  kClose,              // read the request, close the connection without processing or answering
  kCloseAfterApplying, // process the request (the set changes!), then close without answering
  kMalformedJson,      // process the request, answer 200 with a truncated JSON body
};

enum class UnknownIds { k422, kIgnore };

struct HealviServerOptions {
  std::string token = "test-token";
  bool sync_keeps_admins = false;
  bool admins_in_post_response = false;
  UnknownIds unknown_ids = UnknownIds::k422;
  bool reject_empty_list = false;
};

struct LoggedRequest {
  std::string method;
  std::string path;
  int status = 0;     // 0: the connection was closed without an answer
  std::string body;   // the request body
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
};

inline constexpr const char* kPrefix = "/third-party/v1";

class HealviTestServer {
 public:
  explicit HealviTestServer(HealviServerOptions options = {});
  ~HealviTestServer();

  void start(std::uint16_t port = 0);
  void stop();
  std::uint16_t port() const;
  std::string base_url() const;  // "http://127.0.0.1:<port>/third-party/v1" (Healvi's base_url)
  std::size_t connections_accepted() const;

  // Switches; they take effect from the next request.
  void set_options(HealviServerOptions options);
  HealviServerOptions options() const;
  // The next `count` requests (only those with `method`, when not empty) get `fault`.
  void inject(Fault fault, int count = 1, int retry_after_seconds = 1, std::string method = {});
  void clear_faults();

  // Seeds a user (no validation). `email` may be a string, an integer or null,
  // as Healvi's data is; `admin` gives it the role "admin". Returns its id.
  std::int64_t add_user(const std::string& name, nlohmann::json email = nullptr, bool admin = false);
  // Seeds user ids 1..n as plain users named "User <id>"; returns the last id.
  std::int64_t add_users(int n);
  void add_customer(std::int64_t customer_id);
  // Someone else (the Healvi UI) attaches a user: no request, not logged.
  void attach(std::int64_t customer_id, std::int64_t user_id);
  // Someone else detaches a user.
  void detach(std::int64_t customer_id, std::int64_t user_id);
  // Every attached id, admins included.
  std::set<std::int64_t> attached(std::int64_t customer_id) const;

  std::vector<LoggedRequest> request_log() const;
  std::size_t request_count() const;
  std::size_t count(const std::string& method) const;
  void clear_log();

  // The request handler itself (what the socket side calls); usable without sockets.
  ServerResponse handle(const ServerRequest& request);

 private:
  struct FaultEntry {
    Fault fault;
    int retry_after;
    std::string method;
  };
  ServerResponse handle_locked(const ServerRequest& request);
  ServerResponse sync_locked(std::int64_t customer_id, const ServerRequest& request);
  nlohmann::json listing_locked(std::int64_t customer_id, bool with_admins) const;
  bool is_admin_locked(std::int64_t user_id) const;

  HealviServerOptions options_;
  mutable std::mutex mu_;
  std::deque<FaultEntry> faults_;
  std::map<std::int64_t, nlohmann::json> users_;
  std::map<std::int64_t, std::set<std::int64_t>> customers_;  // customer → attached user ids
  std::int64_t next_user_ = 1;
  std::vector<LoggedRequest> log_;
  LoopbackHttpServer http_;
};

}  // namespace dirsync::testing::healvi
