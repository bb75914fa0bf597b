#pragma once
// dirsync's configuration: one YAML file, validated whole before anything runs.
//
// Contract:
// - `load_file` / `load_string` either return a complete, valid Config or throw
//   ConfigError listing *every* problem found, each as
//   "<file>:<line>:<col>: <what is wrong>; <what was expected>".
// - Unknown keys are errors, with "did you mean 'x'?" when a known key is close.
// - ${env:NAME}, ${file:PATH} (one trailing newline dropped) and ${cred:NAME}
//   ($CREDENTIALS_DIRECTORY/NAME) are resolved here; an unresolvable reference is
//   an error that names the reference, never a value.
// - Secret values are held in core::Secret and never appear in messages.
// - Connector settings are parsed from per-connector tables (config/schema.cc):
//   key, type, default, description — `schema()` in config/schema.h returns the
//   same tables, and the README documents them.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/filter.h"
#include "core/mapping.h"
#include "core/schedule.h"
#include "core/secret.h"

namespace dirsync::config {

struct Position {
  std::string file;
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
  std::string str() const;  // "file:line:col"
};

class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> errors);
  // Each entry is one complete message ("file:line:col: ...").
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::string> errors_;
};

// One window of a rate limit: at most `requests` per `per` ("300/min").
struct RateWindow {
  std::size_t requests = 0;
  std::chrono::milliseconds per{0};
  bool operator==(const RateWindow&) const = default;
};

