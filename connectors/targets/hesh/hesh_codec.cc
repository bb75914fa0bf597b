// Hesh's wire format: the pure encode/decode half of the target.
#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <set>

#include "connectors/targets/hesh/hesh_target.h"

namespace dirsync::targets::hesh {
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

// A string member of `object`, or empty.
std::string string_field(const json& object, const char* name) {
  if (!object.is_object()) return {};
  const auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

// Servers echo request headers in error texts more often than one would like:
// whatever Hesh says, the tenant id and the key never reach a message.
std::string redact(const config::HeshTargetSettings& settings, std::string text) {
  auto scrub = [&text](const std::string& secret) {
    if (secret.empty()) return;
    for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos)) {
      text.replace(pos, secret.size(), "[redacted]");
      pos += 10;
    }
  };
  scrub(settings.tenant_id.reveal());
  if (settings.api_key) scrub(settings.api_key->reveal());
  return text;
}

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

// Hesh is a NestJS service: its errors are {"statusCode", "message", "error"}
// where a validation 400 carries `message` as an array of strings.
std::vector<std::string> message_list(const http::Response& r) {
  const auto body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> out;
  if (body.is_object()) {
    // `message` first: NestJS's `error` is only the status text ("Bad Request").
    const auto it = body.find("message");
    if (it != body.end() && it->is_array()) {
      for (const auto& m : *it) {
        if (m.is_string() && !m.get<std::string>().empty()) out.push_back(m.get<std::string>());
      }
    } else if (it != body.end() && it->is_string() && !it->get<std::string>().empty()) {
      out.push_back(it->get<std::string>());
    }
  }
  if (out.empty()) out.push_back(http::server_message(r));
  return out;
}

// For a message: "HTTP 500: <Hesh's words>", or the transport's description.
std::string describe_failure(const config::HeshTargetSettings& settings, const http::Response& r,
                             const http::Classification& c) {
  if (r.failure != http::TransportFailure::kNone) return redact(settings, c.message);
  return "HTTP " + std::to_string(r.status) + ": " + redact(settings, joined(message_list(r)));
}

std::vector<std::optional<Outcome>> all(std::size_t n, const Outcome& o) {
  return std::vector<std::optional<Outcome>>(n, std::optional<Outcome>(o));
}

// "users.3.email must be an email" → 3, when 3 is a position of the request.
std::optional<std::size_t> named_position(const std::string& text, std::size_t size) {
  static const std::regex re(R"(\busers\.(\d{1,9})\b)");
  std::smatch m;
  if (!std::regex_search(text, m, re)) return std::nullopt;
  const std::size_t i = std::stoul(m[1].str());
  if (i >= size) return std::nullopt;
  return i;
}

Decoded decode_400(const config::HeshTargetSettings& settings, const http::Response& r,
                   std::span<const Change> batch) {
  Decoded d;
  const auto messages = message_list(r);
  std::map<std::size_t, std::vector<std::string>> named;
  for (const auto& m : messages) {
    if (const auto pos = named_position(m, batch.size())) named[*pos].push_back(m);
  }
  if (named.empty()) {
    d.outcomes = all(batch.size(), Outcome::rejected("Hesh rejected the batch (HTTP 400): " +
                                                     redact(settings, joined(messages))));
    return d;
  }
  // A validation 400 writes nothing: the records it does not name are sent again.
  d.outcomes.resize(batch.size());
  for (const auto& [pos, texts] : named) d.outcomes[pos] = Outcome::rejected(redact(settings, joined(texts)));
  return d;
}

