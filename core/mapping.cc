#include "core/mapping.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace dirsync::core {
namespace {

using nlohmann::json;
using Step = Template::Step;

// --- text helpers ---------------------------------------------------------------

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

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

bool is_digit(char c) { return c >= '0' && c <= '9'; }

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

std::string to_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// --- values ---------------------------------------------------------------------
// A value in flight is null (missing), a scalar (one value) or an array (several).

bool is_empty(const json& v) {
  return v.is_null() || (v.is_string() && v.get_ref<const std::string&>().empty()) || (v.is_array() && v.empty());
}

// Every value as text: none when missing.
std::vector<std::string> values_of(const json& v) {
  std::vector<std::string> out;
  if (v.is_array()) {
    for (const auto& e : v) out.push_back(to_text(e));
  } else if (!v.is_null()) {
    out.push_back(to_text(v));
  }
  return out;
}

// Back to the shape values travel in: none → missing, one → that value.
json from_values(std::vector<std::string> values) {
  if (values.empty()) return json();
  if (values.size() == 1) return json(std::move(values.front()));
  return json(std::move(values));
}

json from_bool(bool b) { return json(b ? "true" : "false"); }

// Applies `fn` (string → string or Result<string>) to a string, or to each
// string of an array; other values pass unchanged.
template <typename Fn>
Result<json> map_strings(const json& v, Fn fn) {
  auto one = [&](const json& e) -> Result<json> {
    if (!e.is_string()) return e;
    auto r = fn(e.get_ref<const std::string&>());
    if constexpr (std::is_same_v<decltype(r), std::string>) {
      return json(std::move(r));
    } else {
      if (!r) return r.error();
      return json(std::move(r).value());
    }
  };
  if (!v.is_array()) return one(v);
  json out = json::array();
  for (const auto& e : v) {
    auto r = one(e);
    if (!r) return r.error();
    out.push_back(std::move(r).value());
  }
  return out;
}

// "Truthy" for `if`: not empty and not one of the words that mean no.
bool truthy(const std::string& value) {
  const std::string t = lower_copy(trim_copy(value));
  return !t.empty() && t != "false" && t != "0" && t != "no" && t != "off";
}

// --- phone numbers ----------------------------------------------------------------

// `country` is the country code's digits ("49"), empty when none was given.
Result<std::string> to_e164(const std::string& raw, const std::string& country, const std::string& attribute) {
  const std::string trimmed = trim_copy(raw);
  if (trimmed.empty()) return trimmed;  // no number: missing, for `default` to handle
  const std::string prefix = "attribute " + in_quotes(attribute) + ": " + in_quotes(raw);
  const bool international = trimmed.starts_with('+') || trimmed.starts_with("00");
  std::string text = trimmed;
  // "+49 (0)30 ...": the (0) is the trunk prefix, written for national callers.
  for (std::size_t at; international && (at = text.find("(0)")) != std::string::npos;) text.erase(at, 3);
  std::string digits;
  bool plus = false;
  for (const char c : text) {
    if (is_digit(c)) {
      digits += c;
    } else if (c == '+' && digits.empty() && !plus) {
      plus = true;
    } else if (!(is_space(c) || c == '-' || c == '.' || c == '/' || c == '(' || c == ')')) {
      return Error{ErrorKind::kInvalid,
                   prefix + " is not a phone number: it contains " + in_quotes(std::string(1, c)) +
                       "; expected digits, spaces and - . / ( ) with an optional leading +"};
    }
  }
  std::string number;
  if (plus) {
    number = digits;
  } else if (digits.starts_with("00")) {
    number = digits.substr(2);
  } else if (country.empty()) {
    return Error{ErrorKind::kInvalid, prefix +
                                          " is a national number without a country code; expected a number "
                                          "starting with + or 00, or a country code in the template (e164:'+49')"};
  } else {
    number = country + (digits.starts_with('0') ? digits.substr(1) : digits);
  }
  if (number.size() < 8 || number.size() > 15) {
    return Error{ErrorKind::kInvalid, prefix + " has " + std::to_string(number.size()) +
                                          " digits with the country code; expected 8 to 15"};
  }
  if (number.front() == '0') {
    return Error{ErrorKind::kInvalid, prefix + " has a country code starting with 0; expected 1 to 9 after the +"};
  }
  return "+" + number;
}

// --- the functions ----------------------------------------------------------------

using Apply = Result<json> (*)(const Step& step, json v, const std::string& attribute);
// Checks and resolves a step's arguments when the template is parsed; throws
// TemplateError. `columns` are the 1-based columns of the arguments.
using Prepare = void (*)(Step& step, const std::vector<int>& columns, const Lookups* lookups);

Result<json> apply_typed(const Step& step, json v, const std::string& attribute) {
  if (v.is_null()) return v;
  if (v.is_array()) {
    return Error{ErrorKind::kInvalid, "attribute " + in_quotes(attribute) + " has " + std::to_string(v.size()) +
                                          " values; pick one with '| first' before '| " + step.function + "'"};
  }
  auto r = coerce(v, step.function == "int" ? FieldType::kInt : FieldType::kBool);
  if (!r) return Error{ErrorKind::kInvalid, "attribute " + in_quotes(attribute) + ": " + r.error().message};
  return r;
}

Result<json> apply_join(const Step& step, json v, const std::string&) {
  if (!v.is_array()) return v;
  const std::string sep = step.args.empty() ? ", " : step.args[0];
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += to_text(v[i]);
  }
  return json(out);
}

