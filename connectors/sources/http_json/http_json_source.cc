#include "connectors/sources/http_json/http_json_source.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "connectors/http/http_client.h"
#include "connectors/http/source_get.h"
#include "connectors/sources/http_json/url.h"
#include "core/diff.h"
#include "core/json_record.h"

namespace dirsync::sources {
namespace {

using config::Pagination;
using nlohmann::json;

// No directory needs more; a server that never ends its listing must not keep a job running forever.
constexpr std::size_t kMaxPages = 1'000'000;

core::Error source_error(std::string message) { return core::Error{core::ErrorKind::kSource, std::move(message)}; }

// A JSON pointer (RFC 6901) as its unescaped reference tokens. Walked by hand
// rather than with json::at(json_pointer): a missing member is common data
// here (fallback attribute pointers), not an exception.
struct Pointer {
  std::string text;
  std::vector<std::string> tokens;
};

std::optional<Pointer> parse_pointer(const std::string& text) {
  Pointer p{text, {}};
  if (text.empty()) return p;
  if (text.front() != '/') return std::nullopt;
  std::size_t start = 1;
  for (;;) {
    const auto end = text.find('/', start);
    const std::string raw = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string token;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '~') {
        token += raw[i];
      } else if (i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
        token += raw[++i] == '0' ? '~' : '/';
      } else {
        return std::nullopt;
      }
    }
    p.tokens.push_back(std::move(token));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return p;
}

// The value `pointer` refers to in `doc`, or nullptr when there is none.
const json* find(const json& doc, const Pointer& pointer) {
  const json* at = &doc;
  for (const auto& token : pointer.tokens) {
    if (at->is_object()) {
      const auto it = at->find(token);
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array()) {
      // RFC 6901 §4: decimal digits, no leading zero.
      if (token.empty() || (token.size() > 1 && token[0] == '0') ||
          !std::all_of(token.begin(), token.end(), [](unsigned char c) { return std::isdigit(c); }) ||
          token.size() > 9) {
        return nullptr;
      }
      const std::size_t index = std::stoul(token);
      if (index >= at->size()) return nullptr;
      at = &(*at)[index];
    } else {
      return nullptr;
    }
  }
  return at;
}

std::string a_type(const json* value) {
  if (value == nullptr) return "nothing";
  const std::string name = value->type_name();
  return (name == "object" || name == "array" ? "an " : "a ") + name;
}

bool is_blank(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c); });
}

// The settings with their pointers parsed once.
struct Compiled {
  config::HttpJsonSourceSettings settings;
  Pointer records;
  Pointer key;
  Pointer cursor;
  Pointer next_url;
  std::vector<std::pair<std::string, std::vector<Pointer>>> attributes;
  std::optional<http_json::UrlOrigin> origin;
};

// Compiled settings, or the reason they cannot be used.
struct Setup {
  std::shared_ptr<const Compiled> compiled;
  std::optional<core::Error> error;
};

Setup compile(const config::HttpJsonSourceSettings& settings) {
  auto c = std::make_shared<Compiled>();
  c->settings = settings;
  std::string bad;
  auto pointer = [&](const std::string& text, const char* what, Pointer& out) {
    if (auto p = parse_pointer(text)) out = std::move(*p);
    else if (bad.empty()) bad = std::string(what) + " '" + text + "' is not a JSON pointer";
  };
  pointer(settings.records, "records", c->records);
  pointer(settings.key, "key", c->key);
  pointer(settings.cursor_path, "cursor_path", c->cursor);
  pointer(settings.next_url_path, "next_url_path", c->next_url);
  for (const auto& attribute : settings.attributes) {
    std::vector<Pointer> pointers(attribute.paths.size());
    for (std::size_t i = 0; i < pointers.size(); ++i) {
      pointer(attribute.paths[i], ("attribute '" + attribute.name + "'").c_str(), pointers[i]);
    }
    c->attributes.emplace_back(attribute.name, std::move(pointers));
  }
  if (settings.key.empty() && bad.empty()) bad = "key is empty; expected a JSON pointer such as /id";
  c->origin = http_json::url_origin(settings.url);
  if ((!c->origin || c->origin->userinfo) && bad.empty()) bad = "url is not an http(s) URL without credentials";
  if (!bad.empty()) return {nullptr, core::Error{core::ErrorKind::kInvalid, "http_json " + settings.url + ": " + bad}};
  return {std::move(c), std::nullopt};
}

class HttpJsonPull final : public core::Pull {
 public:
  HttpJsonPull(std::shared_ptr<const Compiled> c, std::unique_ptr<http::Transport> client)
      : c_(std::move(c)), s_(c_->settings), client_(std::move(client)),
        retry_(http::source_retry_options(s_.http)), page_(s_.first_page), next_url_(s_.url) {
    followed_urls_.insert(s_.url);
  }