Decoded decode_created(const http::Response& r, std::span<const Change> batch) {
  Decoded d;
  const auto body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_array()) {
    d.outcomes = all(batch.size(), Outcome::unknown("Hesh answered HTTP " + std::to_string(r.status) +
                                                    " with a body dirsync cannot read; whether the users were "
                                                    "created is unknown (the next run sends them again, which "
                                                    "is safe: Hesh skips users that already exist)"));
    return d;
  }
  if (body.empty()) {
    // Hesh created nobody: every sent user matched an existing one.
    d.outcomes = all(batch.size(), Outcome::applied({}, kSkippedNote));
    return d;
  }

  // Sent values → position; a value two users share matches neither (encode's
  // caller never sends such a request, but decode must not guess).
  constexpr std::size_t kAmbiguous = static_cast<std::size_t>(-1);
  std::map<std::string, std::size_t> by_external, by_email;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const std::string ext = string_field(batch[i].payload, "external_user_id");
    const std::string email = lower(string_field(batch[i].payload, "email"));
    if (!ext.empty()) {
      auto [it, fresh] = by_external.emplace(ext, i);
      if (!fresh) it->second = kAmbiguous;
    }
    if (!email.empty()) {
      auto [it, fresh] = by_email.emplace(email, i);
      if (!fresh) it->second = kAmbiguous;
    }
  }
  auto find = [](const std::map<std::string, std::size_t>& m, const std::string& v) -> std::optional<std::size_t> {
    if (v.empty()) return std::nullopt;
    const auto it = m.find(v);
    if (it == m.end() || it->second == kAmbiguous) return std::nullopt;
    return it->second;
  };

  std::vector<std::vector<std::string>> ids(batch.size());  // ids returned per sent user
  std::size_t strays = 0;                                  // returned users that match nobody
  for (const auto& user : body) {
    const std::string id = string_field(user, "id");
    // The seed's own example echoes external_user_id == id: that matches no
    // sent user, so the email decides.
    auto pos = find(by_external, string_field(user, "external_user_id"));
    if (!pos) pos = find(by_email, lower(string_field(user, "email")));
    if (!pos || id.empty()) {
      ++strays;
      continue;
    }
    ids[*pos].push_back(id);
  }
  const std::size_t matched =
      static_cast<std::size_t>(std::count_if(ids.begin(), ids.end(), [](const auto& v) { return !v.empty(); }));
  const std::string counts =
      "Hesh returned " + std::to_string(body.size()) + " users for " + std::to_string(batch.size()) + " sent";
  if (matched == 0) {
    // Never read as "all existed": the answer is about someone else.
    d.outcomes = all(batch.size(), Outcome::unknown(counts + " and none of them matches a sent user; whether "
                                                             "these users were created is unknown"));
    return d;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (ids[i].size() == 1) {
      d.outcomes.emplace_back(Outcome::applied(ids[i].front()));
    } else if (ids[i].size() > 1) {
      d.outcomes.emplace_back(Outcome::unknown(counts + ", " + std::to_string(ids[i].size()) +
                                               " of them for this user; which one is its account is unknown"));
    } else if (strays > 0) {
      d.outcomes.emplace_back(Outcome::unknown(counts + ", " + std::to_string(strays) +
                                               " of them matching no sent user; whether this user was created "
                                               "(as one of those) or skipped is unknown"));
    } else {
      d.outcomes.emplace_back(Outcome::applied({}, kSkippedNote));
    }
  }
  return d;
}

}  // namespace

const std::vector<core::FieldSpec>& field_specs() {
  static const std::vector<core::FieldSpec> specs = {
      {"external_user_id", FieldType::kString, true, false},
      {"email", FieldType::kString, true, false, core::FieldFormat::kEmail},
      {"first_name", FieldType::kString, false, false},
      {"last_name", FieldType::kString, false, false},
      {"phone", FieldType::kString, false, false},
  };
  return specs;
}

std::string batch_url(const config::HeshTargetSettings& settings) {
  std::string base = settings.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/api/v1/public/users/batch";
}

std::optional<Outcome> precheck(const Change& change) {
  if (change.op != Op::kCreate) {
    return Outcome::rejected("Hesh has no endpoint to " + std::string(change.op == Op::kUpdate ? "update" : "delete") +
                             " users (create-only)");
  }
  if (!change.payload.is_object()) return Outcome::rejected("the payload is not a JSON object");
  for (const auto& spec : field_specs()) {
    const auto it = change.payload.find(spec.name);
    const bool missing = it == change.payload.end() || it->is_null();
    if (spec.required && (missing || (it->is_string() && it->get<std::string>().empty()))) {
      return Outcome::rejected("field '" + spec.name + "' is required by Hesh and is empty");
    }
    if (!missing && !it->is_string()) return Outcome::rejected("field '" + spec.name + "' must be a string for Hesh");
  }
  return std::nullopt;
}

