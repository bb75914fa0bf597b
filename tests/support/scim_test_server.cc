#include "tests/support/scim_test_server.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <utility>

#include "tests/support/query.h"

namespace dirsync::testing {
namespace {

using nlohmann::json;

constexpr const char* kListResponse = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
constexpr const char* kError = "urn:ietf:params:scim:api:messages:2.0:Error";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

ServerResponse scim_json(int status, const json& body) {
  ServerResponse r;
  r.status = status;
  r.content_type = "application/scim+json";
  r.body = body.dump();
  return r;
}

// RFC 7644 §3.12.
ServerResponse scim_error(int status, const std::string& detail, const std::string& scim_type = "") {
  json body = {{"schemas", {kError}}, {"status", std::to_string(status)}, {"detail", detail}};
  if (!scim_type.empty()) body["scimType"] = scim_type;
  return scim_json(status, body);
}

std::optional<long long> parse_integer(const std::string& text) {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

const json* member(const json& object, const std::string& name) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (lower(it.key()) == lower(name)) return &it.value();
  }
  return nullptr;
}

// `ATTR eq VALUE`; nullopt when the filter is anything else.
struct EqFilter {
  std::string attribute;
  json value;
};

std::optional<EqFilter> parse_filter(const std::string& filter) {
  std::size_t i = 0;
  auto skip = [&] {
    while (i < filter.size() && filter[i] == ' ') ++i;
  };
  skip();
  const std::size_t name_start = i;
  while (i < filter.size() && (std::isalnum(static_cast<unsigned char>(filter[i])) || filter[i] == '_')) ++i;
  EqFilter f{filter.substr(name_start, i - name_start), nullptr};
  if (f.attribute.empty() || i >= filter.size() || filter[i] != ' ') return std::nullopt;
  skip();
  if (lower(filter.substr(i, 3)) != "eq ") return std::nullopt;
  i += 3;
  skip();
  std::string token = filter.substr(i);
  while (!token.empty() && token.back() == ' ') token.pop_back();
  const std::string word = lower(token);
  if (word == "true" || word == "false") {
    f.value = word == "true";
    return f;
  }
  f.value = json::parse(token, nullptr, /*allow_exceptions=*/false);
  if (f.value.is_discarded() || !(f.value.is_string() || f.value.is_number())) return std::nullopt;
  return f;
}

bool matches(const json& user, const EqFilter& f) {
  const json* v = member(user, f.attribute);
  if (!v) return false;
  if (f.value.is_string()) return v->is_string() && lower(v->get<std::string>()) == lower(f.value.get<std::string>());
  return *v == f.value;
}

}  // namespace

ScimTestServer::ScimTestServer(ScimServerOptions options)
    : options_(std::move(options)), http_([this](const ServerRequest& r) { return handle(r); }) {}

ScimTestServer::~ScimTestServer() { http_.stop(); }

void ScimTestServer::start(std::uint16_t port) { http_.start(port); }
void ScimTestServer::stop() { http_.stop(); }

std::string ScimTestServer::base_url() const {
  std::lock_guard lock(mu_);
  return http_.base_url() + options_.base_path;
}

void ScimTestServer::set_options(ScimServerOptions options) {
  std::lock_guard lock(mu_);
  options_ = std::move(options);
}

void ScimTestServer::add_user(json user) {
  std::lock_guard lock(mu_);
  users_.push_back(std::move(user));
}

bool ScimTestServer::remove_user(const std::string& id) {
  std::lock_guard lock(mu_);
  const auto it = std::find_if(users_.begin(), users_.end(), [&](const json& u) { return u.value("id", "") == id; });
  if (it == users_.end()) return false;
  users_.erase(it);
  return true;
}

std::vector<json> ScimTestServer::users() const {
  std::lock_guard lock(mu_);
  return users_;
}

void ScimTestServer::fail_request(std::size_t n, ScimFault fault, std::size_t times) {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < times; ++i) faults_[n + i] = fault;
}

void ScimTestServer::before_request(std::size_t n, Change change) {
  std::lock_guard lock(mu_);
  changes_.emplace(n, std::move(change));
}

std::vector<ScimLoggedRequest> ScimTestServer::request_log() const {
  std::lock_guard lock(mu_);
  return log_;
}

std::size_t ScimTestServer::request_count() const {
  std::lock_guard lock(mu_);
  return numbered_;
}

