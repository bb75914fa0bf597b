#include "tests/support/http_json_test_server.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "tests/support/query.h"

namespace dirsync::testing::http_json {
namespace {

using nlohmann::json;

ServerResponse json_response(int status, const json& body) {
  ServerResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

// Written here rather than borrowed from the client side, so that a wrong
// encoding in the client cannot agree with itself.
std::string base64(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(n >> shift) & 63];
  }
  if (i < in.size()) {
    const bool two = i + 1 < in.size();
    const unsigned n = (static_cast<unsigned char>(in[i]) << 16) | (two ? static_cast<unsigned char>(in[i + 1]) << 8 : 0);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += two ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// A non-negative integer parameter; nullopt when absent, -1 when not a number.
std::optional<long long> int_param(const std::map<std::string, std::string>& q, const std::string& name) {
  const auto it = q.find(name);
  if (it == q.end()) return std::nullopt;
  if (it->second.empty() || it->second.size() > 9 ||
      !std::all_of(it->second.begin(), it->second.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return -1;
  }
  return std::stoll(it->second);
}

// Cursors hold characters a client must percent-encode ('/', '=', '+', ' ').
std::string make_cursor(std::size_t offset) { return "after/" + std::to_string(offset) + "=+ x"; }

std::optional<std::size_t> read_cursor(const std::string& cursor) {
  const std::string head = "after/";
  const std::string tail = "=+ x";
  if (!cursor.starts_with(head) || !cursor.ends_with(tail) || cursor.size() == head.size() + tail.size()) {
    return std::nullopt;
  }
  const std::string digits = cursor.substr(head.size(), cursor.size() - head.size() - tail.size());
  if (!std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); }) || digits.size() > 9) {
    return std::nullopt;
  }
  return std::stoul(digits);
}

}  // namespace

HttpJsonTestServer::HttpJsonTestServer(ServerOptions options)
    : options_(std::move(options)), http_([this](const ServerRequest& r) { return handle(r); }) {}

HttpJsonTestServer::~HttpJsonTestServer() { http_.stop(); }

void HttpJsonTestServer::start(std::uint16_t port) { http_.start(port); }
void HttpJsonTestServer::stop() { http_.stop(); }
std::string HttpJsonTestServer::base_url() const { return http_.base_url(); }
std::string HttpJsonTestServer::users_url() const { return http_.base_url() + kPath; }

void HttpJsonTestServer::set_options(ServerOptions options) {
  std::lock_guard lock(mu_);
  options_ = std::move(options);
}

ServerOptions HttpJsonTestServer::options() const {
  std::lock_guard lock(mu_);
  return options_;
}

void HttpJsonTestServer::add_users(int n) {
  std::lock_guard lock(mu_);
  for (int i = 0; i < n; ++i) {
    const std::string id = std::to_string(users_.size() + 1);
    users_.push_back({{"id", "u" + id},
                      {"name", {{"given", "User"}, {"family", "Number " + id}}},
                      {"email", "user" + id + "@example.com"},
                      {"active", users_.size() % 2 == 0},
                      {"groups", json::array({"staff", "group-" + id})}});
  }
}

void HttpJsonTestServer::set_users(std::vector<json> users) {
  std::lock_guard lock(mu_);
  users_ = std::move(users);
}

std::vector<json> HttpJsonTestServer::users() const {
  std::lock_guard lock(mu_);
  return users_;
}

void HttpJsonTestServer::edit_user(std::size_t index, const json& patch) {
  std::lock_guard lock(mu_);
  users_.at(index).merge_patch(patch);
}

void HttpJsonTestServer::inject(std::size_t page_index, Fault fault, int times) {
  std::lock_guard lock(mu_);
  faults_[page_index].push_back({fault, times});
}

void HttpJsonTestServer::clear_faults() {
  std::lock_guard lock(mu_);
  faults_.clear();
}

std::vector<LoggedRequest> HttpJsonTestServer::request_log() const {
  std::lock_guard lock(mu_);
  return log_;
}

std::size_t HttpJsonTestServer::request_count() const {
  std::lock_guard lock(mu_);
  return log_.size();
}