Result<json> apply_split(const Step& step, json v, const std::string&) {
  const std::string& sep = step.args[0];
  std::vector<std::string> out;
  for (const auto& value : values_of(v)) {
    std::size_t start = 0;
    while (true) {
      const std::size_t end = value.find(sep, start);
      std::string part = value.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (!part.empty()) out.push_back(std::move(part));
      if (end == std::string::npos) break;
      start = end + sep.size();
    }
  }
  return from_values(std::move(out));
}

Result<json> apply_map(const Step& step, json v, const std::string&) {
  const auto& entries = step.table->entries();
  std::vector<bool> hit(entries.size(), false);
  for (const auto& value : values_of(v)) {
    if (auto i = step.table->find(value)) hit[*i] = true;
  }
  // Table order, not value order: the table says which match matters most.
  std::vector<std::string> out;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (hit[i] && std::find(out.begin(), out.end(), entries[i].value) == out.end()) out.push_back(entries[i].value);
  }
  return from_values(std::move(out));
}

Result<json> apply_if(const Step& step, json v, const std::string&) {
  const auto values = values_of(v);
  if (std::any_of(values.begin(), values.end(), truthy)) return json(step.args[0]);
  return step.args.size() > 1 ? json(step.args[1]) : json();
}

void prepare_replace(Step& step, const std::vector<int>& columns, const Lookups*) {
  try {
    step.regex.emplace(step.args[0]);
  } catch (const RegexError& e) {
    throw TemplateError("bad regex " + in_quotes(step.args[0]) + " for 'replace': " + e.problem +
                            "; expected an ECMAScript regular expression",
                        columns[0]);
  }
}

void prepare_split(Step& step, const std::vector<int>& columns, const Lookups*) {
  if (step.args[0].empty()) throw TemplateError("empty separator for 'split'; expected at least one character", columns[0]);
}

void prepare_e164(Step& step, const std::vector<int>& columns, const Lookups*) {
  if (step.args.empty()) return;
  std::string_view code = step.args[0];
  if (code.starts_with('+')) code.remove_prefix(1);
  if (code.empty() || code.size() > 3 || code.front() == '0' || !std::all_of(code.begin(), code.end(), is_digit)) {
    throw TemplateError("bad country code " + in_quotes(step.args[0]) + " for 'e164'; expected + and 1 to 3 digits, such as '+49'",
                        columns[0]);
  }
  step.args[0] = std::string(code);  // the digits, as to_e164 wants them
}

void prepare_map(Step& step, const std::vector<int>& columns, const Lookups* lookups) {
  const std::string& name = step.args[0];
  if (lookups) {
    if (auto it = lookups->find(name); it != lookups->end() && it->second) {
      step.table = it->second;
      return;
    }
  }
  std::vector<std::string> names;
  if (lookups) {
    for (const auto& [n, table] : *lookups) names.push_back(n);
  }
  throw TemplateError::unknown("unknown lookup table " + in_quotes(name), name, std::move(names),
                               "known tables:", "no lookup tables are defined", columns[0]);
}

struct FunctionSpec {
  const char* name;
  int min_args;
  int max_args;
  Apply apply;
  Prepare prepare;  // null: the arguments need no check beyond their count
};

