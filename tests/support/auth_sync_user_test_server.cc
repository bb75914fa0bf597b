#include "tests/support/auth_sync_user_test_server.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <thread>

namespace dirsync::testing {
namespace {

using nlohmann::json;

// The seed's table, in its order (Pydantic reports errors in field order).
constexpr std::array<const char*, 9> kRequired = {"id",        "password",     "email",
                                                  "organization_id", "role_id", "first_name",
                                                  "last_name", "phone_number", "phone_country_code"};
constexpr std::array<const char*, 4> kOptional = {"image_url", "device_id", "google_id", "google_image_url"};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

ServerResponse json_response(int status, const json& body) {
  ServerResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

ServerResponse detail(int status, const char* message) { return json_response(status, {{"detail", message}}); }

json error_entry(const json& loc, const char* msg, const char* type) {
  return {{"loc", loc}, {"msg", msg}, {"type", type}};
}

// The seed's example error: "Email is required." for `email`.
std::string seed_required_message(const char* field) {
  std::string words = field;
  std::replace(words.begin(), words.end(), '_', ' ');
  words[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(words[0])));
  return words + " is required.";
}

ServerResponse validation_error(json entries) { return json_response(422, {{"detail", std::move(entries)}}); }

ServerResponse internal_error() {
  // Starlette's ServerErrorMiddleware answers an unhandled exception in plain text.
  ServerResponse r;
  r.status = 500;
  r.content_type = "text/plain; charset=utf-8";
  r.body = "Internal Server Error";
  return r;
}

// FastAPI decodes JSON only for application/json and application/*+json (or
// no Content-Type at all); anything else is handed to the model as raw bytes.
bool declared_as_json(const ServerRequest& request) {
  if (!request.has_header("content-type")) return true;
  const std::string type = lower(trim(request.header("content-type").substr(0, request.header("content-type").find(';'))));
  if (type.rfind("application/", 0) != 0) return false;
  const std::string subtype = type.substr(std::string("application/").size());
  return subtype == "json" || (subtype.size() > 5 && subtype.compare(subtype.size() - 5, 5, "+json") == 0);
}

}  // namespace

bool AuthSyncUserTestServer::is_valid_email(const std::string& e) {
  const auto at = e.find('@');
  if (at == std::string::npos || at == 0 || e.find('@', at + 1) != std::string::npos) return false;
  const std::string domain = e.substr(at + 1);
  const auto dot = domain.find('.');
  if (dot == std::string::npos || domain.front() == '.' || domain.back() == '.') return false;
  return std::none_of(e.begin(), e.end(), [](unsigned char c) { return std::isspace(c) || c < 0x20; });
}

AuthSyncUserTestServer::AuthSyncUserTestServer(AuthSyncServerOptions options)
    : options_(std::move(options)), http_([this](const ServerRequest& r) { return handle(r); }) {}

AuthSyncUserTestServer::~AuthSyncUserTestServer() { http_.stop(); }

void AuthSyncUserTestServer::start(std::uint16_t port) { http_.start(port); }
void AuthSyncUserTestServer::stop() { http_.stop(); }
std::uint16_t AuthSyncUserTestServer::port() const { return http_.port(); }
std::string AuthSyncUserTestServer::base_url() const { return http_.base_url(); }
std::size_t AuthSyncUserTestServer::connections_accepted() const { return http_.connections_accepted(); }

void AuthSyncUserTestServer::require_bearer(std::optional<std::string> token) {
  std::lock_guard lock(mu_);
  options_.bearer_token = std::move(token);
}

void AuthSyncUserTestServer::require_header(std::string name, std::optional<std::string> value) {
  std::lock_guard lock(mu_);
  if (value) {
    options_.required_header.emplace(std::move(name), std::move(*value));
  } else {
    options_.required_header.reset();
  }
}

void AuthSyncUserTestServer::require_api_key(std::optional<std::pair<std::string, std::string>> header_and_value) {
  std::lock_guard lock(mu_);
  options_.required_header = std::move(header_and_value);
}

void AuthSyncUserTestServer::set_pydantic_messages(bool on) {
  std::lock_guard lock(mu_);
  options_.pydantic_messages = on;
}

void AuthSyncUserTestServer::set_delay(std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  options_.delay = delay;
}

void AuthSyncUserTestServer::inject(AuthSyncFault fault, int count, int retry_after_seconds) {
  std::lock_guard lock(mu_);
  for (int i = 0; i < count; ++i) faults_.push_back({fault, retry_after_seconds});
}

void AuthSyncUserTestServer::clear_faults() {
  std::lock_guard lock(mu_);
  faults_.clear();
}

void AuthSyncUserTestServer::add_user(json user) {
  std::lock_guard lock(mu_);
  const std::string id = user.at("id").get<std::string>();
  users_[id] = std::move(user);
}

bool AuthSyncUserTestServer::remove_user(const std::string& id) {
  std::lock_guard lock(mu_);
  return users_.erase(id) > 0;
}

json AuthSyncUserTestServer::users() const {
  std::lock_guard lock(mu_);
  json out = json::object();
  for (const auto& [id, u] : users_) out[id] = u;
  return out;
}

json AuthSyncUserTestServer::user(const std::string& id) const {
  std::lock_guard lock(mu_);
  const auto it = users_.find(id);
  return it == users_.end() ? json(nullptr) : it->second;
}

std::size_t AuthSyncUserTestServer::user_count() const {
  std::lock_guard lock(mu_);
  return users_.size();
}

std::vector<AuthSyncLoggedRequest> AuthSyncUserTestServer::request_log() const {
  std::lock_guard lock(mu_);
  return log_;
}

std::size_t AuthSyncUserTestServer::request_count() const {
  std::lock_guard lock(mu_);
  return log_.size();
}

std::size_t AuthSyncUserTestServer::max_concurrent() const {
  std::lock_guard lock(mu_);
  return max_concurrent_;
}

std::size_t AuthSyncUserTestServer::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_;
}

