#include "connectors/sources/scim/scim_source.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "connectors/http/http_client.h"
#include "connectors/http/source_get.h"
#include "connectors/sources/scim/scim_path.h"
#include "core/diff.h"
#include "core/json_record.h"

namespace dirsync::sources {
namespace {

using nlohmann::json;

constexpr std::string_view kListResponseUrn = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
constexpr std::string_view kErrorUrn = "urn:ietf:params:scim:api:messages:2.0:Error";
// Pages allowed beyond 2 × the first totalResults before the pull gives up.
constexpr std::uint64_t kPageSlack = 16;
// totalResults values named in the "changed during the pull" message.
constexpr std::size_t kMaxTotalsNamed = 6;

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool lists_schema(const json& body, std::string_view urn) {
  const json* schemas = scim_member(body, "schemas");
  if (!schemas || !schemas->is_array()) return false;
  return std::any_of(schemas->begin(), schemas->end(),
                     [&](const json& s) { return s.is_string() && iequal(s.get<std::string>(), urn); });
}

// A non-negative integer member, or nullopt when absent or not one.
std::optional<std::uint64_t> count_member(const json& body, std::string_view name) {
  const json* v = scim_member(body, name);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) return v->get<std::uint64_t>();
  if (v->is_number_integer() && v->get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(v->get<std::int64_t>());
  return std::nullopt;
}

// Keeps the body of the last error answer, so that a failed GET can be
// explained with the SCIM error's scimType (get_json reports only its detail).
class ErrorBodyTransport final : public http::Transport {
 public:
  explicit ErrorBodyTransport(http::Transport& inner) : inner_(inner) {}
  http::Response send(const http::Request& request) override {
    http::Response response = inner_.send(request);
    error_body_ = response.ok() ? std::string() : response.body;
    return response;
  }
  const std::string& error_body() const { return error_body_; }

 private:
  http::Transport& inner_;
  std::string error_body_;
};

struct NamedPaths {
  std::string name;
  std::vector<ScimPath> paths;
};

// What every pull of one source shares: parsed once by the source.
struct Plan {
  config::ScimSourceSettings settings;
  std::string users_url;  // {base_url}/Users
  std::optional<ScimPath> key;
  std::vector<NamedPaths> attributes;
  std::string problem;  // a path that does not parse: start() fails with it
};

class ScimPull final : public core::Pull {
 public:
  ScimPull(std::shared_ptr<const Plan> plan, std::unique_ptr<http::Transport> client)
      : plan_(std::move(plan)),
        client_(std::move(client)),
        transport_(*client_),
        retry_(http::source_retry_options(plan_->settings.http)) {}

  core::Result<core::Page> next() override;

 private:
  std::string page_url() const;
  std::string record_origin(std::uint64_t index) const {
    return "scim " + plan_->users_url + " #" + std::to_string(index);
  }
  core::Error with_scim_error(core::Error error) const;
  core::Error bad_page(const std::string& what, const std::string& why) const {
    return core::Error{core::ErrorKind::kSource, what + ": " + why};
  }
  // Fills `page` from one resource at 1-based `index`; true when its key was read on an earlier page.
  bool add_resource(json resource, std::uint64_t index, const std::string& what, core::Page& page);
  std::string totals_text() const;

