#include "config/yaml_section.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <unistd.h>

namespace dirsync::config::detail {
namespace {

// yaml-cpp marks are 0-based and -1 for nodes it cannot place.
int one_based(int v) { return v < 0 ? 1 : v + 1; }

// "missing value for 'k'" (a null) or "bad value 'x' for 'k'".
std::string bad_value(std::string_view key, const YAML::Node& value) {
  if (value.IsNull()) return "missing value for " + in_quotes(key);
  return "bad value " + describe_value(value) + " for " + in_quotes(key);
}

// Nulls carry no useful mark (an empty value is placed on the next line), so
// errors about them point at the key.
YAML::Mark mark_of(Section& sec, std::string_view key, const YAML::Node& value) {
  if (value.IsNull()) {
    if (auto m = sec.key_mark(key)) return *m;
    return sec.mark();
  }
  return value.Mark();
}

void report(Section& sec, std::string_view key, const YAML::Node& value, std::string_view expected) {
  sec.ctx().diag.error(mark_of(sec, key, value), bad_value(key, value), expected);
}

std::size_t utf8_length(unsigned long cp) {
  if (cp < 0x80) return 1;
  if (cp < 0x800) return 2;
  if (cp < 0x10000) return 3;
  return 4;
}

// For a double-quoted escape starting at `at` (the backslash): how many source
// bytes it spans and how many bytes it cooks to.
std::pair<std::size_t, std::size_t> escape_size(std::string_view line, std::size_t at) {
  if (at + 1 >= line.size()) return {1, 0};
  auto hex = [&](std::size_t digits) -> std::pair<std::size_t, std::size_t> {
    unsigned long cp = 0;
    const char* first = line.data() + at + 2;
    const char* last = first + std::min(digits, line.size() - (at + 2));
    std::from_chars(first, last, cp, 16);
    return {2 + digits, utf8_length(cp)};
  };
  switch (line[at + 1]) {
    case 'x': return hex(2);
    case 'u': return hex(4);
    case 'U': return hex(8);
    case 'N': return {2, 2};  // U+0085
    case '_': return {2, 2};  // U+00A0
    case 'L':
    case 'P': return {2, 3};  // U+2028, U+2029
    default: return {2, 1};
  }
}

}  // namespace

void report_bad_value(Section& sec, std::string_view key, const YAML::Node& value, std::string_view expected) {
  report(sec, key, value, expected);
}

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// --- Diagnostics ------------------------------------------------------------

void Diagnostics::error(const YAML::Mark& mark, std::string_view what, std::string_view expected) {
  error_at(one_based(mark.line), one_based(mark.column), what, expected);
}

void Diagnostics::error_at(int line, int column, std::string_view what, std::string_view expected) {
  std::string text = file_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + std::string(what);
  if (!expected.empty()) text += "; " + std::string(expected);
  entries_.push_back({line, column, std::move(text)});
}

Position Diagnostics::position(const YAML::Mark& mark) const {
  return Position{file_, one_based(mark.line), one_based(mark.column)};
}

std::vector<std::string> Diagnostics::messages() const {
  std::vector<Entry> sorted = entries_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  std::vector<std::string> out;
  out.reserve(sorted.size());
  for (auto& e : sorted) out.push_back(std::move(e.text));
  return out;
}

// --- words ------------------------------------------------------------------

std::string describe_value(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "(a map)";
    case YAML::NodeType::Sequence: return "(a list)";
    case YAML::NodeType::Scalar: {
      // Long values are cut: the message is about the shape, not the content.
      constexpr std::size_t kMax = 60;
      const std::string& s = node.Scalar();
      return s.size() > kMax ? in_quotes(s.substr(0, kMax) + "...") : in_quotes(s);
    }
    default: return "(empty)";
  }
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

// --- Section ----------------------------------------------------------------

Section::Section(Context& ctx, YAML::Node node, std::string what, YAML::Mark mark)
    : ctx_(ctx), node_(std::move(node)), what_(std::move(what)), mark_(mark) {}

void check_duplicates(Context& ctx, const YAML::Node& map, std::string_view what) {
  if (!map.IsMap()) return;
  // yaml-cpp 0.7 keeps every pair of a map, duplicates included, and lookups
  // return the first; a second value would be silently ignored, so it is an error.
  std::map<std::string, YAML::Mark> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) continue;
    const std::string& key = kv.first.Scalar();
    auto [it, inserted] = seen.emplace(key, kv.first.Mark());
    if (!inserted) {
      ctx.diag.error(kv.first.Mark(), "duplicate key " + in_quotes(key) + " " + std::string(what),
                     "expected each key once (first at line " + std::to_string(one_based(it->second.line)) + ")");
    }
  }
}

