// Healvi's wire format and the set arithmetic: the pure half of the target.
#include <algorithm>
#include <cctype>
#include <regex>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "connectors/targets/healvi/healvi_target.h"

namespace dirsync::targets::healvi {
namespace {

using core::Change;
using core::Op;
using core::Outcome;
using nlohmann::json;

std::string base_of(const config::HealviTargetSettings& settings) {
  std::string base = settings.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// A Healvi user id: a positive integer. The mapping coerces `user_id` to an
// integer already; anything else here is a per-record error.
std::optional<std::int64_t> as_id(const json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u == 0 || u > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (v.is_number_integer()) {
    const auto n = v.get<std::int64_t>();
    if (n <= 0) return std::nullopt;
    return n;
  }
  return std::nullopt;
}

// An id as Healvi may list it: an integer, or (tolerated) an integer string.
std::optional<std::int64_t> listed_id(const json& v) {
  if (v.is_string() && all_digits(v.get<std::string>())) return std::stoll(v.get<std::string>());
  return as_id(v);
}

std::string describe_value(const json& v) {
  if (v.is_null()) return "missing";
  std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 40) + "...";
  return text;
}

// The user id a payload wants attached, or why there is none.
std::variant<std::int64_t, std::string> payload_id(const json& payload) {
  if (!payload.is_object()) return std::string("the payload is not a JSON object");
  const auto it = payload.find("user_id");
  if (it == payload.end() || it->is_null()) return std::string("user_id is missing");
  if (auto id = as_id(*it)) return *id;
  return "user_id must be a positive integer (Healvi's user id), got " + describe_value(*it);
}

// The id a user last had on the server: payload.user_id of what the target
// acknowledged, else the id the snapshot recorded (they are the same unless the
// snapshot predates the mapping).
std::optional<std::int64_t> acknowledged_id(const json& payload, const std::string& target_id) {
  if (payload.is_object()) {
    if (const auto it = payload.find("user_id"); it != payload.end()) {
      if (auto id = as_id(*it)) return id;
    }
  }
  if (all_digits(target_id)) {
    const auto n = std::stoll(target_id);
    if (n > 0) return n;
  }
  return std::nullopt;
}

std::optional<std::int64_t> previous_id(const Change& c) { return acknowledged_id(c.previous, c.target_id); }

std::vector<std::optional<Outcome>> for_live(const Prepared& p, const Outcome& o) {
  std::vector<std::optional<Outcome>> out(p.intents.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (p.live(i)) out[i] = o;
  }
  return out;
}

std::string customer(std::int64_t id) { return "Healvi customer " + std::to_string(id); }

// "user_ids.3" anywhere in a validation key or message → 3.
std::optional<std::size_t> list_index(const std::string& text) {
  static const std::regex re(R"(user_ids\.(\d{1,9}))");
  std::smatch m;
  if (!std::regex_search(text, m, re)) return std::nullopt;
  return static_cast<std::size_t>(std::stoul(m[1].str()));
}

}  // namespace

const std::vector<core::FieldSpec>& field_specs() {
  static const std::vector<core::FieldSpec> specs = {
      {"user_id", core::FieldType::kInt, true, false},
  };
  return specs;
}

std::string users_url(const config::HealviTargetSettings& settings) {
  return base_of(settings) + "/customers/" + std::to_string(settings.customer_id) + "/users";
}

Managed managed(std::span<const core::Member> members, std::span<const Change> batch) {
  std::set<std::string_view> changed;
  for (const auto& c : batch) changed.insert(c.key);
  Managed m;
  for (const auto& member : members) {
    // A pending create's payload is what it sent; an acknowledged user's, what Healvi took.
    const auto id = acknowledged_id(member.payload, member.target_id);
    if (!id) continue;
    m.ids.insert(*id);
    if (!changed.count(member.key)) m.kept.emplace(*id, member.key);
  }
  return m;
}

Prepared prepare(std::span<const Change> batch, const std::map<std::int64_t, std::string>& kept) {
  Prepared p;
  p.intents.resize(batch.size());
  p.decided.resize(batch.size());
  std::map<std::int64_t, std::size_t> wanted_by;  // id → the change that attaches it

  // Attachments first, so that a detach can see that another change keeps its id.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Change& c = batch[i];
    if (c.op == Op::kDetach) continue;
    const auto id = payload_id(c.payload);
    if (const auto* why = std::get_if<std::string>(&id)) {
      p.decided[i] = Outcome::rejected(*why);
      continue;
    }
    const std::int64_t want = std::get<std::int64_t>(id);
    if (const auto holder = kept.find(want); holder != kept.end()) {
      p.decided[i] = Outcome::rejected("user_id " + std::to_string(want) + " is already the user_id of key '" +
                                       holder->second +
                                       "', which this job manages; one Healvi user cannot belong to two keys");
      continue;
    }
    if (const auto [it, fresh] = wanted_by.emplace(want, i); !fresh) {
      p.decided[i] = Outcome::rejected("user_id " + std::to_string(want) + " is also the user_id of key '" +
                                       batch[it->second].key +
                                       "' in this run; one Healvi user cannot belong to two keys");
      continue;
    }
    p.intents[i].attach = want;
    if (c.op == Op::kUpdate) {
      const auto old = previous_id(c);
      if (old && *old != want) p.intents[i].detach = old;
    }
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Change& c = batch[i];
    if (c.op != Op::kDetach) continue;
    const auto old = previous_id(c);
    if (!old) {
      // Nothing known to detach: the snapshot never held a Healvi id for it.
      p.decided[i] = Outcome::applied({}, "no Healvi user id is known for this user; nothing to detach");
      continue;
    }
    if (const auto it = wanted_by.find(*old); it != wanted_by.end()) {
      p.decided[i] = Outcome::applied({}, "user id " + std::to_string(*old) + " stays attached: key '" +
                                              batch[it->second].key + "' now has it");
      continue;
    }
    if (const auto holder = kept.find(*old); holder != kept.end()) {
      p.decided[i] = Outcome::applied({}, "user id " + std::to_string(*old) + " stays attached: key '" +
                                              holder->second + "' has it too");
      continue;
    }
    p.intents[i].detach = old;
  }
  // An update moving away from an id another change now wants, or another
  // managed user holds, must not detach it.
  for (auto& intent : p.intents) {
    if (intent.detach && (wanted_by.count(*intent.detach) || kept.count(*intent.detach))) intent.detach.reset();
  }
  return p;
}