  std::shared_ptr<const Plan> plan_;
  std::unique_ptr<http::Transport> client_;
  ErrorBodyTransport transport_;
  http::RetryOptions retry_;
  std::uint64_t start_index_ = 1;
  std::uint64_t pages_ = 0;
  std::vector<std::uint64_t> totals_;                    // totalResults as it changed, first page first
  core::PullKeys seen_;  // key → index of its first user (8 bytes a key)
  bool done_ = false;
};

std::string ScimPull::page_url() const {
  std::string url = plan_->users_url + "?startIndex=" + std::to_string(start_index_) +
                    "&count=" + std::to_string(std::max<std::size_t>(plan_->settings.page_size, 1));
  if (!plan_->settings.filter.empty()) url += "&filter=" + http::url_encode(plan_->settings.filter);
  return url;
}

core::Error ScimPull::with_scim_error(core::Error error) const {
  const json body = json::parse(transport_.error_body(), nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !lists_schema(body, kErrorUrn)) return error;
  const json* type = scim_member(body, "scimType");
  if (type && type->is_string() && !type->get<std::string>().empty()) {
    error.message += " (scimType " + type->get<std::string>() + ")";
  }
  return error;
}

std::string ScimPull::totals_text() const {
  std::string out;
  for (std::size_t i = 0; i < totals_.size(); ++i) {
    if (totals_.size() > kMaxTotalsNamed && i == kMaxTotalsNamed - 1) {
      out += " → ... → " + std::to_string(totals_.back());
      break;
    }
    out += (i ? " → " : "") + std::to_string(totals_[i]);
  }
  return out;
}

bool ScimPull::add_resource(json resource, std::uint64_t index, const std::string& what, core::Page& page) {
  const Plan& plan = *plan_;
  const std::string unreadable_origin = what + " #" + std::to_string(index);
  if (!resource.is_object()) {
    page.issues.push_back({"", unreadable_origin, "the user is not a JSON object"});
    return false;
  }
  const std::vector<std::string> keys = plan.key->values(resource);
  if (keys.size() != 1 || keys.front().empty()) {
    std::string message = keys.empty()       ? "the user has no '" + plan.settings.key + "' (the key)"
                          : keys.size() == 1 ? "the user's '" + plan.settings.key + "' (the key) is empty"
                                             : "the user's '" + plan.settings.key + "' (the key) has " +
                                                   std::to_string(keys.size()) + " values";
    // Name the user as well as the page can, so that an operator can find it.
    for (const char* hint : {"id", "userName"}) {
      const json* v = scim_member(resource, hint);
      if (v && v->is_string() && !iequal(hint, plan.settings.key)) {
        message += std::string("; ") + hint + " '" + v->get<std::string>() + "'";
      }
    }
    page.issues.push_back({"", unreadable_origin, message});
    return false;
  }
  const std::string& key = keys.front();
  if (const auto first = seen_.add(key, index)) {
    page.issues.push_back(
        {key, record_origin(index), "duplicate key '" + key + "' (first at #" + std::to_string(*first) + ")"});
    return *first < start_index_;
  }

  core::Record record;
  record.key = key;
  record.origin = record_origin(index);
  std::vector<std::pair<std::string, std::vector<std::string>>> named;
  for (const NamedPaths& attribute : plan.attributes) {
    std::vector<std::string> values;
    for (const ScimPath& path : attribute.paths) {
      values = path.values(resource);
      if (!values.empty()) break;
    }
    named.emplace_back(attribute.name, std::move(values));
  }
  // The enterprise extension goes under a short prefix instead of its URN, unless
  // the user already has an "enterprise" member (then the URN stays).
  if (!scim_member(resource, kScimEnterprisePrefix)) {
    for (auto member = resource.begin(); member != resource.end(); ++member) {
      if (iequal(member.key(), kScimEnterpriseUrn)) {
        json extension = std::move(member.value());
        resource.erase(member);
        resource[kScimEnterprisePrefix] = std::move(extension);
        break;
      }
    }
  }
  record.attributes = core::flatten_json(resource);
  for (auto& [name, values] : named) record.set(name, std::move(values));
  page.records.push_back(std::move(record));
  return false;
}

core::Result<core::Page> ScimPull::next() {
  if (done_) return core::Page{.records = {}, .issues = {}, .last = true};
  http::Request request;
  request.url = page_url();
  http::add_source_auth(request, plan_->settings.auth);
  const std::string what = request.describe();
  if (!totals_.empty() && pages_ >= 2 * totals_.front() + kPageSlack) {
    return bad_page(what, "gave up after " + std::to_string(pages_) + " pages (totalResults " + totals_text() +
                              "): the server keeps reporting more users");
  }
  auto got = http::get_json(transport_, std::move(request), retry_);
  if (!got) return with_scim_error(got.error());
  ++pages_;
  json& body = got->body;

  if (!body.is_object() || !lists_schema(body, kListResponseUrn)) {
    return bad_page(what,
                    "not a SCIM ListResponse (expected \"schemas\" to list " + std::string(kListResponseUrn) + ")");
  }
  const auto total = count_member(body, "totalResults");
  if (!total) return bad_page(what, "the ListResponse has no \"totalResults\" (a non-negative integer)");
  if (const json* echoed = scim_member(body, "startIndex")) {
    const auto answered = count_member(body, "startIndex");
    if (!answered || *answered != start_index_) {
      return bad_page(what, "the server answered startIndex " + echoed->dump() + " for startIndex " +
                                std::to_string(start_index_) + " (it does not page as asked)");
    }
  }
  json* resources = scim_member(body, "Resources");
  if (resources && !resources->is_array()) return bad_page(what, "\"Resources\" is not an array");
  if (!resources && *total != 0 && count_member(body, "itemsPerPage") != std::uint64_t{0}) {
    return bad_page(what, "the ListResponse has no \"Resources\" although totalResults is " + std::to_string(*total));
  }
  if (totals_.empty() || totals_.back() != *total) totals_.push_back(*total);

  core::Page page;
  const std::size_t n = resources ? resources->size() : 0;
  std::size_t repeats = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (add_resource(std::move((*resources)[i]), start_index_ + i, what, page)) ++repeats;
  }
  if (n > 0 && repeats == n) {
    return bad_page(what,
                    "every user on this page was already read on an earlier page: the server does not seem to "
                    "honour startIndex");
  }
  start_index_ += n;
  const std::uint64_t read = start_index_ - 1;
  if (n == 0 || read >= *total) {
    done_ = true;
    page.last = true;
    // Offset paging over a set that changed, or that the server stopped listing
    // early, may have skipped users: an issue without a key keeps the pull
    // from detaching anyone (see the header).
    const std::string where = "scim " + plan_->users_url;
    if (read < *total) {
      page.issues.push_back({"", where,
                             "the server returned no users at startIndex " + std::to_string(start_index_) +
                                 " although totalResults is " + std::to_string(*total) +
                                 ": users may be missing, so this pull detaches nobody"});
    }
    if (totals_.size() > 1) {
      page.issues.push_back({"", where,
                             "totalResults changed during the pull (" + totals_text() +
                                 "): offset paging over a changing set can skip users, so this pull detaches nobody"});
    }
  }
  return page;
}

class ScimSource final : public core::Source {
 public:
  ScimSource(const config::ScimSourceSettings& settings, std::function<std::unique_ptr<http::Transport>()> connect)
      : connect_(std::move(connect)) {
    auto plan = std::make_shared<Plan>();
    plan->settings = settings;
    std::string base = settings.base_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    plan->users_url = base + "/Users";
    auto key = ScimPath::parse(settings.key);
    if (key)
      plan->key = std::move(key).value();
    else
      plan->problem = "key " + key.error().message;
    for (const config::AttributePath& attribute : settings.attributes) {
      NamedPaths named{attribute.name, {}};
      for (const std::string& text : attribute.paths) {
        auto path = ScimPath::parse(text);
        if (path)
          named.paths.push_back(std::move(path).value());
        else if (plan->problem.empty())
          plan->problem = "attribute '" + attribute.name + "': " + path.error().message;
      }
      plan->attributes.push_back(std::move(named));
    }
    describe_ = "scim " + base;
    plan_ = std::move(plan);
  }

  core::Result<std::unique_ptr<core::Pull>> start() override {
    if (!plan_->problem.empty()) return core::Error{core::ErrorKind::kInvalid, describe_ + ": " + plan_->problem};
    std::unique_ptr<http::Transport> client;
    try {
      client = connect_();
    } catch (const std::exception& e) {
      return core::Error{core::ErrorKind::kSource, describe_ + ": " + e.what()};
    }
    return std::unique_ptr<core::Pull>(std::make_unique<ScimPull>(plan_, std::move(client)));
  }

  std::string describe() const override { return describe_; }

 private:
  std::function<std::unique_ptr<http::Transport>()> connect_;
  std::shared_ptr<const Plan> plan_;
  std::string describe_;
};

}  // namespace

std::unique_ptr<core::Source> make_scim_source(const config::ScimSourceSettings& settings) {
  return detail::make_scim_source(
      settings, [http_settings = settings.http] { return std::make_unique<http::HttpClient>(http_settings); });
}

std::unique_ptr<core::Source> detail::make_scim_source(const config::ScimSourceSettings& settings,
                                                       std::function<std::unique_ptr<http::Transport>()> connect) {
  return std::make_unique<ScimSource>(settings, std::move(connect));
}

}  // namespace dirsync::sources
