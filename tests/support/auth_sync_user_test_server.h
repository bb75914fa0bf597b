#pragma once
// A loopback auth_sync_user service for tests: "Sync Batch User" as the seed
// document (shared/seeds/000) defines it, answered the way a FastAPI +
// Pydantic service answers, plus the behaviour issue 3 adds, behind switches.
//
// Route: POST /auth/sync/user (a query string is ignored), ONE user object per
// request (despite "batch" in the document's wording).
//   other paths                    → 404 {"detail":"Not Found"}
//   other methods on that path     → 405 {"detail":"Method Not Allowed"} with `Allow: POST`
//
// Checks, in order:
//   1. route (404 / 405);
//   2. auth, only when switched on (the seed shows none; real deployments put
//      one in front): `require_bearer(token)` → `Authorization: Bearer <token>`,
//      `require_header(name, value)` → an API-key header. Missing or wrong →
//      401 {"detail":"Not authenticated"} (with `WWW-Authenticate: Bearer` for
//      the bearer check). Both may be required at once; the bearer is checked first.
//      (Real FastAPI decodes the JSON body before running security
//      dependencies; the order only matters for a bad body without credentials.)
//   3. the body, FastAPI's way. It is decoded as JSON when Content-Type is
//      absent, application/json or application/*+json; any other type is read
//      as raw bytes. Errors are collected into 422 {"detail":[{"loc","msg","type"}...]}
//      (exactly those three keys; Pydantic v2's "input"/"ctx" are left out, so
//      the password a client sent is never echoed back):
//        empty body                → {"loc":["body"],"msg":"Field required","type":"missing"}
//        not JSON                  → {"loc":["body"],"msg":"JSON decode error","type":"json_invalid"}
//                                    (real FastAPI says ["body", <offset>])
//        not an object (or raw bytes)
//                                  → {"loc":["body"],"msg":"Input should be a valid dictionary or object
//                                      to extract fields from","type":"model_attributes_type"}
//        per field, in the seed's table order:
//          required field missing  → {"loc":["body","<f>"],"msg":"Field required","type":"missing"}
//          not a string (null included for a required field; null is fine for an optional one)
//                                  → {"loc":["body","<f>"],"msg":"Input should be a valid string","type":"string_type"}
//          email without exactly one '@', an empty local part, or a domain
//          without an inner dot    → {"loc":["body","email"],"msg":"value is not a valid email address","type":"value_error"}
//        unknown fields are ignored (Pydantic's default: extra = "ignore").
//      Switch `set_pydantic_messages(false)`: a required field that is missing,
//      null or "" is reported the way the seed's own example error is written
//      instead: {"loc":["query","<f>"],"msg":"<F> is required.","type":"value_error"}
//      where <F> is the field name with '_' → ' ' and a capital first letter
//      ("Email is required.", "First name is required.").
//      Nothing is written when the body is invalid.
//   4. success → 201 with the bare JSON string "User batch synced successfully."
//      (Content-Type: application/json).
//
// Storage: an upsert keyed by `id`. The stored user is the model as Pydantic
// dumps it: the 13 fields of the seed's table, every optional field absent
// from the request stored as null, unknown fields dropped, `password` kept
// (so tests can check it is stable across updates). A later request with the
// same id REPLACES the stored user as a whole.
//
// Switches beyond the seed: auth (above), a processing delay per request
// (`set_delay`, slept OUTSIDE the state lock, so concurrent requests really
// overlap), the error-message style, and injected faults.
//
// Concurrency: LoopbackHttpServer serves every connection on its own thread,
// so requests on different connections are handled concurrently;
// `max_concurrent()` is the highest number of requests inside `handle()` at
// once (counted on entry, before the delay, and released on exit).
//
// Thread safety: every public member may be called from the test while the
// server runs; state is behind one mutex, the concurrency counters too.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/loopback_http_server.h"

