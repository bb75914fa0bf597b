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
       [](Section& sec, const Node& v, HttpSettings& s) {
         auto p = read_path(sec, "ca_file", v);
         if (!p) return;
         // Checked now so that a wrong path fails check-config, not the first TLS handshake.
         if (::access(p->c_str(), R_OK) != 0) {
           sec.ctx().diag.error(v.Mark(), "cannot read ca_file " + *p + ": " + std::generic_category().message(errno),
                                "expected a readable PEM file");
           return;
         }
         s.ca_file = *p;
       }},
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

// Reads a base URL: http(s) only, no credentials in it, trailing '/' dropped.
// Never echoed: a URL may carry credentials, which is exactly what is refused.
void read_base_url(Section& sec, const Node& v, std::string& out) {
  // Never echoed: a URL may carry credentials, which is exactly what is refused here.
  if (!v.IsScalar() || v.Scalar().empty()) {
    sec.ctx().diag.error(v.IsNull() ? sec.key_mark("base_url").value_or(sec.mark()) : v.Mark(),
                         v.IsNull() ? "missing value for 'base_url'" : "bad value for 'base_url'",
                         kHttpsOrHttp);
    return;
  }
  std::string url = v.Scalar();
  const std::size_t scheme = url.starts_with("https://") ? 8 : url.starts_with("http://") ? 7 : 0;
  const bool has_space = url.find_first_of(" \t\r\n") != std::string::npos;
  if (scheme == 0 || url.size() == scheme || has_space) {
    sec.ctx().diag.error(v.Mark(), "bad value for 'base_url'", kHttpsOrHttp);
    return;
  }
  const std::string authority = url.substr(scheme, url.find('/', scheme) - scheme);
  if (authority.find('@') != std::string::npos) {
    sec.ctx().diag.error(v.Mark(), "'base_url' holds credentials",
                         "expected a URL without user:password@ (the token goes in 'token')");
    return;
  }
  while (url.size() > scheme && url.back() == '/') url.pop_back();
  out = std::move(url);
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

// --- the registries -----------------------------------------------------------

KeyDoc type_doc(const std::string& value) { return {"type", value, "", true, "Connector type"}; }

struct SourceType {
  const char* name;
  std::vector<KeyDoc> (*docs)();
  std::variant<CsvSourceSettings> (*parse)(Section& sec);
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
     [](Section& sec) -> std::variant<CsvSourceSettings> {
       CsvSourceSettings s;
       run_rules(sec, csv_rules(), s);
       return s;
     }},
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
  return SourceConfig{name, type->name, ctx.diag.position(mark), type->parse(sec)};
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
  return TargetConfig{name, type->name, ctx.diag.position(mark), type->parse(sec)};
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
