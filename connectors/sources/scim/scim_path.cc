#include "connectors/sources/scim/scim_path.h"

#include <cctype>
#include <utility>

#include "core/json_record.h"

namespace dirsync::sources {
namespace {

using nlohmann::json;

constexpr std::string_view kCoreUserUrn = "urn:ietf:params:scim:schemas:core:2.0:User";

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string fold(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = lower(c);
  return out;
}

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-'; }
bool is_space(char c) { return c == ' ' || c == '\t'; }

// Reads a path left to right; every failure names the column (1-based).
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  core::Result<std::vector<ScimPath::Segment>> parse() {
    std::vector<ScimPath::Segment> segments;
    if (text_.empty()) return fail("empty; expected an attribute name such as userName");
    if (text_.size() > 4 && iequal(text_.substr(0, 4), "urn:")) {
      // The attribute follows the URN's last ':' before any filter (URNs hold ':' and '.').
      const std::size_t bracket = text_.find('[');
      const std::size_t colon = text_.substr(0, bracket).rfind(':');
      const std::string_view urn = text_.substr(0, colon);
      if (colon + 1 >= text_.size() || urn.size() <= 4) {
        return fail("expected an attribute name after the schema URN");
      }
      if (!iequal(urn, kCoreUserUrn)) segments.push_back({std::string(urn), std::nullopt});
      pos_ = colon + 1;
    }
    for (;;) {
      ScimPath::Segment segment;
      auto name = read_name("an attribute name");
      if (!name) return name.error();
      segment.name = std::move(name).value();
      if (segments.empty() && iequal(segment.name, kScimEnterprisePrefix)) segment.name = kScimEnterpriseUrn;
      if (pos_ < text_.size() && text_[pos_] == '[') {
        ++pos_;
        auto filter = read_filter();
        if (!filter) return filter.error();
        segment.filter = std::move(filter).value();
      }
      segments.push_back(std::move(segment));
      if (pos_ == text_.size()) return segments;
      if (text_[pos_] != '.') return fail_at("expected '.' or '['");
      ++pos_;
    }
  }

 private:
  core::Error fail(const std::string& what) const {
    return core::Error{core::ErrorKind::kInvalid, "'" + std::string(text_) + "': " + what};
  }
  core::Error fail_at(const std::string& what) const {
    return core::Error{core::ErrorKind::kInvalid,
                       "'" + std::string(text_) + "': " + what + " at column " + std::to_string(pos_ + 1)};
  }

  void skip_space() {
    while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
  }

  core::Result<std::string> read_name(const std::string& what) {
    const std::size_t start = pos_;
    if (text_.substr(pos_).starts_with("$ref")) {
      pos_ += 4;
    } else if (pos_ < text_.size() && is_alpha(text_[pos_])) {
      while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
    }
    if (pos_ == start) return fail_at("expected " + what);
    return std::string(text_.substr(start, pos_ - start));
  }

  core::Result<ScimPath::Filter> read_filter() {
    ScimPath::Filter filter;
    skip_space();
    auto attribute = read_name("a sub-attribute name after '['");
    if (!attribute) return attribute.error();
    filter.attribute = std::move(attribute).value();
    skip_space();
    const std::size_t op_start = pos_;
    while (pos_ < text_.size() && is_alpha(text_[pos_])) ++pos_;
    const std::string op = fold(text_.substr(op_start, pos_ - op_start));
    static const std::pair<const char*, ScimPath::Op> kOps[] = {
        {"pr", ScimPath::Op::kPresent},  {"eq", ScimPath::Op::kEq},         {"ne", ScimPath::Op::kNe},
        {"co", ScimPath::Op::kContains}, {"sw", ScimPath::Op::kStartsWith}, {"ew", ScimPath::Op::kEndsWith}};
    bool known = false;
    for (const auto& [word, value] : kOps) {
      if (op == word) {
        filter.op = value;
        known = true;
      }
    }
    if (!known) {
      pos_ = op_start;
      return fail_at("expected an operator (eq, ne, co, sw, ew or pr)");
    }
    if (filter.op != ScimPath::Op::kPresent) {
      if (pos_ < text_.size() && !is_space(text_[pos_]) && text_[pos_] != ']') {
        return fail_at("expected a space after '" + op + "'");
      }
      skip_space();
      auto value = read_value(op);
      if (!value) return value.error();
      filter.value = std::move(value).value();
      const bool text_only = filter.op == ScimPath::Op::kContains || filter.op == ScimPath::Op::kStartsWith ||
                             filter.op == ScimPath::Op::kEndsWith;
      if (text_only && !filter.value.is_string()) return fail("'" + op + "' compares strings only");
    }
    skip_space();
    if (pos_ >= text_.size() || text_[pos_] != ']') {
      return fail_at("expected ']' (one comparison per filter; 'and', 'or', 'not' are not supported)");
    }
    ++pos_;
    return filter;
  }

