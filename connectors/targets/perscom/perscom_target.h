#pragma once
// The PERSCOM target (https://api.perscom.io, a Laravel Orion API).
//
// Endpoints (all `{base_url}/{api_version}/users/batch`, bearer token,
// optional `X-Perscom-Id` tenant header):
//   create  POST   {"resources": [user, ...]}          not idempotent: never re-sent
//                                                     once it may have been received
//   update  PATCH  {"resources": {"<id>": {fields}}}   idempotent
//   detach  DELETE {"resources": [id, ...]}           idempotent
//
// PERSCOM quirks this target handles (each has a test):
// - Orion runs a batch in one transaction: one invalid record fails the whole
//   batch with 422. PERSCOM's 422 body names only the first error
//   ({"error":{"message":"The resources.3.email has already been taken. (and 2
//   more errors)"}}); Laravel's standard body ({"errors":{"resources.3.email":
//   [...]}}) names them all. Each named record is rejected with the server's
//   message and the rest is sent again; when no record can be named, the batch
//   is split in halves. Re-sending the rest of a create batch is safe: a 422
//   proves nothing was written.
// - `email` is unique with no exception for the user itself: a PATCH carries
//   only `Change::changed_fields`; a resync PATCH carries every field except
//   the unique ones.
// - Unknown ids in PATCH/DELETE are skipped silently: the returned `data` is
//   compared with what was sent. PATCH of a missing id → rejected; DELETE of a
//   missing id → applied ("already absent").
// - Created users are matched to sent ones by lower-cased email; a sent user the
//   response does not list is an unknown outcome, never assumed created.
//
// Rate limit: PERSCOM's API allows about 60 requests per minute, so that is
// the default (`default_rate_limits()`); `http.rate_limits` replaces it, and
// `rate_limits: off` removes it. Every attempt, retries included, waits for a
// slot first (http::RateLimiter, through the injected sleeper).
//
// A PerscomTarget is used from one thread at a time (it owns one HttpClient).
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "connectors/http/chunked.h"
#include "connectors/http/http_client.h"
#include "connectors/http/rate_limiter.h"
#include "connectors/http/retry.h"
#include "core/target.h"

