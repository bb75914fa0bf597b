// The Healvi run: read the customer's set, send the whole set once, check the answer.
#include "connectors/targets/healvi/healvi_target.h"

#include <utility>

#include "connectors/http/rate_limiter.h"

namespace dirsync::targets {

using core::Change;
using core::Outcome;

HealviTarget::HealviTarget(config::HealviTargetSettings settings, http::Sleeper sleeper,
                           std::unique_ptr<http::Transport> transport, http::Jitter jitter)
    : settings_(std::move(settings)), transport_(std::move(transport)) {
  caps_.create = caps_.update = caps_.detach = true;
  caps_.full_set = true;
  caps_.max_batch = SIZE_MAX;
  if (!transport_) transport_ = std::make_unique<http::HttpClient>(settings_.http);
  retry_.policy = http::RetryPolicy::from(settings_.http);
  // Healvi documents no rate limit: only the job's own `rate_limits` apply.
  // (A run sends two requests, a few more after 422s.)
  retry_.rate_limiter = http::make_rate_limiter(http::effective_rate_limits(settings_.http.rate_limits, {}), sleeper);
  retry_.sleeper = std::move(sleeper);
  retry_.jitter = std::move(jitter);
}

std::string HealviTarget::describe() const {
  std::string base = settings_.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return "healvi " + base + " customer " + std::to_string(settings_.customer_id);
}

core::Result<std::vector<Outcome>> HealviTarget::apply(std::span<const Change> batch) {
  const std::int64_t customer = settings_.customer_id;
  const healvi::Managed managed = healvi::managed(std::exchange(managed_, {}), batch);
  healvi::Prepared work = healvi::prepare(batch, managed.kept);
  auto any_live = [&] {
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (work.live(i)) return true;
    }
    return false;
  };
  auto settle_live = [&](const Outcome& o) {
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (work.live(i)) work.decided[i] = o;
    }
  };
  auto result = [&] {
    std::vector<Outcome> out;
    out.reserve(batch.size());
    for (auto& o : work.decided) out.push_back(o ? std::move(*o) : Outcome::unknown("not decided"));
    return out;
  };
  if (!any_live()) return result();

  // 1. The current set: users attached by someone else must be sent back.
  const http::Exchange listed = http::send_with_retry(*transport_, healvi::encode_list(settings_), retry_);
  healvi::Listing listing = healvi::decode_list(listed.response, customer, listed.attempts);
  if (listing.error) return *listing.error;
  if (listing.everyone) {
    settle_live(*listing.everyone);
    return result();
  }
  std::set<std::int64_t> current = std::move(listing.ids);
  // Every user the job manages stays, listed or not: a listing may be partial.
  std::set<std::int64_t> base = current;
  base.insert(managed.ids.begin(), managed.ids.end());

  // 2. Send (current ∪ managed) − detached ∪ attached. A 422 naming ids removes
  // them and the rest goes again; each round removes at least one id, so the loop ends.
  for (std::size_t round = 0;; ++round) {
    const std::vector<std::int64_t> ids = healvi::full_set(base, work);
    if (std::equal(ids.begin(), ids.end(), current.begin(), current.end())) {
      // Nothing to change: every live change already holds on the server.
      // Not sending also spares any admin attached by someone else (invisible to the GET).
      const auto checked = healvi::check_against(current, work, customer);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (work.live(i)) work.decided[i] = checked[i];
      }
      break;
    }
    if (ids.empty() && !settings_.allow_empty) {
      settle_live(Outcome::rejected(
          "not sent: the user list for Healvi customer " + std::to_string(customer) +
          " would be empty, and Healvi detaches every user missing from the list; set allow_empty: true on the "
          "target to allow it"));
      break;
    }
    if (round > ids.size() + 1) {
      settle_live(Outcome::rejected("Healvi kept refusing the user list; stopped after " + std::to_string(round) +
                                    " rounds"));
      break;
    }
    const http::Exchange ex = http::send_with_retry(*transport_, healvi::encode_sync(settings_, ids), retry_);
    healvi::SyncDecoded d = healvi::decode_sync(ex.response, work, ids, customer, ex.attempts);
    if (d.error) {
      // Earlier rounds of this loop can only have been 422s, which wrote
      // nothing: stopping the job loses no acknowledged change.
      return *d.error;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (work.live(i) && i < d.outcomes.size() && d.outcomes[i]) work.decided[i] = std::move(*d.outcomes[i]);
    }
    if (d.invalid.empty()) break;
    // Ids nobody in this run wants (attached by someone else, or a managed
    // user, since deleted in Healvi) go too.
    for (const auto& [id, why] : d.invalid) {
      current.erase(id);
      base.erase(id);
    }
    if (!any_live()) break;
  }
  return result();
}

std::unique_ptr<core::Target> make_healvi_target(const config::HealviTargetSettings& settings) {
  return std::make_unique<HealviTarget>(settings);
}

}  // namespace dirsync::targets