std::vector<std::int64_t> full_set(const std::set<std::int64_t>& current, const Prepared& prepared) {
  std::set<std::int64_t> out = current;
  for (std::size_t i = 0; i < prepared.intents.size(); ++i) {
    if (!prepared.live(i)) continue;
    if (const auto& d = prepared.intents[i].detach) out.erase(*d);
  }
  for (std::size_t i = 0; i < prepared.intents.size(); ++i) {
    if (!prepared.live(i)) continue;
    if (const auto& a = prepared.intents[i].attach) out.insert(*a);
  }
  return {out.begin(), out.end()};
}

http::Request encode_list(const config::HealviTargetSettings& settings) {
  http::Request req;
  req.method = "GET";
  req.url = users_url(settings);
  req.bearer = settings.token;
  req.idempotent = true;
  return req;
}

http::Request encode_sync(const config::HealviTargetSettings& settings, const std::vector<std::int64_t>& user_ids) {
  http::Request req;
  req.method = "POST";
  req.url = users_url(settings);
  req.bearer = settings.token;
  // The list replaces the customer's set: the same list sent twice leaves the
  // same state, so a POST whose answer was lost may be sent again.
  req.idempotent = true;
  req.body = json{{"user_ids", user_ids}}.dump();
  return req;
}

std::optional<std::set<std::int64_t>> listed_ids(const http::Response& response) {
  const auto body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) return std::nullopt;
  const auto data = body.find("data");
  if (data == body.end() || !data->is_array()) return std::nullopt;
  // A Laravel paginator says so in `meta`/`links`: a partial listing must
  // never be taken for the whole set.
  if (const auto meta = body.find("meta"); meta != body.end() && meta->is_object()) {
    const auto cur = meta->find("current_page");
    const auto last = meta->find("last_page");
    if (cur != meta->end() && last != meta->end() && cur->is_number() && last->is_number() &&
        cur->get<double>() < last->get<double>()) {
      return std::nullopt;
    }
  }
  if (const auto links = body.find("links"); links != body.end() && links->is_object()) {
    if (const auto next = links->find("next"); next != links->end() && !next->is_null()) return std::nullopt;
  }
  std::set<std::int64_t> ids;
  for (const auto& user : *data) {
    // Only `id` matters. `email` is typed integer in the schema and is really
    // a string or null: it is never read.
    if (!user.is_object()) return std::nullopt;
    const auto id = user.find("id");
    if (id == user.end()) return std::nullopt;
    const auto n = listed_id(*id);
    if (!n) return std::nullopt;
    ids.insert(*n);
  }
  return ids;
}

