#include "tests/support/healvi_test_server.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace dirsync::testing::healvi {
namespace {

using nlohmann::json;

ServerResponse json_response(int status, const json& body) {
  ServerResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

ServerResponse message(int status, const std::string& text) { return json_response(status, {{"message", text}}); }

// Laravel's 422: the first message, "(and N more error[s])", and every key.
ServerResponse validation_error(const std::vector<std::pair<std::string, std::string>>& errors) {
  json bag = json::object();
  for (const auto& [key, text] : errors) bag[key].push_back(text);
  std::string first = errors.front().second;
  if (errors.size() > 1) {
    const auto more = errors.size() - 1;
    first += " (and " + std::to_string(more) + " more error" + (more == 1 ? "" : "s") + ")";
  }
  return json_response(422, {{"message", first}, {"errors", bag}});
}

// "/third-party/v1/customers/42/users" → "42"; nullopt for any other route.
std::optional<std::string> customer_segment(const std::string& target) {
  std::string path = target.substr(0, target.find('?'));
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const std::string head = std::string(kPrefix) + "/customers/";
  const std::string tail = "/users";
  if (path.size() <= head.size() + tail.size() || path.compare(0, head.size(), head) != 0 ||
      path.compare(path.size() - tail.size(), tail.size(), tail) != 0) {
    return std::nullopt;
  }
  std::string id = path.substr(head.size(), path.size() - head.size() - tail.size());
  if (id.find('/') != std::string::npos) return std::nullopt;
  return id;
}

bool is_integer(const json& v) { return v.is_number_integer() || v.is_number_unsigned(); }

}  // namespace

HealviTestServer::HealviTestServer(HealviServerOptions options)
    : options_(std::move(options)), http_([this](const ServerRequest& r) { return handle(r); }) {}

HealviTestServer::~HealviTestServer() { http_.stop(); }

void HealviTestServer::start(std::uint16_t port) { http_.start(port); }
void HealviTestServer::stop() { http_.stop(); }
std::uint16_t HealviTestServer::port() const { return http_.port(); }
std::string HealviTestServer::base_url() const { return http_.base_url() + kPrefix; }
std::size_t HealviTestServer::connections_accepted() const { return http_.connections_accepted(); }

void HealviTestServer::set_options(HealviServerOptions options) {
  std::lock_guard lock(mu_);
  options_ = std::move(options);
}

HealviServerOptions HealviTestServer::options() const {
  std::lock_guard lock(mu_);
  return options_;
}

void HealviTestServer::inject(Fault fault, int count, int retry_after_seconds, std::string method) {
  std::lock_guard lock(mu_);
  for (int i = 0; i < count; ++i) faults_.push_back({fault, retry_after_seconds, method});
}

void HealviTestServer::clear_faults() {
  std::lock_guard lock(mu_);
  faults_.clear();
}

std::int64_t HealviTestServer::add_user(const std::string& name, json email, bool admin) {
  std::lock_guard lock(mu_);
  const std::int64_t id = next_user_++;
  users_[id] = {{"id", id},
                {"name", name},
                {"email", std::move(email)},
                {"roles", admin ? json::array({"admin"}) : json::array({"agent"})},
                {"permissions", admin ? json::array() : json::array({"conversations.view"})},
                {"created_at", "2023-01-01T12:00:00Z"},
                {"updated_at", nullptr}};
  return id;
}

std::int64_t HealviTestServer::add_users(int n) {
  std::int64_t last = 0;
  for (int i = 0; i < n; ++i) {
    // The seed's schema types `email` as an integer; real data has strings and nulls. Mix all three.
    const std::int64_t next = [&] {
      std::lock_guard lock(mu_);
      return next_user_;
    }();
    json email = next % 3 == 0 ? json(nullptr) : next % 3 == 1 ? json("user" + std::to_string(next) + "@example.com")
                                                               : json(next);
    last = add_user("User " + std::to_string(next), std::move(email));
  }
  return last;
}

void HealviTestServer::add_customer(std::int64_t customer_id) {
  std::lock_guard lock(mu_);
  customers_[customer_id];
}

void HealviTestServer::attach(std::int64_t customer_id, std::int64_t user_id) {
  std::lock_guard lock(mu_);
  customers_[customer_id].insert(user_id);
}

void HealviTestServer::detach(std::int64_t customer_id, std::int64_t user_id) {
  std::lock_guard lock(mu_);
  customers_[customer_id].erase(user_id);
}

std::set<std::int64_t> HealviTestServer::attached(std::int64_t customer_id) const {
  std::lock_guard lock(mu_);
  const auto it = customers_.find(customer_id);
  return it == customers_.end() ? std::set<std::int64_t>{} : it->second;
}

std::vector<LoggedRequest> HealviTestServer::request_log() const {
  std::lock_guard lock(mu_);
  return log_;
}

std::size_t HealviTestServer::request_count() const {
  std::lock_guard lock(mu_);
  return log_.size();
}

std::size_t HealviTestServer::count(const std::string& method) const {
  std::lock_guard lock(mu_);
  return static_cast<std::size_t>(
      std::count_if(log_.begin(), log_.end(), [&](const LoggedRequest& r) { return r.method == method; }));
}

void HealviTestServer::clear_log() {
  std::lock_guard lock(mu_);
  log_.clear();
}

bool HealviTestServer::is_admin_locked(std::int64_t user_id) const {
  const auto it = users_.find(user_id);
  if (it == users_.end()) return false;
  const auto& roles = it->second["roles"];
  return std::find(roles.begin(), roles.end(), json("admin")) != roles.end();
}

json HealviTestServer::listing_locked(std::int64_t customer_id, bool with_admins) const {
  json data = json::array();
  for (const std::int64_t id : customers_.at(customer_id)) {
    const auto it = users_.find(id);
    if (it == users_.end()) continue;
    if (!with_admins && is_admin_locked(id)) continue;  // "The get route will not show admin users."
    data.push_back(it->second);
  }
  return {{"data", std::move(data)}};
}

ServerResponse HealviTestServer::handle(const ServerRequest& request) {
  std::lock_guard lock(mu_);
  std::optional<FaultEntry> fault;
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (it->method.empty() || it->method == request.method) {
      fault = *it;
      faults_.erase(it);
      break;
    }
  }
  ServerResponse response;
  if (fault && fault->fault == Fault::k429) {
    response = message(429, "Too Many Attempts.");
    response.headers.emplace_back("Retry-After", std::to_string(fault->retry_after));
  } else if (fault && fault->fault == Fault::k500) {
    response = message(500, "Server Error");
  } else if (fault && fault->fault == Fault::kClose) {
    response.close_without_response = true;
  } else {
    response = handle_locked(request);
    if (fault && fault->fault == Fault::kCloseAfterApplying) {
      response = ServerResponse{};
      response.close_without_response = true;
    } else if (fault && fault->fault == Fault::kMalformedJson) {
      response.status = 200;
      response.body = response.body.substr(0, std::max<std::size_t>(1, response.body.size() / 2));
    }
  }
  log_.push_back({request.method, request.target, response.close_without_response ? 0 : response.status,
                  request.body, request.headers});
  return response;
}

