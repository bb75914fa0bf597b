#include "tests/support/hesh_test_server.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <unordered_set>

namespace dirsync::testing {
namespace {

using nlohmann::json;

constexpr const char* kPath = "/api/v1/public/users/batch";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string now_iso() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03lldZ", buf, static_cast<long long>(millis));
  return out;
}

ServerResponse json_response(int status, const json& body) {
  ServerResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

// NestJS's error shape.
ServerResponse nest_error(int status, const json& message, const char* error) {
  json body = {{"statusCode", status}, {"message", message}};
  if (error) body["error"] = error;
  return json_response(status, body);
}

bool valid_email(const std::string& e) {
  const auto at = e.find('@');
  if (at == std::string::npos || at == 0 || e.find('@', at + 1) != std::string::npos) return false;
  const std::string domain = e.substr(at + 1);
  if (domain.empty() || domain.front() == '.' || domain.back() == '.' || domain.find('.') == std::string::npos) {
    return false;
  }
  return std::none_of(e.begin(), e.end(), [](unsigned char c) { return std::isspace(c) || c < 0x20; });
}

std::string str(const json& user, const char* name) {
  const auto it = user.find(name);
  return it != user.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// class-validator's messages, prefixed with the property path.
std::vector<std::string> validate(const json& users) {
  std::vector<std::string> errs;
  for (std::size_t i = 0; i < users.size(); ++i) {
    const std::string p = "users." + std::to_string(i) + ".";
    const json& u = users[i];
    if (!u.is_object()) {
      errs.push_back("nested property users must be either object or array");
      continue;
    }
    for (const char* required : {"external_user_id", "email"}) {
      const auto it = u.find(required);
      if (it == u.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty())) {
        errs.push_back(p + required + " should not be empty");
      } else if (!it->is_string()) {
        errs.push_back(p + required + " must be a string");
      } else if (std::string(required) == "email" && !valid_email(it->get<std::string>())) {
        errs.push_back(p + "email must be an email");
      }
    }
    for (const auto& [field, value] : u.items()) {
      if (field == "external_user_id" || field == "email") continue;
      if (field == "first_name" || field == "last_name" || field == "phone") {
        if (!value.is_string()) errs.push_back(p + field + " must be a string");
      } else {
        errs.push_back(p + "property " + field + " should not exist");
      }
    }
  }
  return errs;
}

}  // namespace

bool HeshTestServer::is_uuid_v4(const std::string& t) {
  if (t.size() != 36) return false;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (t[i] == '-')) return false;
    if (!dash && !std::isxdigit(static_cast<unsigned char>(t[i]))) return false;
  }
  return t[14] == '4' && std::string("89abAB").find(t[19]) != std::string::npos;
}

HeshTestServer::HeshTestServer(HeshServerOptions options)
    : options_(std::move(options)), http_([this](const ServerRequest& r) { return handle(r); }) {
  for (const auto& t : options_.tenants) users_[t];
}

HeshTestServer::~HeshTestServer() { http_.stop(); }

void HeshTestServer::start(std::uint16_t port) { http_.start(port); }
void HeshTestServer::stop() { http_.stop(); }
std::uint16_t HeshTestServer::port() const { return http_.port(); }
std::string HeshTestServer::base_url() const { return http_.base_url(); }
std::size_t HeshTestServer::connections_accepted() const { return http_.connections_accepted(); }

std::string HeshTestServer::tenant() const {
  std::lock_guard lock(mu_);
  return options_.tenants.empty() ? std::string() : options_.tenants.front();
}

void HeshTestServer::add_tenant(std::string tenant_id) {
  std::lock_guard lock(mu_);
  users_[tenant_id];
  options_.tenants.push_back(std::move(tenant_id));
}

void HeshTestServer::require_api_key(std::optional<std::string> key) {
  std::lock_guard lock(mu_);
  options_.required_api_key = std::move(key);
}

void HeshTestServer::set_echo_bug(bool on) {
  std::lock_guard lock(mu_);
  options_.echo_bug = on;
}

void HeshTestServer::set_rate_limits(std::vector<std::pair<std::size_t, std::chrono::milliseconds>> windows) {
  std::lock_guard lock(mu_);
  limits_ = std::move(windows);
  admitted_.clear();
}

void HeshTestServer::inject(HeshFault fault, int count, int retry_after_seconds) {
  std::lock_guard lock(mu_);
  for (int i = 0; i < count; ++i) faults_.push_back({fault, retry_after_seconds});
}

