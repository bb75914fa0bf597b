#pragma once
// A loopback Hesh for tests: the users batch endpoint as the seed document
// (shared/seeds/001) defines it, plus the behaviour issue 3 takes from Hesh's
// public docs, each behind a switch.
//
// Route: POST /api/v1/public/users/batch → 200 [created users]
//   other methods or paths → 404 {"statusCode":404,"message":"Cannot GET /x","error":"Not Found"}
//   (Hesh is a NestJS service; its error bodies have that shape).
//
// Checks, in order (each answer is the documented one):
//   x-tenant-id missing, not a UUID v4, or not a known tenant
//       → 401 {"statusCode":401,"message":"Missing or incorrect x-tenant-id","error":"Unauthorized"}
//   x-api-key, when required (switch `require_api_key`; Hesh's newer docs) missing or wrong
//       → 401 {"statusCode":401,"message":"Invalid or missing x-api-key","error":"Unauthorized"}
//   body (parsed only when sent as Content-Type: application/json, like NestJS):
//     an object with `users`, an array of objects; per user `external_user_id`
//     and `email` required non-empty strings, `email` a valid address;
//     `first_name`, `last_name`, `phone` strings when present; any other
//     property is refused (NestJS forbidNonWhitelisted)
//       → 400 {"statusCode":400,"message":["users.1.email must be an email", ...],"error":"Bad Request"}
//     and nothing of the batch is written (validation runs first).
//
// Processing (Hesh's docs): users are taken in order; one that matches an
// existing user of the tenant by email (case-insensitive) or by phone (when
// both are non-empty) is SKIPPED — including one created earlier in the same
// batch. The answer lists only the users created, each with every field of the
// seed's example (id a fresh UUID v4, status "Active", created_at,
// full_name, avatar_image_url null, userVacations []). The seed's echo bug is
// ON by default (`echo_bug`): `external_user_id` in the answer equals `id`;
// the stored user keeps the value sent.
//
// Rate limits (switch `set_rate_limits`, off by default): sliding windows over
// the requests that passed the route check; a request past any window →
// 429 {"statusCode":429,"message":"ThrottlerException: Too Many Requests"} with
// Retry-After (whole seconds until the window frees a slot), not processed.
//
// Thread safety: every public member may be called from the test while the
// server runs; state is behind one mutex.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/loopback_http_server.h"

namespace dirsync::testing {

// Injected failures, consumed one per request in FIFO order.
enum class HeshFault {
  k429,                // 429 with Retry-After; nothing processed
  k500,                // 500 {"statusCode":500,"message":"Internal server error"}; nothing processed
  k500AfterApplying,   // process the request (users created!), then answer 500
  kClose,              // read the request, close the connection without processing or answering
  kCloseAfterApplying, // process the request (users created!), then close without answering
  kMalformedJson,      // process the request, answer 200 with a truncated JSON body
};

struct HeshServerOptions {
  std::vector<std::string> tenants = {"40dd0c53-2fa7-4193-82ae-14d4e62c20fb"};  // the seed's example
  std::optional<std::string> required_api_key;  // when set, x-api-key must equal it
  bool echo_bug = true;                         // answer external_user_id == id, as the seed's example does
};

struct HeshLoggedRequest {
  std::string method;
  std::string path;
  int status = 0;    // 0: the connection was closed without an answer
  std::string body;  // the request body
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::size_t created = 0;  // users this request created
  std::size_t skipped = 0;  // users it skipped as already existing
};

class HeshTestServer {
 public:
  explicit HeshTestServer(HeshServerOptions options = {});
  ~HeshTestServer();

  void start(std::uint16_t port = 0);
  void stop();
  std::uint16_t port() const;
  std::string base_url() const;  // "http://127.0.0.1:<port>" (Hesh's base_url: no path)
  std::size_t connections_accepted() const;
  // The first configured tenant.
  std::string tenant() const;

  // Switches; they take effect from the next request.
  void add_tenant(std::string tenant_id);
  void require_api_key(std::optional<std::string> key);
  void set_echo_bug(bool on);
  // Requests allowed per window (e.g. {{2, 1h}}); empty: no limit.
  void set_rate_limits(std::vector<std::pair<std::size_t, std::chrono::milliseconds>> windows);
  // The next `count` requests get `fault` (queued after faults already pending).
  void inject(HeshFault fault, int count = 1, int retry_after_seconds = 1);
  void clear_faults();

  // Seeds a user of `tenant` (default: the first) without validation; returns its id.
  std::string add_user(nlohmann::json user, std::string tenant = {});
  // Deletes the user with this email (case-insensitive), as someone working in
  // Hesh's own UI could; returns whether there was one.
  bool remove_user_by_email(const std::string& email, std::string tenant = {});
  // The stored users of `tenant` (default: the first), in creation order.
  nlohmann::json users(std::string tenant = {}) const;
  // The stored user with this email (case-insensitive), or null.
  nlohmann::json find_user_by_email(const std::string& email, std::string tenant = {}) const;
  std::vector<HeshLoggedRequest> request_log() const;
  std::size_t request_count() const;
  // 429s answered because of the configured rate limits (not injected ones).
  std::size_t throttled_count() const;
  void clear_log();

  // The request handler itself (what the socket side calls); usable without sockets.
  ServerResponse handle(const ServerRequest& request);

  // True for the canonical form xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx (hex, any case).
  static bool is_uuid_v4(const std::string& text);

 private:
  struct FaultEntry {
    HeshFault fault;
    int retry_after;
  };
  ServerResponse handle_locked(const ServerRequest& request, HeshLoggedRequest& entry);
  ServerResponse create_locked(const std::string& tenant, const nlohmann::json& body, HeshLoggedRequest& entry);
  std::optional<ServerResponse> throttle_locked();
  const std::string& tenant_or_default(const std::string& tenant) const;

  HeshServerOptions options_;
  mutable std::mutex mu_;
  std::deque<FaultEntry> faults_;
  std::map<std::string, std::vector<nlohmann::json>> users_;  // tenant → users
  std::vector<HeshLoggedRequest> log_;
  std::vector<std::pair<std::size_t, std::chrono::milliseconds>> limits_;
  std::deque<std::chrono::steady_clock::time_point> admitted_;  // requests counted by the limits
  std::size_t throttled_ = 0;
  std::uint64_t uuid_counter_ = 0;
  LoopbackHttpServer http_;
};

}  // namespace dirsync::testing
