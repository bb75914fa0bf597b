// Royalti's wire format: the pure encode/decode half of the target.
#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <set>

#include "connectors/targets/royalti/royalti_target.h"

namespace dirsync::targets::royalti {
namespace {

using core::Change;
using core::FieldType;
using core::Op;
using core::Outcome;
using nlohmann::json;

std::string string_field(const json& payload, const char* name) {
  if (!payload.is_object()) return {};
  const auto it = payload.find(name);
  return it != payload.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool is_alnum_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || u >= 0x80;  // a UTF-8 letter continues a word too
}

// Does `key` occur in `text` (both name_key()ed) as whole words?
bool names(const std::string& text, const std::string& key) {
  if (key.empty()) return false;
  for (std::size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) {
    const bool starts = at == 0 || !is_alnum_byte(text[at - 1]);
    const std::size_t end = at + key.size();
    const bool ends = end == text.size() || !is_alnum_byte(text[end]);
    if (starts && ends) return true;
  }
  return false;
}

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += ", ";
    out += "\"" + s + "\"";
  }
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += "; ";
    out += s;
  }
  return out;
}

// What one well-formed 201 says about each sent user.
struct UserReport {
  bool created = false;
  bool associated = false;
  std::vector<std::string> errors;  // errors naming this user other than "already associated"
};

// The two error shapes the seed documents. Royalti words them exactly so; the
// trailing '!' is optional in case it is ever dropped.
const std::regex& associated_re() {
  static const std::regex re(R"(^\s*User (.+) already associated with workspace!?\s*$)");
  return re;
}
const std::regex& invalid_email_re() {
  static const std::regex re(R"(^\s*Invalid email format for (.+?)\s*$)");
  return re;
}

Decoded decode_created(const http::Response& r, std::span<const Change> batch, int attempts) {
  Decoded d;
  const auto unreadable = [&] {
    d.outcomes.assign(batch.size(),
                      Outcome::unknown("Royalti answered HTTP " + std::to_string(r.status) +
                                       " with a body dirsync cannot read; whether the users were created is unknown "
                                       "(the next run sends them again: Royalti answers \"already associated\" for "
                                       "any it did create)"));
    return d;
  };
  const auto body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) return unreadable();
  const auto created_it = body.find("createdUsers");
  const auto errors_it = body.find("errors");
  if ((created_it != body.end() && !created_it->is_array()) || (errors_it != body.end() && !errors_it->is_array())) {
    return unreadable();
  }

  // name_key → position. Duplicates cannot be attributed: apply() never sends
  // them together; a direct caller that does gets them as unknown.
  std::map<std::string, std::size_t> by_name;
  std::set<std::size_t> ambiguous;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto [it, fresh] = by_name.emplace(name_key(display_name(batch[i].payload)), i);
    if (!fresh) {
      ambiguous.insert(i);
      ambiguous.insert(it->second);
    }
  }
  const auto find = [&](const std::string& name) -> std::optional<std::size_t> {
    const auto it = by_name.find(name_key(name));
    if (it == by_name.end() || ambiguous.count(it->second)) return std::nullopt;
    return it->second;
  };

  std::vector<UserReport> reports(batch.size());
  std::vector<std::string> stray;  // result strings that name no sent user
  if (created_it != body.end()) {
    for (const auto& entry : *created_it) {
      const std::string name = entry.is_string() ? entry.get<std::string>() : entry.dump();
      if (const auto i = find(name)) {
        reports[*i].created = true;
      } else {
        stray.push_back("created " + name);
      }
    }
  }
  if (errors_it != body.end()) {
    for (const auto& entry : *errors_it) {
      const std::string text = entry.is_string() ? entry.get<std::string>() : entry.dump();
      std::smatch m;
      if (std::regex_match(text, m, associated_re())) {
        if (const auto i = find(m[1].str())) {
          reports[*i].associated = true;
          continue;
        }
      } else if (std::regex_match(text, m, invalid_email_re())) {
        if (const auto i = find(m[1].str())) {
          reports[*i].errors.push_back(text);
          continue;
        }
      } else {
        // Another wording: it belongs to a user only when it names exactly one
        // (ignoring names contained in a longer named one: "Ann Lee" in "Ann Lee-Smith").
        const std::string t = name_key(text);
        std::vector<std::size_t> named;
        for (const auto& [key, i] : by_name) {
          if (!ambiguous.count(i) && names(t, key)) named.push_back(i);
        }
        std::vector<std::size_t> longest;
        for (std::size_t i : named) {
          const std::string key = name_key(display_name(batch[i].payload));
          const bool inside_other = std::any_of(named.begin(), named.end(), [&](std::size_t j) {
            const std::string other = name_key(display_name(batch[j].payload));
            return j != i && other.size() > key.size() && names(other, key);
          });
          if (!inside_other) longest.push_back(i);
        }
        if (longest.size() == 1) {
          reports[longest.front()].errors.push_back(text);
          continue;
        }
      }
      stray.push_back(text);
    }
  }

  const std::string retried =
      attempts > 1 ? " (the request was sent " + std::to_string(attempts) +
                         " times: an earlier attempt whose answer was lost may have created it)"
                   : "";
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const UserReport& u = reports[i];
    if (ambiguous.count(i)) {
      d.outcomes.push_back(Outcome::unknown(
          "another user of the same request has the display name \"" + display_name(batch[i].payload) +
          "\", and Royalti reports results only by that name; whether this user was created is unknown"));
    } else if ((u.created || u.associated) && !u.errors.empty()) {
      d.outcomes.push_back(Outcome::unknown("Royalti reported this user " +
                                            std::string(u.created ? "created" : "already associated") +
                                            " and also: " + joined(u.errors) + "; whether it exists is unknown"));
    } else if (u.created) {
      d.outcomes.push_back(Outcome::applied());
    } else if (u.associated) {
      d.outcomes.push_back(Outcome::applied({}, std::string(kAssociatedNote) + retried));
    } else if (!u.errors.empty()) {
      d.outcomes.push_back(Outcome::rejected(joined(u.errors)));
    } else if (!stray.empty()) {
      d.outcomes.push_back(Outcome::unknown(
          "Royalti's answer does not name this user but reports results that name no user of the request (" +
          quoted_list(stray) + "); they may concern this user, so whether it was created is unknown"));
    } else {
      d.outcomes.push_back(Outcome::unknown("Royalti's answer (HTTP " + std::to_string(r.status) +
                                            ") does not mention this user; whether it was created is unknown"));
    }
  }
  return d;
}

