// The PERSCOM batch loop: sends encode()d requests through the retry policy and
// keeps re-sending what a 422 left undecided until every change has an outcome.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "connectors/targets/perscom/perscom_target.h"

#include "connectors/http/rounds.h"

namespace dirsync::targets {

using core::Change;
using core::Outcome;

PerscomTarget::PerscomTarget(config::PerscomTargetSettings settings, http::Sleeper sleeper,
                             std::unique_ptr<http::Transport> transport, http::Jitter jitter,
                             http::RateLimiter::Clock clock)
    : settings_(std::move(settings)) {
  caps_.create = caps_.update = caps_.detach = true;
  caps_.full_set = false;
  caps_.max_batch = perscom::kMaxBatch;
  const config::HttpSettings http_settings = settings_.http;
  chunks_ = std::make_unique<http::ChunkedSender>(
      settings_.http.max_in_flight, std::clamp<std::size_t>(settings_.batch_size, 1, perscom::kMaxBatch),
      std::move(transport), [http_settings] { return std::make_unique<http::HttpClient>(http_settings); });
  retry_.policy = http::RetryPolicy::from(settings_.http);
  retry_.sleeper = sleeper;
  retry_.jitter = std::move(jitter);
  rate_limits_ = http::effective_rate_limits(settings_.http.rate_limits, default_rate_limits());
  if (!clock) clock = [] { return std::chrono::steady_clock::now(); };
  retry_.rate_limiter = http::make_rate_limiter(rate_limits_, std::move(sleeper), std::move(clock));
}

std::vector<config::RateWindow> PerscomTarget::default_rate_limits() {
  return {config::RateWindow{60, std::chrono::minutes(1)}};
}

std::size_t PerscomTarget::batch_size() const {
  // With max_in_flight N the engine hands over N requests' worth at once.
  return chunks_->batch_size();
}

std::string PerscomTarget::pace(std::size_t creates, std::size_t updates, std::size_t detaches) const {
  // Each operation goes in its own requests of one request's worth.
  const std::size_t b = chunks_->chunk_size();
  return http::describe_pace(
      http::batch_requests(creates, b) + http::batch_requests(updates, b) + http::batch_requests(detaches, b),
      rate_limits_);
}

std::string PerscomTarget::describe() const {
  std::string base = settings_.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return "perscom " + base + "/" + settings_.api_version;
}

core::Result<std::vector<Outcome>> PerscomTarget::apply(std::span<const Change> batch) {
  auto result = apply_once(batch);
  if (!result) return result;
  auto& outcomes = result.value();
  if (auto adopted = adopt_taken(batch, outcomes); !adopted.ok()) return adopted.error();
  // Resync: users deleted inside PERSCOM come back as creates.
  std::vector<std::size_t> gone;
  std::vector<Change> recreate;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Change& c = batch[i];
    if (c.op == core::Op::kUpdate && c.resync && outcomes[i].kind == core::OutcomeKind::kRejected &&
        outcomes[i].message == perscom::missing_id_message(c.target_id)) {
      gone.push_back(i);
      Change create = c;
      create.op = core::Op::kCreate;
      create.target_id.clear();
      recreate.push_back(std::move(create));
    }
  }
  if (recreate.empty()) return result;
  auto created = apply_once(recreate);
  if (!created) return created;
  for (std::size_t j = 0; j < gone.size(); ++j) {
    Outcome o = std::move(created.value()[j]);
    if (o.kind == core::OutcomeKind::kApplied) {
      o.message = "PERSCOM no longer had user id " + batch[gone[j]].target_id + ": created again";
    }
    outcomes[gone[j]] = std::move(o);
  }
  return result;
}

core::Result<std::vector<Outcome>> PerscomTarget::apply_once(std::span<const Change> batch) {
  // Orion runs each batch in its own transaction: requests are independent,
  // so up to max_in_flight of them may go out at once.
  return chunks_->apply(batch, [this](std::span<const Change> chunk, http::Transport& transport) {
    return apply_request(chunk, transport);
  });
}

