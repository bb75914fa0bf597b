// The Royalti request loop: one request per group of users with distinct
// display names, each through the retry policy, decoded into one outcome per user.
#include <algorithm>

#include "connectors/targets/royalti/royalti_target.h"

#include "connectors/http/rounds.h"

namespace dirsync::targets {

using core::Change;
using core::Outcome;

RoyaltiTarget::RoyaltiTarget(config::RoyaltiTargetSettings settings, http::Sleeper sleeper,
                             std::unique_ptr<http::Transport> transport, http::Jitter jitter,
                             http::RateLimiter::Clock clock)
    : settings_(std::move(settings)), transport_(std::move(transport)) {
  caps_.create = true;
  caps_.update = false;  // Royalti has no update endpoint
  caps_.detach = false;  // nor a remove one
  caps_.full_set = false;
  caps_.max_batch = royalti::kMaxBatch;
  if (!transport_) transport_ = std::make_unique<http::HttpClient>(settings_.http);
  retry_.policy = http::RetryPolicy::from(settings_.http);
  retry_.sleeper = sleeper;
  retry_.jitter = std::move(jitter);
  rate_limits_ = http::effective_rate_limits(settings_.http.rate_limits, default_rate_limits());
  if (!clock) clock = [] { return std::chrono::steady_clock::now(); };
  // Null when there are no limits: then nothing waits.
  retry_.rate_limiter = http::make_rate_limiter(rate_limits_, std::move(sleeper), std::move(clock));
}

std::vector<config::RateWindow> RoyaltiTarget::default_rate_limits() { return {}; }

std::size_t RoyaltiTarget::batch_size() const {
  return std::clamp<std::size_t>(settings_.batch_size, 1, royalti::kMaxBatch);
}

std::string RoyaltiTarget::pace(std::size_t creates, std::size_t updates, std::size_t detaches) const {
  // Only creates are sent: this API has no update or delete.
  (void)updates, (void)detaches;
  return http::describe_pace(http::batch_requests(creates, batch_size()), rate_limits_);
}

std::string RoyaltiTarget::describe() const {
  std::string base = settings_.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return "royalti " + base;
}

core::Result<std::vector<Outcome>> RoyaltiTarget::apply(std::span<const Change> batch) {
  std::vector<std::optional<Outcome>> outcomes(batch.size());
  std::vector<std::size_t> ready;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (auto o = royalti::precheck(batch[i])) {
      outcomes[i] = std::move(*o);
    } else {
      ready.push_back(i);
    }
  }

  // Royalti names results only by "firstName lastName": two users with one
  // display name in a request could not be told apart, so they go in
  // separate requests.
  return http::run_rounds(batch, std::move(outcomes), royalti::distinct_name_groups(batch, ready),
                          [&](std::span<const Change> sub) {
                            const http::Exchange ex =
                                http::send_with_retry(*transport_, royalti::encode(settings_, sub), retry_);
                            royalti::Decoded d = royalti::decode(ex.response, sub, ex.attempts);
                            http::RoundDecision round;
                            round.error = std::move(d.error);
                            // Royalti's decoder decides every user of an answer; a short
                            // answer would be a decoder bug: never re-send on it.
                            for (auto& o : d.outcomes) round.outcomes.emplace_back(std::move(o));
                            if (!round.error) {
                              while (round.outcomes.size() < sub.size()) {
                                round.outcomes.emplace_back(Outcome::unknown("Royalti's answer was not decoded"));
                              }
                            }
                            return round;
                          },
                          "Royalti");
}

std::unique_ptr<core::Target> make_royalti_target(const config::RoyaltiTargetSettings& settings) {
  return std::make_unique<RoyaltiTarget>(settings);
}

}  // namespace dirsync::targets