  core::Result<json> read_value(const std::string& op) {
    const std::size_t start = pos_;
    if (pos_ < text_.size() && text_[pos_] == '"') {
      ++pos_;
      while (pos_ < text_.size() && text_[pos_] != '"') pos_ += text_[pos_] == '\\' ? 2 : 1;
      if (pos_ >= text_.size()) {
        pos_ = start;
        return fail_at("unterminated string");
      }
      ++pos_;
    } else {
      while (pos_ < text_.size() && text_[pos_] != ']' && !is_space(text_[pos_])) ++pos_;
    }
    const std::string token(text_.substr(start, pos_ - start));
    if (token.empty()) {
      pos_ = start;
      return fail_at("expected a value after '" + op + "'");
    }
    json value = json::parse(token, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded() || value.is_structured()) {
      // true/false/null are case-insensitive in SCIM filters ("True" is seen in the wild).
      const std::string word = fold(token);
      if (word == "true" || word == "false" || word == "null") return json::parse(word);
      pos_ = start;
      return fail_at("expected true, false, null, a number or a \"quoted string\"");
    }
    return value;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// An array's elements, or the value itself as a list of one.
template <class F>
void each_value(const json& value, F&& f) {
  if (value.is_array()) {
    for (const auto& item : value) f(item);
  } else {
    f(value);
  }
}

bool contains_folded(const std::string& hay, const std::string& needle, ScimPath::Op op) {
  const std::string h = fold(hay);
  const std::string n = fold(needle);
  switch (op) {
    case ScimPath::Op::kContains:
      return h.find(n) != std::string::npos;
    case ScimPath::Op::kStartsWith:
      return h.starts_with(n);
    default:
      return h.ends_with(n);
  }
}

// One scalar against a comparison (eq and the text operators).
bool scalar_matches(const json& actual, ScimPath::Op op, const json& want) {
  if (op != ScimPath::Op::kEq)
    return actual.is_string() && contains_folded(actual.get<std::string>(), want.get<std::string>(), op);
  if (want.is_null()) return actual.is_null();
  if (want.is_boolean()) return actual.is_boolean() && actual.get<bool>() == want.get<bool>();
  if (want.is_number()) return actual.is_number() && actual == want;  // nlohmann compares 1 and 1.0 as equal
  return actual.is_string() && iequal(actual.get<std::string>(), want.get<std::string>());
}

bool element_matches(const json& element, const ScimPath::Filter& f) {
  const json* actual = nullptr;
  if (element.is_object())
    actual = scim_member(element, f.attribute);
  else if (iequal(f.attribute, "value"))
    actual = &element;  // a simple multi-valued attribute's element
  if (f.op == ScimPath::Op::kPresent) {
    if (!actual || actual->is_null()) return false;
    if (actual->is_string()) return !actual->get<std::string>().empty();
    return !actual->is_array() || !actual->empty();
  }
  const ScimPath::Op op = f.op == ScimPath::Op::kNe ? ScimPath::Op::kEq : f.op;
  bool hit = false;
  if (!actual || (actual->is_array() && actual->empty())) {
    hit = op == ScimPath::Op::kEq && f.value.is_null();  // absent equals null
  } else if (actual->is_array()) {
    for (const auto& item : *actual) hit = hit || scalar_matches(item, op, f.value);
  } else {
    hit = scalar_matches(*actual, op, f.value);
  }
  return f.op == ScimPath::Op::kNe ? !hit : hit;
}

}  // namespace

const json* scim_member(const json& object, std::string_view name) {
  if (!object.is_object()) return nullptr;
  const auto exact = object.find(std::string(name));
  if (exact != object.end()) return &exact.value();
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (iequal(it.key(), name)) return &it.value();
  }
  return nullptr;
}

json* scim_member(json& object, std::string_view name) {
  return const_cast<json*>(scim_member(std::as_const(object), name));
}

core::Result<ScimPath> ScimPath::parse(std::string_view text) {
  auto segments = Parser(text).parse();
  if (!segments) return segments.error();
  ScimPath path;
  path.text_ = std::string(text);
  path.segments_ = std::move(segments).value();
  return path;
}

std::vector<std::string> ScimPath::values(const json& resource) const {
  std::vector<const json*> nodes{&resource};
  for (const Segment& segment : segments_) {
    std::vector<const json*> next;
    for (const json* node : nodes) {
      each_value(*node, [&](const json& object) {
        const json* child = scim_member(object, segment.name);
        if (!child) return;
        if (!segment.filter) {
          next.push_back(child);
          return;
        }
        each_value(*child, [&](const json& element) {
          if (element_matches(element, *segment.filter)) next.push_back(&element);
        });
      });
    }
    nodes = std::move(next);
  }
  std::vector<std::string> out;
  for (const json* node : nodes) {
    auto more = core::json_values(*node);
    out.insert(out.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  return out;
}

bool valid_scim_path(std::string_view path, std::string* why) {
  auto parsed = ScimPath::parse(path);
  if (!parsed && why) *why = parsed.error().message;
  return parsed.ok();
}

}  // namespace dirsync::sources
