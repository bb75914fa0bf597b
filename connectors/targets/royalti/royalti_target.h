#pragma once
// The Royalti target (shared/seeds/002, "Create Bulk User"). Create-only.
//
// Endpoint: POST {base_url}/user/bulk, `Authorization: Bearer <token>`
//   body  {"users": [{firstName, lastName, email, nickName?, userType?, ipi?,
//                     role?, phone?, country?}],
//          "sendEmail": <bool>,            ALWAYS sent (see below)
//          "redirect_url": "...",          only when configured
//          "message": "..."}               only when configured
//   201   "Created with Errors": {"message": "Done.", "createdUsers": ["John Doe"],
//          "processedCount": 3, "errors": ["User Jane Doe already associated with
//          workspace!", "Invalid email format for Jake Doe"]}
//   401, 404, 500 as the seed lists them.
//
// Royalti quirks this target handles (each has a test):
// - `sendEmail` defaults to TRUE on Royalti's side: an omitted flag invites
//   every created user by email. An invitation is an act on real people, so
//   the flag is sent on every request, false unless the job sets
//   `send_email: true`.
// - The 201 answer names users only by display name ("firstName lastName"),
//   never by email or id. So a request never holds two users with the same
//   display name (compared trimmed, with runs of white space as one space and
//   ASCII case folded): the second "John Doe" of a batch goes in a second
//   request, and so on. Each result string is then attributed to exactly one
//   sent user:
//     createdUsers entry                        → applied
//     "User X already associated with workspace!" → applied, note kAssociatedNote
//                                                 (the user exists: our goal)
//     "Invalid email format for X"              → rejected with that message
//     any other error naming exactly one user   → rejected with that message
//     a user named as created AND in an error   → unknown (contradiction)
//     a user mentioned nowhere                  → unknown
//   An error (or a createdUsers entry) that names NO user of the request marks
//   nobody applied: it is quoted in the unknown outcome of every user the
//   answer does not otherwise account for, since it may concern any of them.
//   `processedCount` is ignored (the seed's own example contradicts itself).
// - Royalti returns no id. An applied create carries an EMPTY target id (no
//   note: a note per created user would flood the run report); nothing needs
//   one, since Royalti cannot update or remove users.
// - Re-sending a create is SAFE: a user the lost request did create is
//   answered "already associated" on the re-send, never duplicated, and is
//   not invited again. So the request is marked idempotent and the HTTP layer
//   retries it after a 500, a timeout or a reset (see encode()). A user the
//   API still does not account for after the last attempt is unknown and is
//   sent again next run, with the same effect.
// - 401/403 stop the job with kAuth ("Royalti refused the token (HTTP 401):
//   ..."), never quoting the token. 404 (a wrong base_url) and other 4xx reject
//   the request's users with the server's words; the engine's circuit breaker
//   stops a job whose requests all fail that way.
//
// Rate limits: Royalti documents none, so `default_rate_limits()` is empty and
// nothing waits unless the job sets `http.rate_limits`; then every attempt,
// retries included, waits for a slot first (http::RateLimiter, through the
// injected sleeper).
//
// A RoyaltiTarget is used from one thread at a time (it owns one HttpClient).
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "connectors/http/http_client.h"
#include "connectors/http/rate_limiter.h"
#include "connectors/http/retry.h"
#include "core/target.h"

