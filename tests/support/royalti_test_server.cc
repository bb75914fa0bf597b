#include "tests/support/royalti_test_server.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace dirsync::testing {
namespace {

using nlohmann::json;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

ServerResponse json_response(int status, const json& body) {
  ServerResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

// NestJS's error bodies.
ServerResponse nest_error(int status, const json& message, const char* error = nullptr) {
  json body = {{"statusCode", status}, {"message", message}};
  if (error) body["error"] = error;
  return json_response(status, body);
}

// The usual JavaScript check: something@something.something, no white space,
// one '@'.
bool valid_email(const std::string& e) {
  const auto at = e.find('@');
  if (at == std::string::npos || at == 0 || e.find('@', at + 1) != std::string::npos) return false;
  const std::string domain = e.substr(at + 1);
  const auto dot = domain.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == domain.size()) return false;
  return std::none_of(e.begin(), e.end(), [](unsigned char c) { return std::isspace(c) || c < 0x20; });
}

const std::set<std::string>& optional_fields() {
  static const std::set<std::string> s = {"nickName", "userType", "ipi", "role", "phone", "country"};
  return s;
}

}  // namespace

RoyaltiTestServer::RoyaltiTestServer(RoyaltiServerOptions options)
    : options_(std::move(options)), http_([this](const ServerRequest& r) { return handle(r); }) {}

RoyaltiTestServer::~RoyaltiTestServer() { http_.stop(); }

void RoyaltiTestServer::start(std::uint16_t port) { http_.start(port); }
void RoyaltiTestServer::stop() { http_.stop(); }
std::uint16_t RoyaltiTestServer::port() const { return http_.port(); }
std::string RoyaltiTestServer::base_url() const { return http_.base_url(); }
std::size_t RoyaltiTestServer::connections_accepted() const { return http_.connections_accepted(); }

void RoyaltiTestServer::set_token(std::string token) {
  std::lock_guard lock(mu_);
  options_.token = std::move(token);
}

void RoyaltiTestServer::set_processed_count(ProcessedCount mode) {
  std::lock_guard lock(mu_);
  options_.processed_count = mode;
}

void RoyaltiTestServer::set_reverse_results(bool reverse) {
  std::lock_guard lock(mu_);
  options_.reverse_results = reverse;
}

void RoyaltiTestServer::set_reject_unknown_fields(bool reject) {
  std::lock_guard lock(mu_);
  options_.reject_unknown_fields = reject;
}

void RoyaltiTestServer::inject(RoyaltiFault fault, int count, int retry_after_seconds) {
  std::lock_guard lock(mu_);
  for (int i = 0; i < count; ++i) faults_.push_back({fault, retry_after_seconds});
}

void RoyaltiTestServer::clear_faults() {
  std::lock_guard lock(mu_);
  faults_.clear();
}

void RoyaltiTestServer::fail_user(const std::string& email, std::string message, bool created_anyway) {
  std::lock_guard lock(mu_);
  failures_[lower(email)] = Failure{std::move(message), created_anyway};
}

void RoyaltiTestServer::add_user(json user) {
  std::lock_guard lock(mu_);
  users_.push_back(std::move(user));
}

bool RoyaltiTestServer::remove_user(const std::string& email) {
  std::lock_guard lock(mu_);
  const std::string e = lower(email);
  const auto it = std::find_if(users_.begin(), users_.end(), [&](const json& u) {
    return u.contains("email") && u["email"].is_string() && lower(u["email"].get<std::string>()) == e;
  });
  if (it == users_.end()) return false;
  users_.erase(it);
  return true;
}

json RoyaltiTestServer::users() const {
  std::lock_guard lock(mu_);
  return json(users_);
}

json RoyaltiTestServer::find_user_by_email(const std::string& email) const {
  std::lock_guard lock(mu_);
  for (const auto& u : users_) {
    if (u.contains("email") && u["email"].is_string() && lower(u["email"].get<std::string>()) == lower(email)) return u;
  }
  return nullptr;
}

std::vector<RoyaltiInvitation> RoyaltiTestServer::invitations() const {
  std::lock_guard lock(mu_);
  return invitations_;
}

std::vector<RoyaltiLoggedRequest> RoyaltiTestServer::request_log() const {
  std::lock_guard lock(mu_);
  return log_;
}

std::size_t RoyaltiTestServer::request_count() const {
  std::lock_guard lock(mu_);
  return log_.size();
}

void RoyaltiTestServer::clear_log() {
  std::lock_guard lock(mu_);
  log_.clear();
}

bool RoyaltiTestServer::has_email_locked(const std::string& email) const {
  const std::string e = lower(email);
  return std::any_of(users_.begin(), users_.end(), [&](const json& u) {
    return u.contains("email") && u["email"].is_string() && lower(u["email"].get<std::string>()) == e;
  });
}

