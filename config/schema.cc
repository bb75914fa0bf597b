// Per-connector key tables. Each row is the key's documentation and its reader;
// `schema()` prints the same rows, so the README table and the validator agree.
// A new connector adds one table and one line in kSourceTypes / kTargetTypes.
#include "config/schema.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cerrno>
#include <unistd.h>

#include "config/yaml_section.h"

namespace dirsync::config {
namespace detail {
namespace {

using YAML::Node;

const char* const kHttpsOrHttp = "expected a URL starting with https:// or http://";

// --- sources ----------------------------------------------------------------

const std::vector<KeyRule<CsvSourceSettings>>& csv_rules() {
  static const std::vector<KeyRule<CsvSourceSettings>> rules = {
      {{"path", "path", "", true,
        "CSV file to read (UTF-8, header row, RFC 4180); relative to the config file's directory"},
       [](Section& sec, const Node& v, CsvSourceSettings& s) {
         if (auto p = read_path(sec, "path", v)) s.path = *p;
       }},
      {{"key", "string", "", true, "Column that identifies a user, stable across runs"},
       [](Section& sec, const Node& v, CsvSourceSettings& s) {
         if (auto k = read_string(sec, "key", v)) s.key = *k;
       }},
      {{"delimiter", "character", ",", false, "Field separator, one character (\"\\t\" for tab)"},
       [](Section& sec, const Node& v, CsvSourceSettings& s) {
         // A quote or a line break as separator would make RFC 4180 parsing ambiguous.
         if (v.IsScalar() && v.Scalar().size() == 1 && v.Scalar() != "\"" && v.Scalar() != "\n" &&
             v.Scalar() != "\r") {
           s.delimiter = v.Scalar()[0];
         } else {
           report_bad_value(sec, "delimiter", v, "expected one character other than '\"' or a line break");
         }
       }},
      {{"page_size", "integer", "1000", false, "Records per page handed to the diff (bounds memory), 1..1000000"},
       [](Section& sec, const Node& v, CsvSourceSettings& s) {
         if (auto n = read_int(sec, "page_size", v, 1, 1'000'000, "expected an integer from 1 to 1000000")) {
           s.page_size = static_cast<std::size_t>(*n);
         }
       }},
  };
  return rules;
}

// --- targets ----------------------------------------------------------------

// "15/s", "300/min", "4000/h" → a window; nullopt when malformed.
std::optional<RateWindow> parse_rate_window(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos || slash == 0) return std::nullopt;
  std::size_t requests = 0;
  for (std::size_t i = 0; i < slash; ++i) {
    if (text[i] < '0' || text[i] > '9' || requests > 1'000'000'000) return std::nullopt;
    requests = requests * 10 + static_cast<std::size_t>(text[i] - '0');
  }
  const std::string unit = text.substr(slash + 1);
  std::chrono::milliseconds per{0};
  if (unit == "s" || unit == "sec" || unit == "second") per = std::chrono::seconds(1);
  else if (unit == "min" || unit == "m" || unit == "minute") per = std::chrono::minutes(1);
  else if (unit == "h" || unit == "hour") per = std::chrono::hours(1);
  else if (unit == "d" || unit == "day") per = std::chrono::hours(24);
  else return std::nullopt;
  if (requests == 0) return std::nullopt;
  return RateWindow{requests, per};
}

void read_rate_limits(Section& sec, const Node& v, std::optional<std::vector<RateWindow>>& out) {
  const char* expected = "expected a list such as [15/s, 300/min, 4000/h], or off";
  if (v.IsScalar() && (v.Scalar() == "off" || v.Scalar() == "false")) {
    out = std::vector<RateWindow>{};
    return;
  }
  if (!v.IsSequence() || v.size() == 0) {
    report_bad_value(sec, "rate_limits", v, expected);
    return;
  }
  std::vector<RateWindow> windows;
  for (const auto& item : v) {
    auto w = item.IsScalar() ? parse_rate_window(item.Scalar()) : std::nullopt;
    if (!w) {
      sec.ctx().diag.error(item.Mark(), "bad rate limit " + describe_value(item), expected);
      return;
    }
    windows.push_back(*w);
  }
  out = std::move(windows);
}

// A UUID v4 in its canonical text form (8-4-4-4-12 hex, version 4, variant 10xx).
bool is_uuid_v4(const std::string& s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (s[i] == '-')) return false;
    if (!dash && !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  const char variant = static_cast<char>(std::tolower(static_cast<unsigned char>(s[19])));
  return s[14] == '4' && (variant == '8' || variant == '9' || variant == 'a' || variant == 'b');
}

// A readable PEM file, checked now so that a wrong path fails check-config,
// not the first TLS handshake.
void read_ca_file(Section& sec, const Node& v, std::string& out) {
  auto p = read_path(sec, "ca_file", v);
  if (!p) return;
  if (::access(p->c_str(), R_OK) != 0) {
    sec.ctx().diag.error(v.Mark(), "cannot read ca_file " + *p + ": " + std::generic_category().message(errno),
                         "expected a readable PEM file");
    return;
  }
  out = *p;
}

const std::vector<KeyRule<HttpSettings>>& http_rules() {
  static const std::vector<KeyRule<HttpSettings>> rules = {
      {{"connect_timeout", "duration", "10s", false, "Time allowed to establish a connection (TLS included)"},
       [](Section& sec, const Node& v, HttpSettings& s) {
         if (auto d = read_duration(sec, "connect_timeout", v)) s.connect_timeout = *d;
       }},
      {{"timeout", "duration", "60s", false, "Time allowed for a whole request"},
       [](Section& sec, const Node& v, HttpSettings& s) {
         if (auto d = read_duration(sec, "timeout", v)) s.timeout = *d;
       }},
      {{"ca_file", "path", "(system CA store)", false,
        "PEM file of CA certificates to trust instead of the system's; TLS verification is always on"},
       [](Section& sec, const Node& v, HttpSettings& s) { read_ca_file(sec, v, s.ca_file); }},
      {{"max_attempts", "integer", "5", false, "Tries per request, the first included, 1..100"},
       [](Section& sec, const Node& v, HttpSettings& s) {
         if (auto n = read_int(sec, "max_attempts", v, 1, 100, "expected an integer from 1 to 100")) {
           s.max_attempts = static_cast<int>(*n);
         }
       }},
      {{"backoff_initial", "duration", "500ms", false, "First retry delay; doubles per attempt, with full jitter"},
       [](Section& sec, const Node& v, HttpSettings& s) {
         if (auto d = read_duration(sec, "backoff_initial", v)) s.backoff_initial = *d;
       }},
      {{"backoff_max", "duration", "30s", false, "Cap on the retry delay"},
       [](Section& sec, const Node& v, HttpSettings& s) {
         if (auto d = read_duration(sec, "backoff_max", v)) s.backoff_max = *d;
       }},
      {{"retry_after_max", "duration", "2m", false, "Cap on a server's Retry-After"},
       [](Section& sec, const Node& v, HttpSettings& s) {
         if (auto d = read_duration(sec, "retry_after_max", v)) s.retry_after_max = *d;
       }},
      {{"max_in_flight", "integer", "(the target's)", false,
        "Requests in flight at once over reused connections, 1..256"},
       [](Section& sec, const Node& v, HttpSettings& s) {
         if (auto n = read_int(sec, "max_in_flight", v, 1, 256, "expected an integer from 1 to 256")) {
           s.max_in_flight = static_cast<std::size_t>(*n);
         }
       }},
      {{"rate_limits", "list of N/s, N/min, N/h, or off", "(the target's documented limits)", false,
        "Request rate limits, every window at once, e.g. [15/s, 300/min, 4000/h]"},
       [](Section& sec, const Node& v, HttpSettings& s) { read_rate_limits(sec, v, s.rate_limits); }},
  };
  return rules;
}

void check_http(Section& sec, const HttpSettings& s) {
  if (s.backoff_initial <= s.backoff_max) return;
  const auto node = sec.find("backoff_initial");
  sec.ctx().diag.error(node ? node->Mark() : sec.mark(),
                       "backoff_initial (" + format_duration(s.backoff_initial) + ") is longer than backoff_max (" +
                           format_duration(s.backoff_max) + ")",
                       "expected backoff_initial <= backoff_max");
}

// Reads a URL of `key`: http(s) (or ldap(s)) only, no credentials in it.
// Never echoed: a URL may carry credentials, which is exactly what is refused.
void read_url(Section& sec, std::string_view key, const Node& v, std::string& out, bool ldap) {
  const std::string expected = ldap ? "expected a URL starting with ldap:// or ldaps://" : kHttpsOrHttp;
  if (!v.IsScalar() || v.Scalar().empty()) {
    sec.ctx().diag.error(v.IsNull() ? sec.key_mark(key).value_or(sec.mark()) : v.Mark(),
                         (v.IsNull() ? "missing value for '" : "bad value for '") + std::string(key) + "'", expected);
    return;
  }
  std::string url = v.Scalar();
  std::size_t scheme = 0;
  if (ldap) scheme = url.starts_with("ldaps://") ? 8 : url.starts_with("ldap://") ? 7 : 0;
  else scheme = url.starts_with("https://") ? 8 : url.starts_with("http://") ? 7 : 0;
  const bool has_space = url.find_first_of(" \t\r\n") != std::string::npos;
  if (scheme == 0 || url.size() == scheme || has_space) {
    sec.ctx().diag.error(v.Mark(), "bad value for '" + std::string(key) + "'", expected);
    return;
  }
  const std::string authority = url.substr(scheme, url.find('/', scheme) - scheme);
  if (authority.find('@') != std::string::npos) {
    sec.ctx().diag.error(v.Mark(), "'" + std::string(key) + "' holds credentials",
                         ldap ? "expected a URL without user:password@ (bind_dn and bind_password have keys of their own)"
                              : "expected a URL without user:password@ (the token goes in 'token')");
    return;
  }
  out = std::move(url);
}

// Reads a base URL: read_url, then a trailing '/' dropped.
void read_base_url(Section& sec, const Node& v, std::string& out) {
  read_url(sec, "base_url", v, out, false);
  const std::size_t scheme = out.starts_with("https://") ? 8 : 7;
  while (out.size() > scheme && out.back() == '/') out.pop_back();
}

const std::vector<KeyRule<PerscomTargetSettings>>& perscom_rules() {
  static const std::vector<KeyRule<PerscomTargetSettings>> rules = {
      {{"base_url", "URL", "", true, "API root, e.g. https://api.perscom.io (a trailing '/' is dropped)"},
       [](Section& sec, const Node& v, PerscomTargetSettings& s) { read_base_url(sec, v, s.base_url); }},
      {{"api_version", "one of: v1, v2", "v2", false, "PERSCOM API version, the first segment of every path"},
       [](Section& sec, const Node& v, PerscomTargetSettings& s) {
         if (auto e = read_enum(sec, "api_version", v, {"v1", "v2"})) s.api_version = *e;
       }},
      {{"token", "secret", "", true, "Bearer token: ${env:NAME}, ${file:PATH}, ${cred:NAME} or a literal; never logged"},
       [](Section& sec, const Node& v, PerscomTargetSettings& s) {
         if (auto t = read_secret(sec, "token", v)) s.token = std::move(*t);
       }},
      {{"perscom_id", "secret", "(not sent)", false, "Tenant id, sent as the X-Perscom-Id header"},
       [](Section& sec, const Node& v, PerscomTargetSettings& s) {
         if (auto t = read_secret(sec, "perscom_id", v)) s.perscom_id = std::move(*t);
       }},
      {{"batch_size", "integer", "100", false, "Users per batch request, 1..1000"},
       [](Section& sec, const Node& v, PerscomTargetSettings& s) {
         if (auto n = read_int(sec, "batch_size", v, 1, 1000, "expected an integer from 1 to 1000")) {
           s.batch_size = static_cast<std::size_t>(*n);
         }
       }},
  };
  return rules;
}

const std::vector<KeyRule<HeshTargetSettings>>& hesh_rules() {
  static const std::vector<KeyRule<HeshTargetSettings>> rules = {
      {{"base_url", "URL", "https://api.hesh.app", false, "API root; requests go to {base_url}/api/v1/public/users/batch"},
       [](Section& sec, const Node& v, HeshTargetSettings& s) { read_base_url(sec, v, s.base_url); }},
      {{"tenant_id", "secret (UUID v4)", "", true,
        "x-tenant-id header: identifies the tenant and acts as its credential; never logged"},
       [](Section& sec, const Node& v, HeshTargetSettings& s) {
         auto t = read_secret(sec, "tenant_id", v);
         if (!t) return;
         // The value is a credential: the message says what is wrong, never what it is.
         if (!is_uuid_v4(t->reveal())) {
           sec.ctx().diag.error(v.Mark(), "tenant_id from " + t->describe() + " is not a UUID v4",
                                "expected the form xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx");
           return;
         }
         s.tenant_id = std::move(*t);
       }},
      {{"api_key", "secret", "(not sent)", false, "x-api-key header (Hesh's newer docs require one)"},
       [](Section& sec, const Node& v, HeshTargetSettings& s) {
         if (auto t = read_secret(sec, "api_key", v)) s.api_key = std::move(*t);
       }},
      {{"batch_size", "integer", "100", false, "Users per batch request, 1..1000"},
       [](Section& sec, const Node& v, HeshTargetSettings& s) {
         if (auto n = read_int(sec, "batch_size", v, 1, 1000, "expected an integer from 1 to 1000")) {
           s.batch_size = static_cast<std::size_t>(*n);
         }
       }},
  };
  return rules;
}

const std::vector<KeyRule<RoyaltiTargetSettings>>& royalti_rules() {
  static const std::vector<KeyRule<RoyaltiTargetSettings>> rules = {
      {{"base_url", "URL", "", true, "API root; requests go to {base_url}/user/bulk"},
       [](Section& sec, const Node& v, RoyaltiTargetSettings& s) { read_base_url(sec, v, s.base_url); }},
      {{"token", "secret", "", true, "Bearer token (JWT); never logged"},
       [](Section& sec, const Node& v, RoyaltiTargetSettings& s) {
         if (auto t = read_secret(sec, "token", v)) s.token = std::move(*t);
       }},
      {{"send_email", "boolean", "false", false,
        "Send Royalti's invitation email to created users (always sent explicitly; the API's own default is true)"},
       [](Section& sec, const Node& v, RoyaltiTargetSettings& s) {
         if (auto b = read_bool(sec, "send_email", v)) s.send_email = *b;
       }},
      {{"redirect_url", "string", "(not sent)", false, "Where the invitation link leads"},
       [](Section& sec, const Node& v, RoyaltiTargetSettings& s) {
         if (auto t = read_string(sec, "redirect_url", v)) s.redirect_url = *t;
       }},
      {{"message", "string", "(not sent)", false, "Custom text of the invitation email"},
       [](Section& sec, const Node& v, RoyaltiTargetSettings& s) {
         if (auto t = read_string(sec, "message", v)) s.message = *t;
       }},
      {{"batch_size", "integer", "100", false, "Users per bulk request, 1..1000"},
       [](Section& sec, const Node& v, RoyaltiTargetSettings& s) {
         if (auto n = read_int(sec, "batch_size", v, 1, 1000, "expected an integer from 1 to 1000")) {
           s.batch_size = static_cast<std::size_t>(*n);
         }
       }},
  };
  return rules;
}

const std::vector<KeyRule<HealviTargetSettings>>& healvi_rules() {
  static const std::vector<KeyRule<HealviTargetSettings>> rules = {
      {{"base_url", "URL", "", true, "API root including /third-party/v1"},
       [](Section& sec, const Node& v, HealviTargetSettings& s) { read_base_url(sec, v, s.base_url); }},
      {{"token", "secret", "", true, "Bearer token; never logged"},
       [](Section& sec, const Node& v, HealviTargetSettings& s) {
         if (auto t = read_secret(sec, "token", v)) s.token = std::move(*t);
       }},
      {{"customer_id", "integer", "", true, "The customer whose users this job manages"},
       [](Section& sec, const Node& v, HealviTargetSettings& s) {
         if (auto n = read_int(sec, "customer_id", v, 1, INT64_MAX, "expected a positive integer")) {
           s.customer_id = *n;
         }
       }},
      {{"allow_empty", "boolean", "false", false,
        "Allow sending an empty user list (detaches every user this job manages)"},
       [](Section& sec, const Node& v, HealviTargetSettings& s) {
         if (auto b = read_bool(sec, "allow_empty", v)) s.allow_empty = *b;
       }},
  };
  return rules;
}

const std::vector<KeyRule<AuthSyncUserTargetSettings>>& auth_sync_user_rules() {
  static const std::vector<KeyRule<AuthSyncUserTargetSettings>> rules = {
      {{"base_url", "URL", "", true, "API root; requests go to {base_url}/auth/sync/user"},
       [](Section& sec, const Node& v, AuthSyncUserTargetSettings& s) { read_base_url(sec, v, s.base_url); }},
      {{"password_secret", "secret", "", true,
        "Key from which each user's password is derived (HMAC-SHA256 of the user's key); never logged"},
       [](Section& sec, const Node& v, AuthSyncUserTargetSettings& s) {
         if (auto t = read_secret(sec, "password_secret", v)) s.password_secret = std::move(*t);
       }},
      {{"token", "secret", "(not sent)", false, "Bearer token, when the deployment puts auth in front"},
       [](Section& sec, const Node& v, AuthSyncUserTargetSettings& s) {
         if (auto t = read_secret(sec, "token", v)) s.token = std::move(*t);
       }},
      {{"api_key", "secret", "(not sent)", false, "API key sent in api_key_header, when set"},
       [](Section& sec, const Node& v, AuthSyncUserTargetSettings& s) {
         if (auto t = read_secret(sec, "api_key", v)) s.api_key = std::move(*t);
       }},
      {{"api_key_header", "string", "X-API-Key", false, "Header that carries api_key"},
       [](Section& sec, const Node& v, AuthSyncUserTargetSettings& s) {
         if (auto t = read_string(sec, "api_key_header", v)) s.api_key_header = *t;
       }},
  };
  return rules;
}

const std::vector<KeyRule<FileTargetSettings>>& file_rules() {
  static const std::vector<KeyRule<FileTargetSettings>> rules = {
      {{"path", "path", "", true,
        "JSON-lines file the changes are appended to; relative to the config file's directory"},
       [](Section& sec, const Node& v, FileTargetSettings& s) {
         if (auto p = read_path(sec, "path", v)) s.path = *p;
       }},
  };
  return rules;
}

// --- sources over the network ---------------------------------------------------

// A list of non-empty strings (a single string is a list of one).
std::optional<std::vector<std::string>> read_string_list(Section& sec, std::string_view key, const Node& v) {
  std::vector<std::string> out;
  if (v.IsScalar() && !v.Scalar().empty()) return std::vector<std::string>{v.Scalar()};
  if (!v.IsSequence() || v.size() == 0) {
    report_bad_value(sec, key, v, "expected a non-empty list of strings");
    return std::nullopt;
  }
  for (const auto& item : v) {
    if (!item.IsScalar() || item.Scalar().empty()) {
      sec.ctx().diag.error(item.Mark(), "bad item " + describe_value(item) + " in '" + std::string(key) + "'",
                           "expected a non-empty string");
      return std::nullopt;
    }
    out.push_back(item.Scalar());
  }
  return out;
}

// `attributes: {name: path | [path, fallback path, ...]}`.
void read_attribute_paths(Section& sec, const Node& v, std::vector<AttributePath>& out,
                          bool (*valid_path)(const std::string&), const char* path_expected) {
  if (!v.IsMap() || v.size() == 0) {
    report_bad_value(sec, "attributes", v, "expected a map of attribute name to path (or list of paths)");
    return;
  }
  check_duplicates(sec.ctx(), v, "in 'attributes'");
  for (const auto& item : v) {
    const std::string name = item.first.Scalar();
    if (name.empty() || name.find_first_of("{}| ") != std::string::npos) {
      sec.ctx().diag.error(item.first.Mark(), "bad attribute name '" + name + "'",
                           "expected a name without spaces, braces or '|'");
      continue;
    }
    auto paths = read_string_list(sec, name, item.second);
    if (!paths) continue;
    bool ok = true;
    for (const auto& p : *paths) {
      if (!valid_path(p)) {
        sec.ctx().diag.error(item.second.Mark(), "bad path '" + p + "' for attribute '" + name + "'", path_expected);
        ok = false;
      }
    }
    if (ok) out.push_back({name, std::move(*paths)});
  }
}

// RFC 6901: "" or "/a/b"; '~' only as ~0 or ~1.
bool is_json_pointer(const std::string& p) {
  if (p.empty()) return true;
  if (p[0] != '/') return false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '~' && (i + 1 >= p.size() || (p[i + 1] != '0' && p[i + 1] != '1'))) return false;
  }
  return true;
}

bool is_scim_path(const std::string& p) {
  // Checked in full by the SCIM source; here: not empty, brackets balanced.
  int depth = 0;
  for (char c : p) {
    if (c == '[') ++depth;
    if (c == ']' && --depth < 0) return false;
  }
  return !p.empty() && depth == 0;
}

void read_json_pointer(Section& sec, std::string_view key, const Node& v, std::string& out, bool allow_empty) {
  auto p = read_string(sec, key, v);
  if (!p) return;
  if (!is_json_pointer(*p) || (!allow_empty && p->empty())) {
    report_bad_value(sec, key, v, allow_empty ? "expected a JSON pointer such as /data/users, or \"\" for the body"
                                              : "expected a JSON pointer such as /id");
    return;
  }
  out = *p;
}

const std::vector<KeyRule<LdapSourceSettings>>& ldap_rules() {
  using S = LdapSourceSettings;
  static const std::vector<KeyRule<S>> rules = {
      {{"url", "ldap:// or ldaps:// URL", "", true, "Directory server, e.g. ldaps://dc1.example.com"},
       [](Section& sec, const Node& v, S& s) {
         read_url(sec, "url", v, s.url, true);
         while (s.url.size() > 8 && s.url.back() == '/') s.url.pop_back();
       }},
      {{"start_tls", "bool", "true", false,
        "ldap:// only: upgrade with StartTLS; a StartTLS failure fails the pull (no plaintext fall-back)"},
       [](Section& sec, const Node& v, S& s) {
         if (auto b = read_bool(sec, "start_tls", v)) s.start_tls = *b;
       }},
      {{"ca_file", "path", "(system CA store)", false, "PEM CA certificates to verify the server with"},
       [](Section& sec, const Node& v, S& s) { read_ca_file(sec, v, s.ca_file); }},
      {{"bind_dn", "string", "(anonymous)", false, "DN to bind as (simple bind); absent: anonymous bind"},
       [](Section& sec, const Node& v, S& s) {
         if (auto t = read_string(sec, "bind_dn", v)) s.bind_dn = *t;
       }},
      {{"bind_password", "secret", "", false, "Password of bind_dn: ${env:NAME}, ${file:PATH} or ${cred:NAME}"},
       [](Section& sec, const Node& v, S& s) {
         if (auto t = read_secret(sec, "bind_password", v)) s.bind_password = std::move(*t);
       }},
      {{"base_dn", "string", "", true, "Where the search starts, e.g. ou=people,dc=example,dc=com"},
       [](Section& sec, const Node& v, S& s) {
         if (auto t = read_string(sec, "base_dn", v)) s.base_dn = *t;
       }},
      {{"scope", "base | one | sub", "sub", false, "Search scope"},
       [](Section& sec, const Node& v, S& s) {
         if (auto e = read_enum(sec, "scope", v, {"base", "one", "sub"})) {
           s.scope = *e == "base" ? S::Scope::kBase : *e == "one" ? S::Scope::kOne : S::Scope::kSub;
         }
       }},
      {{"filter", "LDAP filter", "(objectClass=*)", false, "RFC 4515 search filter, e.g. (objectClass=inetOrgPerson)"},
       [](Section& sec, const Node& v, S& s) {
         auto t = read_string(sec, "filter", v);
         if (!t) return;
         int depth = 0;
         bool balanced = !t->empty() && t->front() == '(';
         for (char c : *t) {
           if (c == '(') ++depth;
           if (c == ')' && --depth < 0) balanced = false;
         }
         if (!balanced || depth != 0) {
           report_bad_value(sec, "filter", v, "expected a parenthesised LDAP filter such as (objectClass=person)");
           return;
         }
         s.filter = *t;
       }},
      {{"attributes", "list of strings", "(all user attributes)", false,
        "Attributes to fetch; the key attribute is added when missing"},
       [](Section& sec, const Node& v, S& s) {
         if (auto l = read_string_list(sec, "attributes", v)) s.attributes = *l;
       }},
      {{"key", "string", "entryUUID", false,
        "Attribute that identifies a user: entryUUID (OpenLDAP) or objectGUID (AD) recommended; dn makes every "
        "OU move a detach + create"},
       [](Section& sec, const Node& v, S& s) {
         if (auto t = read_string(sec, "key", v)) s.key = *t;
       }},
      {{"page_size", "integer", "500", false, "Entries per Simple Paged Results page (RFC 2696), 1..100000"},
       [](Section& sec, const Node& v, S& s) {
         if (auto n = read_int(sec, "page_size", v, 1, 100'000, "expected an integer from 1 to 100000")) {
           s.page_size = static_cast<int>(*n);
         }
       }},
      {{"timeout", "duration", "30s", false, "Limit on each LDAP operation (and the server-side search time)"},
       [](Section& sec, const Node& v, S& s) {
         if (auto d = read_duration(sec, "timeout", v)) s.timeout = *d;
       }},
      {{"connect_timeout", "duration", "10s", false, "Limit on establishing the TCP connection"},
       [](Section& sec, const Node& v, S& s) {
         if (auto d = read_duration(sec, "connect_timeout", v)) s.connect_timeout = *d;
       }},
      {{"binary_attributes", "list of strings", "[objectGUID, objectSid]", false,
        "Attributes whose values are bytes, rendered as lowercase hex"},
       [](Section& sec, const Node& v, S& s) {
         if (auto l = read_string_list(sec, "binary_attributes", v)) s.binary_attributes = *l;
       }},
  };
  return rules;
}

// The keys every HTTP source shares for authentication.
template <class S>
std::vector<KeyRule<S>> with_source_auth(std::vector<KeyRule<S>> rules) {
  rules.push_back({{"token", "secret", "", false, "Bearer token"}, [](Section& sec, const Node& v, S& s) {
                     if (auto t = read_secret(sec, "token", v)) s.auth.token = std::move(*t);
                   }});
  rules.push_back({{"username", "string", "", false, "Basic auth user (with password)"},
                   [](Section& sec, const Node& v, S& s) {
                     if (auto t = read_string(sec, "username", v)) s.auth.username = *t;
                   }});
  rules.push_back({{"password", "secret", "", false, "Basic auth password"}, [](Section& sec, const Node& v, S& s) {
                     if (auto t = read_secret(sec, "password", v)) s.auth.password = std::move(*t);
                   }});
  rules.push_back({{"api_key", "secret", "", false, "API key, sent in api_key_header"},
                   [](Section& sec, const Node& v, S& s) {
                     if (auto t = read_secret(sec, "api_key", v)) s.auth.api_key = std::move(*t);
                   }});
  rules.push_back({{"api_key_header", "string", "X-API-Key", false, "Header that carries api_key"},
                   [](Section& sec, const Node& v, S& s) {
                     if (auto t = read_string(sec, "api_key_header", v)) s.auth.api_key_header = *t;
                   }});
  return rules;
}

void check_source_auth(Section& sec, const HttpSourceAuth& a) {
  const int kinds = (a.token ? 1 : 0) + (a.password || !a.username.empty() ? 1 : 0) + (a.api_key ? 1 : 0);
  if (kinds > 1) {
    sec.ctx().diag.error(sec.mark(), "more than one kind of authentication " + sec.what(),
                         "expected at most one of: token, username + password, api_key");
  }
  if (a.password.has_value() != !a.username.empty()) {
    sec.ctx().diag.error(sec.mark(), "basic authentication needs both username and password " + sec.what(),
                         "expected username and password together");
  }
}

const std::vector<KeyRule<ScimSourceSettings>>& scim_rules() {
  using S = ScimSourceSettings;
  static const std::vector<KeyRule<S>> rules = with_source_auth<S>({
      {{"base_url", "URL", "", true, "SCIM service root; users are read from {base_url}/Users"},
       [](Section& sec, const Node& v, S& s) { read_base_url(sec, v, s.base_url); }},
      {{"filter", "SCIM filter", "", false, "Sent as ?filter=, e.g. 'active eq true'"},
       [](Section& sec, const Node& v, S& s) {
         if (auto t = read_string(sec, "filter", v)) s.filter = *t;
       }},
      {{"page_size", "integer", "100", false, "Users per request (`count`), 1..10000"},
       [](Section& sec, const Node& v, S& s) {
         if (auto n = read_int(sec, "page_size", v, 1, 10'000, "expected an integer from 1 to 10000")) {
           s.page_size = static_cast<std::size_t>(*n);
         }
       }},
      {{"key", "SCIM path", "id", false, "Attribute that identifies a user (id, externalId, userName, ...)"},
       [](Section& sec, const Node& v, S& s) {
         if (auto t = read_string(sec, "key", v)) s.key = *t;
       }},
      {{"attributes", "map of name to SCIM path(s)", "", false,
        "Extra attributes by path, e.g. email: ['emails[primary eq true].value', emails.value]"},
       [](Section& sec, const Node& v, S& s) {
         read_attribute_paths(sec, v, s.attributes, is_scim_path, "expected a SCIM attribute path");
       }},
  });
  return rules;
}

const std::vector<KeyRule<HttpJsonSourceSettings>>& http_json_rules() {
  using S = HttpJsonSourceSettings;
  static const std::vector<KeyRule<S>> rules = with_source_auth<S>({
      {{"url", "URL", "", true, "First page's URL (query parameters allowed)"},
       [](Section& sec, const Node& v, S& s) { read_url(sec, "url", v, s.url, false); }},
      {{"headers", "map of string to string or secret", "", false, "Extra request headers; values never printed"},
       [](Section& sec, const Node& v, S& s) {
         if (!v.IsMap()) {
           report_bad_value(sec, "headers", v, "expected a map of header name to value");
           return;
         }
         check_duplicates(sec.ctx(), v, "in 'headers'");
         for (const auto& item : v) {
           const std::string name = item.first.Scalar();
           if (name.empty() || name.find_first_of(" :\t\r\n") != std::string::npos) {
             sec.ctx().diag.error(item.first.Mark(), "bad header name '" + name + "'", "expected a token such as X-Tenant");
             continue;
           }
           if (auto t = read_secret(sec, name, item.second)) s.headers.emplace_back(name, std::move(*t));
         }
       }},
      {{"records", "JSON pointer", "\"\"", false, "Where the array of records is in a page, e.g. /data; \"\": the body"},
       [](Section& sec, const Node& v, S& s) { read_json_pointer(sec, "records", v, s.records, true); }},
      {{"key", "JSON pointer", "", true, "Where a record's key is, e.g. /id"},
       [](Section& sec, const Node& v, S& s) { read_json_pointer(sec, "key", v, s.key, false); }},
      {{"pagination", "none | page | offset | cursor | link_header | next_url", "none", false, "How pages follow"},
       [](Section& sec, const Node& v, S& s) {
         auto e = read_enum(sec, "pagination", v, {"none", "page", "offset", "cursor", "link_header", "next_url"});
         if (!e) return;
         s.pagination = *e == "none"     ? Pagination::kNone
                        : *e == "page"   ? Pagination::kPage
                        : *e == "offset" ? Pagination::kOffset
                        : *e == "cursor" ? Pagination::kCursor
                        : *e == "link_header" ? Pagination::kLinkHeader
                                              : Pagination::kNextUrl;
       }},
      {{"page_size", "integer", "100", false, "Records asked per page (page and offset styles), 1..100000"},
       [](Section& sec, const Node& v, S& s) {
         if (auto n = read_int(sec, "page_size", v, 1, 100'000, "expected an integer from 1 to 100000")) {
           s.page_size = static_cast<std::size_t>(*n);
         }
       }},
      {{"page_param", "string", "page", false, "page style: the page number parameter"},
       [](Section& sec, const Node& v, S& s) {
         if (auto t = read_string(sec, "page_param", v)) s.page_param = *t;
       }},
      {{"first_page", "integer", "1", false, "page style: the first page's number (0 or 1)"},
       [](Section& sec, const Node& v, S& s) {
         if (auto n = read_int(sec, "first_page", v, 0, 1, "expected 0 or 1")) s.first_page = *n;
       }},
      {{"size_param", "string", "(not sent)", false, "page style: the page size parameter, e.g. per_page"},
       [](Section& sec, const Node& v, S& s) {
         if (auto t = read_string(sec, "size_param", v)) s.size_param = *t;
       }},
      {{"offset_param", "string", "offset", false, "offset style: the offset parameter"},
       [](Section& sec, const Node& v, S& s) {
         if (auto t = read_string(sec, "offset_param", v)) s.offset_param = *t;
       }},
      {{"limit_param", "string", "limit", false, "offset style: the limit parameter"},
       [](Section& sec, const Node& v, S& s) {
         if (auto t = read_string(sec, "limit_param", v)) s.limit_param = *t;
       }},
      {{"cursor_param", "string", "cursor", false, "cursor style: the parameter that carries the cursor"},
       [](Section& sec, const Node& v, S& s) {
         if (auto t = read_string(sec, "cursor_param", v)) s.cursor_param = *t;
       }},
      {{"cursor_path", "JSON pointer", "", false, "cursor style: where the next cursor is, e.g. /meta/next_cursor"},
       [](Section& sec, const Node& v, S& s) { read_json_pointer(sec, "cursor_path", v, s.cursor_path, false); }},
      {{"next_url_path", "JSON pointer", "", false, "next_url style: where the next page's URL is, e.g. /links/next"},
       [](Section& sec, const Node& v, S& s) { read_json_pointer(sec, "next_url_path", v, s.next_url_path, false); }},
      {{"attributes", "map of name to JSON pointer(s)", "", false,
        "Extra attributes by JSON pointer, e.g. email: [/contact/email, /email]"},
       [](Section& sec, const Node& v, S& s) {
         read_attribute_paths(sec, v, s.attributes, is_json_pointer, "expected a JSON pointer such as /contact/email");
       }},
  });
  return rules;
}

void check_http_json(Section& sec, const HttpJsonSourceSettings& s) {
  auto need = [&](bool ok, const char* key, const char* style) {
    if (ok) return;
    sec.ctx().diag.error(sec.key_mark("pagination").value_or(sec.mark()),
                         std::string("pagination: ") + style + " needs '" + key + "' " + sec.what(),
                         std::string("expected '") + key + "' (a JSON pointer)");
  };
  if (s.pagination == Pagination::kCursor) need(!s.cursor_path.empty(), "cursor_path", "cursor");
  if (s.pagination == Pagination::kNextUrl) need(!s.next_url_path.empty(), "next_url_path", "next_url");
}

// --- the registries -----------------------------------------------------------

KeyDoc type_doc(const std::string& value) { return {"type", value, "", true, "Connector type"}; }

using SourceSettings = decltype(SourceConfig::settings);

// The shared HTTP keys, without max_in_flight (a source reads one page at a time).
std::vector<KeyDoc> http_source_docs() {
  std::vector<KeyDoc> out;
  for (auto& d : docs_of(http_rules())) {
    if (d.key != "max_in_flight") out.push_back(std::move(d));
  }
  for (auto& d : out) {
    if (d.key == "rate_limits") d.default_value = "off";
  }
  return out;
}

template <class Settings>
std::vector<KeyDoc> http_source_docs_with(const std::vector<KeyRule<Settings>>& rules) {
  auto docs = docs_of(rules);
  for (auto& d : http_source_docs()) docs.push_back(std::move(d));
  return docs;
}

template <class Settings>
SourceSettings parse_http_source(Section& sec, const std::vector<KeyRule<Settings>>& rules) {
  Settings s;
  s.http.rate_limits = std::vector<RateWindow>{};  // sources: no limit unless configured
  run_rules(sec, rules, s);
  run_rules(sec, http_rules(), s.http);
  check_http(sec, s.http);
  check_source_auth(sec, s.auth);
  s.http.max_in_flight = 1;
  return s;
}

struct SourceType {
  const char* name;
  std::vector<KeyDoc> (*docs)();
  SourceSettings (*parse)(Section& sec);
};

using TargetSettings = decltype(TargetConfig::settings);

struct TargetType {
  const char* name;
  std::vector<KeyDoc> (*docs)();
  TargetSettings (*parse)(Section& sec);
};

// An HTTP target's table followed by the shared HTTP keys.
template <class Settings>
std::vector<KeyDoc> http_target_docs(const std::vector<KeyRule<Settings>>& rules) {
  auto docs = docs_of(rules);
  for (auto& d : docs_of(http_rules())) docs.push_back(std::move(d));
  return docs;
}

template <class Settings>
TargetSettings parse_http_target(Section& sec, const std::vector<KeyRule<Settings>>& rules) {
  Settings s;
  run_rules(sec, rules, s);
  run_rules(sec, http_rules(), s.http);
  check_http(sec, s.http);
  return s;
}

// Sorted by name, so messages list them in a stable order.
const SourceType kSourceTypes[] = {
    {"csv", [] { return docs_of(csv_rules()); },
     [](Section& sec) -> SourceSettings {
       CsvSourceSettings s;
       run_rules(sec, csv_rules(), s);
       return s;
     }},
    {"http_json", [] { return http_source_docs_with(http_json_rules()); },
     [](Section& sec) -> SourceSettings {
       auto s = parse_http_source(sec, http_json_rules());
       check_http_json(sec, std::get<HttpJsonSourceSettings>(s));
       return s;
     }},
    {"ldap", [] { return docs_of(ldap_rules()); },
     [](Section& sec) -> SourceSettings {
       LdapSourceSettings s;
       run_rules(sec, ldap_rules(), s);
       if (!s.bind_dn.empty() && s.bind_password.empty()) {
         sec.ctx().diag.error(sec.key_mark("bind_dn").value_or(sec.mark()),
                              "bind_dn without bind_password " + sec.what(),
                              "expected bind_password (a ${env:}/${file:}/${cred:} reference), or no bind_dn for "
                              "an anonymous bind");
       }
       return s;
     }},
    {"scim", [] { return http_source_docs_with(scim_rules()); },
     [](Section& sec) { return parse_http_source(sec, scim_rules()); }},
};

const TargetType kTargetTypes[] = {
    {"auth_sync_user", [] { return http_target_docs(auth_sync_user_rules()); },
     [](Section& sec) { return parse_http_target(sec, auth_sync_user_rules()); }},
    {"file", [] { return docs_of(file_rules()); },
     [](Section& sec) -> TargetSettings {
       FileTargetSettings s;
       run_rules(sec, file_rules(), s);
       return s;
     }},
    {"healvi", [] { return http_target_docs(healvi_rules()); },
     [](Section& sec) { return parse_http_target(sec, healvi_rules()); }},
    {"hesh", [] { return http_target_docs(hesh_rules()); },
     [](Section& sec) { return parse_http_target(sec, hesh_rules()); }},
    {"perscom", [] { return http_target_docs(perscom_rules()); },
     [](Section& sec) { return parse_http_target(sec, perscom_rules()); }},
    {"royalti", [] { return http_target_docs(royalti_rules()); },
     [](Section& sec) { return parse_http_target(sec, royalti_rules()); }},
};

// Reads `type` and finds its entry; reports and returns null when it cannot.
template <class Entry, std::size_t N>
const Entry* find_type(Section& sec, const Node& node, const Entry (&types)[N], std::string_view kind) {
  std::vector<std::string> names;
  for (const auto& t : types) names.push_back(t.name);
  const std::string expected = "expected one of: " + join(names);
  const auto type = sec.find("type");
  if (!type) {
    check_duplicates(sec.ctx(), node, sec.what());
    sec.ctx().diag.error(sec.mark(), "missing required key 'type' " + sec.what(), expected);
    return nullptr;
  }
  if (!type->IsScalar()) {
    report_bad_value(sec, "type", *type, expected);
    return nullptr;
  }
  for (const auto& t : types) {
    if (type->Scalar() == t.name) return &t;
  }
  sec.ctx().diag.error(type->Mark(), "unknown " + std::string(kind) + " type '" + type->Scalar() + "' " + sec.what(),
                       expected);
  return nullptr;
}

bool check_section_node(Context& ctx, const Node& node, const YAML::Mark& mark, const std::string& what) {
  if (node.IsMap()) return true;
  ctx.diag.error(node.IsNull() ? mark : node.Mark(),
                 (node.IsNull() ? "missing value for " : "bad value " + describe_value(node) + " for ") + what,
                 "expected a map with 'type' and its keys");
  return false;
}

}  // namespace

// Names the HTTP settings of a connector (if it has any) for metrics.
template <class Variant>
void label_http(Variant& settings, const std::string& label) {
  std::visit(
      [&](auto& s) {
        if constexpr (requires { s.http.label; }) s.http.label = label;
      },
      settings);
}

std::optional<SourceConfig> parse_source(Context& ctx, const std::string& name, const Node& node,
                                         const YAML::Mark& mark) {
  const std::string what = "source '" + name + "'";
  if (!check_section_node(ctx, node, mark, what)) return std::nullopt;
  Section sec(ctx, node, "in " + what, mark);
  const SourceType* type = find_type(sec, node, kSourceTypes, "source");
  if (!type) return std::nullopt;
  auto docs = type->docs();
  docs.insert(docs.begin(), type_doc(type->name));
  sec.check_keys(docs);
  SourceConfig source{name, type->name, ctx.diag.position(mark), type->parse(sec)};
  label_http(source.settings, "source " + name);
  return source;
}

std::optional<TargetConfig> parse_target(Context& ctx, const std::string& name, const Node& node,
                                         const YAML::Mark& mark) {
  const std::string what = "target '" + name + "'";
  if (!check_section_node(ctx, node, mark, what)) return std::nullopt;
  Section sec(ctx, node, "in " + what, mark);
  const TargetType* type = find_type(sec, node, kTargetTypes, "target");
  if (!type) return std::nullopt;
  auto docs = type->docs();
  docs.insert(docs.begin(), type_doc(type->name));
  sec.check_keys(docs);
  TargetConfig target{name, type->name, ctx.diag.position(mark), type->parse(sec)};
  label_http(target.settings, "target " + name);
  return target;
}

std::vector<SectionDoc> connector_docs() {
  std::vector<SectionDoc> out;
  for (const auto& t : kSourceTypes) {
    auto docs = t.docs();
    docs.insert(docs.begin(), type_doc(t.name));
    out.push_back({std::string("sources.<name> (type: ") + t.name + ")", std::move(docs)});
  }
  for (const auto& t : kTargetTypes) {
    auto docs = t.docs();
    docs.insert(docs.begin(), type_doc(t.name));
    out.push_back({std::string("targets.<name> (type: ") + t.name + ")", std::move(docs)});
  }
  return out;
}

}  // namespace detail

const std::vector<SectionDoc>& schema() {
  static const std::vector<SectionDoc> all = [] {
    std::vector<SectionDoc> out = detail::loader_docs();
    // Top level first, then the connectors, then jobs (the order of a config file).
    auto connectors = detail::connector_docs();
    out.insert(out.begin() + 1, connectors.begin(), connectors.end());
    return out;
  }();
  return all;
}

std::vector<std::string> source_types() {
  std::vector<std::string> out;
  for (const auto& t : detail::kSourceTypes) out.push_back(t.name);
  return out;
}

std::vector<std::string> target_types() {
  std::vector<std::string> out;
  for (const auto& t : detail::kTargetTypes) out.push_back(t.name);
  return out;
}

}  // namespace dirsync::config