ServerResponse HttpJsonTestServer::handle(const ServerRequest& request) {
  std::lock_guard lock(mu_);
  ServerResponse response = handle_locked(request);
  LoggedRequest logged;
  static_cast<ServerRequest&>(logged) = request;
  logged.status = response.close_without_response ? 0 : response.status;
  log_.push_back(std::move(logged));
  return response;
}

bool HttpJsonTestServer::authorized_locked(const ServerRequest& request) const {
  const ServerOptions& o = options_;
  for (const auto& [name, value] : o.required_headers) {
    if (!request.has_header(name) || request.header(name) != value) return false;
  }
  switch (o.auth) {
    case Auth::kNone:
      return true;
    case Auth::kBearer:
      return request.header("authorization") == "Bearer " + o.token;
    case Auth::kBasic:
      return request.header("authorization") == "Basic " + base64(o.username + ":" + o.password);
    case Auth::kApiKey:
      return request.has_header(o.api_key_header) && request.header(o.api_key_header) == o.api_key;
  }
  return false;
}

std::optional<Fault> HttpJsonTestServer::take_fault_locked(std::size_t page_index) {
  auto it = faults_.find(page_index);
  if (it == faults_.end() || it->second.empty()) return std::nullopt;
  FaultSlot& slot = it->second.front();
  const Fault fault = slot.fault;
  if (slot.times > 0 && --slot.times == 0) it->second.pop_front();
  return fault;
}

std::string HttpJsonTestServer::page_url_locked(const std::string& query) const {
  return http_.base_url() + kPath + (query.empty() ? "" : "?" + query);
}