Listing decode_list(const http::Response& response, std::int64_t customer_id, int attempts) {
  Listing l;
  const auto c = http::classify(response);
  const std::string tries = attempts > 1 ? " after " + std::to_string(attempts) + " attempts" : "";
  const std::string what = "could not read which users are attached to " + customer(customer_id);
  switch (c.verdict) {
    case http::Verdict::kSuccess:
      if (auto ids = listed_ids(response)) {
        l.ids = std::move(*ids);
      } else {
        l.everyone = Outcome::retry(what + ": the listing is not a complete {\"data\": [users]} (HTTP " +
                                    std::to_string(response.status) + "); nothing sent");
      }
      return l;
    case http::Verdict::kAuth:
      l.error = core::Error{core::ErrorKind::kAuth, "Healvi refused the token (HTTP " +
                                                        std::to_string(response.status) +
                                                        "): " + http::server_message(response)};
      return l;
    case http::Verdict::kRetry:
      if (response.failure == http::TransportFailure::kNothingSent) {
        l.error = core::Error{core::ErrorKind::kTarget, "Healvi is unreachable" + tries + ": " + c.message};
        return l;
      }
      l.everyone = Outcome::retry("Healvi asked to retry later" + tries + " (" + c.message + "); nothing sent");
      return l;
    case http::Verdict::kRejected:
      if (response.status == 404) {
        l.error = core::Error{core::ErrorKind::kTarget, "Healvi has no customer " + std::to_string(customer_id) +
                                                            " (check customer_id and base_url, which must end in "
                                                            "/third-party/v1): " + c.message};
        return l;
      }
      l.everyone = Outcome::rejected(what + " (" + c.message + "); nothing sent");
      return l;
    case http::Verdict::kUnknown:
      // A GET changes nothing: the changes simply come back next run.
      l.everyone = Outcome::retry(what + tries + " (" + c.message + "); nothing sent");
      return l;
  }
  return l;
}

std::vector<std::optional<Outcome>> check_against(const std::set<std::int64_t>& attached, const Prepared& prepared,
                                                  std::int64_t customer_id) {
  std::vector<std::optional<Outcome>> out(prepared.intents.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!prepared.live(i)) continue;
    const Intent& in = prepared.intents[i];
    if (in.attach && !attached.count(*in.attach)) {
      out[i] = Outcome::rejected("Healvi does not list user id " + std::to_string(*in.attach) +
                                 " as attached to " + customer(customer_id) +
                                 " after the sync (an unknown user id, or an admin: Healvi leaves admins out of "
                                 "its listings, and they see every customer anyway)");
    } else if (in.detach && attached.count(*in.detach)) {
      out[i] = Outcome::rejected("Healvi still lists user id " + std::to_string(*in.detach) + " as attached to " +
                                 customer(customer_id) + " after the sync");
    } else if (in.attach) {
      out[i] = Outcome::applied(std::to_string(*in.attach));
    } else {
      out[i] = Outcome::applied();
    }
  }
  return out;
}