  core::Result<core::Page> next() override;

 private:
  std::string request_url() const;
  void read_record(const json& item, std::size_t index, const std::string& url, core::Page& page);
  // Moves to the page after the one just read; false when there is none.
  core::Result<bool> advance(const http::JsonPage& got, std::size_t received, const std::string& url);
  core::Result<bool> follow(const std::string& url, const std::string& target,
                                        const std::string& found_in);
  core::Error fail(core::Error error) {
    done_ = true;
    return error;
  }

  std::shared_ptr<const Compiled> c_;
  const config::HttpJsonSourceSettings& s_;
  std::unique_ptr<http::Transport> client_;
  http::RetryOptions retry_;
  std::int64_t page_;
  std::size_t offset_ = 0;
  std::optional<std::string> cursor_;
  std::string next_url_;
  std::unordered_set<std::string> cursors_;
  std::unordered_set<std::string> followed_urls_;
  core::PullKeys keys_;  // this pull's keys, 8 bytes each
  std::size_t pages_ = 0;
  std::optional<core::Error> pending_;  // a problem with the next page, returned by the next call
  bool done_ = false;
};

std::string HttpJsonPull::request_url() const {
  const auto size = std::to_string(s_.page_size);
  switch (s_.pagination) {
    case Pagination::kNone:
      return s_.url;
    case Pagination::kPage: {
      std::vector<std::pair<std::string, std::string>> params{{s_.page_param, std::to_string(page_)}};
      if (!s_.size_param.empty()) params.emplace_back(s_.size_param, size);
      return http_json::add_query(s_.url, params);
    }
    case Pagination::kOffset:
      return http_json::add_query(s_.url, {{s_.offset_param, std::to_string(offset_)}, {s_.limit_param, size}});
    case Pagination::kCursor:
      return cursor_ ? http_json::add_query(s_.url, {{s_.cursor_param, *cursor_}}) : s_.url;
    case Pagination::kLinkHeader:
    case Pagination::kNextUrl:
      return next_url_;
  }
  return s_.url;
}

core::Result<core::Page> HttpJsonPull::next() {
  if (pending_) return fail(*pending_);
  if (done_) return core::Error{core::ErrorKind::kInvalid, "http_json " + s_.url + ": the pull is over"};
  if (pages_ >= kMaxPages) {
    return fail(source_error("http_json " + s_.url + ": stopped after " + std::to_string(kMaxPages) +
                             " pages; the listing does not end"));
  }
  const std::string url = request_url();
  http::Request request;
  request.url = url;
  http::add_source_auth(request, s_.auth, s_.headers);
  auto got = http::get_json(*client_, std::move(request), retry_);
  ++pages_;
  if (!got.ok()) return fail(got.error());

  const json* records = find(got->body, c_->records);
  if (records == nullptr || !records->is_array()) {
    return fail(source_error("GET " + url + ": records pointer '" + c_->records.text + "' " +
                             (c_->records.text.empty() ? "(the body) " : "") + "leads to " + a_type(records) +
                             ", not an array of records"));
  }
  core::Page page;
  page.records.reserve(records->size());
  for (std::size_t i = 0; i < records->size(); ++i) read_record((*records)[i], i, url, page);
  if (records->empty()) {
    done_ = true;
    page.last = true;
    return page;
  }
  auto more = advance(got.value(), records->size(), url);
  if (!more.ok()) {
    pending_ = more.error();
  } else if (!more.value()) {
    done_ = true;
    page.last = true;
  }
  return page;
}

void HttpJsonPull::read_record(const json& item, std::size_t index, const std::string& url, core::Page& page) {
  std::string origin = "GET " + url + " #" + std::to_string(index);
  if (!item.is_object()) {
    page.issues.push_back({"", std::move(origin), "record is " + a_type(&item) + "; expected an object"});
    return;
  }
  const json* k = find(item, c_->key);
  std::string key;
  if (k != nullptr && k->is_string()) key = k->get<std::string>();
  else if (k != nullptr && (k->is_number_integer() || k->is_number_unsigned())) key = k->dump();
  if (is_blank(key)) {
    const std::string& where = c_->key.text;
    std::string why = k == nullptr        ? "no key at '" + where + "'"
                      : k->is_string()    ? "blank key at '" + where + "'"
                                          : "key at '" + where + "' is " + a_type(k) + "; expected a string or an integer";
    page.issues.push_back({"", std::move(origin), std::move(why)});
    return;
  }
  if (keys_.add(key, 0)) {
    page.issues.push_back({key, std::move(origin), "duplicate key '" + key + "'"});
    return;
  }
  core::Record record;
  record.key = std::move(key);
  record.origin = std::move(origin);
  record.attributes = core::flatten_json(item);
  for (const auto& configured : c_->attributes) {
    const std::string& name = configured.first;  // not a structured binding: lambdas cannot capture those in C++20
    std::erase_if(record.attributes, [&](const core::Attribute& a) { return a.name == name; });
    for (const auto& pointer : configured.second) {
      const json* value = find(item, pointer);
      if (value == nullptr) continue;
      auto values = core::json_values(*value);
      if (values.empty()) continue;
      record.attributes.push_back({name, std::move(values)});
      break;
    }
  }
  page.records.push_back(std::move(record));
}

