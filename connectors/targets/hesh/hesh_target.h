#pragma once
// The Hesh target (https://api.hesh.app; shared/seeds/001). Create-only.
//
// Endpoint: POST {base_url}/api/v1/public/users/batch
//   headers  x-tenant-id: <UUID v4>   identifies the tenant AND is its credential:
//                                     sent as a secret header, never logged
//            x-api-key: <key>         only when configured (Hesh's newer docs require one)
//   body     {"users": [{"external_user_id", "email", "first_name", "last_name", "phone"}]}
//   200      a JSON array of the users Hesh CREATED
//
// Hesh quirks this target handles (each has a test):
// - The batch SKIPS users that already exist in the tenant (matched by email or
//   phone) and returns only the ones it created. A sent user absent from a
//   well-formed answer is applied with an empty id and the note "already
//   existed (skipped by Hesh)" (the engine keeps the id the snapshot had).
// - The seed's example answer echoes `external_user_id` equal to the new `id`,
//   not what was sent. Returned users are matched to sent ones by
//   `external_user_id`, then by lower-cased email. A request never holds two
//   users with the same external_user_id or the same lower-cased email (the
//   later ones go in a following request), so a match is never ambiguous.
// - A non-empty answer that matches NONE of the sent users is an unknown
//   outcome for the whole request, never "all existed". An answer holding a
//   user that matches nobody makes every unmatched sent user unknown too (the
//   stray user might be one of them). An empty array `[]` is Hesh saying it
//   created nobody: every sent user already existed.
// - Re-sending a create is SAFE here, unlike on other create APIs: a user that
//   the lost request did create is matched by its email on the re-send and
//   skipped, never duplicated. So the request is marked idempotent and the HTTP
//   layer may retry it after a 500, a timeout or a reset (see encode()).
// - 401 (missing or incorrect x-tenant-id, or a refused x-api-key) and 403
//   stop the job with kAuth; the message names where the tenant id came from,
//   never its value. 400 rejects the records: those the answer names
//   (`users.<index>.…`, NestJS's validation style) are rejected with Hesh's
//   words and the rest of the request is sent again (a validation 400 writes
//   nothing); an answer that names no record rejects every record of it.
//
// Rate limits: Hesh documents 15 requests/s, 300/min and 4,000/h
// (`HeshTarget::default_rate_limits()`), used when `http.rate_limits` is not
// set; `rate_limits: off` removes them. Every attempt, retries included, waits
// for a slot first (http::RateLimiter, through the injected sleeper).
//
// A HeshTarget is used from one thread at a time (it owns one HttpClient).
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

// Builds a HeshTarget; no I/O.
std::unique_ptr<core::Target> make_hesh_target(const config::HeshTargetSettings& settings);

namespace hesh {

inline constexpr std::size_t kMaxBatch = 1000;
// The note of an applied create Hesh skipped because the user already existed.
inline constexpr const char* kSkippedNote = "already existed (skipped by Hesh)";

// The user fields the batch endpoint accepts: external_user_id and email
// (strings, required), first_name, last_name, phone (strings).
const std::vector<core::FieldSpec>& field_specs();

// "{base_url}/api/v1/public/users/batch", tolerating a trailing '/' on base_url.
std::string batch_url(const config::HeshTargetSettings& settings);

// Pure: a change that cannot be sent, as its outcome: not a create, a payload
// that is not an object, a missing or empty external_user_id or email, or a
// field that is not a string.
std::optional<core::Outcome> precheck(const core::Change& change);

// Pure: the request for a batch of creates that each pass `precheck`. Only the
// fields Hesh knows are sent; null fields are left out.
http::Request encode(const config::HeshTargetSettings& settings, std::span<const core::Change> batch);

struct Decoded {
  // One per change. nullopt: undecided, send it again (a 400 named other
  // records of the request, not this one).
  std::vector<std::optional<core::Outcome>> outcomes;
  // Set when the job must stop (401/403, Hesh unreachable); `outcomes` are then empty.
  std::optional<core::Error> error;
};

// Pure: what Hesh's answer to `encode(settings, batch)` means for each change.
// `attempts` is how many times the request was sent: after more than one, a
// user absent from the answer may have been created by an earlier attempt
// whose answer was lost; it exists either way and is reported as skipped.
// Messages quote Hesh but never the tenant id or api key.
Decoded decode(const config::HeshTargetSettings& settings, const http::Response& response,
               std::span<const core::Change> batch, int attempts = 1);

// Pure: splits batch positions into requests in which no two users share an
// external_user_id or a lower-cased email (order kept; usually one group).
std::vector<std::vector<std::size_t>> distinct_groups(std::span<const core::Change> batch,
                                                      const std::vector<std::size_t>& positions);

}  // namespace hesh

class HeshTarget final : public core::Target {
 public:
  // `transport` null: a real HttpClient over `settings.http`. Tests inject a
  // recording sleeper (and a fixed jitter) so that retries never wait; the
  // rate limiter waits through the same sleeper, reading `clock` (null: the
  // steady clock).
  HeshTarget(config::HeshTargetSettings settings, http::Sleeper sleeper = http::real_sleeper(),
             std::unique_ptr<http::Transport> transport = nullptr, http::Jitter jitter = http::random_jitter(),
             http::RateLimiter::Clock clock = nullptr);

  // Hesh's documented limits: 15 requests/s, 300/min, 4,000/h.
  static std::vector<config::RateWindow> default_rate_limits();

  const core::Capabilities& capabilities() const override { return caps_; }
  const std::vector<core::FieldSpec>& fields() const override { return hesh::field_specs(); }
  std::size_t batch_size() const override;
  core::Result<std::vector<core::Outcome>> apply(std::span<const core::Change> batch) override;
  // "hesh https://api.hesh.app": never the tenant id or the key.
  std::string pace(std::size_t creates, std::size_t updates, std::size_t detaches) const override;
  // Hesh skips users it already has (answered as applied with a note): safe to re-send.
  core::CreateRecovery create_recovery() const override { return core::CreateRecovery::kResend; }
  std::string describe() const override;

  // The rate limits in force: the configured ones, else default_rate_limits();
  // empty when the job turned them off.
  const std::vector<config::RateWindow>& rate_limits() const { return rate_limits_; }

 private:
  config::HeshTargetSettings settings_;
  core::Capabilities caps_;
  std::unique_ptr<http::Transport> transport_;
  http::RetryOptions retry_;
  std::vector<config::RateWindow> rate_limits_;
};

}  // namespace dirsync::targets
