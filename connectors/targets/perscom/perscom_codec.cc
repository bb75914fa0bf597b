// PERSCOM's wire format: the pure encode/decode half of the target.
#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <set>

#include "connectors/targets/perscom/perscom_target.h"

namespace dirsync::targets::perscom {
namespace {

using core::Change;
using core::FieldType;
using core::Op;
using core::Outcome;
using nlohmann::json;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

const core::FieldSpec* find_spec(const std::string& name) {
  for (const auto& f : field_specs()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// PERSCOM ids are integers; the snapshot keeps them as strings.
json id_value(const std::string& id) {
  if (!id.empty() && id.size() <= 18 && std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return std::stoll(id);
  }
  return id;
}

std::optional<std::string> id_string(const json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_string() && !v.get<std::string>().empty()) return v.get<std::string>();
  return std::nullopt;
}

// The `data` array of a 2xx answer, or nullopt when the body is not that.
std::optional<json> data_array(const http::Response& r) {
  auto body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) return std::nullopt;
  auto it = body.find("data");
  if (it == body.end() || !it->is_array()) return std::nullopt;
  return std::move(*it);
}

std::vector<std::optional<Outcome>> all(std::size_t n, const Outcome& o) {
  return std::vector<std::optional<Outcome>>(n, std::optional<Outcome>(o));
}

std::string op_word(Op op) {
  switch (op) {
    case Op::kCreate: return "create";
    case Op::kUpdate: return "update";
    case Op::kDetach: return "delete";
  }
  return "?";
}

// "resources.3.email" → "3"; "resources.3" → "3"; anything else → nullopt.
std::optional<std::string> resource_token(const std::string& text) {
  static const std::regex re(R"(resources\.([A-Za-z0-9_-]+))");
  std::smatch m;
  if (!std::regex_search(text, m, re)) return std::nullopt;
  return m[1].str();
}

// The batch position a validation key names: an array index for POST/DELETE,
// a PERSCOM id (the object key) for PATCH.
std::optional<std::size_t> position_of(const std::string& token, std::span<const Change> batch) {
  if (batch.empty()) return std::nullopt;
  if (batch.front().op == Op::kUpdate) {
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].target_id == token) return i;
    }
    return std::nullopt;
  }
  if (token.empty() || token.size() > 9 || !std::all_of(token.begin(), token.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return std::nullopt;
  }
  const std::size_t i = std::stoul(token);
  if (i >= batch.size()) return std::nullopt;
  return i;
}

// " (and 2 more errors)" refers to other records: not part of this record's reason.
std::string strip_more_errors(std::string msg) {
  static const std::regex re(R"(\s*\(and \d+ more errors?\)\s*$)");
  return std::regex_replace(msg, re, "");
}

Decoded decode_422(const http::Response& r, std::span<const Change> batch) {
  Decoded d;
  d.outcomes.resize(batch.size());
  const std::string whole = http::server_message(r);
  bool named = false;
  const auto body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);

  // Laravel's standard shape names every invalid field.
  if (body.is_object() && body.contains("errors") && body["errors"].is_object()) {
    std::map<std::size_t, std::string> reasons;
    for (const auto& [key, messages] : body["errors"].items()) {
      const auto token = resource_token(key);
      if (!token) continue;
      const auto pos = position_of(*token, batch);
      if (!pos) continue;
      std::string text;
      if (messages.is_array()) {
        for (const auto& m : messages) {
          if (!m.is_string()) continue;
          if (!text.empty()) text += " ";
          text += m.get<std::string>();
        }
      } else if (messages.is_string()) {
        text = messages.get<std::string>();
      }
      if (text.empty()) text = key + " is invalid";
      auto& slot = reasons[*pos];
      slot += (slot.empty() ? "" : " ") + text;
    }
    for (auto& [pos, text] : reasons) {
      d.outcomes[pos] = Outcome::rejected(std::move(text));
      named = true;
    }
  }
  // PERSCOM's shape names only the first error.
  if (!named) {
    if (const auto token = resource_token(whole)) {
      if (const auto pos = position_of(*token, batch)) {
        d.outcomes[*pos] = Outcome::rejected(strip_more_errors(whole));
        named = true;
      }
    }
  }
  if (!named) {
    if (batch.size() == 1) {
      d.outcomes[0] = Outcome::rejected(strip_more_errors(whole));
    } else {
      d.bisect = true;
    }
  }
  return d;
}

