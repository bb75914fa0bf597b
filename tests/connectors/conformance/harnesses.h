#pragma once
// One conformance harness per target (see harness.h). Targets being built by
// other engineers are compiled in only when CMake found their library
// (DIRSYNC_CONFORMANCE_HESH, DIRSYNC_CONFORMANCE_AUTH_SYNC_USER).
#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <utility>
#include <string>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "connectors/targets/healvi/healvi_target.h"
#include "connectors/targets/perscom/perscom_target.h"
#include "connectors/targets/royalti/royalti_target.h"
#include "tests/connectors/conformance/harness.h"
#include "tests/support/healvi_test_server.h"
#include "tests/support/perscom_test_server.h"
#include "tests/support/royalti_test_server.h"
#ifdef DIRSYNC_CONFORMANCE_HESH
#include "connectors/targets/hesh/hesh_target.h"
#include "tests/support/hesh_test_server.h"
#endif
#ifdef DIRSYNC_CONFORMANCE_AUTH_SYNC_USER
#include "connectors/targets/auth_sync_user/auth_sync_user_target.h"
#include "tests/support/auth_sync_user_test_server.h"
#endif

namespace dirsync::conformance {

// The HTTP settings every harness gives its target: short timeouts, few
// attempts, rate limits off (so that the recorded sleeps are the retries' own).
inline config::HttpSettings http_settings() {
  config::HttpSettings h;
  h.connect_timeout = std::chrono::milliseconds(2000);
  h.timeout = std::chrono::milliseconds(5000);
  h.max_attempts = kMaxAttempts;
  h.rate_limits = std::vector<config::RateWindow>{};
  return h;
}

inline http::Jitter fixed_jitter() {
  return [] { return 0.5; };
}

inline std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// For users 0..n-1 (whose email is email_of(i)), how many of `users` have that
// email (case-insensitive), and the first one's `id` ("(absent)" for none).
inline std::pair<std::vector<std::size_t>, std::vector<std::string>> index_by_email(
    const nlohmann::json& users, int n, const std::function<std::string(int)>& email_of) {
  std::map<std::string, std::pair<std::size_t, std::string>> by_email;
  for (const auto& u : users) {
    if (!u.contains("email") || !u["email"].is_string()) continue;
    auto& slot = by_email[lower(u["email"].get<std::string>())];
    if (slot.first++ == 0 && u.contains("id")) slot.second = u["id"].is_string() ? u["id"].get<std::string>() : u["id"].dump();
  }
  std::vector<std::size_t> copies;
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    auto it = by_email.find(lower(email_of(i)));
    copies.push_back(it == by_email.end() ? 0 : it->second.first);
    ids.push_back(it == by_email.end() ? "(absent)" : it->second.second);
  }
  return {copies, ids};
}

inline core::Record make_record(int i, std::vector<std::pair<std::string, std::string>> attributes) {
  core::Record r;
  r.key = "user-" + std::to_string(i);
  r.origin = "conformance:" + std::to_string(i);
  for (auto& [name, value] : attributes) r.set(name, {value});
  return r;
}

inline core::Change make_create(int i, nlohmann::json payload) {
  core::Change c;
  c.op = core::Op::kCreate;
  c.key = "user-" + std::to_string(i);
  c.payload = std::move(payload);
  return c;
}

// ---------------------------------------------------------------- PERSCOM
// Creates are not idempotent (a second POST makes a second user, or a 422
// "already taken"): never re-sent once they may have been received.
class PerscomHarness final : public Harness {
 public:
  static constexpr const char* kToken = "perscom-conformance-token-Q8d2";

  PerscomHarness() : server_(options()) { server_.start(); }

  std::unique_ptr<core::Target> make_target(http::Sleeper sleeper, std::size_t batch_size) override {
    config::PerscomTargetSettings s;
    s.base_url = server_.base_url();
    s.api_version = "v2";
    s.token = core::Secret(kToken, "${env:PERSCOM_TOKEN}");
    s.batch_size = batch_size == 0 ? 100'000 : batch_size;
    s.http = http_settings();
    return std::make_unique<targets::PerscomTarget>(std::move(s), std::move(sleeper), nullptr, fixed_jitter());
  }
  bool create_is_safe_to_resend() const override { return false; }

