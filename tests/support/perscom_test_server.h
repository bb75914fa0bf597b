#pragma once
// A loopback PERSCOM for tests: the users batch endpoints as the API reference
// (shared/seeds/004) and Laravel Orion define them, quirks included.
//
// Routes (version must be v1 or v2, else 404 {"message":"Not Found"}):
//   POST   /{v}/users/batch  {"resources":[user...]}       → 200 {"data":[created users]}
//   PATCH  /{v}/users/batch  {"resources":{"<id>":{...}}}  → 200 {"data":[updated users]}
//                                                            unknown ids skipped silently
//   DELETE /{v}/users/batch  {"resources":[id...]}         → 200 {"data":[deleted users]}
//                                                            unknown ids skipped silently
//   GET    /{v}/users?page=P&limit=L                        → 200 {"data":[users of page P],"meta":{
//                                                            "current_page","last_page","per_page","total"}}
//   POST   /{v}/users/search?page=P&limit=L  {"filters":[{"field":"email","operator":"in","value":[...]}]}
//                                                          → the same shape, users matching every filter
//                                                            (operators = and in, case-insensitive)
//   other methods on those paths → 405; other paths → 404.
//
// Checks, in Laravel's order: route, then `Authorization: Bearer <token>`
// (401 {"message":"Unauthenticated."}), then the optional X-Perscom-Id
// requirement (401 too), then the body. A body that is not sent as
// `Content-Type: application/json` is not parsed (Laravel reads no JSON input),
// which yields 422 "The resources field is required.".
//
// Validation (Orion runs a batch in ONE transaction: any invalid record fails
// the whole batch with 422 and nothing is written):
//   name        required (POST; PATCH when present), string, at most 255 characters
//   email       required (POST; PATCH when present), valid address, unique among
//               stored users (case-insensitive, NO exception for the user itself
//               on PATCH) and distinct within the batch (every duplicate flagged)
//   phone_number, notes                      string or null
//   *_id (position, rank, specialty, status, unit)  integer or null
//   approved                                 boolean (true/false/0/1)
//   email_verified_at, notes_updated_at, last_seen_at  string (date) or null
//   anything else                            "The resources.N.x field is prohibited."
// Error keys are `resources.<index>.<field>` for POST and `resources.<id>.<field>` for PATCH.
// 422 bodies: ErrorStyle::kPerscom (default) →
//   {"error":{"message":"<first error> (and N more errors)","type":"ValidationException"}}
// ErrorStyle::kLaravel → {"message":"<first error> (and N more errors)","errors":{key:[...]}}
//
// Thread safety: every public member may be called from the test while the
// server runs; state is behind one mutex.
//
// Cost (it also serves the benchmarks, bench/, with a million users): each
// user is kept as the compact JSON text the API returns for it, in a vector
// indexed by id, with an index by email, so a batch costs O(batch) — email
// uniqueness, `email in [...]` searches and lookups by id never scan the
// store. Only users(), GET /users and searches without an email filter walk
// it. The request log keeps every body: `set_request_log(false)` keeps the
// counters only.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/loopback_http_server.h"

namespace dirsync::testing {

enum class ErrorStyle { kPerscom, kLaravel };

// Injected failures, consumed one per request in FIFO order.
enum class Fault {
  k429,                // 429 {"message":"Too Many Attempts."} with Retry-After; nothing processed
  k500,                // 500 {"message":"Server Error"}; nothing processed
  k503,                // 503 {"message":"Service Unavailable"} with Retry-After; nothing processed
  kClose,              // read the request, close the connection without processing or answering
  kCloseAfterApplying, // process the request (users change!), then close without answering
  kMalformedJson,      // process the request, answer 200 with a truncated JSON body
};

struct PerscomServerOptions {
  std::string token = "test-token";
  ErrorStyle error_style = ErrorStyle::kPerscom;
  std::optional<std::string> required_perscom_id;  // when set, X-Perscom-Id must equal it
};

struct LoggedRequest {
  std::string method;
  std::string path;
  int status = 0;  // 0: the connection was closed without an answer
  std::string body;  // the request body
  std::vector<std::pair<std::string, std::string>> headers;  // request headers, names lower-cased
};

// What the server received and did since it started (or the last clear_log()).
struct PerscomCounters {
  std::size_t requests = 0;    // requests handled (answered or dropped), faults included
  std::size_t body_bytes = 0;  // request body bytes received
  std::size_t created = 0;     // users stored by POST /users/batch
  std::size_t updated = 0;     // users changed by PATCH /users/batch
  std::size_t deleted = 0;     // users removed by DELETE /users/batch
  double handler_seconds = 0;  // time spent handling requests (socket I/O and HTTP parsing excluded)
};

class PerscomTestServer {
 public:
  explicit PerscomTestServer(PerscomServerOptions options = {});
  ~PerscomTestServer();