ServerResponse HealviTestServer::handle_locked(const ServerRequest& request) {
  const auto segment = customer_segment(request.target);
  if (!segment) return message(404, "Not Found");
  // Laravel's route constraint: a non-integer id matches no route.
  if (segment->empty() || segment->size() > 18 ||
      !std::all_of(segment->begin(), segment->end(), [](unsigned char c) { return std::isdigit(c); })) {
    return message(404, "Not Found");
  }
  const std::string& m = request.method;
  if (m != "GET" && m != "POST") {
    return message(405, "The " + m + " method is not supported for route third-party/v1/customers/" + *segment +
                            "/users. Supported methods: GET, HEAD, POST.");
  }
  if (options_.token.empty() || request.header("authorization") != "Bearer " + options_.token) {
    return message(401, "Unauthenticated.");
  }
  const std::int64_t customer_id = std::stoll(*segment);
  if (!customers_.count(customer_id)) {
    return message(404, "No query results for model [App\\Models\\Customer] " + *segment);
  }
  if (m == "GET") return json_response(200, listing_locked(customer_id, false));
  return sync_locked(customer_id, request);
}

ServerResponse HealviTestServer::sync_locked(std::int64_t customer_id, const ServerRequest& request) {
  // Laravel reads JSON input only when the request says it is JSON.
  json body = json::object();
  if (request.header("content-type").rfind("application/json", 0) == 0) {
    body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return message(400, "Malformed JSON.");  // Symfony's JsonException answer
  }
  const auto list = body.is_object() ? body.find("user_ids") : body.end();
  if (!body.is_object() || list == body.end() || list->is_null()) {
    return validation_error({{"user_ids", "The user_ids field is required."}});
  }
  if (!list->is_array()) return validation_error({{"user_ids", "The user_ids field must be an array."}});
  if (list->empty() && options_.reject_empty_list) {
    return validation_error({{"user_ids", "The user_ids field is required."}});
  }
  std::vector<std::pair<std::string, std::string>> errors;
  std::set<std::int64_t> wanted;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const json& v = (*list)[i];
    const std::string key = "user_ids." + std::to_string(i);
    if (!is_integer(v)) {
      errors.emplace_back(key, "The " + key + " field must be an integer.");
      continue;
    }
    const auto id = v.get<std::int64_t>();
    if (!users_.count(id)) {
      if (options_.unknown_ids == UnknownIds::k422) errors.emplace_back(key, "The selected " + key + " is invalid.");
      continue;  // kIgnore: never attached
    }
    wanted.insert(id);
  }
  if (!errors.empty()) return validation_error(errors);  // nothing written

  auto& set = customers_[customer_id];
  if (options_.sync_keeps_admins) {
    for (const std::int64_t id : set) {
      if (is_admin_locked(id)) wanted.insert(id);
    }
  }
  set = std::move(wanted);  // attach the new, detach the missing
  return json_response(200, listing_locked(customer_id, options_.admins_in_post_response));
}

}  // namespace dirsync::testing::healvi