core::Result<std::vector<Outcome>> PerscomTarget::apply_request(std::span<const Change> batch,
                                                                http::Transport& transport) {
  std::vector<std::optional<Outcome>> outcomes(batch.size());

  // Decide locally what cannot or need not be sent.
  std::vector<std::size_t> ready;
  std::set<std::string> ids_seen;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Change& c = batch[i];
    if (auto o = perscom::precheck(c)) {
      outcomes[i] = std::move(*o);
    } else if (c.op == core::Op::kUpdate && perscom::patch_fields(c).empty()) {
      outcomes[i] = Outcome::applied(c.target_id, "no field PERSCOM knows changed; nothing sent");
    } else if (c.op != core::Op::kCreate && !ids_seen.insert(c.target_id).second) {
      // A PATCH body is keyed by id: a second change for the same id would overwrite the first.
      outcomes[i] = Outcome::rejected("another user in the same batch has PERSCOM id " + c.target_id);
    } else {
      ready.push_back(i);
    }
  }

  // A 422 either decides at least one change or splits its group, so every
  // round makes progress.
  return http::run_rounds(batch, std::move(outcomes), {std::move(ready)}, [&](std::span<const Change> sub) {
    const http::Exchange ex = http::send_with_retry(transport, perscom::encode(settings_, sub), retry_);
    perscom::Decoded d = perscom::decode(ex.response, sub, ex.attempts);
    return http::RoundDecision{std::move(d.outcomes), d.bisect, std::move(d.error)};
  }, "PERSCOM");
}

core::Status PerscomTarget::adopt_taken(std::span<const Change> batch, std::vector<Outcome>& outcomes) {
  std::vector<std::size_t> taken;
  std::vector<Change> creates;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].op == core::Op::kCreate && outcomes[i].kind == core::OutcomeKind::kRejected &&
        perscom::is_email_taken(outcomes[i].message)) {
      taken.push_back(i);
      creates.push_back(batch[i]);
    }
  }
  if (taken.empty()) return core::Ok{};
  auto found = lookup(creates);
  if (!found) {
    // The rejections stand; the next run tries again.
    if (found.error().kind == core::ErrorKind::kAuth) return found.error();
    return core::Ok{};
  }
  for (std::size_t j = 0; j < taken.size(); ++j) {
    const auto& match = found.value()[j];
    if (!match) continue;  // taken by a user the search cannot see (another tenant?): stays rejected
    outcomes[taken[j]] = Outcome::adopted(match->target_id, match->current,
                                          "PERSCOM already had a user with this email (id " + match->target_id +
                                              "): adopted, not created again");
  }
  return core::Ok{};
}

core::Result<std::vector<std::optional<core::Found>>> PerscomTarget::lookup(std::span<const Change> creates) {
  if (!lookup_client_) lookup_client_ = std::make_unique<http::HttpClient>(settings_.http);
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  };
  std::vector<std::string> emails(creates.size());
  for (std::size_t i = 0; i < creates.size(); ++i) {
    const auto it = creates[i].payload.find("email");
    if (creates[i].payload.is_object() && it != creates[i].payload.end() && it->is_string()) {
      emails[i] = lower(it->get<std::string>());
    }
  }
  // email → the users PERSCOM holds with it.
  std::map<std::string, std::vector<nlohmann::json>> by_email;
  std::vector<std::string> wanted;
  for (const auto& e : emails) {
    if (!e.empty()) wanted.push_back(e);
  }
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  for (std::size_t start = 0; start < wanted.size(); start += perscom::kSearchChunk) {
    const std::vector<std::string> chunk(wanted.begin() + static_cast<std::ptrdiff_t>(start),
                                         wanted.begin() + static_cast<std::ptrdiff_t>(
                                                              std::min(wanted.size(), start + perscom::kSearchChunk)));
    // A page holds kSearchChunk users and a chunk asks for as many emails, so
    // one page is the rule; more pages follow only if emails repeat in PERSCOM.
    for (int page = 1, last = 1; page <= last && page <= 1000; ++page) {
      const http::Exchange ex =
          http::send_with_retry(*lookup_client_, perscom::encode_search(settings_, chunk, page), retry_);
      auto decoded = perscom::decode_search(ex.response);
      if (!decoded) return decoded.error();
      last = decoded.value().last_page;
      for (auto& user : decoded.value().users) by_email[lower(user["email"].get<std::string>())].push_back(user);
    }
  }
  std::vector<std::optional<core::Found>> out(creates.size());
  for (std::size_t i = 0; i < creates.size(); ++i) {
    const auto it = by_email.find(emails[i]);
    if (emails[i].empty() || it == by_email.end()) continue;
    if (it->second.size() != 1) {
      // PERSCOM's emails are unique; if that ever breaks, deciding "absent"
      // here would create a user again, so nothing is decided.
      return core::Error{core::ErrorKind::kTarget, "PERSCOM's search found " + std::to_string(it->second.size()) +
                                                       " users for one email; cannot tell which one dirsync created"};
    }
    const auto& user = it->second.front();
    const auto& id = user["id"];
    out[i] = core::Found{id.is_string() ? id.get<std::string>() : id.dump(),
                         perscom::adopted_fields(user, creates[i].payload)};
  }
  return out;
}

std::unique_ptr<core::Target> make_perscom_target(const config::PerscomTargetSettings& settings) {
  return std::make_unique<PerscomTarget>(settings);
}

}  // namespace dirsync::targets