  static std::string email(int i) { return "user" + std::to_string(i) + "@conformance.example.org"; }
  static std::string name(int i) { return "User " + std::to_string(i); }

  core::Change create(int i) const override { return make_create(i, {{"name", name(i)}, {"email", email(i)}}); }
  core::Change invalid_create(int i) const override {
    return make_create(i, {{"name", name(i)}, {"email", "not-an-email-" + std::to_string(i)}});
  }
  std::optional<core::Change> update(int i, const std::string& target_id) const override {
    core::Change c;
    c.op = core::Op::kUpdate;
    c.key = "user-" + std::to_string(i);
    c.target_id = target_id;
    c.previous = {{"name", name(i)}, {"email", email(i)}};
    c.payload = {{"name", "Renamed " + std::to_string(i)}, {"email", email(i)}};
    c.changed_fields = {"name"};
    return c;
  }
  std::optional<core::Change> detach(int i, const std::string& target_id) const override {
    core::Change c;
    c.op = core::Op::kDetach;
    c.key = "user-" + std::to_string(i);
    c.target_id = target_id;
    c.previous = {{"name", name(i)}, {"email", email(i)}};
    return c;
  }
  bool shows_update(int i) const override {
    const auto u = server_.find_user_by_email(email(i));
    return !u.is_null() && u.value("name", "") == "Renamed " + std::to_string(i);
  }

  core::Record record(int i) const override { return make_record(i, {{"name", name(i)}, {"mail", email(i)}}); }
  core::Mapping mapping() const override {
    return core::Mapping({{"name", core::Template::parse("{name}"), core::FieldType::kString},
                          {"email", core::Template::parse("{mail}"), core::FieldType::kString}});
  }

  void inject(Fault fault, int count, int retry_after_seconds) override {
    using testing::Fault;
    const auto f = fault == conformance::Fault::k429   ? Fault::k429
                   : fault == conformance::Fault::k500 ? Fault::k500
                   : fault == conformance::Fault::kClose ? Fault::kClose
                                                         : Fault::kCloseAfterApplying;
    server_.inject(f, count, retry_after_seconds);
  }
  void clear_faults() override { server_.clear_faults(); }
  void refuse_credentials() override { server_.set_token("a-token-the-target-does-not-have"); }
  std::vector<std::string> secrets() const override { return {kToken}; }
  std::size_t users_held() const override { return server_.users().size(); }
  std::vector<std::size_t> copies_of_first(int n) const override {
    return index_by_email(server_.users(), n, email).first;
  }
  std::optional<std::vector<std::string>> server_ids(int n) const override {
    return index_by_email(server_.users(), n, email).second;
  }
  std::size_t write_requests() const override {
    std::size_t n = 0;
    for (const auto& r : server_.request_log()) n += r.method != "GET";
    return n;
  }
  std::size_t requests() const override { return server_.request_count(); }

 private:
  static testing::PerscomServerOptions options() {
    testing::PerscomServerOptions o;
    o.token = kToken;
    return o;
  }
  testing::PerscomTestServer server_;
};

// ---------------------------------------------------------------- Royalti
// Re-sending a create is safe: Royalti answers "already associated" for a user
// it has. Create-only; returns no ids.
class RoyaltiHarness final : public Harness {
 public:
  static constexpr const char* kToken = "royalti-conformance-token-Zr41";

  RoyaltiHarness() : server_(options()) { server_.start(); }

  std::unique_ptr<core::Target> make_target(http::Sleeper sleeper, std::size_t batch_size) override {
    config::RoyaltiTargetSettings s;
    s.base_url = server_.base_url();
    s.token = core::Secret(kToken, "${env:ROYALTI_TOKEN}");
    s.batch_size = batch_size == 0 ? 100'000 : batch_size;
    s.http = http_settings();
    return std::make_unique<targets::RoyaltiTarget>(std::move(s), std::move(sleeper), nullptr, fixed_jitter());
  }
  bool create_is_safe_to_resend() const override { return true; }