namespace dirsync::testing {

// Injected failures, consumed one per request (any path or method) in FIFO order.
enum class AuthSyncFault {
  k429,                  // 429 {"detail":"Too Many Requests"} with Retry-After; nothing processed
  k400,                  // 400 {"detail":"Bad Request"} (the seed lists 400); nothing processed
  k404,                  // 404 {"detail":"Not Found"} (e.g. a proxy in front); nothing processed
  k500,                  // 500 text/plain "Internal Server Error" (Starlette's); nothing processed
  k500AfterProcessing,   // process the request (the user is stored!), then answer that 500
  kClose,                // read the request, close the connection without processing or answering
  kCloseAfterProcessing, // process the request (the user is stored!), then close without answering
  kMalformedJson,        // process the request, answer 201 with a truncated JSON string body
  // Aliases (the other test servers say "Applying").
  k500AfterApplying = k500AfterProcessing,
  kCloseAfterApplying = kCloseAfterProcessing,
};
using AuthSyncUserFault = AuthSyncFault;

struct AuthSyncServerOptions {
  std::optional<std::string> bearer_token;  // when set, `Authorization: Bearer <it>` is required
  // When set, header `first` (case-insensitive name) must equal `second`.
  std::optional<std::pair<std::string, std::string>> required_header;
  std::chrono::milliseconds delay{0};  // slept in every request before it is processed
  bool pydantic_messages = true;       // false: the seed's example error style (see above)
};

struct AuthSyncLoggedRequest {
  std::string method;
  std::string path;  // the request target, query included
  int status = 0;    // 0: the connection was closed without an answer
  std::string body;  // the request body
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  bool created = false;  // this request stored a user id the server did not have
  bool updated = false;  // it replaced an existing user
};
using AuthSyncUserLoggedRequest = AuthSyncLoggedRequest;

class AuthSyncUserTestServer {
 public:
  // The success body, exactly as sent (a JSON string, quotes included).
  static constexpr const char* kSuccessBody = "\"User batch synced successfully.\"";
  static constexpr const char* kPath = "/auth/sync/user";

  explicit AuthSyncUserTestServer(AuthSyncServerOptions options = {});
  ~AuthSyncUserTestServer();
  AuthSyncUserTestServer(const AuthSyncUserTestServer&) = delete;
  AuthSyncUserTestServer& operator=(const AuthSyncUserTestServer&) = delete;

  void start(std::uint16_t port = 0);
  void stop();
  std::uint16_t port() const;
  std::string base_url() const;  // "http://127.0.0.1:<port>" (no path)
  std::size_t connections_accepted() const;

  // Switches; they take effect from the next request. nullopt turns a check off.
  void require_bearer(std::optional<std::string> token);
  void require_header(std::string name, std::optional<std::string> value);
  // Same as require_header; nullopt turns the check off.
  void require_api_key(std::optional<std::pair<std::string, std::string>> header_and_value);
  void set_pydantic_messages(bool on);
  void set_delay(std::chrono::milliseconds delay);
  // The next `count` requests get `fault` (queued after faults already pending).
  void inject(AuthSyncFault fault, int count = 1, int retry_after_seconds = 1);
  void clear_faults();

  // Seeds or replaces a user directly (no validation, stored as given); `user["id"]` must be a string.
  void add_user(nlohmann::json user);
  // Deletes a user, as someone working in the service itself could; returns whether there was one.
  bool remove_user(const std::string& id);
  // Snapshot of the stored users: a JSON object id → user (ordered by id).
  nlohmann::json users() const;
  // The stored user with this id, or null.
  nlohmann::json user(const std::string& id) const;
  nlohmann::json find_user(const std::string& id) const { return user(id); }
  std::size_t user_count() const;

  std::vector<AuthSyncLoggedRequest> request_log() const;
  std::size_t request_count() const;
  // Highest number of requests handled at once since start (or the last reset / clear_log).
  std::size_t max_concurrent() const;
  // Requests being handled right now.
  std::size_t in_flight() const;
  // Resets max_concurrent() to the requests in flight now.
  void reset_max_concurrent();
  // Clears the log and resets max_concurrent(); the users stay.
  void clear_log();

  // The request handler itself (what the socket side calls); usable without sockets.
  ServerResponse handle(const ServerRequest& request);

  // The seed's rule, as this server applies it (see above).
  static bool is_valid_email(const std::string& email);

 private:
  struct FaultEntry {
    AuthSyncFault fault;
    int retry_after;
  };
  ServerResponse handle_locked(const ServerRequest& request, AuthSyncLoggedRequest& entry);

  AuthSyncServerOptions options_;
  mutable std::mutex mu_;
  std::deque<FaultEntry> faults_;
  std::map<std::string, nlohmann::json> users_;
  std::vector<AuthSyncLoggedRequest> log_;
  std::size_t in_flight_ = 0;
  std::size_t max_concurrent_ = 0;
  LoopbackHttpServer http_;
};

}  // namespace dirsync::testing