Decoded decode_created(const http::Response& r, std::span<const Change> batch) {
  Decoded d;
  const auto data = data_array(r);
  if (!data) {
    d.outcomes = all(batch.size(), Outcome::unknown("PERSCOM answered HTTP " + std::to_string(r.status) +
                                                    " with a body dirsync cannot read; whether the users were "
                                                    "created is unknown (not re-sent)"));
    return d;
  }
  // email → ids returned for it (more than one: ambiguous).
  std::map<std::string, std::vector<std::string>> by_email;
  for (const auto& user : *data) {
    if (!user.is_object()) continue;
    const auto email = user.find("email");
    const auto id = user.find("id");
    if (email == user.end() || !email->is_string() || id == user.end()) continue;
    auto ids = id_string(*id);
    if (ids) by_email[lower(email->get<std::string>())].push_back(*ids);
  }
  const std::string counts = "PERSCOM returned " + std::to_string(data->size()) + " users for " +
                             std::to_string(batch.size()) + " sent";
  for (const auto& change : batch) {
    std::string email;
    if (const auto it = change.payload.find("email"); it != change.payload.end() && it->is_string()) {
      email = lower(it->get<std::string>());
    }
    const auto found = by_email.find(email);
    if (email.empty() || found == by_email.end()) {
      d.outcomes.emplace_back(Outcome::unknown(counts + " and none has this user's email; whether it was "
                                               "created is unknown (not re-sent)"));
    } else if (found->second.size() != 1) {
      d.outcomes.emplace_back(Outcome::unknown(counts + ", " + std::to_string(found->second.size()) +
                                               " of them with this user's email; whether it was created is "
                                               "unknown (not re-sent)"));
    } else {
      d.outcomes.emplace_back(Outcome::applied(found->second.front()));
    }
  }
  return d;
}

Decoded decode_by_id(const http::Response& r, std::span<const Change> batch) {
  Decoded d;
  const auto data = data_array(r);
  const Op op = batch.front().op;
  if (!data) {
    d.outcomes = all(batch.size(), Outcome::unknown("PERSCOM answered HTTP " + std::to_string(r.status) +
                                                    " with a body dirsync cannot read; whether the " + op_word(op) +
                                                    " took effect is unknown"));
    return d;
  }
  std::set<std::string> returned;
  for (const auto& user : *data) {
    if (!user.is_object() || !user.contains("id")) continue;
    if (auto id = id_string(user["id"])) returned.insert(*id);
  }
  for (const auto& change : batch) {
    if (returned.count(change.target_id)) {
      d.outcomes.emplace_back(Outcome::applied(change.target_id));
    } else if (op == Op::kUpdate) {
      d.outcomes.emplace_back(Outcome::rejected(missing_id_message(change.target_id)));
    } else {
      d.outcomes.emplace_back(Outcome::applied(change.target_id, "already absent"));
    }
  }
  return d;
}

}  // namespace

std::string missing_id_message(const std::string& id) { return "user id " + id + " does not exist in PERSCOM"; }