ServerResponse RoyaltiTestServer::handle(const ServerRequest& request) {
  std::lock_guard lock(mu_);
  std::optional<FaultEntry> fault;
  if (!faults_.empty()) {
    fault = faults_.front();
    faults_.pop_front();
  }
  ServerResponse response;
  if (fault && fault->fault == RoyaltiFault::k429) {
    response = nest_error(429, "ThrottlerException: Too Many Requests");
    response.headers.emplace_back("Retry-After", std::to_string(fault->retry_after));
  } else if (fault && fault->fault == RoyaltiFault::k503) {
    response = nest_error(503, "Service Unavailable");
    response.headers.emplace_back("Retry-After", std::to_string(fault->retry_after));
  } else if (fault && fault->fault == RoyaltiFault::k500) {
    response = nest_error(500, "Internal server error");
  } else if (fault && fault->fault == RoyaltiFault::kClose) {
    response.close_without_response = true;
  } else {
    response = handle_locked(request);
    if (fault && fault->fault == RoyaltiFault::kCloseAfterApplying) {
      response = ServerResponse{};
      response.close_without_response = true;
    } else if (fault && fault->fault == RoyaltiFault::k500AfterApplying) {
      response = nest_error(500, "Internal server error");
    } else if (fault && fault->fault == RoyaltiFault::kMalformedJson) {
      response.status = 201;
      response.body = response.body.substr(0, std::max<std::size_t>(1, response.body.size() / 2));
    }
  }
  log_.push_back({request.method, request.target, response.close_without_response ? 0 : response.status,
                  request.body, request.headers});
  return response;
}

ServerResponse RoyaltiTestServer::handle_locked(const ServerRequest& request) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  if (path != "/user/bulk" || request.method != "POST") {
    return nest_error(404, "Cannot " + request.method + " " + path, "Not Found");
  }
  if (options_.token.empty() || request.header("authorization") != "Bearer " + options_.token) {
    return nest_error(401, "Unauthorized");
  }
  // Express parses a JSON body only when it is declared as JSON.
  json body = json::object();
  if (lower(request.header("content-type")).rfind("application/json", 0) == 0) {
    body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return nest_error(400, "Unexpected token in JSON", "Bad Request");
  }
  return bulk_locked(body);
}

ServerResponse RoyaltiTestServer::bulk_locked(const json& body) {
  // The DTO validation: any failure rejects the whole request, nothing is processed.
  json problems = json::array();
  if (!body.is_object() || !body.contains("users") || !body["users"].is_array()) {
    problems.push_back("users must be an array");
  } else {
    const json& users = body["users"];
    for (std::size_t i = 0; i < users.size(); ++i) {
      const std::string prefix = "users." + std::to_string(i) + ".";
      if (!users[i].is_object()) {
        problems.push_back("users." + std::to_string(i) + " must be an object");
        continue;
      }
      for (const char* required : {"firstName", "lastName", "email"}) {
        if (!users[i].contains(required) || !users[i][required].is_string()) {
          problems.push_back(prefix + required + " must be a string");
        }
      }
      for (const auto& [field, value] : users[i].items()) {
        if (field == "firstName" || field == "lastName" || field == "email") continue;
        if (optional_fields().count(field)) {
          if (!value.is_null() && !value.is_string()) problems.push_back(prefix + field + " must be a string");
        } else if (options_.reject_unknown_fields) {
          problems.push_back(prefix + "property " + field + " should not exist");
        }
      }
    }
  }
  if (body.is_object()) {
    if (body.contains("sendEmail") && !body["sendEmail"].is_boolean()) {
      problems.push_back("sendEmail must be a boolean value");
    }
    for (const char* field : {"redirect_url", "message"}) {
      if (body.contains(field) && !body[field].is_string()) problems.push_back(std::string(field) + " must be a string");
    }
  }
  if (!problems.empty()) return nest_error(400, problems, "Bad Request");

  // Royalti's default: an omitted sendEmail invites everyone created.
  const bool send_email = body.value("sendEmail", true);
  const std::string redirect_url = body.value("redirect_url", std::string());
  const std::string invite_message = body.value("message", std::string());

  std::vector<std::string> created;
  std::vector<std::string> errors;
  std::size_t associated = 0;
  for (const auto& user : body["users"]) {
    const std::string name = user["firstName"].get<std::string>() + " " + user["lastName"].get<std::string>();
    const std::string email = user["email"].get<std::string>();
    if (!valid_email(email)) {
      errors.push_back("Invalid email format for " + name);
      continue;
    }
    if (has_email_locked(email)) {
      errors.push_back("User " + name + " already associated with workspace!");
      ++associated;
      continue;
    }
    if (const auto f = failures_.find(lower(email)); f != failures_.end()) {
      errors.push_back(f->second.message);
      if (f->second.created_anyway) users_.push_back(user);
      continue;
    }
    users_.push_back(user);
    created.push_back(name);
    if (send_email) invitations_.push_back({email, name, redirect_url, invite_message});
  }
  if (options_.reverse_results) {
    std::reverse(created.begin(), created.end());
    std::reverse(errors.begin(), errors.end());
  }
  std::size_t processed = 0;
  switch (options_.processed_count) {
    case ProcessedCount::kSeed: processed = created.size() + associated; break;
    case ProcessedCount::kSent: processed = body["users"].size(); break;
    case ProcessedCount::kZero: processed = 0; break;
  }
  return json_response(201, {{"message", "Done."},
                             {"createdUsers", created},
                             {"processedCount", processed},
                             {"errors", errors}});
}

}  // namespace dirsync::testing
