// The pure half of the auth_sync_user target: fields, password derivation,
// one request per user, and what each answer means.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <string_view>

#include <nlohmann/json.hpp>

#include "connectors/targets/auth_sync_user/auth_sync_user_target.h"

namespace dirsync::targets::auth_sync_user {
namespace {

using core::FieldType;
using core::Outcome;
using nlohmann::json;

std::string base64url(const unsigned char* data, std::size_t size) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const unsigned v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (size - i == 1) {
    const unsigned v = data[i] << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (size - i == 2) {
    const unsigned v = (data[i] << 16) | (data[i + 1] << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

// Removes every copy of `secret` from `text`, a cut-off one too: a server
// message quoting the request body is truncated (http::server_message keeps
// 300 bytes), which can split the password. Any run that starts with the
// secret's first kMinPrefix characters is redacted as far as it matches (8
// characters of a derived password: the "Ds1-" tag and 24 random bits, so
// an innocent match is negligible).
std::string redact(std::string text, const std::string& secret) {
  constexpr std::size_t kMinPrefix = 8;
  static constexpr std::string_view kMark = "[redacted]";
  if (secret.empty()) return text;
  const std::string head = secret.substr(0, std::min(secret.size(), kMinPrefix));
  for (std::size_t at = text.find(head); at != std::string::npos; at = text.find(head, at + kMark.size())) {
    std::size_t n = head.size();
    while (n < secret.size() && at + n < text.size() && text[at + n] == secret[n]) ++n;
    text.replace(at, n, kMark);
  }
  return text;
}

bool is_optional_field(const std::string& name) {
  for (const auto& f : field_specs()) {
    if (f.name == name) return !f.required;
  }
  return false;
}

}  // namespace

const std::vector<core::FieldSpec>& field_specs() {
  // The seed's table. `password` is not here on purpose: dirsync derives it.
  static const std::vector<core::FieldSpec> specs = {
      {"id", FieldType::kString, true, true},
      {"email", FieldType::kString, true, false, core::FieldFormat::kEmail},
      {"organization_id", FieldType::kString, true, false},
      {"role_id", FieldType::kString, true, false},
      {"first_name", FieldType::kString, true, false},
      {"last_name", FieldType::kString, true, false},
      {"phone_number", FieldType::kString, true, false},
      {"phone_country_code", FieldType::kString, true, false},
      {"image_url", FieldType::kString, false, false},
      {"device_id", FieldType::kString, false, false},
      {"google_id", FieldType::kString, false, false},
      {"google_image_url", FieldType::kString, false, false},
  };
  return specs;
}

std::string sync_url(const config::AuthSyncUserTargetSettings& settings) {
  std::string base = settings.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/auth/sync/user";
}

std::string derive_password(const core::Secret& secret, const std::string& user_key) {
  // The context string versions the scheme: a future change of derivation
  // must not silently produce passwords equal to the old ones.
  const std::string message = "dirsync/auth_sync_user/v1\n" + user_key;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.reveal().data(), static_cast<int>(secret.reveal().size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  return "Ds1-" + base64url(digest, length);
}

std::optional<Outcome> precheck(const core::Change& change) {
  if (change.op == core::Op::kDetach) return Outcome::rejected("auth_sync_user has no endpoint to remove users");
  if (!change.payload.is_object()) return Outcome::rejected("the payload is not a JSON object");
  const auto id = change.payload.find("id");
  if (id == change.payload.end() || !id->is_string() || id->get<std::string>().empty()) {
    return Outcome::rejected("the payload has no 'id': auth_sync_user keys every user by it");
  }
  return std::nullopt;
}

http::Request encode(const config::AuthSyncUserTargetSettings& settings, const core::Change& change,
                     const std::string& password) {
  http::Request req;
  req.method = "POST";
  req.url = sync_url(settings);
  // An upsert keyed by `id`: the same request twice leaves the same user.
  req.idempotent = true;
  if (settings.token) req.bearer = *settings.token;
  if (settings.api_key) req.secret_headers.emplace_back(settings.api_key_header, *settings.api_key);
  json body = json::object();
  for (auto it = change.payload.begin(); it != change.payload.end(); ++it) {
    // Optional fields without a value are left out rather than sent empty.
    if (is_optional_field(it.key()) && (it->is_null() || (it->is_string() && it->get<std::string>().empty()))) {
      continue;
    }
    body[it.key()] = it.value();
  }
  body["password"] = password;
  req.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return req;
}

std::string fastapi_details(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("detail")) return "";
  const json& detail = j["detail"];
  if (detail.is_string()) return detail.get<std::string>();
  if (!detail.is_array()) return "";
  std::string out;
  for (const auto& d : detail) {
    if (!d.is_object()) continue;
    std::string where;
    if (d.contains("loc") && d["loc"].is_array()) {
      for (const auto& part : d["loc"]) {
        const std::string p = part.is_string() ? part.get<std::string>() : part.dump();
        if (where.empty() && (p == "body" || p == "query")) continue;  // FastAPI's location prefix
        where += (where.empty() ? "" : ".") + p;
      }
    }
    const std::string msg = d.contains("msg") && d["msg"].is_string() ? d["msg"].get<std::string>() : "invalid";
    if (!out.empty()) out += "; ";
    out += where.empty() ? msg : where + ": " + msg;
  }
  return out;
}

Outcome decode(const http::Exchange& ex, const core::Change& change, const std::string& password) {
  const std::string id = change.payload.value("id", "");
  const auto& c = ex.classification;
  switch (c.verdict) {
    case http::Verdict::kSuccess: {
      const json body = json::parse(ex.response.body, nullptr, false);
      if (!body.is_string()) {
        return Outcome::unknown(redact("auth_sync_user answered HTTP " + std::to_string(ex.response.status) +
                                           " with a body that is not the documented JSON string; the next run "
                                           "sends this user again (harmless: it is an upsert)",
                                       password));
      }
      return Outcome::applied(id);
    }
    case http::Verdict::kRejected: {
      const std::string details = fastapi_details(ex.response.body);
      const std::string text = details.empty() ? c.message
                                               : "HTTP " + std::to_string(ex.response.status) + ": " + details;
      return Outcome::rejected(redact(text, password));
    }
    case http::Verdict::kRetry:
      return Outcome::retry(redact(c.message, password));
    case http::Verdict::kAuth:
    case http::Verdict::kUnknown:
      break;
  }
  return Outcome::unknown(redact(c.message, password));
}

}  // namespace dirsync::targets::auth_sync_user