const std::vector<core::FieldSpec>& field_specs() {
  static const std::vector<core::FieldSpec> specs = {
      {"name", FieldType::kString, true, false, core::FieldFormat::kText, 255},  // users.name: VARCHAR(255)
      {"email", FieldType::kString, true, true, core::FieldFormat::kEmail},
      {"email_verified_at", FieldType::kString, false, false},
      {"phone_number", FieldType::kString, false, false},
      {"position_id", FieldType::kInt, false, false},
      {"rank_id", FieldType::kInt, false, false},
      {"specialty_id", FieldType::kInt, false, false},
      {"status_id", FieldType::kInt, false, false},
      {"unit_id", FieldType::kInt, false, false},
      {"approved", FieldType::kBool, false, false},
      {"notes", FieldType::kString, false, false},
      {"notes_updated_at", FieldType::kString, false, false},
      {"last_seen_at", FieldType::kString, false, false},
  };
  return specs;
}

std::string batch_url(const config::PerscomTargetSettings& settings) {
  std::string base = settings.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/" + settings.api_version + "/users/batch";
}

json patch_fields(const Change& change) {
  json out = json::object();
  if (!change.payload.is_object()) return out;
  if (change.resync) {
    for (const auto& [name, value] : change.payload.items()) {
      const auto* spec = find_spec(name);
      if (spec && spec->unique) continue;  // re-sending an unchanged email fails PERSCOM's unique rule
      out[name] = value;
    }
    return out;
  }
  for (const auto& name : change.changed_fields) {
    if (const auto it = change.payload.find(name); it != change.payload.end()) {
      out[name] = *it;
    } else if (const auto* spec = find_spec(name); spec && !spec->required) {
      out[name] = nullptr;  // no longer mapped: clear it
    }
  }
  return out;
}

std::optional<Outcome> precheck(const Change& change) {
  switch (change.op) {
    case Op::kCreate:
      if (!change.payload.is_object()) return Outcome::rejected("the payload is not a JSON object");
      return std::nullopt;
    case Op::kUpdate:
      if (!change.payload.is_object()) return Outcome::rejected("the payload is not a JSON object");
      [[fallthrough]];
    case Op::kDetach:
      if (change.target_id.empty()) {
        return Outcome::rejected("no PERSCOM id is known for this user, so it cannot be " +
                                 std::string(change.op == Op::kUpdate ? "updated" : "deleted"));
      }
      return std::nullopt;
  }
  return std::nullopt;
}

http::Request encode(const config::PerscomTargetSettings& settings, std::span<const Change> batch) {
  http::Request req;
  req.url = batch_url(settings);
  req.bearer = settings.token;
  if (settings.perscom_id) req.secret_headers.emplace_back("X-Perscom-Id", *settings.perscom_id);
  const Op op = batch.empty() ? Op::kCreate : batch.front().op;
  json body;
  switch (op) {
    case Op::kCreate: {
      req.method = "POST";
      req.idempotent = false;
      json resources = json::array();
      for (const auto& c : batch) resources.push_back(c.payload);
      body["resources"] = std::move(resources);
      break;
    }
    case Op::kUpdate: {
      req.method = "PATCH";
      req.idempotent = true;  // sets fields to fixed values
      json resources = json::object();
      for (const auto& c : batch) resources[c.target_id] = patch_fields(c);
      body["resources"] = std::move(resources);
      break;
    }
    case Op::kDetach: {
      req.method = "DELETE";
      req.idempotent = true;  // deleting a deleted id is skipped by the server
      json resources = json::array();
      for (const auto& c : batch) resources.push_back(id_value(c.target_id));
      body["resources"] = std::move(resources);
      break;
    }
  }
  req.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return req;
}

http::Request encode_search(const config::PerscomTargetSettings& settings, const std::vector<std::string>& emails,
                            int page) {
  http::Request req;
  std::string base = settings.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  req.url = base + "/" + settings.api_version + "/users/search?page=" + std::to_string(page) +
            "&limit=" + std::to_string(kSearchChunk);
  req.method = "POST";
  req.idempotent = true;  // a search changes nothing
  req.bearer = settings.token;
  if (settings.perscom_id) req.secret_headers.emplace_back("X-Perscom-Id", *settings.perscom_id);
  const json body = {{"filters", json::array({{{"field", "email"}, {"operator", "in"}, {"value", emails}}})}};
  req.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return req;
}