void HeshTestServer::clear_faults() {
  std::lock_guard lock(mu_);
  faults_.clear();
}

const std::string& HeshTestServer::tenant_or_default(const std::string& tenant) const {
  static const std::string none;
  if (!tenant.empty()) return tenant;
  return options_.tenants.empty() ? none : options_.tenants.front();
}

std::string HeshTestServer::add_user(json user, std::string tenant) {
  std::lock_guard lock(mu_);
  char id[40];
  const auto n = ++uuid_counter_;
  std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012llx", static_cast<unsigned long long>(n));
  json stored = user;
  stored["id"] = id;
  users_[tenant_or_default(tenant)].push_back(std::move(stored));
  return id;
}

bool HeshTestServer::remove_user_by_email(const std::string& email, std::string tenant) {
  std::lock_guard lock(mu_);
  auto& stored = users_[tenant_or_default(tenant)];
  const auto it = std::find_if(stored.begin(), stored.end(), [&](const json& u) { return lower(str(u, "email")) == lower(email); });
  if (it == stored.end()) return false;
  stored.erase(it);
  return true;
}

json HeshTestServer::users(std::string tenant) const {
  std::lock_guard lock(mu_);
  json out = json::array();
  const auto it = users_.find(tenant_or_default(tenant));
  if (it != users_.end()) {
    for (const auto& u : it->second) out.push_back(u);
  }
  return out;
}

json HeshTestServer::find_user_by_email(const std::string& email, std::string tenant) const {
  std::lock_guard lock(mu_);
  const auto it = users_.find(tenant_or_default(tenant));
  if (it == users_.end()) return nullptr;
  for (const auto& u : it->second) {
    if (lower(str(u, "email")) == lower(email)) return u;
  }
  return nullptr;
}

std::vector<HeshLoggedRequest> HeshTestServer::request_log() const {
  std::lock_guard lock(mu_);
  return log_;
}

std::size_t HeshTestServer::request_count() const {
  std::lock_guard lock(mu_);
  return log_.size();
}

std::size_t HeshTestServer::throttled_count() const {
  std::lock_guard lock(mu_);
  return throttled_;
}

void HeshTestServer::clear_log() {
  std::lock_guard lock(mu_);
  log_.clear();
  throttled_ = 0;
}

ServerResponse HeshTestServer::handle(const ServerRequest& request) {
  std::lock_guard lock(mu_);
  std::optional<FaultEntry> fault;
  if (!faults_.empty()) {
    fault = faults_.front();
    faults_.pop_front();
  }
  HeshLoggedRequest entry{request.method, request.target, 0, request.body, request.headers, 0, 0};
  ServerResponse response;
  if (fault && fault->fault == HeshFault::k429) {
    response = nest_error(429, "ThrottlerException: Too Many Requests", nullptr);
    response.headers.emplace_back("Retry-After", std::to_string(fault->retry_after));
  } else if (fault && fault->fault == HeshFault::k500) {
    response = nest_error(500, "Internal server error", nullptr);
  } else if (fault && fault->fault == HeshFault::kClose) {
    response.close_without_response = true;
  } else {
    response = handle_locked(request, entry);
    if (fault && fault->fault == HeshFault::kCloseAfterApplying) {
      response = ServerResponse{};
      response.close_without_response = true;
    } else if (fault && fault->fault == HeshFault::k500AfterApplying) {
      response = nest_error(500, "Internal server error", nullptr);
    } else if (fault && fault->fault == HeshFault::kMalformedJson) {
      response.status = 200;
      response.body = response.body.substr(0, std::max<std::size_t>(1, response.body.size() / 2));
    }
  }
  entry.status = response.close_without_response ? 0 : response.status;
  log_.push_back(std::move(entry));
  return response;
}

std::optional<ServerResponse> HeshTestServer::throttle_locked() {
  if (limits_.empty()) return std::nullopt;
  const auto now = std::chrono::steady_clock::now();
  std::chrono::milliseconds longest{0};
  std::chrono::steady_clock::duration wait{0};
  for (const auto& [requests, per] : limits_) {
    longest = std::max(longest, per);
    std::size_t in_window = 0;
    std::optional<std::chrono::steady_clock::time_point> oldest;
    for (const auto& t : admitted_) {
      if (t > now - per) {
        ++in_window;
        if (!oldest) oldest = t;
      }
    }
    if (in_window >= requests) {
      // The slot frees when the oldest request counted in this window leaves it.
      const auto frees = oldest ? *oldest + per - now : std::chrono::steady_clock::duration(per);
      wait = std::max(wait, frees);
    }
  }
  while (!admitted_.empty() && admitted_.front() <= now - longest) admitted_.pop_front();
  if (wait > std::chrono::steady_clock::duration::zero()) {
    ++throttled_;
    const auto secs = std::chrono::ceil<std::chrono::seconds>(wait).count();
    ServerResponse r = nest_error(429, "ThrottlerException: Too Many Requests", nullptr);
    r.headers.emplace_back("Retry-After", std::to_string(std::max<long long>(1, secs)));
    return r;
  }
  admitted_.push_back(now);
  return std::nullopt;
}

