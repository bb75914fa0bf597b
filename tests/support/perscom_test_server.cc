#include "tests/support/perscom_test_server.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>

#include "tests/support/query.h"

namespace dirsync::testing {
namespace {

using nlohmann::json;
using Errors = std::vector<std::pair<std::string, std::string>>;  // validation key, message

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string now_iso() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1'000'000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%06lldZ", buf, static_cast<long long>(micros));
  return out;
}

ServerResponse json_response(int status, const json& body) {
  ServerResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

ServerResponse message(int status, const std::string& text) { return json_response(status, {{"message", text}}); }

bool valid_email(const std::string& e) {
  const auto at = e.find('@');
  if (at == std::string::npos || at == 0 || e.find('@', at + 1) != std::string::npos) return false;
  const std::string domain = e.substr(at + 1);
  if (domain.empty() || domain.front() == '.' || domain.back() == '.' || domain.find('.') == std::string::npos) {
    return false;
  }
  return std::none_of(e.begin(), e.end(), [](unsigned char c) { return std::isspace(c) || c < 0x20; });
}

// Laravel's `integer` rule accepts integers and integer strings.
bool is_integer(const json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return true;
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  std::size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
  return i < s.size() && std::all_of(s.begin() + static_cast<std::ptrdiff_t>(i), s.end(),
                                     [](unsigned char c) { return std::isdigit(c); });
}

// Laravel's `boolean` rule: true, false, 1, 0, "1", "0".
bool is_boolean(const json& v) {
  if (v.is_boolean()) return true;
  if (v.is_number_integer() || v.is_number_unsigned()) return v == 0 || v == 1;
  if (v.is_string()) return v == "0" || v == "1";
  return false;
}

const std::set<std::string>& string_fields() {
  static const std::set<std::string> s = {"phone_number", "notes"};
  return s;
}
const std::set<std::string>& id_fields() {
  static const std::set<std::string> s = {"position_id", "rank_id", "specialty_id", "status_id", "unit_id"};
  return s;
}
const std::set<std::string>& date_fields() {
  static const std::set<std::string> s = {"email_verified_at", "notes_updated_at", "last_seen_at"};
  return s;
}

// Rules for one resource, except email uniqueness (needs the store and the batch).
void validate_fields(const std::string& prefix, const json& r, bool creating, Errors& errs) {
  auto err = [&](const std::string& field, const std::string& text) {
    const std::string key = prefix + "." + field;
    errs.emplace_back(key, "The " + key + " " + text);
  };
  for (const char* required : {"name", "email"}) {
    const auto it = r.find(required);
    const bool present = it != r.end();
    if (!present && !creating) continue;  // PATCH: `sometimes`
    if (!present || it->is_null() || (it->is_string() && it->get<std::string>().empty())) {
      err(required, "field is required.");
      continue;
    }
    if (!it->is_string()) {
      err(required, "field must be a string.");
      continue;
    }
    const auto& s = it->get_ref<const std::string&>();
    if (std::string(required) == "name" && s.size() > 255) {
      err(required, "field must not be greater than 255 characters.");
    }
    if (std::string(required) == "email" && !valid_email(s)) err(required, "field must be a valid email address.");
  }
  for (const auto& [field, value] : r.items()) {
    if (field == "name" || field == "email") continue;
    if (string_fields().count(field)) {
      if (!value.is_null() && !value.is_string()) err(field, "field must be a string.");
    } else if (id_fields().count(field)) {
      if (!value.is_null() && !is_integer(value)) err(field, "field must be an integer.");
    } else if (date_fields().count(field)) {
      if (!value.is_null() && (!value.is_string() || value.get<std::string>().empty())) {
        err(field, "field must be a valid date.");
      }
    } else if (field == "approved") {
      if (!is_boolean(value)) err(field, "field must be true or false.");
    } else {
      err(field, "field is prohibited.");
    }
  }
}

json normalised(const std::string& field, const json& value) {
  if (field == "approved" && !value.is_boolean()) return value == 1 || value == "1";
  if (id_fields().count(field) && value.is_string()) return std::stoll(value.get<std::string>());
  return value;
}

json new_user(std::int64_t id) {
  const std::string now = now_iso();
  return {{"id", id},
          {"name", nullptr},
          {"email", nullptr},
          {"email_verified_at", nullptr},
          {"phone_number", nullptr},
          {"position_id", nullptr},
          {"rank_id", nullptr},
          {"specialty_id", nullptr},
          {"status_id", nullptr},
          {"unit_id", nullptr},
          {"approved", false},
          {"online", false},
          {"notes", nullptr},
          {"notes_updated_at", nullptr},
          {"profile_photo_url", nullptr},
          {"cover_photo_url", nullptr},
          {"discord_user_id", nullptr},
          {"timezone", nullptr},
          {"last_seen_at", nullptr},
          {"last_assignment_change_date", nullptr},
          {"last_rank_change_date", nullptr},
          {"label", nullptr},
          {"created_at", now},
          {"updated_at", now}};
}

// "/v2/users/batch?x=1" → {"v2", "users/batch"}.
std::pair<std::string, std::string> split_route(const std::string& target) {
  std::string path = target.substr(0, target.find('?'));
  if (path.empty() || path[0] != '/') return {};
  const auto slash = path.find('/', 1);
  if (slash == std::string::npos) return {path.substr(1), ""};
  std::string rest = path.substr(slash + 1);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  return {path.substr(1, slash - 1), rest};
}

// A stored email as search compares it: lower-cased, a non-string as its JSON.
std::string email_key(const json& email) { return lower(email.is_string() ? email.get<std::string>() : email.dump()); }

// A created user's JSON text without building its object: new_user()'s fields
// in the order dump() writes them (sorted), the resource's values over the
// defaults, `now_json` for the timestamps. Empty when the resource has a field
// new_user() does not (never after validation; the caller then takes the slow path).
std::string render_created(std::int64_t id, const json& resource, const std::string& now_json) {
  struct Field {
    std::string prefix;    // "\"name\":" (with the comma before every field but the first)
    std::string key;
    std::string fallback;  // the default's JSON ("" for id, created_at, updated_at)
  };
  // Taken from new_user() itself, so that the two cannot drift apart.
  static const std::vector<Field> fields = [] {
    std::vector<Field> out;
    const json defaults = new_user(0);
    for (const auto& [key, value] : defaults.items()) {
      const bool computed = key == "id" || key == "created_at" || key == "updated_at";
      out.push_back({(out.empty() ? "" : ",") + json(key).dump() + ":", key, computed ? "" : value.dump()});
    }
    return out;
  }();
  std::string out;
  out.reserve(768);
  out += '{';
  // Both sides are sorted by key: one merge walk, no lookups.
  auto it = resource.items().begin();
  const auto end = resource.items().end();
  for (const auto& f : fields) {
    out += f.prefix;
    if (it != end && it.key() == f.key) {
      out += normalised(f.key, it.value()).dump();
      ++it;
    } else if (f.key == "id") {
      out += std::to_string(id);
    } else if (f.fallback.empty()) {
      out += now_json;
    } else {
      out += f.fallback;
    }
  }
  if (it != end) return {};
  out += '}';
  return out;
}

// {"data":[users...]} from the users' stored texts, as json_response() would write it.
std::string data_array(const std::vector<const std::string*>& users) {
  std::size_t size = 2;
  for (const auto* u : users) size += u->size() + 1;
  std::string out;
  out.reserve(size + 10);
  out += '[';
  for (std::size_t i = 0; i < users.size(); ++i) {
    if (i) out += ',';
    out += *users[i];
  }
  out += ']';
  return out;
}

ServerResponse data_response(const std::vector<const std::string*>& users) {
  ServerResponse r;
  r.status = 200;
  r.body = "{\"data\":" + data_array(users) + "}";
  return r;
}

}  // namespace

PerscomTestServer::PerscomTestServer(PerscomServerOptions options)
    : options_(std::move(options)), http_([this](const ServerRequest& r) { return handle(r); }) {}

PerscomTestServer::~PerscomTestServer() { http_.stop(); }

void PerscomTestServer::start(std::uint16_t port) { http_.start(port); }
void PerscomTestServer::stop() { http_.stop(); }
std::uint16_t PerscomTestServer::port() const { return http_.port(); }
std::string PerscomTestServer::base_url() const { return http_.base_url(); }
std::size_t PerscomTestServer::connections_accepted() const { return http_.connections_accepted(); }

void PerscomTestServer::set_token(std::string token) {
  std::lock_guard lock(mu_);
  options_.token = std::move(token);
}

void PerscomTestServer::set_error_style(ErrorStyle style) {
  std::lock_guard lock(mu_);
  options_.error_style = style;
}

void PerscomTestServer::require_perscom_id(std::optional<std::string> id) {
  std::lock_guard lock(mu_);
  options_.required_perscom_id = std::move(id);
}

void PerscomTestServer::inject(Fault fault, int count, int retry_after_seconds) {
  std::lock_guard lock(mu_);
  for (int i = 0; i < count; ++i) faults_.push_back({fault, retry_after_seconds});
}

void PerscomTestServer::clear_faults() {
  std::lock_guard lock(mu_);
  faults_.clear();
}

const std::string* PerscomTestServer::stored_locked(std::int64_t id) const {
  if (id < 1 || static_cast<std::uint64_t>(id) > users_.size()) return nullptr;
  const std::string& text = users_[static_cast<std::size_t>(id - 1)];
  return text.empty() ? nullptr : &text;
}

void PerscomTestServer::index_email_locked(std::int64_t id, const json& email, bool add) {
  std::string key = email_key(email);
  if (add) {
    by_email_.emplace(std::move(key), EmailRef{id, email.is_string()});
    return;
  }
  const auto [first, last] = by_email_.equal_range(key);
  for (auto it = first; it != last; ++it) {
    if (it->second.id == id) {
      by_email_.erase(it);
      return;
    }
  }
}

void PerscomTestServer::store_locked(std::int64_t id, std::string text, const json& email) {
  const auto slot = static_cast<std::size_t>(id - 1);
  if (users_.size() <= slot) users_.resize(slot + 1);
  if (users_[slot].empty()) ++user_count_;
  users_[slot] = std::move(text);
  index_email_locked(id, email, /*add=*/true);
}

void PerscomTestServer::unstore_locked(std::int64_t id, const json& email) {
  index_email_locked(id, email, /*add=*/false);
  std::string().swap(users_[static_cast<std::size_t>(id - 1)]);
  --user_count_;
}

std::int64_t PerscomTestServer::add_user(json user) {
  std::lock_guard lock(mu_);
  const std::int64_t id = next_id_++;
  json stored = new_user(id);
  for (const auto& [k, v] : user.items()) {
    if (k != "id") stored[k] = v;
  }
  store_locked(id, stored.dump(), stored["email"]);
  return id;
}

json PerscomTestServer::users() const {
  json out = json::array();
  for_each_user([&](const json& u) { out.push_back(u); });
  return out;
}

void PerscomTestServer::for_each_user(const std::function<void(const json&)>& visit) const {
  std::lock_guard lock(mu_);
  for (const auto& text : users_) {
    if (!text.empty()) visit(json::parse(text));
  }
}

std::size_t PerscomTestServer::user_count() const {
  std::lock_guard lock(mu_);
  return user_count_;
}

json PerscomTestServer::find_user_by_email(const std::string& email) const {
  std::lock_guard lock(mu_);
  const auto [first, last] = by_email_.equal_range(lower(email));
  std::optional<std::int64_t> id;  // the first stored, as a scan in id order finds it
  for (auto it = first; it != last; ++it) {
    if (it->second.is_string && (!id || it->second.id < *id)) id = it->second.id;
  }
  return id ? json::parse(*stored_locked(*id)) : json(nullptr);
}

std::vector<LoggedRequest> PerscomTestServer::request_log() const {
  std::lock_guard lock(mu_);
  return log_;
}

std::size_t PerscomTestServer::request_count() const {
  std::lock_guard lock(mu_);
  return counters_.requests;
}

void PerscomTestServer::clear_log() {
  std::lock_guard lock(mu_);
  log_.clear();
  counters_ = {};
}

void PerscomTestServer::set_request_log(bool keep) {
  std::lock_guard lock(mu_);
  keep_log_ = keep;
}

PerscomCounters PerscomTestServer::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

ServerResponse PerscomTestServer::handle(const ServerRequest& request) {
  std::lock_guard lock(mu_);
  const auto start = std::chrono::steady_clock::now();
  std::optional<FaultEntry> fault;
  if (!faults_.empty()) {
    fault = faults_.front();
    faults_.pop_front();
  }
  ServerResponse response;
  if (fault && fault->fault == Fault::k429) {
    response = message(429, "Too Many Attempts.");
    response.headers.emplace_back("Retry-After", std::to_string(fault->retry_after));
  } else if (fault && fault->fault == Fault::k503) {
    response = message(503, "Service Unavailable");
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
  ++counters_.requests;
  counters_.body_bytes += request.body.size();
  counters_.handler_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (keep_log_) {
    log_.push_back({request.method, request.target, response.close_without_response ? 0 : response.status,
                    request.body, request.headers});
  }
  return response;
}

ServerResponse PerscomTestServer::handle_locked(const ServerRequest& request) {
  const auto [version, resource] = split_route(request.target);
  const bool batch = resource == "users/batch";
  const bool search = resource == "users/search";
  if ((!batch && !search && resource != "users") || (version != "v1" && version != "v2")) {
    return message(404, "Not Found");
  }
  const std::string& m = request.method;
  if (batch ? (m != "POST" && m != "PATCH" && m != "DELETE") : m != (search ? "POST" : "GET")) {
    return message(405, "The " + m + " method is not supported for route " + version + "/" + resource + ".");
  }
  if (request.header("authorization") != "Bearer " + options_.token || options_.token.empty()) {
    return message(401, "Unauthenticated.");
  }
  if (options_.required_perscom_id && request.header("x-perscom-id") != *options_.required_perscom_id) {
    return message(401, "Unauthenticated.");
  }
  if (!batch) return list_locked(request, search);
  // Laravel parses a JSON body only when it is declared as JSON.
  json body = json::object();
  const std::string ct = lower(request.header("content-type"));
  if (ct.rfind("application/json", 0) == 0) {
    body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return message(400, "Malformed JSON in the request body.");
  }
  if (!body.is_object() || !body.contains("resources") || body["resources"].is_null()) {
    return validation_error({{"resources", "The resources field is required."}});
  }
  if (m == "POST") return create_locked(body);
  if (m == "PATCH") return update_locked(body);
  return destroy_locked(body);
}

// Orion's index and search: `page` (from 1) and `limit` (default 15) in the
// query; the search body {"filters":[{"field","operator","value"}]} with the
// operators dirsync uses (=, in), compared case-insensitively (MySQL's default
// collation). A filter on a field that is not filterable → 422.
ServerResponse PerscomTestServer::list_locked(const ServerRequest& request, bool search) {
  const auto q = request.target.find('?');
  const auto params = parse_query(q == std::string::npos ? std::string_view() : std::string_view(request.target).substr(q + 1));
  auto number = [&](const char* name, long fallback) {
    const auto it = params.find(name);
    if (it == params.end()) return fallback;
    char* end = nullptr;
    const long v = std::strtol(it->second.c_str(), &end, 10);
    return end != it->second.c_str() && *end == '\0' && v > 0 ? v : fallback;
  };
  const long page = number("page", 1);
  const long limit = std::min(number("limit", 15), 500L);
  std::vector<std::int64_t> matched;  // in id order
  if (search) {
    const json body = json::parse(request.body, nullptr, false);
    std::vector<std::pair<std::string, std::set<std::string>>> filters;  // field → accepted values (lower-cased)
    if (body.is_object() && body.contains("filters") && body["filters"].is_array()) {
      for (const auto& f : body["filters"]) {
        const std::string field = f.value("field", "");
        const std::string op = f.value("operator", "=");
        if (field != "email" && field != "name" && field != "id") {
          return validation_error({{"filters.0.field", "The selected filters.0.field is invalid."}});
        }
        std::set<std::string> values;
        const json& v = f.contains("value") ? f["value"] : json();
        if (op == "in" && v.is_array()) {
          for (const auto& x : v) values.insert(lower(x.is_string() ? x.get<std::string>() : x.dump()));
        } else if (op == "=") {
          values.insert(lower(v.is_string() ? v.get<std::string>() : v.dump()));
        } else {
          return validation_error({{"filters.0.operator", "The selected filters.0.operator is invalid."}});
        }
        filters.emplace_back(field, std::move(values));
      }
    }
    auto keep = [&](std::int64_t id) {
      const json u = json::parse(*stored_locked(id));
      const bool ok = std::all_of(filters.begin(), filters.end(), [&](const auto& f) {
        const json& v = u.contains(f.first) ? u[f.first] : json();
        return f.second.count(lower(v.is_string() ? v.get<std::string>() : v.dump())) > 0;
      });
      if (ok) matched.push_back(id);
    };
    // An email filter narrows the candidates through the index; every filter still decides.
    const auto by_email = std::find_if(filters.begin(), filters.end(), [](const auto& f) { return f.first == "email"; });
    if (by_email != filters.end()) {
      std::vector<std::int64_t> candidates;
      for (const auto& value : by_email->second) {
        const auto [first, last] = by_email_.equal_range(value);
        for (auto it = first; it != last; ++it) candidates.push_back(it->second.id);
      }
      std::sort(candidates.begin(), candidates.end());
      candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
      for (const std::int64_t id : candidates) keep(id);
    } else {
      for (std::size_t i = 0; i < users_.size(); ++i) {
        if (!users_[i].empty()) keep(static_cast<std::int64_t>(i + 1));
      }
    }
    ++searches_;
  } else {
    for (std::size_t i = 0; i < users_.size(); ++i) {
      if (!users_[i].empty()) matched.push_back(static_cast<std::int64_t>(i + 1));
    }
  }
  std::vector<const std::string*> data;
  const std::size_t first = static_cast<std::size_t>((page - 1) * limit);
  for (std::size_t i = first; i < matched.size() && i < first + static_cast<std::size_t>(limit); ++i) {
    data.push_back(stored_locked(matched[i]));
  }
  const long last_page = std::max(1L, static_cast<long>((matched.size() + limit - 1) / limit));
  const json meta = {{"current_page", page}, {"last_page", last_page}, {"per_page", limit}, {"total", matched.size()}};
  ServerResponse r;
  r.status = 200;
  r.body = "{\"data\":" + data_array(data) + ",\"meta\":" + meta.dump() + "}";
  return r;
}

std::size_t PerscomTestServer::search_count() const {
  std::lock_guard lock(mu_);
  return searches_;
}

bool PerscomTestServer::email_taken_locked(const std::string& email) const {
  const auto [first, last] = by_email_.equal_range(lower(email));
  return std::any_of(first, last, [](const auto& entry) { return entry.second.is_string; });
}

ServerResponse PerscomTestServer::validation_error(const Errors& errors) const {
  const std::size_t more = errors.size() - 1;
  std::string text = errors.front().second;
  if (more > 0) text += " (and " + std::to_string(more) + " more error" + (more == 1 ? "" : "s") + ")";
  if (options_.error_style == ErrorStyle::kPerscom) {
    return json_response(422, {{"error", {{"message", text}, {"type", "ValidationException"}}}});
  }
  json all = json::object();
  for (const auto& [key, msg] : errors) all[key].push_back(msg);
  return json_response(422, {{"message", text}, {"errors", all}});
}

namespace {

// Email rules that need the store and the whole batch: unique (no exception for
// the record's own user) and distinct (every occurrence of a duplicate flagged).
void validate_emails(const std::vector<std::pair<std::string, const json*>>& records,
                     const std::function<bool(const std::string&)>& taken, Errors& errs) {
  std::unordered_map<std::string, int> seen;
  for (const auto& [prefix, r] : records) {
    const auto it = r->find("email");
    if (it != r->end() && it->is_string()) ++seen[lower(it->get<std::string>())];
  }
  for (const auto& [prefix, r] : records) {
    const auto it = r->find("email");
    if (it == r->end() || !it->is_string() || !valid_email(it->get<std::string>())) continue;
    const std::string key = prefix + ".email";
    if (seen[lower(it->get<std::string>())] > 1) errs.emplace_back(key, "The " + key + " field has a duplicate value.");
    if (taken(it->get<std::string>())) errs.emplace_back(key, "The " + key + " has already been taken.");
  }
}

// Laravel reports errors attribute by attribute, in the order of the input.
void sort_by_record(Errors& errs, const std::vector<std::pair<std::string, const json*>>& records) {
  if (errs.empty()) return;
  std::map<std::string, std::size_t> order;
  for (std::size_t i = 0; i < records.size(); ++i) order[records[i].first] = i;
  std::stable_sort(errs.begin(), errs.end(), [&](const auto& a, const auto& b) {
    auto rank = [&](const std::string& key) {
      const auto second_dot = key.find('.', std::string("resources.").size());
      const auto it = order.find(key.substr(0, second_dot));
      return it == order.end() ? records.size() : it->second;
    };
    return rank(a.first) < rank(b.first);
  });
}

}  // namespace

ServerResponse PerscomTestServer::create_locked(const json& body) {
  const json& resources = body["resources"];
  if (!resources.is_array()) return validation_error({{"resources", "The resources field must be an array."}});
  Errors errs;
  std::vector<std::pair<std::string, const json*>> records;
  for (std::size_t i = 0; i < resources.size(); ++i) {
    const std::string prefix = "resources." + std::to_string(i);
    if (!resources[i].is_object()) {
      errs.emplace_back(prefix, "The " + prefix + " field must be an array.");
      continue;
    }
    validate_fields(prefix, resources[i], /*creating=*/true, errs);
    records.emplace_back(prefix, &resources[i]);
  }
  validate_emails(records, [this](const std::string& e) { return email_taken_locked(e); }, errs);
  sort_by_record(errs, records);
  if (!errs.empty()) return validation_error(errs);

  const std::string now = now_iso();
  const std::string now_json = json(now).dump();
  const std::int64_t first_id = next_id_;
  for (const auto& r : resources) {
    const std::int64_t id = next_id_++;
    std::string text = render_created(id, r, now_json);
    if (text.empty()) {
      json user = new_user(id);
      for (const auto& [k, v] : r.items()) user[k] = normalised(k, v);
      text = user.dump();
    }
    const auto email = r.find("email");
    store_locked(id, std::move(text), email == r.end() ? json() : normalised("email", *email));
  }
  // Pointers taken once the store stopped growing (growing moves the texts).
  std::vector<const std::string*> data;
  for (std::int64_t id = first_id; id < next_id_; ++id) data.push_back(stored_locked(id));
  counters_.created += data.size();
  return data_response(data);
}

ServerResponse PerscomTestServer::update_locked(const json& body) {
  const json& resources = body["resources"];
  if (!resources.is_object()) return validation_error({{"resources", "The resources field must be an array."}});
  Errors errs;
  std::vector<std::pair<std::string, const json*>> records;
  for (const auto& [key, r] : resources.items()) {
    const std::string prefix = "resources." + key;
    if (!r.is_object()) {
      errs.emplace_back(prefix, "The " + prefix + " field must be an array.");
      continue;
    }
    validate_fields(prefix, r, /*creating=*/false, errs);
    records.emplace_back(prefix, &r);
  }
  validate_emails(records, [this](const std::string& e) { return email_taken_locked(e); }, errs);
  sort_by_record(errs, records);
  if (!errs.empty()) return validation_error(errs);

  std::vector<const std::string*> data;
  const std::string now = now_iso();
  for (const auto& [key, r] : resources.items()) {
    if (key.empty() || !std::all_of(key.begin(), key.end(), [](unsigned char c) { return std::isdigit(c); }) ||
        key.size() > 18) {
      continue;
    }
    const std::int64_t id = std::stoll(key);
    const std::string* stored = stored_locked(id);
    if (!stored) continue;  // Orion: whereIn(id, keys) → unknown ids skipped silently
    json user = json::parse(*stored);
    const json old_email = user["email"];
    for (const auto& [k, v] : r.items()) user[k] = normalised(k, v);
    user["updated_at"] = now;
    index_email_locked(id, old_email, /*add=*/false);
    index_email_locked(id, user["email"], /*add=*/true);
    users_[static_cast<std::size_t>(id - 1)] = user.dump();
    data.push_back(stored_locked(id));
  }
  counters_.updated += data.size();
  return data_response(data);
}

ServerResponse PerscomTestServer::destroy_locked(const json& body) {
  const json& resources = body["resources"];
  if (!resources.is_array()) return validation_error({{"resources", "The resources field must be an array."}});
  Errors errs;
  for (std::size_t i = 0; i < resources.size(); ++i) {
    if (!is_integer(resources[i])) {
      const std::string key = "resources." + std::to_string(i);
      errs.emplace_back(key, "The " + key + " field must be an integer.");
    }
  }
  if (!errs.empty()) return validation_error(errs);
  // The answer lists the deleted users, so their texts outlive the store's slots until it is written.
  std::vector<std::string> deleted;
  for (const auto& id : resources) {
    const std::int64_t n = id.is_string() ? std::stoll(id.get<std::string>()) : id.get<std::int64_t>();
    const std::string* stored = stored_locked(n);
    if (!stored) continue;  // skipped silently
    std::string text = *stored;
    unstore_locked(n, json::parse(text)["email"]);
    deleted.push_back(std::move(text));
  }
  counters_.deleted += deleted.size();
  std::vector<const std::string*> data;
  for (const auto& text : deleted) data.push_back(&text);
  return data_response(data);
}

}  // namespace dirsync::testing
