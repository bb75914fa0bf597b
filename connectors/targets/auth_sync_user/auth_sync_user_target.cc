// The auth_sync_user batch loop: one request per user, up to max_in_flight at
// once, each through the shared retry policy.
#include "connectors/targets/auth_sync_user/auth_sync_user_target.h"

#include <algorithm>

namespace dirsync::targets {

using core::Change;
using core::Outcome;

AuthSyncUserTarget::AuthSyncUserTarget(config::AuthSyncUserTargetSettings settings, http::Sleeper sleeper,
                                       http::ParallelSender::TransportFactory transports, http::Jitter jitter)
    : settings_(std::move(settings)) {
  caps_.create = true;
  caps_.update = true;
  caps_.detach = false;
  caps_.full_set = false;
  caps_.max_batch = 1000;
  // The seed documents no rate limit: none unless the job sets one.
  rate_limits_ = http::effective_rate_limits(settings_.http.rate_limits, {});
  http::RetryOptions retry;
  retry.policy = http::RetryPolicy::from(settings_.http);
  retry.sleeper = sleeper;
  retry.jitter = std::move(jitter);
  retry.rate_limiter = http::make_rate_limiter(rate_limits_, std::move(sleeper));
  if (!transports) {
    const config::HttpSettings http_settings = settings_.http;
    transports = [http_settings] { return std::make_unique<http::HttpClient>(http_settings); };
  }
  const std::size_t in_flight =
      settings_.http.max_in_flight ? settings_.http.max_in_flight : auth_sync_user::kDefaultInFlight;
  sender_ = std::make_unique<http::ParallelSender>(in_flight, std::move(transports), std::move(retry));
}

std::string AuthSyncUserTarget::describe() const {
  return "auth_sync_user " + auth_sync_user::sync_url(settings_);
}

std::string AuthSyncUserTarget::pace(std::size_t creates, std::size_t updates, std::size_t detaches) const {
  (void)detaches;  // never sent: no delete endpoint
  return http::describe_pace(creates + updates, rate_limits_);
}

core::Result<std::vector<Outcome>> AuthSyncUserTarget::apply(std::span<const Change> batch) {
  std::vector<std::optional<Outcome>> outcomes(batch.size());
  std::vector<std::size_t> sent;
  std::vector<std::string> passwords;
  std::vector<http::Request> requests;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (auto o = auth_sync_user::precheck(batch[i])) {
      outcomes[i] = std::move(*o);
      continue;
    }
    passwords.push_back(auth_sync_user::derive_password(settings_.password_secret, batch[i].key));
    requests.push_back(auth_sync_user::encode(settings_, batch[i], passwords.back()));
    sent.push_back(i);
  }
  const std::vector<http::Exchange> exchanges = sender_->send_all(requests);

  // Job-level failures: refused credentials, or a target that never answered.
  bool any_reached = false;
  for (const auto& ex : exchanges) {
    if (ex.classification.verdict == http::Verdict::kAuth) {
      // Upserts are harmless to repeat, so stopping here loses nothing: the
      // users that did land are sent again next run.
      return core::Error{core::ErrorKind::kAuth, "auth_sync_user refused the credentials (HTTP " +
                                                     std::to_string(ex.response.status) + "): " +
                                                     http::server_message(ex.response)};
    }
    any_reached |= ex.response.failure != http::TransportFailure::kNothingSent;
  }
  if (!exchanges.empty() && !any_reached) {
    return core::Error{core::ErrorKind::kTarget,
                       "cannot reach auth_sync_user at " + auth_sync_user::sync_url(settings_) + ": " +
                           exchanges.front().classification.message};
  }
  for (std::size_t j = 0; j < sent.size(); ++j) {
    outcomes[sent[j]] = auth_sync_user::decode(exchanges[j], batch[sent[j]], passwords[j]);
  }
  std::vector<Outcome> out;
  out.reserve(batch.size());
  for (auto& o : outcomes) out.push_back(std::move(*o));
  return out;
}

std::unique_ptr<core::Target> make_auth_sync_user_target(const config::AuthSyncUserTargetSettings& settings) {
  return std::make_unique<AuthSyncUserTarget>(settings);
}

}  // namespace dirsync::targets
