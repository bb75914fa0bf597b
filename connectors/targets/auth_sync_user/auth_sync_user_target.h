#pragma once
// The auth_sync_user target (shared/seeds/000): `POST {base_url}/auth/sync/user`
// with ONE user per request; 201 answers with a bare JSON string
// ("User batch synced successfully."); 422 with FastAPI's
// {"detail": [{"loc", "msg", "type"}]}.
//
// Semantics dirsync gives it:
// - Creates and updates both POST the whole user: the API calls it a sync, and
//   it is treated as an upsert keyed by `id` — so re-sending is harmless and
//   every request is idempotent (retried after a 500 or a lost answer).
// - No delete endpoint: Capabilities{create, update, no detach}.
// - Requests go out concurrently, at most `max_in_flight` (default 8) at once,
//   over that many reused connections (http::ParallelSender).
// - `password` is required on every call. dirsync derives it per user:
//   "Ds1-" + base64url(HMAC-SHA256(password_secret, "dirsync/auth_sync_user/v1\n" + source key)),
//   47 characters with upper and lower case letters, a digit and a symbol, so
//   that the usual complexity rules pass. The same user gets the same password
//   on every update, so a profile change does not reset it. It is added by
//   `encode` only: never part of the mapped payload, the snapshot or the
//   payload hash (rotating the secret does not rewrite every user), and never
//   in a message (any echo from the server is redacted).
//   Trade-offs: a password changed inside the target is overwritten by the
//   next update of that user; whoever holds the secret can derive every
//   password.
//
// Thread safety: like every Target, used from one thread at a time; the
// concurrency is internal.
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "config/config.h"
#include "connectors/http/parallel.h"
#include "connectors/http/rate_limiter.h"
#include "connectors/http/retry.h"
#include "core/target.h"

namespace dirsync::targets {

namespace auth_sync_user {

inline constexpr std::size_t kDefaultInFlight = 8;
inline constexpr std::size_t kBatch = 100;

const std::vector<core::FieldSpec>& field_specs();
std::string sync_url(const config::AuthSyncUserTargetSettings& settings);
// The derived password for one user (see the header comment).
std::string derive_password(const core::Secret& secret, const std::string& user_key);
// A rejection before sending (a detach; a payload without a string `id`), or nullopt.
std::optional<core::Outcome> precheck(const core::Change& change);
http::Request encode(const config::AuthSyncUserTargetSettings& settings, const core::Change& change,
                     const std::string& password);
// The outcome of one request; `password` is redacted from every message.
core::Outcome decode(const http::Exchange& exchange, const core::Change& change, const std::string& password);
// FastAPI's 422 details as "email: value is not a valid email address; …", or "" when the body has none.
std::string fastapi_details(const std::string& body);

}  // namespace auth_sync_user

class AuthSyncUserTarget final : public core::Target {
 public:
  // `transports` null: real HttpClients over `settings.http`. Tests inject a
  // recording sleeper so that retries never wait.
  AuthSyncUserTarget(config::AuthSyncUserTargetSettings settings, http::Sleeper sleeper = http::real_sleeper(),
                     http::ParallelSender::TransportFactory transports = nullptr,
                     http::Jitter jitter = http::random_jitter());

  const core::Capabilities& capabilities() const override { return caps_; }
  const std::vector<core::FieldSpec>& fields() const override { return auth_sync_user::field_specs(); }
  std::size_t batch_size() const override { return auth_sync_user::kBatch; }
  core::Result<std::vector<core::Outcome>> apply(std::span<const core::Change> batch) override;
  std::string pace(std::size_t creates, std::size_t updates, std::size_t detaches) const override;
  // Re-sending a create is an upsert of the same user: exactly-once in effect.
  core::CreateRecovery create_recovery() const override { return core::CreateRecovery::kResend; }
  std::string describe() const override;

  std::size_t max_in_flight() const { return sender_->max_in_flight(); }

 private:
  config::AuthSyncUserTargetSettings settings_;
  core::Capabilities caps_;
  std::vector<config::RateWindow> rate_limits_;
  std::unique_ptr<http::ParallelSender> sender_;
};

std::unique_ptr<core::Target> make_auth_sync_user_target(const config::AuthSyncUserTargetSettings& settings);

}  // namespace dirsync::targets