ServerResponse HttpJsonTestServer::handle_locked(const ServerRequest& request) {
  const ServerOptions& o = options_;
  const auto q_at = request.target.find('?');
  const std::string path = request.target.substr(0, q_at);
  const std::string raw_query = q_at == std::string::npos ? "" : request.target.substr(q_at + 1);
  if (path != kPath) return json_response(404, {{"message", "Not Found"}});
  if (request.method != "GET") {
    ServerResponse r = json_response(405, {{"message", "Method Not Allowed"}});
    r.headers.emplace_back("Allow", "GET");
    return r;
  }
  if (!authorized_locked(request)) {
    ServerResponse r = json_response(401, {{"message", "Unauthenticated."}});
    r.headers.emplace_back("WWW-Authenticate", o.auth == Auth::kBasic ? "Basic realm=\"api\"" : "Bearer");
    return r;
  }
  const auto query = parse_query(raw_query);
  auto bad_request = [](const std::string& what) { return json_response(400, {{"message", what}}); };

  // Where the page starts and how long it is.
  std::size_t start = 0;
  std::size_t size = o.default_page_size;
  std::optional<std::string> used_cursor;
  switch (o.style) {
    case Style::kNone:
      size = users_.size();
      break;
    case Style::kPage: {
      const auto page = int_param(query, "page");
      const auto per_page = int_param(query, "per_page");
      if ((page && *page < o.first_page) || (per_page && *per_page < 1)) return bad_request("bad page or per_page");
      if (per_page) size = static_cast<std::size_t>(*per_page);
      size = std::min(size, o.max_page_size);
      start = static_cast<std::size_t>(page.value_or(o.first_page) - o.first_page) * size;
      break;
    }
    case Style::kOffset: {
      const auto offset = int_param(query, "offset");
      const auto limit = int_param(query, "limit");
      if ((offset && *offset < 0) || (limit && *limit < 1)) return bad_request("bad offset or limit");
      if (limit) size = static_cast<std::size_t>(*limit);
      size = std::min(size, o.max_page_size);
      start = static_cast<std::size_t>(offset.value_or(0));
      break;
    }
    case Style::kCursor: {
      const auto it = query.find("cursor");
      if (it != query.end()) {
        const auto offset = read_cursor(it->second);
        if (!offset) return bad_request("invalid cursor");
        start = *offset;
        used_cursor = it->second;
      }
      break;
    }
    case Style::kLinkHeader:
    case Style::kNextUrl: {
      const auto page = int_param(query, "page");
      if (page && *page < 1) return bad_request("bad page");
      start = static_cast<std::size_t>(page.value_or(1) - 1) * size;
      break;
    }
  }
  const std::size_t index = size == 0 ? 0 : start / size;
  const std::size_t end = std::min(users_.size(), start + size);
  json data = json::array();
  for (std::size_t i = start; i < end; ++i) data.push_back(users_[i]);
  const bool has_next = o.always_next || end < users_.size();

  const std::optional<Fault> fault = take_fault_locked(index);
  if (fault) {
    switch (*fault) {
      case Fault::k500:
        return json_response(500, {{"message", "Server Error"}});
      case Fault::k503:
        return json_response(503, {{"message", "Service Unavailable"}});
      case Fault::k401:
        return json_response(401, {{"message", "Unauthenticated."}});
      case Fault::kDrop: {
        ServerResponse r;
        r.close_without_response = true;
        return r;
      }
      case Fault::kNotJson: {
        ServerResponse r;
        r.content_type = "text/html";
        r.body = "<html><body>Maintenance</body></html>";
        return r;
      }
      case Fault::kRecordsNotArray:
        return json_response(200, {{"data", {{"error", "not a list"}}}});
      default:
        break;  // the next-link faults change the answer below
    }
  }

  // The next page's link, in the style's own form.
  const std::size_t next_page = index + 2;  // link styles number pages from 1
  std::string next_link;
  if (fault == Fault::kRepeatNextUrl) {
    next_link = page_url_locked(raw_query);
  } else if (fault == Fault::kForeignNextUrl) {
    next_link = "http://127.0.0.2:" + std::to_string(http_.port()) + kPath + "?page=" + std::to_string(next_page);
  } else if (o.relative_links) {
    next_link = o.style == Style::kLinkHeader ? std::string(kPath) + "?page=" + std::to_string(next_page)
                                               : "users?page=" + std::to_string(next_page);
  } else {
    next_link = page_url_locked("page=" + std::to_string(next_page));
  }
  const bool link_next = has_next || fault == Fault::kRepeatNextUrl || fault == Fault::kForeignNextUrl;

  json body = o.bare_array ? data : json{{"data", data}};
  ServerResponse r;
  r.status = 200;
  if (o.style == Style::kCursor && !o.bare_array) {
    json meta = json::object();
    if (fault == Fault::kRepeatCursor && used_cursor) {
      meta["next_cursor"] = *used_cursor;
    } else if (has_next) {
      meta["next_cursor"] = make_cursor(end == start ? start + size : end);
    } else if (o.end_cursor == EndCursor::kNull) {
      meta["next_cursor"] = nullptr;
    } else if (o.end_cursor == EndCursor::kEmpty) {
      meta["next_cursor"] = "";
    }
    body["meta"] = meta;
  }
  if (o.style == Style::kNextUrl && !o.bare_array) {
    body["links"] = {{"self", page_url_locked(raw_query)}, {"next", link_next ? json(next_link) : json(nullptr)}};
  }
  if (o.style == Style::kLinkHeader) {
    const std::size_t pages = std::max<std::size_t>(1, (users_.size() + size - 1) / std::max<std::size_t>(size, 1));
    std::vector<std::string> links;
    if (o.several_links) {
      // A comma and a semicolon inside a quoted title, rel values plain and quoted.
      links.push_back("<" + page_url_locked("page=1") + ">; rel=\"first\"; title=\"First, page; one\"");
      if (index > 0) links.push_back("<" + page_url_locked("page=" + std::to_string(index)) + ">; rel=prev");
    }
    if (link_next) links.push_back("<" + next_link + ">; rel=\"next\"");
    if (o.several_links) links.push_back("<" + page_url_locked("page=" + std::to_string(pages)) + ">; rel=\"last\"");
    if (o.several_links && links.size() > 1) std::swap(links.front(), links.back());  // "next" is not first
    std::string value;
    for (const auto& link : links) value += (value.empty() ? "" : ", ") + link;
    if (!value.empty()) r.headers.emplace_back("Link", value);
  }
  r.body = body.dump();
  return r;
}

}  // namespace dirsync::testing::http_json