  static std::string email(int i) { return "user" + std::to_string(i) + "@conformance.example.org"; }
  static std::string first(int i) { return "First" + std::to_string(i); }
  static std::string last(int i) { return "Last" + std::to_string(i); }

  core::Change create(int i) const override {
    return make_create(i, {{"firstName", first(i)}, {"lastName", last(i)}, {"email", email(i)}});
  }
  core::Change invalid_create(int i) const override {
    return make_create(i, {{"firstName", first(i)}, {"lastName", last(i)}, {"email", "not-an-email-" + std::to_string(i)}});
  }
  std::optional<core::Change> update(int, const std::string&) const override { return std::nullopt; }
  std::optional<core::Change> detach(int, const std::string&) const override { return std::nullopt; }
  bool shows_update(int) const override { return false; }

  core::Record record(int i) const override {
    return make_record(i, {{"given", first(i)}, {"sn", last(i)}, {"mail", email(i)}});
  }
  core::Mapping mapping() const override {
    return core::Mapping({{"firstName", core::Template::parse("{given}"), core::FieldType::kString},
                          {"lastName", core::Template::parse("{sn}"), core::FieldType::kString},
                          {"email", core::Template::parse("{mail}"), core::FieldType::kString}});
  }

  void inject(Fault fault, int count, int retry_after_seconds) override {
    using testing::RoyaltiFault;
    const auto f = fault == Fault::k429     ? RoyaltiFault::k429
                   : fault == Fault::k500   ? RoyaltiFault::k500
                   : fault == Fault::kClose ? RoyaltiFault::kClose
                                            : RoyaltiFault::kCloseAfterApplying;
    server_.inject(f, count, retry_after_seconds);
  }
  void clear_faults() override { server_.clear_faults(); }
  void refuse_credentials() override { server_.set_token("a-token-the-target-does-not-have"); }
  std::vector<std::string> secrets() const override { return {kToken}; }
  std::size_t users_held() const override { return server_.users().size(); }
  std::vector<std::size_t> copies_of_first(int n) const override {
    return index_by_email(server_.users(), n, email).first;
  }
  std::optional<std::vector<std::string>> server_ids(int) const override { return std::nullopt; }
  std::size_t write_requests() const override { return server_.request_count(); }
  std::size_t requests() const override { return server_.request_count(); }

 private:
  static testing::RoyaltiServerOptions options() {
    testing::RoyaltiServerOptions o;
    o.token = kToken;
    return o;
  }
  testing::RoyaltiTestServer server_;
};

// ---------------------------------------------------------------- Healvi
// Full-set: one apply per run; the POST replaces the customer's set, so
// sending it again is harmless (idempotent). User i is Healvi user id i + 1;
// an update re-points it to id i + 101.
class HealviHarness final : public Harness {
 public:
  static constexpr const char* kToken = "healvi-conformance-token-Hv07";
  static constexpr std::int64_t kCustomer = 31;

  HealviHarness() {
    testing::healvi::HealviServerOptions o;
    o.token = kToken;
    server_.set_options(o);
    server_.start();
    server_.add_customer(kCustomer);
    server_.add_users(200);
  }

  std::unique_ptr<core::Target> make_target(http::Sleeper sleeper, std::size_t) override {
    config::HealviTargetSettings s;
    s.base_url = server_.base_url();
    s.token = core::Secret(kToken, "${env:HEALVI_TOKEN}");
    s.customer_id = kCustomer;
    s.http = http_settings();
    return std::make_unique<targets::HealviTarget>(std::move(s), std::move(sleeper), nullptr, fixed_jitter());
  }
  bool create_is_safe_to_resend() const override { return true; }

  static std::int64_t id(int i) { return i + 1; }
  static std::int64_t moved_id(int i) { return i + 101; }