ServerResponse HeshTestServer::handle_locked(const ServerRequest& request, HeshLoggedRequest& entry) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  if (path != kPath || request.method != "POST") {
    return nest_error(404, "Cannot " + request.method + " " + path, "Not Found");
  }
  if (auto throttled = throttle_locked()) return *throttled;

  const std::string tenant = request.header("x-tenant-id");
  const bool known = std::find(options_.tenants.begin(), options_.tenants.end(), tenant) != options_.tenants.end();
  if (!request.has_header("x-tenant-id") || !is_uuid_v4(tenant) || !known) {
    return nest_error(401, "Missing or incorrect x-tenant-id", "Unauthorized");
  }
  if (options_.required_api_key &&
      (!request.has_header("x-api-key") || request.header("x-api-key") != *options_.required_api_key)) {
    return nest_error(401, "Invalid or missing x-api-key", "Unauthorized");
  }

  // NestJS parses a JSON body only when it is declared as JSON.
  json body = json::object();
  if (lower(request.header("content-type")).rfind("application/json", 0) == 0) {
    body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) {
      return nest_error(400, "Unexpected token in JSON at position 0", "Bad Request");
    }
  }
  if (!body.is_object() || !body.contains("users") || !body["users"].is_array()) {
    return nest_error(400, json::array({"users must be an array"}), "Bad Request");
  }
  const auto errs = validate(body["users"]);
  if (!errs.empty()) return nest_error(400, errs, "Bad Request");
  return create_locked(tenant, body, entry);
}

ServerResponse HeshTestServer::create_locked(const std::string& tenant, const json& body, HeshLoggedRequest& entry) {
  auto& stored = users_[tenant];
  json created = json::array();
  const std::string now = now_iso();
  // Who the tenant already has, indexed once per request: a scan per user made
  // large tests quadratic.
  std::unordered_set<std::string> emails, phones;
  for (const auto& s : stored) {
    emails.insert(lower(str(s, "email")));
    if (const std::string p = str(s, "phone"); !p.empty()) phones.insert(p);
  }
  for (const auto& u : body["users"]) {
    const std::string email = lower(str(u, "email"));
    const std::string phone = str(u, "phone");
    if (emails.count(email) != 0 || (!phone.empty() && phones.count(phone) != 0)) {
      ++entry.skipped;
      continue;
    }
    char id[40];
    const auto n = ++uuid_counter_;
    std::snprintf(id, sizeof id, "%08llx-%04llx-4%03llx-a%03llx-%012llx",
                  static_cast<unsigned long long>((n * 2654435761u) & 0xffffffffu),
                  static_cast<unsigned long long>(n & 0xffff), static_cast<unsigned long long>(n & 0xfff),
                  static_cast<unsigned long long>((n >> 12) & 0xfff), static_cast<unsigned long long>(n));
    const std::string first = str(u, "first_name"), last = str(u, "last_name");
    json user = {{"id", id},
                 {"email", str(u, "email")},
                 {"avatar_image_url", nullptr},
                 {"first_name", u.contains("first_name") ? json(first) : json(nullptr)},
                 {"last_name", u.contains("last_name") ? json(last) : json(nullptr)},
                 {"external_user_id", str(u, "external_user_id")},
                 {"full_name", first + (first.empty() || last.empty() ? "" : " ") + last},
                 {"phone", u.contains("phone") ? json(phone) : json(nullptr)},
                 {"status", "Active"},
                 {"created_at", now},
                 {"userVacations", json::array()}};
    stored.push_back(user);
    emails.insert(email);
    if (!phone.empty()) phones.insert(phone);
    if (options_.echo_bug) user["external_user_id"] = id;
    created.push_back(std::move(user));
    ++entry.created;
  }
  return json_response(200, created);
}

}  // namespace dirsync::testing