void Section::check_keys(const std::vector<KeyDoc>& known) {
  if (!node_.IsMap()) return;
  std::vector<std::string> names;
  for (const auto& k : known) names.push_back(k.key);
  std::vector<std::string> sorted_names = names;
  std::sort(sorted_names.begin(), sorted_names.end());

  check_duplicates(ctx_, node_, what_);
  for (const auto& kv : node_) {
    if (!kv.first.IsScalar()) {
      ctx_.diag.error(kv.first.Mark(), "bad key " + describe_value(kv.first) + " " + what_,
                      "expected a plain key name");
      continue;
    }
    const std::string& key = kv.first.Scalar();
    if (std::find(names.begin(), names.end(), key) != names.end()) continue;
    ctx_.diag.error(kv.first.Mark(), "unknown key " + in_quotes(key) + " " + what_, suggestion(key, sorted_names));
  }
  for (const auto& k : known) {
    if (!k.required || find(k.key)) continue;
    const bool is_list = k.type.rfind("one of", 0) == 0;
    const char* article = is_list ? "" : (std::string_view("aeiou").find(k.type.front()) != std::string_view::npos ? "an " : "a ");
    ctx_.diag.error(mark_, "missing required key " + in_quotes(k.key) + " " + what_, "expected " + std::string(article) + k.type);
  }
}

std::optional<YAML::Node> Section::find(std::string_view key) const {
  if (!node_.IsMap()) return std::nullopt;
  for (const auto& kv : node_) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
  }
  return std::nullopt;
}

std::optional<YAML::Mark> Section::key_mark(std::string_view key) const {
  if (!node_.IsMap()) return std::nullopt;
  for (const auto& kv : node_) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.first.Mark();
  }
  return std::nullopt;
}

// --- scalar grammar ---------------------------------------------------------

std::optional<std::int64_t> parse_int(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<bool> parse_bool(std::string_view text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, n);
  if (ec != std::errc()) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  std::int64_t factor = 0;
  if (unit.empty() || unit == "s") factor = 1000;  // a plain number is seconds
  else if (unit == "ms") factor = 1;
  else if (unit == "m") factor = 60'000;
  else if (unit == "h") factor = 3'600'000;
  else return std::nullopt;
  if (n <= 0 || n > std::numeric_limits<std::int64_t>::max() / factor) return std::nullopt;
  return std::chrono::milliseconds(n * factor);
}

// --- readers ----------------------------------------------------------------

std::optional<std::string> read_string(Section& sec, std::string_view key, const YAML::Node& value) {
  if (!value.IsScalar() || value.Scalar().empty()) {
    report(sec, key, value, value.IsScalar() ? "expected a non-empty string" : "expected a string");
    return std::nullopt;
  }
  return value.Scalar();
}

std::optional<std::int64_t> read_int(Section& sec, std::string_view key, const YAML::Node& value, std::int64_t min,
                                     std::int64_t max, std::string_view expected) {
  std::optional<std::int64_t> v;
  if (value.IsScalar()) v = parse_int(value.Scalar());
  if (!v || *v < min || *v > max) {
    report(sec, key, value, expected);
    return std::nullopt;
  }
  return v;
}

std::optional<double> read_number(Section& sec, std::string_view key, const YAML::Node& value, double min,
                                  double max, std::string_view expected) {
  std::optional<double> v;
  if (value.IsScalar()) {
    std::string_view text = value.Scalar();
    if (!text.empty() && text.back() == '%') text.remove_suffix(1);  // "10%" reads naturally for a percentage
    double d = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
    if (!text.empty() && ec == std::errc() && end == text.data() + text.size()) v = d;
  }
  // Written so that NaN fails too.
  if (!v || !(*v >= min && *v <= max)) {
    report(sec, key, value, expected);
    return std::nullopt;
  }
  return v;
}

std::optional<bool> read_bool(Section& sec, std::string_view key, const YAML::Node& value) {
  std::optional<bool> v;
  if (value.IsScalar()) v = parse_bool(value.Scalar());
  if (!v) report(sec, key, value, "expected true or false");
  return v;
}