namespace dirsync::targets {

// Builds a RoyaltiTarget; no I/O.
std::unique_ptr<core::Target> make_royalti_target(const config::RoyaltiTargetSettings& settings);

namespace royalti {

inline constexpr std::size_t kMaxBatch = 1000;
// The note of an applied create Royalti answered "already associated with workspace!".
inline constexpr const char* kAssociatedNote = "already associated with the workspace";

// The user fields of the bulk endpoint: firstName, lastName, email (strings,
// required); nickName, userType, ipi, role, phone, country (strings).
const std::vector<core::FieldSpec>& field_specs();

// "{base_url}/user/bulk", tolerating a trailing '/' on base_url.
std::string bulk_url(const config::RoyaltiTargetSettings& settings);

// Pure: the name Royalti reports a user by: "<firstName> <lastName>" (a
// missing or non-string part counts as empty).
std::string display_name(const nlohmann::json& payload);

// Pure: the form display names are compared in: trimmed, every run of white
// space one ' ', ASCII letters lower-cased. "  John   DOE " → "john doe".
std::string name_key(std::string_view name);

// Pure: a change that cannot be sent, as its outcome: not a create, a payload
// that is not an object, firstName/lastName/email missing or not strings, or
// an empty display name (its results could not be told apart).
std::optional<core::Outcome> precheck(const core::Change& change);

// Pure: splits batch positions into requests in which no two users share a
// display name (by name_key). The n-th user with a given name goes in the n-th
// group; order is kept; usually there is one group.
std::vector<std::vector<std::size_t>> distinct_name_groups(std::span<const core::Change> batch,
                                                           const std::vector<std::size_t>& positions);

// Pure: the request for a batch of creates that each pass `precheck` and
// have distinct display names. Only the fields Royalti knows are sent; an
// optional field that is null or "" is left out. `sendEmail` is always
// present; `redirect_url` and `message` only when configured.
http::Request encode(const config::RoyaltiTargetSettings& settings, std::span<const core::Change> batch);

struct Decoded {
  // One per change of the batch (always complete when `error` is unset).
  std::vector<core::Outcome> outcomes;
  // Set when the job must stop (401/403, Royalti unreachable); `outcomes` are then empty.
  std::optional<core::Error> error;
};

// Pure: what Royalti's answer to `encode(settings, batch)` means for each
// change (see the attribution rules above). `attempts` is how many times the
// request was sent (for messages: after more than one, "already associated"
// may mean that an earlier attempt created the user). Never quotes the token.
Decoded decode(const http::Response& response, std::span<const core::Change> batch, int attempts = 1);

}  // namespace royalti

class RoyaltiTarget final : public core::Target {
 public:
  // `transport` null: a real HttpClient over `settings.http`. Tests inject a
  // recording sleeper (and a fixed jitter) so that retries never wait; the
  // rate limiter waits through the same sleeper, reading `clock` (null: the
  // steady clock).
  RoyaltiTarget(config::RoyaltiTargetSettings settings, http::Sleeper sleeper = http::real_sleeper(),
                std::unique_ptr<http::Transport> transport = nullptr, http::Jitter jitter = http::random_jitter(),
                http::RateLimiter::Clock clock = nullptr);

  // Royalti documents no rate limits: empty (the job may set its own).
  static std::vector<config::RateWindow> default_rate_limits();

  const core::Capabilities& capabilities() const override { return caps_; }
  const std::vector<core::FieldSpec>& fields() const override { return royalti::field_specs(); }
  std::size_t batch_size() const override;
  // Splits the batch into requests with distinct display names and returns one
  // outcome per change, in order.
  core::Result<std::vector<core::Outcome>> apply(std::span<const core::Change> batch) override;
  // "royalti https://host": never the token.
  std::string pace(std::size_t creates, std::size_t updates, std::size_t detaches) const override;
  // Royalti answers "already associated" for a user it has (taken as applied): safe to re-send.
  core::CreateRecovery create_recovery() const override { return core::CreateRecovery::kResend; }
  std::string describe() const override;

  // The rate limits in force: `http.rate_limits` when set (empty: none), else
  // default_rate_limits() (none).
  const std::vector<config::RateWindow>& rate_limits() const { return rate_limits_; }

 private:
  config::RoyaltiTargetSettings settings_;
  core::Capabilities caps_;
  std::unique_ptr<http::Transport> transport_;
  http::RetryOptions retry_;
  std::vector<config::RateWindow> rate_limits_;
};

}  // namespace dirsync::targets