// Every template function, in one table (documented in mapping.h).
const FunctionSpec kFunctions[] = {
    {"lower", 0, 0, [](const Step&, json v, const std::string&) { return map_strings(v, lower_copy); }, nullptr},
    {"upper", 0, 0, [](const Step&, json v, const std::string&) { return map_strings(v, upper_copy); }, nullptr},
    {"trim", 0, 0,
     [](const Step&, json v, const std::string&) {
       return map_strings(v, [](const std::string& s) { return trim_copy(s); });
     },
     nullptr},
    {"default", 1, 1,
     [](const Step& step, json v, const std::string&) -> Result<json> {
       return is_empty(v) ? json(step.args[0]) : v;
     },
     nullptr},
    {"int", 0, 0, apply_typed, nullptr},
    {"bool", 0, 0, apply_typed, nullptr},
    {"first", 0, 0,
     [](const Step&, json v, const std::string&) -> Result<json> {
       return v.is_array() ? (v.empty() ? json() : v.front()) : v;
     },
     nullptr},
    {"join", 0, 1, apply_join, nullptr},
    {"replace", 2, 2,
     [](const Step& step, json v, const std::string& attribute) {
       return map_strings(v, [&](const std::string& s) -> Result<std::string> {
         auto out = step.regex->replace(s, step.args[1]);
         if (!out) return Error{ErrorKind::kInvalid, "attribute " + in_quotes(attribute) + ": " + out.error().message};
         return out;
       });
     },
     prepare_replace},
    {"split", 1, 1, apply_split, prepare_split},
    {"digits", 0, 0,
     [](const Step&, json v, const std::string&) {
       return map_strings(v, [](std::string s) {
         std::erase_if(s, [](char c) { return !is_digit(c); });
         return s;
       });
     },
     nullptr},
    {"e164", 0, 1,
     [](const Step& step, json v, const std::string& attribute) {
       const std::string country = step.args.empty() ? "" : step.args[0];
       return map_strings(v, [&](const std::string& s) { return to_e164(s, country, attribute); });
     },
     prepare_e164},
    {"equals", 1, 1,
     [](const Step& step, json v, const std::string&) -> Result<json> {
       const auto values = values_of(v);
       return from_bool(std::find(values.begin(), values.end(), step.args[0]) != values.end());
     },
     nullptr},
    {"present", 0, 0,
     [](const Step&, json v, const std::string&) -> Result<json> {
       const auto values = values_of(v);
       return from_bool(std::any_of(values.begin(), values.end(), [](const std::string& s) { return !s.empty(); }));
     },
     nullptr},
    {"if", 1, 2, apply_if, nullptr},
    {"map", 1, 1, apply_map, prepare_map},
};

const FunctionSpec* find_function(std::string_view name) {
  for (const auto& f : kFunctions) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

std::vector<std::string> function_names() {
  std::vector<std::string> out;
  for (const auto& f : kFunctions) out.push_back(f.name);
  return out;
}

// --- parsing ----------------------------------------------------------------------

// Parses the inside of one {...}; `base` is the 0-based offset of the text
// after '{' in the whole template, for error columns.
Template::Segment parse_expr(std::string_view expr, std::size_t base, const Lookups* lookups) {
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
      throw TemplateError::unknown("unknown function " + in_quotes(fn), fn, function_names(), "known functions:", "",
                                   col(fn_start));
    }
    Template::Step step{fn, {}, std::nullopt, nullptr};
    std::vector<int> columns;
    skip();
    if (i < expr.size() && expr[i] == ':') {
      ++i;
      while (true) {
        skip();
        std::string arg;
        columns.push_back(col(i));
        if (i < expr.size() && (expr[i] == '\'' || expr[i] == '"')) {
          const char quote = expr[i];
          const std::size_t quote_at = i;
          ++i;
          bool closed = false;
          while (i < expr.size()) {
            // Only quotes and backslashes are escaped, so "\d" reaches a regex intact.
            if (expr[i] == '\\' && i + 1 < expr.size() &&
                (expr[i + 1] == '\'' || expr[i + 1] == '"' || expr[i + 1] == '\\')) {
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
    if (spec->prepare) spec->prepare(step, columns, lookups);
    seg.steps.push_back(std::move(step));
  }
  return seg;
}

}  // namespace

TemplateError TemplateError::unknown(std::string what, std::string name, std::vector<std::string> known,
                                     std::string_view known_label, std::string_view none, int col) {
  std::string message = what;
  if (!known.empty()) {
    message += "; " + std::string(known_label);
    for (std::size_t i = 0; i < known.size(); ++i) message += (i ? ", " : " ") + known[i];
  } else if (!none.empty()) {
    message += "; " + std::string(none);
  }
  TemplateError e(std::move(message), col);
  e.unknown_what = std::move(what);
  e.unknown_name = std::move(name);
  e.known_names = std::move(known);
  return e;
}

LookupTable::LookupTable(std::vector<Entry> entries) : entries_(std::move(entries)) {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    exact_.emplace(entries_[i].key, i);  // emplace keeps the first of equal keys
    folded_.emplace(lower_copy(entries_[i].key), i);
  }
}

std::optional<std::size_t> LookupTable::find(std::string_view key) const {
  if (auto it = exact_.find(std::string(key)); it != exact_.end()) return it->second;
  if (auto it = folded_.find(lower_copy(std::string(key))); it != folded_.end()) return it->second;
  return std::nullopt;
}

Template Template::parse(std::string_view text, const Lookups* lookups) {
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
      t.segments_.push_back(parse_expr(text.substr(i + 1, j - i - 1), i + 1, lookups));
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
    const Step* emptied_by = nullptr;  // the step that left no value, for the message
    for (const auto& step : seg.steps) {
      const bool had_value = !v.is_null();
      auto r = find_function(step.function)->apply(step, std::move(v), seg.attribute);
      if (!r) return r.error();
      v = std::move(r).value();
      if (had_value && v.is_null()) emptied_by = &step;
    }
    if (v.is_null()) {
      if (emptied_by) {
        return Error{ErrorKind::kInvalid,
                     "attribute " + in_quotes(seg.attribute) + " has no value after '| " + emptied_by->function + "'"};
      }
      return Error{ErrorKind::kInvalid, "attribute " + in_quotes(seg.attribute) + (attr ? " has no value" : " is missing")};
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