std::optional<std::string> read_enum(Section& sec, std::string_view key, const YAML::Node& value,
                                     const std::vector<std::string>& allowed) {
  if (value.IsScalar() && std::find(allowed.begin(), allowed.end(), value.Scalar()) != allowed.end()) {
    return value.Scalar();
  }
  report(sec, key, value, "expected one of: " + join(allowed));
  return std::nullopt;
}

std::optional<std::string> read_path(Section& sec, std::string_view key, const YAML::Node& value) {
  if (!value.IsScalar() || value.Scalar().empty()) {
    report(sec, key, value, "expected a path");
    return std::nullopt;
  }
  std::filesystem::path p(value.Scalar());
  if (p.is_relative()) p = sec.ctx().base_dir / p;
  return p.lexically_normal().string();
}

std::optional<std::chrono::milliseconds> read_duration(Section& sec, std::string_view key, const YAML::Node& value) {
  std::optional<std::chrono::milliseconds> v;
  if (value.IsScalar()) v = parse_duration(value.Scalar());
  if (!v) report(sec, key, value, "expected a duration greater than 0 such as 10s, 500ms, 2m or a number of seconds");
  return v;
}

std::optional<core::Secret> read_secret(Section& sec, std::string_view key, const YAML::Node& value) {
  const std::string_view expected = "expected a secret: ${env:NAME}, ${file:PATH}, ${cred:NAME} or a literal";
  // Never describe_value() here: the scalar may be the secret itself.
  if (!value.IsScalar()) {
    const std::string what = value.IsNull() ? "missing value for " + in_quotes(key)
                                            : "bad value " + describe_value(value) + " for " + in_quotes(key);
    sec.ctx().diag.error(mark_of(sec, key, value), what, expected);
    return std::nullopt;
  }
  if (value.Scalar().empty()) {
    sec.ctx().diag.error(value.Mark(), "empty value for " + in_quotes(key), expected);
    return std::nullopt;
  }
  try {
    return resolve_secret_in(value.Scalar(), sec.ctx().base_dir);
  } catch (const SecretError& e) {
    const std::string ref = e.reference.empty() ? "" : " (" + e.reference + ")";
    sec.ctx().diag.error(value.Mark(), "cannot resolve " + in_quotes(key) + ref + ": " + e.what, e.expected);
    return std::nullopt;
  }
}

// --- template carets --------------------------------------------------------

std::pair<int, int> caret_in_scalar(const Context& ctx, const YAML::Node& scalar, std::size_t offset) {
  const YAML::Mark mark = scalar.Mark();
  const std::pair<int, int> fallback{one_based(mark.line), one_based(mark.column)};
  if (mark.line < 0 || mark.column < 0 || static_cast<std::size_t>(mark.line) >= ctx.lines.size()) return fallback;
  const std::string_view line = ctx.lines[static_cast<std::size_t>(mark.line)];
  const std::size_t start = static_cast<std::size_t>(mark.column);
  if (start >= line.size()) return fallback;
  const std::string& cooked = scalar.Scalar();
  const auto at = [&](std::size_t raw) { return std::pair<int, int>{mark.line + 1, static_cast<int>(raw) + 1}; };

  const char open = line[start];
  if (open == '"' || open == '\'') {
    std::size_t i = start + 1;
    std::size_t k = 0;  // bytes of the cooked value passed so far
    while (k < offset) {
      if (i >= line.size()) return fallback;  // the scalar folds onto the next line
      std::size_t raw = 1, cooked_bytes = 1;
      if (open == '"' && line[i] == '\\') {
        std::tie(raw, cooked_bytes) = escape_size(line, i);
      } else if (open == '\'' && line[i] == '\'') {
        if (i + 1 < line.size() && line[i + 1] == '\'') raw = 2;  // '' is one quote
        else return fallback;
      }
      if (k + cooked_bytes > offset) break;  // the offset falls inside an escape: point at it
      k += cooked_bytes;
      i += raw;
    }
    return at(i);
  }
  // Block scalars, tags and anchors: the value does not start here.
  if (open == '|' || open == '>' || open == '!' || open == '&') return fallback;
  // A plain scalar is its own source text, as long as it stays on this line.
  const std::size_t n = std::min(offset, cooked.size());
  if (line.substr(start, n) != std::string_view(cooked).substr(0, n)) return fallback;
  return at(start + offset);
}

}  // namespace dirsync::config::detail