  core::Change create(int i) const override { return make_create(i, {{"user_id", id(i)}}); }
  // A user id Healvi does not have: 422 "The selected user_ids.N is invalid."
  core::Change invalid_create(int i) const override { return make_create(i, {{"user_id", 900'000 + i}}); }
  std::optional<core::Change> update(int i, const std::string& target_id) const override {
    core::Change c;
    c.op = core::Op::kUpdate;
    c.key = "user-" + std::to_string(i);
    c.target_id = target_id;
    c.previous = {{"user_id", id(i)}};
    c.payload = {{"user_id", moved_id(i)}};
    c.changed_fields = {"user_id"};
    return c;
  }
  std::optional<core::Change> detach(int i, const std::string& target_id) const override {
    core::Change c;
    c.op = core::Op::kDetach;
    c.key = "user-" + std::to_string(i);
    c.target_id = target_id;
    c.previous = {{"user_id", id(i)}};
    return c;
  }
  bool shows_update(int i) const override {
    const auto set = server_.attached(kCustomer);
    return set.count(moved_id(i)) == 1 && set.count(id(i)) == 0;
  }

  core::Record record(int i) const override { return make_record(i, {{"uid", std::to_string(id(i))}}); }
  core::Mapping mapping() const override {
    return core::Mapping({{"user_id", core::Template::parse("{uid}"), core::FieldType::kInt}});
  }

  void inject(Fault fault, int count, int retry_after_seconds) override {
    using testing::healvi::Fault;
    const auto f = fault == conformance::Fault::k429   ? Fault::k429
                   : fault == conformance::Fault::k500 ? Fault::k500
                   : fault == conformance::Fault::kClose ? Fault::kClose
                                                         : Fault::kCloseAfterApplying;
    // The POST carries the changes; the GET before it only reads the set.
    server_.inject(f, count, retry_after_seconds, "POST");
  }
  void clear_faults() override { server_.clear_faults(); }
  void refuse_credentials() override {
    auto o = server_.options();
    o.token = "a-token-the-target-does-not-have";
    server_.set_options(o);
  }
  std::vector<std::string> secrets() const override { return {kToken}; }
  std::size_t users_held() const override { return server_.attached(kCustomer).size(); }
  // A set holds an id once at most: what matters here is whether it is there.
  std::vector<std::size_t> copies_of_first(int n) const override {
    const auto set = server_.attached(kCustomer);
    std::vector<std::size_t> out;
    for (int i = 0; i < n; ++i) out.push_back(set.count(id(i)));
    return out;
  }
  std::optional<std::vector<std::string>> server_ids(int n) const override {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back(std::to_string(id(i)));
    return out;
  }
  std::size_t write_requests() const override { return server_.count("POST"); }
  std::size_t requests() const override { return server_.request_count(); }

 private:
  testing::healvi::HealviTestServer server_;
};

#ifdef DIRSYNC_CONFORMANCE_HESH
// ---------------------------------------------------------------- Hesh
// Re-sending a create is safe: Hesh skips users it already has (by email or
// phone). Create-only. The tenant id is the credential.
class HeshHarness final : public Harness {
 public:
  static constexpr const char* kTenant = "7c1f3a52-90d4-4e8b-a6b1-2d5e9f0c4b13";
  static constexpr const char* kApiKey = "hesh-conformance-key-Mm93";

  HeshHarness() : server_(options()) {
    server_.require_api_key(std::string(kApiKey));
    server_.start();
  }

  std::unique_ptr<core::Target> make_target(http::Sleeper sleeper, std::size_t batch_size) override {
    config::HeshTargetSettings s;
    s.base_url = server_.base_url();
    s.tenant_id = core::Secret(kTenant, "${env:HESH_TENANT_ID}");
    s.api_key = core::Secret(kApiKey, "${env:HESH_API_KEY}");
    s.batch_size = batch_size == 0 ? 100'000 : batch_size;
    s.http = http_settings();
    return std::make_unique<targets::HeshTarget>(std::move(s), std::move(sleeper), nullptr, fixed_jitter());
  }
  bool create_is_safe_to_resend() const override { return true; }

  static std::string email(int i) { return "user" + std::to_string(i) + "@conformance.example.org"; }
  static std::string external(int i) { return "ext-" + std::to_string(i); }

  core::Change create(int i) const override {
    return make_create(i, {{"external_user_id", external(i)},
                           {"email", email(i)},
                           {"first_name", "First" + std::to_string(i)},
                           {"last_name", "Last" + std::to_string(i)}});
  }
  core::Change invalid_create(int i) const override {
    return make_create(i, {{"external_user_id", external(i)}, {"email", "not-an-email-" + std::to_string(i)}});
  }
  std::optional<core::Change> update(int, const std::string&) const override { return std::nullopt; }
  std::optional<core::Change> detach(int, const std::string&) const override { return std::nullopt; }
  bool shows_update(int) const override { return false; }

  core::Record record(int i) const override {
    return make_record(i, {{"uid", external(i)}, {"mail", email(i)}, {"given", "First" + std::to_string(i)}});
  }
  core::Mapping mapping() const override {
    return core::Mapping({{"external_user_id", core::Template::parse("{uid}"), core::FieldType::kString},
                          {"email", core::Template::parse("{mail}"), core::FieldType::kString},
                          {"first_name", core::Template::parse("{given}"), core::FieldType::kString}});
  }

  void inject(Fault fault, int count, int retry_after_seconds) override {
    using testing::HeshFault;
    const auto f = fault == Fault::k429     ? HeshFault::k429
                   : fault == Fault::k500   ? HeshFault::k500
                   : fault == Fault::kClose ? HeshFault::kClose
                                            : HeshFault::kCloseAfterApplying;
    server_.inject(f, count, retry_after_seconds);
  }
  void clear_faults() override { server_.clear_faults(); }
  void refuse_credentials() override { server_.require_api_key(std::string("a-key-the-target-does-not-have")); }
  std::vector<std::string> secrets() const override { return {kTenant, kApiKey}; }
  std::size_t users_held() const override { return server_.users().size(); }
  std::vector<std::size_t> copies_of_first(int n) const override {
    return index_by_email(server_.users(), n, email).first;
  }
  std::optional<std::vector<std::string>> server_ids(int n) const override {
    return index_by_email(server_.users(), n, email).second;
  }
  std::size_t write_requests() const override { return server_.request_count(); }
  std::size_t requests() const override { return server_.request_count(); }

 private:
  static testing::HeshServerOptions options() {
    testing::HeshServerOptions o;
    o.tenants = {kTenant};
    return o;
  }
  testing::HeshTestServer server_;
};
#endif

#ifdef DIRSYNC_CONFORMANCE_AUTH_SYNC_USER
// ---------------------------------------------------------------- auth_sync_user
// One user per request, sent concurrently; an upsert keyed by `id`, so a
// create is safe to re-send. No detach. The seed shows no auth: the server's
// bearer switch is on here so that 401 can be tested.
class AuthSyncUserHarness final : public Harness {
 public:
  static constexpr const char* kToken = "auth-sync-conformance-token-Kp55";
  static constexpr const char* kPasswordSecret = "auth-sync-conformance-password-secret-Wq19";

  AuthSyncUserHarness() {
    server_.require_bearer(std::string(kToken));
    server_.start();
  }

  std::unique_ptr<core::Target> make_target(http::Sleeper sleeper, std::size_t) override {
    return std::make_unique<targets::AuthSyncUserTarget>(settings(), std::move(sleeper), nullptr, fixed_jitter());
  }
  bool create_is_safe_to_resend() const override { return true; }
  bool batch_size_configurable() const override { return false; }
  bool one_request_per_user() const override { return true; }

  static std::string id(int i) { return "u-" + std::to_string(i); }
  static std::string email(int i) { return "user" + std::to_string(i) + "@conformance.example.org"; }

  static nlohmann::json payload(int i, const std::string& first_name) {
    return {{"id", id(i)},
            {"email", email(i)},
            {"organization_id", "org-1"},
            {"role_id", "role-1"},
            {"first_name", first_name},
            {"last_name", "Last" + std::to_string(i)},
            {"phone_number", "5550" + std::to_string(1000 + i)},
            {"phone_country_code", "+1"}};
  }
  core::Change create(int i) const override { return make_create(i, payload(i, "First" + std::to_string(i))); }
  core::Change invalid_create(int i) const override {
    auto p = payload(i, "First" + std::to_string(i));
    p["email"] = "not-an-email-" + std::to_string(i);
    return make_create(i, p);
  }
  std::optional<core::Change> update(int i, const std::string& target_id) const override {
    core::Change c;
    c.op = core::Op::kUpdate;
    c.key = "user-" + std::to_string(i);
    c.target_id = target_id;
    c.previous = payload(i, "First" + std::to_string(i));
    c.payload = payload(i, "Renamed" + std::to_string(i));
    c.changed_fields = {"first_name"};
    return c;
  }
  std::optional<core::Change> detach(int, const std::string&) const override { return std::nullopt; }
  bool shows_update(int i) const override {
    const auto u = server_.user(id(i));
    return !u.is_null() && u.value("first_name", "") == "Renamed" + std::to_string(i);
  }

  core::Record record(int i) const override {
    return make_record(i, {{"uid", id(i)}, {"mail", email(i)}, {"given", "First" + std::to_string(i)},
                           {"sn", "Last" + std::to_string(i)}, {"tel", "5550" + std::to_string(1000 + i)}});
  }
  core::Mapping mapping() const override {
    auto text = [](const char* name, const char* tmpl) {
      return core::MappedField{name, core::Template::parse(tmpl), core::FieldType::kString};
    };
    auto constant = [](const char* name, const char* value) {
      return core::MappedField{name, core::Template::constant(value), core::FieldType::kString};
    };
    return core::Mapping({text("id", "{uid}"), text("email", "{mail}"), constant("organization_id", "org-1"),
                          constant("role_id", "role-1"), text("first_name", "{given}"), text("last_name", "{sn}"),
                          text("phone_number", "{tel}"), constant("phone_country_code", "+1")});
  }

  void inject(Fault fault, int count, int retry_after_seconds) override {
    using testing::AuthSyncFault;
    const auto f = fault == Fault::k429     ? AuthSyncFault::k429
                   : fault == Fault::k500   ? AuthSyncFault::k500
                   : fault == Fault::kClose ? AuthSyncFault::kClose
                                            : AuthSyncFault::kCloseAfterProcessing;
    server_.inject(f, count, retry_after_seconds);
  }
  void clear_faults() override { server_.clear_faults(); }
  void refuse_credentials() override { server_.require_bearer(std::string("a-token-the-target-does-not-have")); }
  // The token, the password secret, and the passwords derived for the users
  // the tests send.
  std::vector<std::string> secrets() const override {
    const auto s = settings();
    std::vector<std::string> out = {kToken, kPasswordSecret};
    for (int i = 0; i < 8; ++i) {
      out.push_back(targets::auth_sync_user::derive_password(s.password_secret, "user-" + std::to_string(i)));
    }
    return out;
  }
  std::size_t users_held() const override { return server_.users().size(); }
  // Stored users are keyed by id; a duplicate would be a second id with the same email.
  std::vector<std::size_t> copies_of_first(int n) const override {
    return index_by_email(as_array(server_.users()), n, email).first;
  }
  std::optional<std::vector<std::string>> server_ids(int n) const override {
    return index_by_email(as_array(server_.users()), n, email).second;
  }
  std::size_t write_requests() const override { return server_.request_count(); }
  std::size_t requests() const override { return server_.request_count(); }

 private:
  config::AuthSyncUserTargetSettings settings() const {
    config::AuthSyncUserTargetSettings s;
    s.base_url = server_.base_url();
    s.password_secret = core::Secret(kPasswordSecret, "${env:AUTH_SYNC_PASSWORD_SECRET}");
    s.token = core::Secret(kToken, "${env:AUTH_SYNC_TOKEN}");
    s.http = http_settings();
    return s;
  }
  static nlohmann::json as_array(const nlohmann::json& by_id) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [key, user] : by_id.items()) out.push_back(user);
    return out;
  }
  testing::AuthSyncUserTestServer server_;
};
#endif

}  // namespace dirsync::conformance