SyncDecoded decode_sync(const http::Response& response, const Prepared& prepared,
                        const std::vector<std::int64_t>& sent, std::int64_t customer_id, int attempts) {
  SyncDecoded d;
  const auto c = http::classify(response);
  const std::string tries = attempts > 1 ? " after " + std::to_string(attempts) + " attempts" : "";
  switch (c.verdict) {
    case http::Verdict::kSuccess: {
      const auto ids = listed_ids(response);
      if (!ids) {
        d.outcomes = for_live(prepared, Outcome::unknown(
                                            "Healvi answered HTTP " + std::to_string(response.status) +
                                            " with a body dirsync cannot read; whether the set was applied is "
                                            "unknown (sending it again is safe: next run)"));
        return d;
      }
      d.outcomes = check_against(*ids, prepared, customer_id);
      return d;
    }
    case http::Verdict::kAuth:
      d.error = core::Error{core::ErrorKind::kAuth, "Healvi refused the token (HTTP " +
                                                        std::to_string(response.status) +
                                                        "): " + http::server_message(response)};
      return d;
    case http::Verdict::kRetry:
      if (response.failure == http::TransportFailure::kNothingSent) {
        d.error = core::Error{core::ErrorKind::kTarget, "Healvi is unreachable" + tries + ": " + c.message};
        return d;
      }
      d.outcomes = for_live(prepared, Outcome::retry("Healvi asked to retry later" + tries + " (" + c.message + ")"));
      return d;
    case http::Verdict::kRejected: {
      if (response.status == 404) {
        d.error = core::Error{core::ErrorKind::kTarget,
                              "Healvi has no customer " + std::to_string(customer_id) + " (check customer_id): " + c.message};
        return d;
      }
      if (response.status == 422) {
        // Laravel names each bad element: {"errors": {"user_ids.3": ["The selected user_ids.3 is invalid."]}}.
        // A 422 is answered before anything is written, so the rest may be sent again.
        const auto body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
        if (body.is_object() && body.contains("errors") && body["errors"].is_object()) {
          for (const auto& [key, messages] : body["errors"].items()) {
            const auto index = list_index(key);
            if (!index || *index >= sent.size()) continue;
            std::string text;
            if (messages.is_array()) {
              for (const auto& m : messages) {
                if (!m.is_string()) continue;
                text += (text.empty() ? "" : " ") + m.get<std::string>();
              }
            } else if (messages.is_string()) {
              text = messages.get<std::string>();
            }
            if (text.empty()) text = "The " + key + " is invalid.";
            d.invalid[sent[*index]] = text;
          }
        }
        if (!d.invalid.empty()) {
          d.outcomes.resize(prepared.intents.size());
          for (std::size_t i = 0; i < prepared.intents.size(); ++i) {
            if (!prepared.live(i)) continue;
            const auto& a = prepared.intents[i].attach;
            if (!a) continue;
            if (const auto it = d.invalid.find(*a); it != d.invalid.end()) {
              d.outcomes[i] = Outcome::rejected("Healvi refused user id " + std::to_string(*a) + ": " + it->second);
            }
          }
          return d;
        }
      }
      d.outcomes = for_live(prepared, Outcome::rejected("Healvi rejected the user list for " + customer(customer_id) +
                                                        " (" + c.message + ")"));
      return d;
    }
    case http::Verdict::kUnknown:
      // An idempotent request: send_with_retry already sent it again.
      d.outcomes = for_live(prepared, Outcome::unknown("outcome unknown" + tries + ": " + c.message +
                                                       " (the same set is sent again next run)"));
      return d;
  }
  return d;
}

}  // namespace dirsync::targets::healvi