// Royalti's errors are NestJS's: {"statusCode", "message", "error"}, where
// `message` says more than `error` ("Cannot POST /v9/user/bulk" vs "Not
// Found") and a validation 400 lists its problems in an array.
std::string royalti_message(const http::Response& r) {
  const auto body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object()) {
    const auto it = body.find("message");
    if (it != body.end() && it->is_string() && !it->get<std::string>().empty()) return it->get<std::string>();
    if (it != body.end() && it->is_array() && !it->empty()) {
      std::vector<std::string> parts;
      for (const auto& m : *it) parts.push_back(m.is_string() ? m.get<std::string>() : m.dump());
      return joined(parts);
    }
  }
  return http::server_message(r);
}

}  // namespace

const std::vector<core::FieldSpec>& field_specs() {
  static const std::vector<core::FieldSpec> specs = {
      {"firstName", FieldType::kString, true, false}, {"lastName", FieldType::kString, true, false},
      {"email", FieldType::kString, true, false, core::FieldFormat::kEmail},
      {"nickName", FieldType::kString, false, false},
      {"userType", FieldType::kString, false, false}, {"ipi", FieldType::kString, false, false},
      {"role", FieldType::kString, false, false},     {"phone", FieldType::kString, false, false},
      {"country", FieldType::kString, false, false},
  };
  return specs;
}

std::string bulk_url(const config::RoyaltiTargetSettings& settings) {
  std::string base = settings.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/user/bulk";
}

std::string display_name(const nlohmann::json& payload) {
  return string_field(payload, "firstName") + " " + string_field(payload, "lastName");
}