core::Result<SearchPage> decode_search(const http::Response& response) {
  if (response.status == 401 || response.status == 403) {
    return core::Error{core::ErrorKind::kAuth, "PERSCOM refused the user search with HTTP " +
                                                   std::to_string(response.status) + ": " +
                                                   http::server_message(response)};
  }
  const auto data = response.status == 200 ? data_array(response) : std::nullopt;
  if (!data) {
    return core::Error{core::ErrorKind::kTarget, "PERSCOM's user search answered HTTP " +
                                                     std::to_string(response.status) + ": " +
                                                     http::server_message(response)};
  }
  SearchPage page;
  for (const auto& user : *data) {
    if (user.is_object() && user.contains("id") && user.contains("email") && user["email"].is_string()) {
      page.users.push_back(user);
    }
  }
  const auto body = json::parse(response.body, nullptr, false);
  if (const auto meta = body.find("meta"); meta != body.end() && meta->is_object()) {
    if (const auto last = meta->find("last_page"); last != meta->end() && last->is_number_integer()) {
      page.last_page = std::max(1, last->get<int>());
    }
  }
  return page;
}

json adopted_fields(const json& user, const json& sent) {
  json out = json::object();
  if (!sent.is_object() || !user.is_object()) return out;
  for (const auto& [field, value] : sent.items()) {
    const auto it = user.find(field);
    if (it != user.end()) out[field] = *it;
  }
  if (sent.contains("email") && out.contains("email") && out["email"].is_string() && sent["email"].is_string() &&
      lower(out["email"].get<std::string>()) == lower(sent["email"].get<std::string>())) {
    out["email"] = sent["email"];
  }
  return out;
}

bool is_email_taken(const std::string& message) {
  static const std::regex re(R"(email has already been taken)", std::regex::icase);
  return std::regex_search(message, re);
}

Decoded decode(const http::Response& response, std::span<const Change> batch, int attempts) {
  Decoded d;
  if (batch.empty()) return d;
  const Op op = batch.front().op;
  const auto c = http::classify(response);
  const std::string tries = attempts > 1 ? " after " + std::to_string(attempts) + " attempts" : "";
  switch (c.verdict) {
    case http::Verdict::kSuccess:
      return op == Op::kCreate ? decode_created(response, batch) : decode_by_id(response, batch);
    case http::Verdict::kAuth:
      d.error = core::Error{core::ErrorKind::kAuth, "PERSCOM refused the token (HTTP " +
                                                        std::to_string(response.status) +
                                                        "): " + http::server_message(response)};
      return d;
    case http::Verdict::kRetry:
      if (response.failure == http::TransportFailure::kNothingSent) {
        // Unreachable (or a TLS problem): every other batch would fail the same way.
        d.error = core::Error{core::ErrorKind::kTarget, "PERSCOM is unreachable" + tries + ": " + c.message};
        return d;
      }
      d.outcomes = all(batch.size(), Outcome::retry("PERSCOM asked to retry later" + tries + " (" + c.message + ")"));
      return d;
    case http::Verdict::kRejected:
      if (response.status == 422) return decode_422(response, batch);
      d.outcomes = all(batch.size(), Outcome::rejected("PERSCOM rejected the " + op_word(op) + " batch (" +
                                                       c.message + ")"));
      return d;
    case http::Verdict::kUnknown:
      d.outcomes = all(batch.size(),
                       Outcome::unknown(op == Op::kCreate
                                            ? "outcome unknown, not re-sent because a create is not safe to repeat: " +
                                                  c.message
                                            : "outcome unknown" + tries + ": " + c.message));
      return d;
  }
  return d;
}

}  // namespace dirsync::targets::perscom