void AuthSyncUserTestServer::reset_max_concurrent() {
  std::lock_guard lock(mu_);
  max_concurrent_ = in_flight_;
}

void AuthSyncUserTestServer::clear_log() {
  std::lock_guard lock(mu_);
  log_.clear();
  max_concurrent_ = in_flight_;
}

ServerResponse AuthSyncUserTestServer::handle(const ServerRequest& request) {
  std::optional<FaultEntry> fault;
  std::chrono::milliseconds delay{0};
  {
    std::lock_guard lock(mu_);
    ++in_flight_;
    max_concurrent_ = std::max(max_concurrent_, in_flight_);
    if (!faults_.empty()) {
      fault = faults_.front();
      faults_.pop_front();
    }
    delay = options_.delay;
  }
  // Leaves the in-flight count on every way out, after the state lock below is released.
  struct Leave {
    AuthSyncUserTestServer& self;
    ~Leave() {
      std::lock_guard lock(self.mu_);
      --self.in_flight_;
    }
  } leave{*this};

  // Outside the lock: this is what lets concurrent requests overlap.
  if (delay > std::chrono::milliseconds::zero()) std::this_thread::sleep_for(delay);

  std::lock_guard lock(mu_);
  AuthSyncLoggedRequest entry{request.method, request.target, 0, request.body, request.headers, false, false};
  ServerResponse response;
  if (fault && fault->fault == AuthSyncFault::k429) {
    response = detail(429, "Too Many Requests");
    response.headers.emplace_back("Retry-After", std::to_string(fault->retry_after));
  } else if (fault && fault->fault == AuthSyncFault::k404) {
    response = detail(404, "Not Found");
  } else if (fault && fault->fault == AuthSyncFault::k400) {
    response = detail(400, "Bad Request");
  } else if (fault && fault->fault == AuthSyncFault::k500) {
    response = internal_error();
  } else if (fault && fault->fault == AuthSyncFault::kClose) {
    response.close_without_response = true;
  } else {
    response = handle_locked(request, entry);
    if (fault && fault->fault == AuthSyncFault::kCloseAfterProcessing) {
      response = ServerResponse{};
      response.close_without_response = true;
    } else if (fault && fault->fault == AuthSyncFault::k500AfterProcessing) {
      response = internal_error();
    } else if (fault && fault->fault == AuthSyncFault::kMalformedJson) {
      response.status = 201;
      response.content_type = "application/json";
      const std::string ok = kSuccessBody;
      response.body = ok.substr(0, ok.size() / 2);  // an unterminated JSON string
    }
  }
  entry.status = response.close_without_response ? 0 : response.status;
  log_.push_back(std::move(entry));
  return response;
}