core::Result<bool> HttpJsonPull::advance(const http::JsonPage& got, std::size_t received, const std::string& url) {
  switch (s_.pagination) {
    case Pagination::kNone:
      return false;
    case Pagination::kPage:
      ++page_;
      return true;
    case Pagination::kOffset:
      offset_ += received;
      return true;
    case Pagination::kCursor: {
      const json* v = find(got.body, c_->cursor);
      std::string cursor;
      if (v == nullptr || v->is_null()) return false;
      if (v->is_string()) cursor = v->get<std::string>();
      else if (v->is_number_integer() || v->is_number_unsigned()) cursor = v->dump();
      else {
        return source_error("GET " + url + ": the cursor at '" + c_->cursor.text + "' is " + a_type(v) +
                            "; expected a string or an integer");
      }
      if (cursor.empty()) return false;
      if (!cursors_.insert(cursor).second) {
        return source_error("GET " + url + ": cursor repeats: '" + cursor +
                            "' was already followed in this pull; stopped instead of looping");
      }
      cursor_ = std::move(cursor);
      return true;
    }
    case Pagination::kLinkHeader: {
      auto link = http_json::next_link(got.response.headers);
      if (!link) return false;
      return follow(url, *link, "the Link header");
    }
    case Pagination::kNextUrl: {
      const json* v = find(got.body, c_->next_url);
      if (v == nullptr || v->is_null() || (v->is_string() && v->get<std::string>().empty())) return false;
      if (!v->is_string()) {
        return source_error("GET " + url + ": the next page URL at '" + c_->next_url.text + "' is " + a_type(v) +
                            "; expected a string");
      }
      return follow(url, v->get<std::string>(), "next_url_path '" + c_->next_url.text + "'");
    }
  }
  return false;
}

core::Result<bool> HttpJsonPull::follow(const std::string& url, const std::string& target,
                                        const std::string& found_in) {
  std::string next = http_json::resolve_url(url, target);
  const auto origin = http_json::url_origin(next);
  if (origin && origin->userinfo) {
    // The URL itself is not printed: it carries a password.
    return source_error("GET " + url + ": the next page URL in " + found_in +
                        " carries credentials (user:password@); refused");
  }
  if (!origin || !(*origin == *c_->origin)) {
    return source_error("GET " + url + ": the next page URL in " + found_in + ", " + next + ", is not on " +
                        to_string(*c_->origin) + " (the url's scheme, host and port); refused: credentials are " +
                        "only sent to the configured server");
  }
  if (!followed_urls_.insert(next).second) {
    return source_error("GET " + url + ": next page URL repeats: " + next +
                        " was already requested in this pull; stopped instead of looping");
  }
  next_url_ = std::move(next);
  return true;
}

class HttpJsonSource final : public core::Source {
 public:
  HttpJsonSource(const config::HttpJsonSourceSettings& settings,
                 std::function<std::unique_ptr<http::Transport>()> connect)
      : setup_(compile(settings)), url_(settings.url), connect_(std::move(connect)) {}

  core::Result<std::unique_ptr<core::Pull>> start() override {
    if (setup_.error) return *setup_.error;
    std::unique_ptr<http::Transport> client;
    try {
      client = connect_();
    } catch (const std::exception& e) {
      return source_error("http_json " + url_ + ": " + e.what());
    }
    return std::unique_ptr<core::Pull>(std::make_unique<HttpJsonPull>(setup_.compiled, std::move(client)));
  }

  std::string describe() const override { return "http_json " + url_; }

 private:
  Setup setup_;
  std::string url_;
  std::function<std::unique_ptr<http::Transport>()> connect_;
};

}  // namespace

std::unique_ptr<core::Source> make_http_json_source(const config::HttpJsonSourceSettings& settings) {
  return detail::make_http_json_source(
      settings, [http_settings = settings.http] { return std::make_unique<http::HttpClient>(http_settings); });
}

std::unique_ptr<core::Source> detail::make_http_json_source(const config::HttpJsonSourceSettings& settings,
                                                            std::function<std::unique_ptr<http::Transport>()> connect) {
  return std::make_unique<HttpJsonSource>(settings, std::move(connect));
}

}  // namespace dirsync::sources