namespace dirsync::targets {

std::unique_ptr<core::Target> make_perscom_target(const config::PerscomTargetSettings& settings);

namespace perscom {

inline constexpr std::size_t kMaxBatch = 1000;

// The rejection of a PATCH whose id PERSCOM does not have (it skips unknown ids silently).
std::string missing_id_message(const std::string& id);
// The user fields PERSCOM's batch endpoints accept (from the API reference).
const std::vector<core::FieldSpec>& field_specs();

// "{base_url}/{api_version}/users/batch", tolerating a trailing '/' on base_url.
std::string batch_url(const config::PerscomTargetSettings& settings);

// Pure: the fields an update PATCH sends for `change`. Resync: every payload
// field except the unique ones. Otherwise: the changed fields; a changed field
// that is no longer in the payload is sent as null (cleared) unless required.
// An empty object means there is nothing to send.
nlohmann::json patch_fields(const core::Change& change);

// Pure: a change that cannot be sent at all (an update/detach without a
// PERSCOM id, a payload that is not an object), as its outcome.
std::optional<core::Outcome> precheck(const core::Change& change);

// Pure: the request for a batch of changes, all of one Op, each passing
// `precheck` (and, for updates, with a non-empty `patch_fields`).
http::Request encode(const config::PerscomTargetSettings& settings, std::span<const core::Change> batch);

struct Decoded {
  // One per change in the batch. nullopt: undecided, send it again (the batch
  // failed because of other records in it).
  std::vector<std::optional<core::Outcome>> outcomes;
  // A 422 that names no record of a batch of more than one: split and re-send.
  bool bisect = false;
  // Set when the job must stop (401/403, PERSCOM unreachable); `outcomes` are then empty.
  std::optional<core::Error> error;
};

// Pure: what PERSCOM's answer to `encode(batch)` means for each change.
// `attempts` is how many times the request was sent (for messages).
Decoded decode(const http::Response& response, std::span<const core::Change> batch, int attempts = 1);

// Looking users up (the outbox's reconciliation, and adopting users PERSCOM
// already has): Orion's `POST {base}/{v}/users/search?page=P&limit=L` with
// {"filters":[{"field":"email","operator":"in","value":[...]}]}. At most
// kSearchChunk emails per request (and as the page size).
inline constexpr std::size_t kSearchChunk = 100;
http::Request encode_search(const config::PerscomTargetSettings& settings, const std::vector<std::string>& emails,
                            int page);
struct SearchPage {
  std::vector<nlohmann::json> users;  // objects with an "id" and an "email"
  int last_page = 1;                  // meta.last_page (1 when absent)
};
// Pure: 200 with {"data":[...]} → the page; 401/403 → kAuth; anything else → kTarget.
core::Result<SearchPage> decode_search(const http::Response& response);
// Pure: the fields of a PERSCOM user that `sent` (a payload) has, as a payload
// (what an adopted user's snapshot entry records); `email` is taken from
// `sent` when it equals PERSCOM's case-insensitively (PERSCOM's uniqueness has
// no exception for the user itself: an update must never carry it).
nlohmann::json adopted_fields(const nlohmann::json& user, const nlohmann::json& sent);
// Pure: a create rejection that means "a user with this email exists".
bool is_email_taken(const std::string& message);

}  // namespace perscom

class PerscomTarget final : public core::Target {
 public:
  // `transport` null: a real HttpClient over `settings.http`. Tests inject a
  // recording sleeper (and a fixed jitter) so that retries never wait; the
  // rate limiter waits through the same sleeper, reading `clock` (null: the
  // steady clock).
  PerscomTarget(config::PerscomTargetSettings settings, http::Sleeper sleeper = http::real_sleeper(),
                std::unique_ptr<http::Transport> transport = nullptr, http::Jitter jitter = http::random_jitter(),
                http::RateLimiter::Clock clock = nullptr);

  // PERSCOM's documented limit: 60 requests per minute.
  static std::vector<config::RateWindow> default_rate_limits();
  // The limits in force: `http.rate_limits` when set (empty: none), else the defaults.
  const std::vector<config::RateWindow>& rate_limits() const { return rate_limits_; }

  const core::Capabilities& capabilities() const override { return caps_; }
  const std::vector<core::FieldSpec>& fields() const override { return perscom::field_specs(); }
  std::size_t batch_size() const override;
  // A resync PATCH of an id PERSCOM no longer has creates that user again
  // (the "create again any user the server no longer has").
  core::Result<std::vector<core::Outcome>> apply(std::span<const core::Change> batch) override;
  std::string pace(std::size_t creates, std::size_t updates, std::size_t detaches) const override;
  // A lost create answer is settled by searching PERSCOM by email (exactly-once
  // in effect: PERSCOM emails are unique, so a second create of the same user
  // is refused with 422 anyway).
  core::CreateRecovery create_recovery() const override { return core::CreateRecovery::kLookup; }
  core::Result<std::vector<std::optional<core::Found>>> lookup(std::span<const core::Change> creates) override;
  std::string describe() const override;

 private:
  // Creates PERSCOM refused because the email is taken: the existing users are
  // adopted (looked up by email), never created twice.
  core::Status adopt_taken(std::span<const core::Change> batch, std::vector<core::Outcome>& outcomes);
  // Up to max_in_flight requests of batch_size changes each, concurrently.
  core::Result<std::vector<core::Outcome>> apply_once(std::span<const core::Change> batch);
  // One request's worth (with its 422 rounds) over one connection.
  core::Result<std::vector<core::Outcome>> apply_request(std::span<const core::Change> batch,
                                                         http::Transport& transport);
  config::PerscomTargetSettings settings_;
  core::Capabilities caps_;
  std::unique_ptr<http::ChunkedSender> chunks_;  // one connection per request in flight
  std::vector<config::RateWindow> rate_limits_;
  http::RetryOptions retry_;
  std::unique_ptr<http::Transport> lookup_client_;  // made at the first lookup
};

}  // namespace dirsync::targets