  void start(std::uint16_t port = 0);
  void stop();
  std::uint16_t port() const;
  std::string base_url() const;  // "http://127.0.0.1:<port>" (PERSCOM's base_url: no version)
  std::size_t connections_accepted() const;

  // Switches; they take effect from the next request.
  void set_token(std::string token);
  void set_error_style(ErrorStyle style);
  void require_perscom_id(std::optional<std::string> id);
  // The next `count` requests get `fault` (queued after faults already pending).
  void inject(Fault fault, int count = 1, int retry_after_seconds = 1);
  void clear_faults();

  // Seeds a user directly (no validation); returns its id.
  std::int64_t add_user(nlohmann::json user);
  // Snapshot of the stored users, ordered by id.
  nlohmann::json users() const;
  // Calls `visit` with each stored user in id order, one parsed at a time (a
  // million users do not fit in one users() array comfortably). `visit` runs
  // under the state lock: it must not call the server.
  void for_each_user(const std::function<void(const nlohmann::json&)>& visit) const;
  std::size_t user_count() const;
  // The stored user with this email (case-insensitive), or null.
  nlohmann::json find_user_by_email(const std::string& email) const;
  std::vector<LoggedRequest> request_log() const;
  std::size_t request_count() const;
  // Empties the log and zeroes the counters; the users stay.
  void clear_log();
  // false: requests are counted but not kept (no bodies), for long runs. Default true.
  void set_request_log(bool keep);
  PerscomCounters counters() const;
  // How many search requests were answered.
  std::size_t search_count() const;

  // The request handler itself (what the socket side calls); usable without sockets.
  ServerResponse handle(const ServerRequest& request);

 private:
  struct FaultEntry {
    Fault fault;
    int retry_after;
  };
  ServerResponse handle_locked(const ServerRequest& request);
  ServerResponse list_locked(const ServerRequest& request, bool search);
  ServerResponse create_locked(const nlohmann::json& body);
  ServerResponse update_locked(const nlohmann::json& body);
  ServerResponse destroy_locked(const nlohmann::json& body);
  ServerResponse validation_error(const std::vector<std::pair<std::string, std::string>>& errors) const;
  bool email_taken_locked(const std::string& email) const;
  // The stored text of user `id`, or null when there is none.
  const std::string* stored_locked(std::int64_t id) const;
  void store_locked(std::int64_t id, std::string text, const nlohmann::json& email);
  void unstore_locked(std::int64_t id, const nlohmann::json& email);
  void index_email_locked(std::int64_t id, const nlohmann::json& email, bool add);

  struct EmailRef {
    std::int64_t id;
    bool is_string;  // uniqueness and find_user_by_email only consider string emails
  };

  PerscomServerOptions options_;
  mutable std::mutex mu_;
  std::deque<FaultEntry> faults_;
  // users_[id - 1]: the user's compact JSON, exactly as the API returns it;
  // empty when there is no such user (ids are never reused).
  std::vector<std::string> users_;
  std::size_t user_count_ = 0;
  // The email as search compares it (lower-cased; a non-string as its JSON) → users.
  std::unordered_multimap<std::string, EmailRef> by_email_;
  std::int64_t next_id_ = 1;
  std::size_t searches_ = 0;
  bool keep_log_ = true;
  PerscomCounters counters_;
  std::vector<LoggedRequest> log_;
  LoopbackHttpServer http_;
};

}  // namespace dirsync::testing
