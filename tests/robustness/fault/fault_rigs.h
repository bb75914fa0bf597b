#pragma once
// One rig per target for the fault suite. A rig reuses the conformance
// harness (tests/connectors/conformance/harness.h) for the loopback server,
// its records, mapping and server-side checks, and adds what fault injection
// needs on top:
// - the server's FaultPlan (tests/support/loopback_http_server.h), reached
//   through a FaultPlanScope around the harness's construction;
// - a target with the test's own HTTP settings (short timeouts: the harness's
//   are fixed), built against the harness's server with its credentials;
// - the changed form of a user (the one `Harness::shows_update` recognises);
// - which processed requests created which user, read from the fault log.
//
// Not thread safe; one rig per test.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "tests/connectors/conformance/harnesses.h"
#include "tests/support/loopback_http_server.h"

namespace dirsync::fault {

// How many processed requests created each user, keyed by what identifies the
// user on the server (an email, a display name, an id).
using CreateCounts = std::map<std::string, int>;

class Rig {
 public:
  virtual ~Rig() = default;

  conformance::Harness& harness() { return *harness_; }
  testing::FaultPlan& faults() { return *plan_; }

  // Users in the source.
  virtual int users() const { return 200; }
  // How many users on the server are user i, for each user (its changed form included).
  virtual std::vector<std::size_t> copies() const { return harness_->copies_of_first(users()); }
  // The target over the harness's server, with these HTTP settings.
  virtual std::unique_ptr<core::Target> make_target(const config::HttpSettings& http, http::Sleeper sleeper) const = 0;
  // User i as the source has it after the change `harness().shows_update(i)` recognises.
  virtual core::Record changed_record(int i) const = 0;
  // The method of the requests that carry changes ("": every request does).
  virtual std::string write_method() const { return {}; }
  // From the fault log: the users each processed request created.
  virtual CreateCounts creates(const std::vector<testing::FaultLogEntry>& log) const = 0;
  // The id the snapshot must hold for user i (`changed`: after changed_record),
  // given the harness's server_ids().
  virtual std::string expected_id(int i, bool changed, const std::optional<std::vector<std::string>>& server_ids) const {
    (void)changed;
    return server_ids ? (*server_ids)[static_cast<std::size_t>(i)] : std::string();
  }
  // A snapshot entry may hold no id where the server has one (Hesh answers a
  // create it skipped as existing without the user's id).
  virtual bool may_lack_id() const { return false; }

 protected:
  // Builds the harness with this rig's plan on its server.
  template <class H>
  void build() {
    testing::FaultPlanScope scope(plan_);
    harness_ = std::make_unique<H>();
    const auto urls = plan_->server_urls();
    if (!urls.empty()) base_url_ = urls.front();
  }

  // The 2xx answers the handler gave to processed `method` requests (whose
  // path holds `path`), parsed.
  static std::vector<nlohmann::json> processed(const std::vector<testing::FaultLogEntry>& log, const char* method,
                                               const char* path = "") {
    std::vector<nlohmann::json> out;
    for (const auto& e : log) {
      if (!e.handler_ran || e.method != method || e.handler_status < 200 || e.handler_status > 299) continue;
      if (e.target.find(path) == std::string::npos) continue;
      out.push_back(nlohmann::json::parse(e.handler_body, nullptr, /*allow_exceptions=*/false));
    }
    return out;
  }
  static void count_emails(const nlohmann::json& users, CreateCounts& counts) {
    if (!users.is_array()) return;
    for (const auto& u : users) {
      if (u.is_object() && u.contains("email") && u["email"].is_string()) {
        ++counts[conformance::lower(u["email"].get<std::string>())];
      }
    }
  }
  static core::Record with(core::Record r, const std::string& attribute, const std::string& value) {
    r.set(attribute, {value});
    return r;
  }
  // A target of type T over `settings` with the test's HTTP settings.
  template <class T, class Settings>
  static std::unique_ptr<core::Target> target(Settings settings, const config::HttpSettings& http,
                                              http::Sleeper sleeper) {
    settings.http = http;
    return std::make_unique<T>(std::move(settings), std::move(sleeper), nullptr, conformance::fixed_jitter());
  }

