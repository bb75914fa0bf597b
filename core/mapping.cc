#include "core/mapping.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string_view>

namespace dirsync::core {
namespace {

using nlohmann::json;

struct FunctionSpec {
  const char* name;
  int min_args;
  int max_args;
};

// Every template function, in one table; `apply_step` implements them.
constexpr FunctionSpec kFunctions[] = {
    {"lower", 0, 0}, {"upper", 0, 0}, {"trim", 0, 0},  {"default", 1, 1},
    {"int", 0, 0},   {"bool", 0, 0},  {"first", 0, 0}, {"join", 0, 1},
};

const FunctionSpec* find_function(std::string_view name) {
  for (const auto& f : kFunctions) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

std::string known_functions() {
  std::string out;
  for (const auto& f : kFunctions) {
    if (!out.empty()) out += ", ";
    out += f.name;
  }
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

// Parses the inside of one {...}; `base` is the 0-based offset of the text
// after '{' in the whole template, for error columns.
Template::Segment parse_expr(std::string_view expr, std::size_t base) {
  Template::Segment seg;
  seg.is_expr = true;
  std::size_t i = 0;
  auto col = [&](std::size_t at) { return static_cast<int>(base + at + 1); };
  auto skip = [&] {
    while (i < expr.size() && is_space(expr[i])) ++i;
  };

  // The attribute name runs to the first '|' (brackets may hold spaces, for the
  // attribute paths that SCIM sources will use).
  skip();
  const std::size_t name_start = i;
  int depth = 0;
  while (i < expr.size() && !(expr[i] == '|' && depth == 0)) {
    if (expr[i] == '[') ++depth;
    if (expr[i] == ']') --depth;
    ++i;
  }
  std::string_view name = expr.substr(name_start, i - name_start);
  while (!name.empty() && is_space(name.back())) name.remove_suffix(1);
  if (name.empty()) throw TemplateError("expected an attribute name", col(name_start));
  seg.attribute = std::string(name);

  while (i < expr.size()) {
    ++i;  // the '|'
    skip();
    const std::size_t fn_start = i;
    while (i < expr.size() && (std::isalnum(static_cast<unsigned char>(expr[i])) || expr[i] == '_')) ++i;
    std::string fn(expr.substr(fn_start, i - fn_start));
    if (fn.empty()) throw TemplateError("expected a function name after '|'", col(fn_start));
    const FunctionSpec* spec = find_function(fn);
    if (!spec) {
      throw TemplateError("unknown function '" + fn + "'; known functions: " + known_functions(), col(fn_start));
    }
    Template::Step step{fn, {}};
    skip();
    if (i < expr.size() && expr[i] == ':') {
      ++i;
      while (true) {
        skip();
        std::string arg;
        if (i < expr.size() && (expr[i] == '\'' || expr[i] == '"')) {
          const char quote = expr[i];
          const std::size_t quote_at = i;
          ++i;
          bool closed = false;
          while (i < expr.size()) {
            if (expr[i] == '\\' && i + 1 < expr.size()) {
              arg += expr[i + 1];
              i += 2;
              continue;
            }
            if (expr[i] == quote) {
              closed = true;
              ++i;
              break;
            }
            arg += expr[i++];
          }
          if (!closed) throw TemplateError("unterminated quoted argument", col(quote_at));
        } else {
          const std::size_t arg_start = i;
          while (i < expr.size() && expr[i] != ',' && expr[i] != '|') ++i;
          std::string_view bare = expr.substr(arg_start, i - arg_start);
          while (!bare.empty() && is_space(bare.back())) bare.remove_suffix(1);
          if (bare.empty()) throw TemplateError("expected an argument for '" + fn + "'", col(arg_start));
          arg = std::string(bare);
        }
        step.args.push_back(std::move(arg));
        skip();
        if (i < expr.size() && expr[i] == ',') {
          ++i;
          continue;
        }
        break;
      }
    }
    skip();
    if (i < expr.size() && expr[i] != '|') {
      throw TemplateError("unexpected '" + std::string(1, expr[i]) + "'; expected '|' or '}'", col(i));
    }
    const int n = static_cast<int>(step.args.size());
    if (n < spec->min_args || n > spec->max_args) {
      std::string expected = spec->min_args == spec->max_args ? std::to_string(spec->min_args)
                                                              : std::to_string(spec->min_args) + " or " +
                                                                    std::to_string(spec->max_args);
      throw TemplateError("function '" + fn + "' takes " + expected + " argument" +
                              (spec->max_args == 1 && spec->min_args == 1 ? "" : "s") + ", got " + std::to_string(n),
                          col(fn_start));
    }
    seg.steps.push_back(std::move(step));
  }
  return seg;
}

std::string trim_copy(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string lower_copy(std::string s) {
  // ASCII only: case-folding UTF-8 properly needs ICU, and emails and
  // identifiers, where lower/upper matter, are ASCII in practice.
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string upper_copy(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  const std::string t = trim_copy(text);
  std::int64_t v = 0;
  const char* begin = t.data();
  if (!t.empty() && t[0] == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size()) return std::nullopt;
  return v;
}

std::optional<bool> parse_bool(std::string_view text) {
  const std::string t = lower_copy(trim_copy(text));
  if (t == "true" || t == "yes" || t == "1" || t == "on") return true;
  if (t == "false" || t == "no" || t == "0" || t == "off") return false;
  return std::nullopt;
}

bool is_empty(const json& v) {
  return v.is_null() || (v.is_string() && v.get_ref<const std::string&>().empty()) || (v.is_array() && v.empty());
}

// Applies `fn` to a string, or to each string of an array.
template <typename Fn>
json map_strings(const json& v, Fn fn) {
  if (v.is_string()) return fn(v.get<std::string>());
  if (v.is_array()) {
    json out = json::array();
    for (const auto& e : v) out.push_back(e.is_string() ? json(fn(e.get<std::string>())) : e);
    return out;
  }
  return v;
}

Result<json> apply_step(const Template::Step& step, json v, const std::string& attribute) {
  const std::string& fn = step.function;
  if (fn == "lower") return map_strings(v, lower_copy);
  if (fn == "upper") return map_strings(v, upper_copy);
  if (fn == "trim") return map_strings(v, [](const std::string& s) { return trim_copy(s); });
  if (fn == "default") return is_empty(v) ? json(step.args[0]) : v;
  if (fn == "first") return v.is_array() ? (v.empty() ? json() : v.front()) : v;
  if (fn == "join") {
    if (!v.is_array()) return v;
    const std::string sep = step.args.empty() ? ", " : step.args[0];
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i) out += sep;
      out += v[i].is_string() ? v[i].get<std::string>() : v[i].dump();
    }
    return json(out);
  }
  if (fn == "int" || fn == "bool") {
    if (v.is_null()) return v;
    if (v.is_array()) {
      return Error{ErrorKind::kInvalid, "attribute '" + attribute + "' has " + std::to_string(v.size()) +
                                            " values; pick one with '| first' before '| " + fn + "'"};
    }
    auto r = coerce(v, fn == "int" ? FieldType::kInt : FieldType::kBool);
    if (!r) return Error{ErrorKind::kInvalid, "attribute '" + attribute + "': " + r.error().message};
    return r;
  }
  return Error{ErrorKind::kInvalid, "unknown function '" + fn + "'"};
}

std::string to_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

Template Template::parse(std::string_view text) {
  Template t;
  t.text_ = std::string(text);
  std::string literal;
  std::size_t i = 0;
  auto flush = [&] {
    if (!literal.empty()) {
      Segment seg;
      seg.literal = std::move(literal);
      t.segments_.push_back(std::move(seg));
      literal.clear();
    }
  };
  while (i < text.size()) {
    const char c = text[i];
    if (c == '{') {
      if (i + 1 < text.size() && text[i + 1] == '{') {
        literal += '{';
        i += 2;
        continue;
      }
      // Find the closing brace, skipping quoted arguments.
      std::size_t j = i + 1;
      char quote = 0;
      std::size_t quote_at = 0;
      while (j < text.size()) {
        if (quote) {
          if (text[j] == '\\') ++j;
          else if (text[j] == quote) quote = 0;
        } else if (text[j] == '\'' || text[j] == '"') {
          quote = text[j];
          quote_at = j;
        } else if (text[j] == '}') {
          break;
        } else if (text[j] == '{') {
          throw TemplateError("'{' inside an expression; expected '}' first", static_cast<int>(j + 1));
        }
        ++j;
      }
      if (j >= text.size() && quote) {
        throw TemplateError("unterminated quoted argument", static_cast<int>(quote_at + 1));
      }
      if (j >= text.size()) throw TemplateError("'{' is never closed; expected '}'", static_cast<int>(i + 1));
      flush();
      t.segments_.push_back(parse_expr(text.substr(i + 1, j - i - 1), i + 1));
      i = j + 1;
    } else if (c == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        literal += '}';
        i += 2;
        continue;
      }
      throw TemplateError("unmatched '}'; write '}}' for a literal brace", static_cast<int>(i + 1));
    } else {
      literal += c;
      ++i;
    }
  }
  flush();
  return t;
}

Template Template::constant(json value) {
  Template t;
  t.text_ = value.dump();
  t.is_constant_ = true;
  t.constant_ = std::move(value);
  return t;
}

std::vector<std::string> Template::attributes() const {
  std::vector<std::string> out;
  for (const auto& seg : segments_) {
    if (seg.is_expr && std::find(out.begin(), out.end(), seg.attribute) == out.end()) out.push_back(seg.attribute);
  }
  return out;
}

Result<json> Template::render(const Record& record) const {
  if (is_constant_) return constant_;
  const bool single = segments_.size() == 1 && segments_[0].is_expr;
  std::string text;
  for (const auto& seg : segments_) {
    if (!seg.is_expr) {
      text += seg.literal;
      continue;
    }
    const Attribute* attr = record.find(seg.attribute);
    json v;
    if (attr && attr->values.size() == 1) v = attr->values[0];
    else if (attr && attr->values.size() > 1) v = attr->values;
    for (const auto& step : seg.steps) {
      auto r = apply_step(step, std::move(v), seg.attribute);
      if (!r) return r.error();
      v = std::move(r).value();
    }
    if (v.is_null()) {
      return Error{ErrorKind::kInvalid, attr ? "attribute '" + seg.attribute + "' has no value"
                                             : "attribute '" + seg.attribute + "' is missing"};
    }
    if (v.is_array()) {
      return Error{ErrorKind::kInvalid, "attribute '" + seg.attribute + "' has " + std::to_string(v.size()) +
                                            " values; pick one with '| first' or '| join'"};
    }
    if (single) return v;
    text += to_text(v);
  }
  return json(std::move(text));
}

Result<json> coerce(const json& value, FieldType type) {
  switch (type) {
    case FieldType::kAny:
      return value;
    case FieldType::kString:
      if (value.is_string() || value.is_null()) return value;
      return json(value.dump());
    case FieldType::kInt:
      if (value.is_number_integer() || value.is_null()) return value;
      if (value.is_string()) {
        // An empty cell means "no value" for a typed field.
        if (trim_copy(value.get_ref<const std::string&>()).empty()) return json();
        if (auto v = parse_int(value.get_ref<const std::string&>())) return json(*v);
      }
      return Error{ErrorKind::kInvalid, "'" + to_text(value) + "' is not an integer"};
    case FieldType::kBool:
      if (value.is_boolean() || value.is_null()) return value;
      if (value.is_number_integer() && (value == 0 || value == 1)) return json(value == 1);
      if (value.is_string()) {
        if (trim_copy(value.get_ref<const std::string&>()).empty()) return json();
        if (auto v = parse_bool(value.get_ref<const std::string&>())) return json(*v);
      }
      return Error{ErrorKind::kInvalid, "'" + to_text(value) + "' is not a boolean (true/false, yes/no, 1/0)"};
  }
  return value;
}

Result<json> Mapping::apply(const Record& record) const {
  json out = json::object();
  for (const auto& field : fields_) {
    auto v = field.tmpl.render(record);
    if (!v) return Error{ErrorKind::kInvalid, "field '" + field.name + "': " + v.error().message};
    auto c = coerce(v.value(), field.type);
    if (!c) return Error{ErrorKind::kInvalid, "field '" + field.name + "': " + c.error().message};
    out[field.name] = std::move(c).value();
  }
  return out;
}

}  // namespace dirsync::core
