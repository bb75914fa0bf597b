#pragma once
// A loopback Royalti for tests: "Create Bulk User" as shared/seeds/002
// documents it, quirks included.
//
// Route: POST /user/bulk (a query string is ignored). Any other method or path
// → 404 {"statusCode":404,"message":"Cannot <METHOD> <path>","error":"Not Found"}.
// Checks, in NestJS's order (Royalti's error bodies are NestJS's):
//   1. route (404);
//   2. `Authorization: Bearer <token>` → else 401 {"statusCode":401,"message":"Unauthorized"};
//   3. the body, only parsed when sent as `Content-Type: application/json`
//      (otherwise it reads as {}). Not JSON → 400; `users` not an array, a user
//      that is not an object, firstName/lastName/email not strings, an
//      optional field (nickName, userType, ipi, role, phone, country) neither
//      a string nor null, a field the seed does not list (switch
//      `reject_unknown_fields`), `sendEmail` not a boolean, `redirect_url` or
//      `message` not strings → 400 {"statusCode":400,"message":["users.0.firstName
//      must be a string", ...],"error":"Bad Request"}; nothing is processed.
// Then each user, in order, by its display name "<firstName> <lastName>":
//   - an invalid email            → errors += "Invalid email format for <name>"
//   - an email (case-insensitive) already in the workspace, including one added
//     earlier in the same request → errors += "User <name> already associated
//     with workspace!" (nothing changes, nobody is invited)
//   - else the user is created    → createdUsers += "<name>", and invited when
//     `sendEmail` is true — Royalti's DEFAULT when the flag is absent.
// 201 {"message":"Done.","createdUsers":[...],"processedCount":N,"errors":[...]}.
// Results name users ONLY by display name, exactly as the real API: two users
// called "John Doe" in one request yield e.g. createdUsers ["John Doe"] and
// errors ["Invalid email format for John Doe"], and nobody can tell which is which.
// `processedCount` is as unreliable as the seed's example (see ProcessedCount).
//
// Switches beyond the seed: `fail_user` (an internal failure reported with a
// message that names no user), `reverse_results` (results in reverse order),
// `reject_unknown_fields`.
//
// Thread safety: every public member may be called from the test while the
// server runs; state is behind one mutex.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/loopback_http_server.h"

namespace dirsync::testing {

// Injected failures, consumed one per request in FIFO order.
enum class RoyaltiFault {
  k429,                // 429 ThrottlerException with Retry-After; nothing processed
  k500,                // 500 {"statusCode":500,"message":"Internal server error"}; nothing processed
  k503,                // 503 with Retry-After; nothing processed
  kClose,              // read the request, close the connection without processing or answering
  kCloseAfterApplying, // process the request (users created, invited!), then close without answering
  k500AfterApplying,   // process the request, then answer 500 (a crash after the work was done)
  kMalformedJson,      // process the request, answer 201 with a truncated JSON body
};

// What `processedCount` says. The seed's example (2 created, 1 already
// associated, 2 invalid emails) says 3.
enum class ProcessedCount {
  kSeed,  // created + already associated users (3 in the seed's example)
  kSent,  // every user of the request
  kZero,  // always 0
};

struct RoyaltiServerOptions {
  std::string token = "test-token";
  ProcessedCount processed_count = ProcessedCount::kSeed;
  bool reverse_results = false;        // createdUsers and errors in reverse order
  bool reject_unknown_fields = true;   // NestJS's forbidNonWhitelisted: 400 for a field the seed does not list
};

struct RoyaltiLoggedRequest {
  std::string method;
  std::string path;
  int status = 0;    // 0: the connection was closed without an answer
  std::string body;  // the request body
  std::vector<std::pair<std::string, std::string>> headers;  // request headers, names lower-cased
};

// An invitation email Royalti would have sent.
struct RoyaltiInvitation {
  std::string email;
  std::string name;          // display name
  std::string redirect_url;  // empty when the request had none
  std::string message;       // empty when the request had none
};

class RoyaltiTestServer {
 public:
  explicit RoyaltiTestServer(RoyaltiServerOptions options = {});
  ~RoyaltiTestServer();

  void start(std::uint16_t port = 0);
  void stop();
  std::uint16_t port() const;
  std::string base_url() const;  // "http://127.0.0.1:<port>"
  std::size_t connections_accepted() const;

  // Switches; they take effect from the next request.
  void set_token(std::string token);
  void set_processed_count(ProcessedCount mode);
  void set_reverse_results(bool reverse);
  void set_reject_unknown_fields(bool reject);
  // The next `count` requests get `fault` (queued after faults already pending).
  void inject(RoyaltiFault fault, int count = 1, int retry_after_seconds = 1);
  void clear_faults();
  // From now on, processing the user with this email fails inside Royalti and
  // is reported only as `message` in `errors` (e.g. "Request failed with status
  // code 502": a string that names no user). `created_anyway`: the user is
  // stored all the same (not invited), as when a later step failed.
  void fail_user(const std::string& email, std::string message, bool created_anyway = false);

  // Seeds a workspace user directly (no validation, no invitation).
  void add_user(nlohmann::json user);
  // Removes the user with this email (case-insensitive) from the workspace, as
  // an administrator would in Royalti's UI; false when there was none.
  bool remove_user(const std::string& email);
  // The workspace's users in the order they were added.
  nlohmann::json users() const;
  // The user with this email (case-insensitive), or null.
  nlohmann::json find_user_by_email(const std::string& email) const;
  std::vector<RoyaltiInvitation> invitations() const;
  std::vector<RoyaltiLoggedRequest> request_log() const;
  std::size_t request_count() const;
  void clear_log();

  // The request handler itself (what the socket side calls); usable without sockets.
  ServerResponse handle(const ServerRequest& request);

 private:
  struct FaultEntry {
    RoyaltiFault fault;
    int retry_after;
  };
  struct Failure {
    std::string message;
    bool created_anyway = false;
  };
  ServerResponse handle_locked(const ServerRequest& request);
  ServerResponse bulk_locked(const nlohmann::json& body);
  bool has_email_locked(const std::string& email) const;

  RoyaltiServerOptions options_;
  mutable std::mutex mu_;
  std::deque<FaultEntry> faults_;
  std::map<std::string, Failure> failures_;  // lower-cased email → failure
  std::vector<nlohmann::json> users_;
  std::vector<RoyaltiInvitation> invitations_;
  std::vector<RoyaltiLoggedRequest> log_;
  LoopbackHttpServer http_;
};

}  // namespace dirsync::testing