  std::shared_ptr<testing::FaultPlan> plan_ = std::make_shared<testing::FaultPlan>();
  std::unique_ptr<conformance::Harness> harness_;
  std::string base_url_;
};

// Requests of this many changes: a run of 200 users is several requests.
inline constexpr std::size_t kBatch = 25;

class PerscomRig final : public Rig {
 public:
  PerscomRig() { build<conformance::PerscomHarness>(); }
  std::unique_ptr<core::Target> make_target(const config::HttpSettings& http, http::Sleeper sleeper) const override {
    config::PerscomTargetSettings s;
    s.base_url = base_url_;
    s.token = core::Secret(conformance::PerscomHarness::kToken, "${env:PERSCOM_TOKEN}");
    s.batch_size = kBatch;
    return target<targets::PerscomTarget>(std::move(s), http, std::move(sleeper));
  }
  core::Record changed_record(int i) const override {
    return with(harness_->record(i), "name", "Renamed " + std::to_string(i));
  }
  // POST /v2/users/batch → {"data":[created users]} (a POST to /users/search creates nobody).
  CreateCounts creates(const std::vector<testing::FaultLogEntry>& log) const override {
    CreateCounts counts;
    for (const auto& body : processed(log, "POST", "/users/batch")) {
      if (body.is_object()) count_emails(body.value("data", nlohmann::json()), counts);
    }
    return counts;
  }
};

class RoyaltiRig final : public Rig {
 public:
  RoyaltiRig() { build<conformance::RoyaltiHarness>(); }
  std::unique_ptr<core::Target> make_target(const config::HttpSettings& http, http::Sleeper sleeper) const override {
    config::RoyaltiTargetSettings s;
    s.base_url = base_url_;
    s.token = core::Secret(conformance::RoyaltiHarness::kToken, "${env:ROYALTI_TOKEN}");
    s.batch_size = kBatch;
    return target<targets::RoyaltiTarget>(std::move(s), http, std::move(sleeper));
  }
  core::Record changed_record(int i) const override {
    return with(harness_->record(i), "given", "Renamed" + std::to_string(i));
  }
  // 201 {"createdUsers":["<first> <last>", ...]}: Royalti names users only so.
  CreateCounts creates(const std::vector<testing::FaultLogEntry>& log) const override {
    CreateCounts counts;
    for (const auto& body : processed(log, "POST")) {
      if (!body.is_object() || !body.contains("createdUsers") || !body["createdUsers"].is_array()) continue;
      for (const auto& name : body["createdUsers"]) ++counts[name.dump()];
    }
    return counts;
  }
};

class HealviRig final : public Rig {
 public:
  HealviRig() { build<conformance::HealviHarness>(); }
  // User i is Healvi user i + 1 and moves to i + 101 (harnesses.h): with 100
  // users every moved id exists (the server has 200) and none is another's.
  int users() const override { return 100; }
  // Users 100..199 of the harness are the moved ids of users 0..99.
  std::vector<std::size_t> copies() const override {
    const auto all = harness_->copies_of_first(2 * users());
    std::vector<std::size_t> out;
    for (int i = 0; i < users(); ++i) out.push_back(all[i] + all[i + users()]);
    return out;
  }
  std::unique_ptr<core::Target> make_target(const config::HttpSettings& http, http::Sleeper sleeper) const override {
    config::HealviTargetSettings s;
    s.base_url = base_url_ + testing::healvi::kPrefix;
    s.token = core::Secret(conformance::HealviHarness::kToken, "${env:HEALVI_TOKEN}");
    s.customer_id = conformance::HealviHarness::kCustomer;
    return target<targets::HealviTarget>(std::move(s), http, std::move(sleeper));
  }
  core::Record changed_record(int i) const override {
    return with(harness_->record(i), "uid", std::to_string(conformance::HealviHarness::moved_id(i)));
  }
  // The POST carries the changes; the GET only reads the set.
  std::string write_method() const override { return "POST"; }
  // Each POST answers with the whole set: an id attached is one that was not
  // in the answer before. No user is ever detached and attached again here.
  CreateCounts creates(const std::vector<testing::FaultLogEntry>& log) const override {
    CreateCounts counts;
    std::set<std::string> attached;
    for (const auto& body : processed(log, "POST")) {
      if (!body.is_object() || !body.contains("data") || !body["data"].is_array()) continue;
      std::set<std::string> now;
      for (const auto& u : body["data"]) {
        if (u.is_object() && u.contains("id")) now.insert(u["id"].dump());
      }
      for (const auto& id : now) {
        if (!attached.count(id)) ++counts["id " + id];
      }
      attached = std::move(now);
    }
    return counts;
  }
  std::string expected_id(int i, bool changed, const std::optional<std::vector<std::string>>&) const override {
    return std::to_string(changed ? conformance::HealviHarness::moved_id(i) : conformance::HealviHarness::id(i));
  }
};

#ifdef DIRSYNC_CONFORMANCE_HESH
class HeshRig final : public Rig {
 public:
  HeshRig() { build<conformance::HeshHarness>(); }
  std::unique_ptr<core::Target> make_target(const config::HttpSettings& http, http::Sleeper sleeper) const override {
    config::HeshTargetSettings s;
    s.base_url = base_url_;
    s.tenant_id = core::Secret(conformance::HeshHarness::kTenant, "${env:HESH_TENANT_ID}");
    s.api_key = core::Secret(conformance::HeshHarness::kApiKey, "${env:HESH_API_KEY}");
    s.batch_size = kBatch;
    return target<targets::HeshTarget>(std::move(s), http, std::move(sleeper));
  }
  core::Record changed_record(int i) const override {
    return with(harness_->record(i), "given", "Renamed" + std::to_string(i));
  }
  // 200 [created users]: the ones Hesh skipped as existing are not listed.
  CreateCounts creates(const std::vector<testing::FaultLogEntry>& log) const override {
    CreateCounts counts;
    for (const auto& body : processed(log, "POST")) count_emails(body, counts);
    return counts;
  }
  bool may_lack_id() const override { return true; }
};
#endif

#ifdef DIRSYNC_CONFORMANCE_AUTH_SYNC_USER
class AuthSyncUserRig final : public Rig {
 public:
  AuthSyncUserRig() { build<conformance::AuthSyncUserHarness>(); }
  std::unique_ptr<core::Target> make_target(const config::HttpSettings& http, http::Sleeper sleeper) const override {
    config::AuthSyncUserTargetSettings s;
    s.base_url = base_url_;
    s.password_secret =
        core::Secret(conformance::AuthSyncUserHarness::kPasswordSecret, "${env:AUTH_SYNC_PASSWORD_SECRET}");
    s.token = core::Secret(conformance::AuthSyncUserHarness::kToken, "${env:AUTH_SYNC_TOKEN}");
    return target<targets::AuthSyncUserTarget>(std::move(s), http, std::move(sleeper));
  }
  core::Record changed_record(int i) const override {
    return with(harness_->record(i), "given", "Renamed" + std::to_string(i));
  }
  // An upsert keyed by `id`: a processed request creates the user when no
  // earlier processed request carried its id (later ones update it).
  CreateCounts creates(const std::vector<testing::FaultLogEntry>& log) const override {
    CreateCounts counts;
    std::set<std::string> seen;
    for (const auto& e : log) {
      if (!e.handler_ran || e.method != "POST" || e.handler_status < 200 || e.handler_status > 299) continue;
      const auto body = nlohmann::json::parse(e.request_body, nullptr, /*allow_exceptions=*/false);
      if (!body.is_object() || !body.contains("id") || !body["id"].is_string()) continue;
      const std::string id = body["id"].get<std::string>();
      if (seen.insert(id).second) ++counts[id];
    }
    return counts;
  }
};
#endif

}  // namespace dirsync::fault