ServerResponse ScimTestServer::handle(const ServerRequest& request) {
  std::lock_guard lock(mu_);
  ScimLoggedRequest entry;
  entry.method = request.method;
  entry.target = request.target;
  entry.headers = request.headers;
  ServerResponse response = handle_locked(request, entry);
  entry.status = response.close_without_response ? 0 : response.status;
  log_.push_back(std::move(entry));
  return response;
}

ServerResponse ScimTestServer::handle_locked(const ServerRequest& request, ScimLoggedRequest& entry) {
  const std::size_t q = request.target.find('?');
  const std::string path = request.target.substr(0, q);
  entry.query =
      parse_query(q == std::string::npos ? std::string_view() : std::string_view(request.target).substr(q + 1));
  const std::string users_path = options_.base_path + "/Users";
  if (path != users_path && !path.starts_with(users_path + "/")) {
    return scim_error(404, "Resource " + path + " not found");
  }

  const std::size_t n = ++numbered_;
  for (auto [it, end] = changes_.equal_range(n); it != end; ++it) it->second(users_);
  std::optional<ScimFault> fault;
  if (const auto f = faults_.find(n); f != faults_.end()) fault = f->second;
  if (fault == ScimFault::kDrop) {
    ServerResponse r;
    r.close_without_response = true;
    return r;
  }
  if (fault == ScimFault::k500) return scim_error(500, "Internal error while listing users");
  if (fault == ScimFault::k503) {
    ServerResponse r = scim_error(503, "Service temporarily unavailable");
    r.headers.emplace_back("Retry-After", "0");
    return r;
  }

  if (!options_.token.empty()) {
    const std::string auth = request.header("authorization");
    if (auth.size() < 7 || lower(auth.substr(0, 7)) != "bearer " || auth.substr(7) != options_.token) {
      ServerResponse r = scim_error(401, "Authorization failure. The authorization header is invalid or missing.");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"scim\"");
      return r;
    }
  }
  if (request.method != "GET") return scim_error(501, "Only GET is implemented by this test server");

  if (path != users_path) {
    const std::string id = path.substr(users_path.size() + 1);
    for (const auto& u : users_) {
      if (u.value("id", "") == id) return scim_json(200, u);
    }
    return scim_error(404, "Resource " + id + " not found");
  }

  ServerResponse r = list_locked(entry.query);
  if (fault == ScimFault::kMalformedJson) r.body.resize(r.body.size() / 2);
  return r;
}

ServerResponse ScimTestServer::list_locked(const std::map<std::string, std::string>& query) {
  long long start = 1;
  long long count = static_cast<long long>(options_.max_page_size);
  if (const auto it = query.find("startIndex"); it != query.end()) {
    const auto v = parse_integer(it->second);
    if (!v) return scim_error(400, "startIndex must be an integer", "invalidValue");
    start = std::max(*v, 1LL);
  }
  if (const auto it = query.find("count"); it != query.end()) {
    const auto v = parse_integer(it->second);
    if (!v) return scim_error(400, "count must be an integer", "invalidValue");
    count = std::clamp(*v, 0LL, static_cast<long long>(options_.max_page_size));
  }

  std::vector<const json*> selected;
  if (const auto it = query.find("filter"); it != query.end()) {
    const auto filter = parse_filter(it->second);
    if (!filter) return scim_error(400, "The specified filter syntax was invalid: " + it->second, "invalidFilter");
    for (const auto& u : users_) {
      if (matches(u, *filter)) selected.push_back(&u);
    }
  } else {
    for (const auto& u : users_) selected.push_back(&u);
  }

  const std::size_t total = selected.size();
  const std::size_t from = options_.ignore_start_index ? 1 : static_cast<std::size_t>(start);
  std::size_t end = std::min(total + 1, from + static_cast<std::size_t>(count));
  if (options_.listing_cap != 0) end = std::min(end, std::max(from, options_.listing_cap));
  json resources = json::array();
  for (std::size_t i = from; i < end; ++i) resources.push_back(*selected[i - 1]);

  json body = {{"schemas", {kListResponse}}, {"totalResults", total}, {"itemsPerPage", resources.size()}};
  if (options_.echo_start_index) body["startIndex"] = static_cast<long long>(from) + options_.start_index_skew;
  if (!resources.empty() || !options_.omit_empty_resources) body["Resources"] = std::move(resources);
  return scim_json(200, body);
}

}  // namespace dirsync::testing