http::Request encode(const config::HeshTargetSettings& settings, std::span<const Change> batch) {
  http::Request req;
  req.method = "POST";
  req.url = batch_url(settings);
  // The tenant id is the credential (the seed lists it under "Permissions
  // required"): a secret header, like the key.
  req.secret_headers.emplace_back("x-tenant-id", settings.tenant_id);
  if (settings.api_key) req.secret_headers.emplace_back("x-api-key", *settings.api_key);
  // A create, yet safe to repeat: Hesh skips users that already exist (matched
  // by email, which every request carries), so a copy of a request that was
  // already processed creates nobody a second time. The HTTP layer may
  // therefore retry it after a 500, a timeout or a reset, and libcurl may
  // re-send it on a reused connection that died.
  req.idempotent = true;
  json users = json::array();
  for (const auto& c : batch) {
    json user = json::object();
    for (const auto& spec : field_specs()) {
      const auto it = c.payload.find(spec.name);
      if (it == c.payload.end() || it->is_null()) continue;
      // An empty optional field is left out: Hesh matches existing users by
      // phone, and an empty phone must not match every user without one.
      if (it->is_string() && it->get<std::string>().empty()) continue;
      user[spec.name] = *it;
    }
    users.push_back(std::move(user));
  }
  req.body = json{{"users", std::move(users)}}.dump(-1, ' ', false, json::error_handler_t::replace);
  return req;
}

Decoded decode(const config::HeshTargetSettings& settings, const http::Response& response,
               std::span<const Change> batch, int attempts) {
  Decoded d;
  if (batch.empty()) return d;
  const auto c = http::classify(response);
  const std::string tries = attempts > 1 ? " after " + std::to_string(attempts) + " attempts" : "";
  switch (c.verdict) {
    case http::Verdict::kSuccess:
      return decode_created(response, batch);
    case http::Verdict::kAuth:
      // Where the credentials came from is safe to print; their values are not.
      d.error = core::Error{core::ErrorKind::kAuth,
                            "Hesh refused the tenant id (HTTP " + std::to_string(response.status) + "): " +
                                redact(settings, joined(message_list(response))) + "; check tenant_id (" +
                                settings.tenant_id.describe() + ")" +
                                (settings.api_key ? " and api_key (" + settings.api_key->describe() + ")"
                                                  : std::string())};
      return d;
    case http::Verdict::kRetry:
      if (response.failure == http::TransportFailure::kNothingSent) {
        // Unreachable (or a TLS problem): every other batch would fail the same way.
        d.error = core::Error{core::ErrorKind::kTarget, "Hesh is unreachable" + tries + ": " + describe_failure(settings, response, c)};
        return d;
      }
      d.outcomes = all(batch.size(), Outcome::retry("Hesh asked to retry later" + tries + " (" +
                                                    describe_failure(settings, response, c) + ")"));
      return d;
    case http::Verdict::kRejected:
      if (response.status == 400) return decode_400(settings, response, batch);
      d.outcomes = all(batch.size(), Outcome::rejected("Hesh rejected the batch (HTTP " +
                                                       std::to_string(response.status) + ": " +
                                                       redact(settings, joined(message_list(response))) + ")"));
      return d;
    case http::Verdict::kUnknown:
      d.outcomes = all(batch.size(), Outcome::unknown("outcome unknown" + tries + ": " + describe_failure(settings, response, c) +
                                                      " (the next run sends these users again, which is safe: "
                                                      "Hesh skips users that already exist)"));
      return d;
  }
  return d;
}

std::vector<std::vector<std::size_t>> distinct_groups(std::span<const Change> batch,
                                                      const std::vector<std::size_t>& positions) {
  struct Group {
    std::vector<std::size_t> members;
    std::set<std::string> externals, emails;
  };
  std::vector<Group> groups;
  for (std::size_t i : positions) {
    const std::string ext = string_field(batch[i].payload, "external_user_id");
    const std::string email = lower(string_field(batch[i].payload, "email"));
    auto fits = [&](const Group& g) {
      return (ext.empty() || !g.externals.count(ext)) && (email.empty() || !g.emails.count(email));
    };
    auto it = std::find_if(groups.begin(), groups.end(), fits);
    if (it == groups.end()) it = groups.insert(groups.end(), Group{});
    it->members.push_back(i);
    if (!ext.empty()) it->externals.insert(ext);
    if (!email.empty()) it->emails.insert(email);
  }
  std::vector<std::vector<std::size_t>> out;
  out.reserve(groups.size());
  for (auto& g : groups) out.push_back(std::move(g.members));
  return out;
}

}  // namespace dirsync::targets::hesh