// Shared by every HTTP target.
struct HttpSettings {
  // Which connector's requests these are, for metrics: "target perscom-prod",
  // "source hr-api". Set by the loader from the section's name.
  std::string label;
  // Requests in flight at once, over that many reused connections. 0: the
  // target's default (1 for batch APIs; more for single-user APIs).
  std::size_t max_in_flight = 0;
  // Every window holds at once. nullopt: the target's documented limits;
  // empty: no limit (`rate_limits: off`).
  std::optional<std::vector<RateWindow>> rate_limits;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{60'000};         // whole request
  std::string ca_file;                               // empty: the system's CA store
  int max_attempts = 5;                              // per request, first try included
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30'000};
  std::chrono::milliseconds retry_after_max{120'000};  // cap on a server's Retry-After
};

struct CsvSourceSettings {
  std::string path;
  std::string key;             // the column that identifies a user
  char delimiter = ',';
  std::size_t page_size = 1000;
};

// LDAP / Active Directory (`type: ldap`), read with OpenLDAP's libldap.
struct LdapSourceSettings {
  enum class Scope { kBase, kOne, kSub };
  std::string url;                 // ldap://host[:389] or ldaps://host[:636]
  bool start_tls = true;           // ldap:// only; a StartTLS failure fails the pull
  std::string ca_file;             // PEM CA bundle; empty: the system's (peer verification always on)
  std::string bind_dn;             // empty: anonymous bind
  core::Secret bind_password;      // empty for anonymous
  std::string base_dn;
  Scope scope = Scope::kSub;
  std::string filter = "(objectClass=*)";
  std::vector<std::string> attributes;  // empty: all user attributes
  std::string key = "entryUUID";        // attribute name, or "dn"
  int page_size = 500;                  // Simple Paged Results (RFC 2696) page size
  std::chrono::milliseconds timeout{30'000};          // network and per-request limit
  std::chrono::milliseconds connect_timeout{10'000};
  std::vector<std::string> binary_attributes{"objectGUID", "objectSid"};  // rendered as lowercase hex
};

// How an HTTP source authenticates: at most one of bearer token, basic
// (username + password), or an API-key header.
struct HttpSourceAuth {
  std::optional<core::Secret> token;      // Authorization: Bearer
  std::string username;                   // basic auth, with `password`
  std::optional<core::Secret> password;
  std::optional<core::Secret> api_key;    // sent in `api_key_header`
  std::string api_key_header = "X-API-Key";
};

// Named attributes extracted by path (SCIM paths or JSON pointers, per source).
// Each attribute lists paths tried in order; the first that yields a value wins.
struct AttributePath {
  std::string name;
  std::vector<std::string> paths;
};

// SCIM 2.0 (`type: scim`): GET {base_url}/Users with startIndex/count paging.
struct ScimSourceSettings {
  std::string base_url;        // e.g. https://idp.example.com/scim/v2 (no trailing slash)
  HttpSourceAuth auth;
  std::string filter;          // SCIM filter (RFC 7644 §3.4.2.2), sent as ?filter=; empty: none
  std::size_t page_size = 100; // `count`
  std::string key = "id";      // attribute that identifies a user
  std::vector<AttributePath> attributes;  // extra attributes by SCIM path
  HttpSettings http;
};

enum class Pagination {
  kNone,        // one request
  kPage,        // ?page=N&per_page=M
  kOffset,      // ?offset=N&limit=M
  kCursor,      // ?cursor=<token from the previous body>
  kLinkHeader,  // Link: <url>; rel="next"
  kNextUrl,     // the next page's URL at a JSON pointer of the body
};

// A generic JSON API (`type: http_json`).
struct HttpJsonSourceSettings {
  std::string url;
  std::vector<std::pair<std::string, core::Secret>> headers;  // values may be secrets: never printed
  HttpSourceAuth auth;
  std::string records = "";    // JSON pointer to the array of records; "": the body is the array
  std::string key;             // JSON pointer inside a record, e.g. "/id"
  Pagination pagination = Pagination::kNone;
  std::size_t page_size = 100;
  std::string page_param = "page";
  std::int64_t first_page = 1;
  std::string size_param;          // page style: e.g. "per_page"; empty: not sent
  std::string offset_param = "offset";
  std::string limit_param = "limit";
  std::string cursor_param = "cursor";
  std::string cursor_path;         // JSON pointer to the next cursor (cursor style)
  std::string next_url_path;       // JSON pointer to the next URL (next_url style)
  std::vector<AttributePath> attributes;  // extra attributes by JSON pointer
  HttpSettings http;
};

struct SourceConfig {
  std::string name;
  std::string type;  // "csv" | "ldap" | "scim" | "http_json"
  Position where;
  std::variant<CsvSourceSettings, LdapSourceSettings, ScimSourceSettings, HttpJsonSourceSettings> settings;
};

struct PerscomTargetSettings {
  std::string base_url;             // e.g. https://api.perscom.io (no trailing slash)
  std::string api_version = "v2";   // v1 | v2
  core::Secret token;               // bearer
  std::optional<core::Secret> perscom_id;  // X-Perscom-Id header, when set
  std::size_t batch_size = 100;
  HttpSettings http;
};

// Hesh (shared/seeds/001): POST {base_url}/api/v1/public/users/batch. Create-only.
struct HeshTargetSettings {
  std::string base_url = "https://api.hesh.app";
  core::Secret tenant_id;                // x-tenant-id, UUID v4 (validated); a credential
  std::optional<core::Secret> api_key;   // x-api-key, when set (Hesh's newer docs require one)
  std::size_t batch_size = 100;
  HttpSettings http;
};

// Royalti (shared/seeds/002): POST {base_url}/user/bulk. Create-only.
struct RoyaltiTargetSettings {
  std::string base_url;
  core::Secret token;           // bearer
  bool send_email = false;      // sent explicitly on every request: an invitation is an act on real people
  std::string redirect_url;     // sent when not empty
  std::string message;          // invitation text, sent when not empty
  std::size_t batch_size = 100;
  HttpSettings http;
};

// Healvi (shared/seeds/003): POST {base_url}/customers/{customer_id}/users with
// the full set of user ids. base_url carries the /third-party/v1 path.
struct HealviTargetSettings {
  std::string base_url;
  core::Secret token;         // bearer
  std::int64_t customer_id = 0;
  bool allow_empty = false;   // may the job send an empty list (detach everyone it manages)?
  HttpSettings http;
};

// auth_sync_user (shared/seeds/000): POST {base_url}/auth/sync/user, one user per
// request, an upsert keyed by `id`. `password` is derived per user (see README).
struct AuthSyncUserTargetSettings {
  std::string base_url;
  core::Secret password_secret;                  // HMAC key for derived passwords
  std::optional<core::Secret> token;             // bearer, when the deployment has one
  std::optional<core::Secret> api_key;           // sent in `api_key_header`, when set
  std::string api_key_header = "X-API-Key";
  HttpSettings http;
};

struct FileTargetSettings {
  std::string path;  // JSON lines, appended
};

struct TargetConfig {
  std::string name;
  std::string type;  // "perscom" | "hesh" | "royalti" | "healvi" | "auth_sync_user" | "file"
  Position where;
  std::variant<PerscomTargetSettings, FileTargetSettings, HeshTargetSettings, RoyaltiTargetSettings,
               HealviTargetSettings, AuthSyncUserTargetSettings>
      settings;
};

enum class OnMissing {
  kDetach,  // delete/unlink the user where the target supports it
  kIgnore,  // leave the user in the target
  kUpdate,  // set some fields instead, e.g. mark the user inactive (JobConfig::missing_update)
};

struct DetachGuard {
  // A run whose detaches exceed the larger of `floor` and the smaller of
  // `max_count` / `max_percent` of the snapshot is blocked (no detach applied).
  // The same shape guards updates (JobConfig::max_update).
  std::size_t max_count = 500;
  double max_percent = 10.0;
  std::size_t floor = 5;
  bool enabled = true;
};

// When the daemon runs a job (the command line runs jobs when asked).
struct Schedule {
  enum class Kind {
    kManual,  // only when asked (dirsync sync/resync through the daemon), and at start-up
    kEvery,   // every `every`, plus up to `jitter`
    kCron,    // at the minutes `cron` matches, in `zone`
  };
  Kind kind = Kind::kManual;
  std::chrono::milliseconds every{0};
  std::chrono::milliseconds jitter{0};
  std::optional<core::CronExpression> cron;
  core::TimeZone zone = core::TimeZone::kLocal;
  std::string text;  // as written, for status: "every 15m (jitter 1m)", "cron */15 * * * * (local)"
};

// The daemon's own settings (top-level `daemon:`).
struct DaemonSettings {
  std::size_t max_concurrent_jobs = 2;                    // runs at once, across jobs
  std::chrono::milliseconds shutdown_timeout{60'000};     // SIGTERM: wait this long for in-flight runs
  std::chrono::milliseconds failure_backoff{60'000};      // after a failed run: first retry delay
  std::chrono::milliseconds failure_backoff_max{3'600'000};  // doubles up to this
  // Prometheus /metrics and /healthz, "127.0.0.1:9187" or "[::1]:9187" (loopback
  // only; port 0 picks a free port, logged); empty: off.
  std::string metrics_listen;
  // The control socket (daemon/control.h); empty: /run/dirsync/control.sock when
  // /run/dirsync exists, else <state_dir>/control.sock.
  std::string control_socket;
  // Members of this group may use the control socket (its group; the daemon's
  // user must belong to it); empty: only root and the daemon's own user.
  std::string control_group;
  // One JSON line per change a target answered; empty: off. Relative paths are
  // taken against the config file's directory (default: <state_dir>/audit.jsonl).
  std::string audit_log;
  std::uint64_t audit_max_bytes = 64ull << 20;          // rotate when the file would grow past this
  std::chrono::milliseconds audit_max_age{86'400'000};  // ... or when it is older than this
  std::size_t audit_keep = 10;                          // rotated files kept (audit.jsonl.1 ...)
};

struct MappingConfig {
  std::string field;   // target field
  core::Template tmpl;
  Position where;      // of the value
};

struct JobConfig {
  std::string name;
  std::string source;  // a key of Config::sources (validated)
  std::string target;  // a key of Config::targets (validated)
  std::vector<MappingConfig> mapping;
  OnMissing on_missing = OnMissing::kDetach;
  // on_missing: {update: {field: constant, ...}}: the fields set on users gone
  // from the source (an object; empty unless on_missing is kUpdate).
  nlohmann::json missing_update = nlohmann::json::object();
  Position missing_where;
  DetachGuard max_detach;
  // Updates a run may apply: over the limit none is applied (the run is
  // blocked; creates still go out). Off unless the job sets it.
  DetachGuard max_update{500, 10.0, 5, false};
  // A user is detached only after being absent from this many consecutive
  // complete pulls (1: the first). Guards against sources whose paging can
  // skip records while the data changes (offset paging, SCIM startIndex).
  std::uint32_t detach_after = 1;
  // A record the target rejected this many runs in a row with the same payload
  // is quarantined (not sent again until it changes or is released); 0: never.
  std::uint32_t quarantine_after = 3;
  // Which source records the job manages (empty: all). Records it drops count
  // as not in the source: they are detached like users who left.
  core::Filter filter;
  // Users the job never updates or detaches, whatever the source says: the
  // job's `protect:` condition as the `include` of a Filter (empty: nobody).
  // It is evaluated on what the target holds — the snapshot entry's payload,
  // flattened (core::flatten_json), plus the attribute `key` (the source key).
  core::Filter protect;
  Schedule schedule;
  bool run_at_start = true;  // the daemon runs the job once when it starts (and after a reload adds it)
  Position where;
  Position mapping_where;
};

struct Config {
  std::string file;
  std::string state_dir;  // absolute or relative to the config file's directory
  std::map<std::string, SourceConfig> sources;
  std::map<std::string, TargetConfig> targets;
  std::map<std::string, JobConfig> jobs;
  DaemonSettings daemon;
  core::Lookups lookups;  // top-level `lookups`: tables for the template function map:NAME
};

Config load_file(const std::string& path);
Config load_string(std::string_view yaml, const std::string& file_name);

// Resolves "${env:NAME}", "${file:PATH}", "${cred:NAME}" or returns the literal.
// Throws std::runtime_error whose message names the reference, not a value.
core::Secret resolve_secret(const std::string& text);

}  // namespace dirsync::config
