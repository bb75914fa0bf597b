// The Hesh batch loop: sends encode()d requests through the retry policy, one
// request per group of users with distinct external_user_id and email, and
// re-sends what a 400 left undecided until every change has an outcome.
#include <algorithm>

#include "connectors/targets/hesh/hesh_target.h"

#include "connectors/http/rounds.h"

namespace dirsync::targets {

using core::Change;
using core::Outcome;

HeshTarget::HeshTarget(config::HeshTargetSettings settings, http::Sleeper sleeper,
                       std::unique_ptr<http::Transport> transport, http::Jitter jitter,
                       http::RateLimiter::Clock clock)
    : settings_(std::move(settings)), transport_(std::move(transport)) {
  caps_.create = true;
  caps_.update = false;  // Hesh has no update endpoint
  caps_.detach = false;  // nor a delete one
  caps_.full_set = false;
  caps_.max_batch = hesh::kMaxBatch;
  if (!transport_) transport_ = std::make_unique<http::HttpClient>(settings_.http);
  retry_.policy = http::RetryPolicy::from(settings_.http);
  retry_.sleeper = sleeper;
  retry_.jitter = std::move(jitter);
  rate_limits_ = http::effective_rate_limits(settings_.http.rate_limits, default_rate_limits());
  if (!clock) clock = [] { return std::chrono::steady_clock::now(); };
  // Null when the limits are off: then nothing waits.
  retry_.rate_limiter = http::make_rate_limiter(rate_limits_, std::move(sleeper), std::move(clock));
}

std::vector<config::RateWindow> HeshTarget::default_rate_limits() {
  using std::chrono::hours;
  using std::chrono::milliseconds;
  using std::chrono::minutes;
  using std::chrono::seconds;
  return {
      {15, milliseconds(seconds(1))},
      {300, milliseconds(minutes(1))},
      {4000, milliseconds(hours(1))},
  };
}

std::size_t HeshTarget::batch_size() const {
  return std::clamp<std::size_t>(settings_.batch_size, 1, hesh::kMaxBatch);
}

std::string HeshTarget::pace(std::size_t creates, std::size_t updates, std::size_t detaches) const {
  // Only creates are sent: this API has no update or delete.
  (void)updates, (void)detaches;
  return http::describe_pace(http::batch_requests(creates, batch_size()), rate_limits_);
}

std::string HeshTarget::describe() const {
  std::string base = settings_.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return "hesh " + base;
}

core::Result<std::vector<Outcome>> HeshTarget::apply(std::span<const Change> batch) {
  std::vector<std::optional<Outcome>> outcomes(batch.size());

  std::vector<std::size_t> ready;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (auto o = hesh::precheck(batch[i])) {
      outcomes[i] = std::move(*o);
    } else {
      ready.push_back(i);
    }
  }

  // Two users with one email (or one external_user_id) in a request would make
  // Hesh's answer ambiguous: they go in separate requests. A 400 either decides
  // at least one change or all of its request, so every round makes progress.
  return http::run_rounds(batch, std::move(outcomes), hesh::distinct_groups(batch, ready),
                          [&](std::span<const Change> sub) {
                            const http::Exchange ex =
                                http::send_with_retry(*transport_, hesh::encode(settings_, sub), retry_);
                            hesh::Decoded d = hesh::decode(settings_, ex.response, sub, ex.attempts);
                            return http::RoundDecision{std::move(d.outcomes), false, std::move(d.error)};
                          },
                          "Hesh");
}

std::unique_ptr<core::Target> make_hesh_target(const config::HeshTargetSettings& settings) {
  return std::make_unique<HeshTarget>(settings);
}

}  // namespace dirsync::targets