ServerResponse AuthSyncUserTestServer::handle_locked(const ServerRequest& request, AuthSyncLoggedRequest& entry) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  if (path != kPath) return detail(404, "Not Found");
  if (request.method != "POST") {
    ServerResponse r = detail(405, "Method Not Allowed");
    r.headers.emplace_back("Allow", "POST");
    return r;
  }

  if (options_.bearer_token) {
    const std::string auth = request.header("authorization");
    const auto space = auth.find(' ');
    const bool ok = request.has_header("authorization") && space != std::string::npos &&
                    lower(auth.substr(0, space)) == "bearer" && trim(auth.substr(space + 1)) == *options_.bearer_token;
    if (!ok) {
      ServerResponse r = detail(401, "Not authenticated");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return r;
    }
  }
  if (options_.required_header) {
    const auto& [name, value] = *options_.required_header;
    if (!request.has_header(name) || request.header(name) != value) return detail(401, "Not authenticated");
  }

  if (request.body.empty()) return validation_error(json::array({error_entry({"body"}, "Field required", "missing")}));
  json body;  // stays null (not an object) for a body read as raw bytes
  if (declared_as_json(request)) {
    body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) {
      return validation_error(json::array({error_entry({"body"}, "JSON decode error", "json_invalid")}));
    }
  }
  if (!body.is_object()) {
    return validation_error(json::array({error_entry(
        {"body"}, "Input should be a valid dictionary or object to extract fields from", "model_attributes_type")}));
  }

  json errors = json::array();
  json stored = json::object();
  for (const char* field : kRequired) {
    const auto it = body.find(field);
    if (!options_.pydantic_messages &&
        (it == body.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty()))) {
      errors.push_back(error_entry({"query", field}, seed_required_message(field).c_str(), "value_error"));
    } else if (it == body.end()) {
      errors.push_back(error_entry({"body", field}, "Field required", "missing"));
    } else if (!it->is_string()) {
      errors.push_back(error_entry({"body", field}, "Input should be a valid string", "string_type"));
    } else if (std::string(field) == "email" && !is_valid_email(it->get<std::string>())) {
      errors.push_back(error_entry({"body", field}, "value is not a valid email address", "value_error"));
    } else {
      stored[field] = *it;
    }
  }
  for (const char* field : kOptional) {
    const auto it = body.find(field);
    if (it == body.end() || it->is_null()) {
      stored[field] = nullptr;
    } else if (!it->is_string()) {
      errors.push_back(error_entry({"body", field}, "Input should be a valid string", "string_type"));
    } else {
      stored[field] = *it;
    }
  }
  if (!errors.empty()) return validation_error(std::move(errors));

  const std::string id = stored["id"].get<std::string>();
  const bool existed = users_.count(id) > 0;
  entry.created = !existed;
  entry.updated = existed;
  users_[id] = std::move(stored);
  ServerResponse r;
  r.status = 201;
  r.body = kSuccessBody;
  return r;
}

}  // namespace dirsync::testing