std::string name_key(std::string_view name) {
  std::string out;
  bool space = false;
  for (char c : name) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::optional<core::Outcome> precheck(const core::Change& change) {
  if (change.op != Op::kCreate) {
    return Outcome::rejected("Royalti has no endpoint to " +
                             std::string(change.op == Op::kUpdate ? "update" : "remove") + " users");
  }
  if (!change.payload.is_object()) return Outcome::rejected("the payload is not a JSON object");
  for (const char* required : {"firstName", "lastName", "email"}) {
    const auto it = change.payload.find(required);
    if (it == change.payload.end() || !it->is_string()) {
      return Outcome::rejected(std::string("Royalti needs '") + required + "' as a string");
    }
  }
  if (name_key(display_name(change.payload)).empty()) {
    return Outcome::rejected(
        "firstName and lastName are both empty: Royalti reports results only by \"firstName lastName\", so this "
        "user's result could not be told apart");
  }
  return std::nullopt;
}

std::vector<std::vector<std::size_t>> distinct_name_groups(std::span<const core::Change> batch,
                                                           const std::vector<std::size_t>& positions) {
  std::vector<std::vector<std::size_t>> groups;
  std::map<std::string, std::size_t> seen;  // name_key → users with that name so far
  for (std::size_t i : positions) {
    const std::size_t n = seen[name_key(display_name(batch[i].payload))]++;
    if (groups.size() <= n) groups.resize(n + 1);
    groups[n].push_back(i);
  }
  return groups;
}

http::Request encode(const config::RoyaltiTargetSettings& settings, std::span<const core::Change> batch) {
  http::Request req;
  req.method = "POST";
  req.url = bulk_url(settings);
  req.bearer = settings.token;
  // Safe to repeat, unlike most creates: Royalti answers "User X already
  // associated with workspace!" for a user that exists, so a re-send after a
  // lost answer (500, timeout, reset) cannot duplicate anyone, and an existing
  // user is not invited again. The next run would re-send the same request
  // anyway; retrying now only settles the outcome sooner.
  req.idempotent = true;

  json users = json::array();
  for (const auto& change : batch) {
    json user = json::object();
    for (const auto& spec : field_specs()) {
      const auto it = change.payload.find(spec.name);
      if (it == change.payload.end() || it->is_null()) continue;
      // An empty optional cell means "no value", not "set it to empty".
      if (!spec.required && it->is_string() && it->get_ref<const std::string&>().empty()) continue;
      user[spec.name] = *it;
    }
    users.push_back(std::move(user));
  }
  json body = json::object();
  body["users"] = std::move(users);
  // Royalti's default is true: say false explicitly unless the job wants invitations.
  body["sendEmail"] = settings.send_email;
  if (!settings.redirect_url.empty()) body["redirect_url"] = settings.redirect_url;
  if (!settings.message.empty()) body["message"] = settings.message;
  req.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return req;
}

Decoded decode(const http::Response& response, std::span<const Change> batch, int attempts) {
  Decoded d;
  if (batch.empty()) return d;
  const auto c = http::classify(response);
  const std::string tries = attempts > 1 ? " after " + std::to_string(attempts) + " attempts" : "";
  switch (c.verdict) {
    case http::Verdict::kSuccess:
      return decode_created(response, batch, attempts);
    case http::Verdict::kAuth:
      d.error = core::Error{core::ErrorKind::kAuth, "Royalti refused the token (HTTP " +
                                                        std::to_string(response.status) +
                                                        "): " + royalti_message(response)};
      return d;
    case http::Verdict::kRetry:
      if (response.failure == http::TransportFailure::kNothingSent) {
        // Unreachable (or a TLS problem): every other request would fail the same way.
        d.error = core::Error{core::ErrorKind::kTarget, "Royalti is unreachable" + tries + ": " + c.message};
        return d;
      }
      d.outcomes.assign(batch.size(), Outcome::retry("Royalti asked to retry later" + tries + " (" + c.message + ")"));
      return d;
    case http::Verdict::kRejected:
      d.outcomes.assign(batch.size(), Outcome::rejected("Royalti rejected the request (HTTP " +
                                                        std::to_string(response.status) + ": " +
                                                        royalti_message(response) + ")"));
      return d;
    case http::Verdict::kUnknown:
      d.outcomes.assign(batch.size(),
                        Outcome::unknown("outcome unknown" + tries + ": " + c.message +
                                         " (the next run sends these users again: Royalti answers \"already "
                                         "associated\" for any it did create)"));
      return d;
  }
  return d;
}

}  // namespace dirsync::targets::royalti
