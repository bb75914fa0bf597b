#include "core/regex.h"

#include <algorithm>
#include <stdexcept>

#include <boost/regex.hpp>

namespace dirsync::core {

struct Regex::Compiled {
  boost::regex re;
};

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// The index just past the bracket expression whose '[' is at `i - 1`; the end
// when it is not closed (Boost reports that).
std::size_t skip_class(std::string_view p, std::size_t i) {
  if (i < p.size() && p[i] == '^') ++i;
  if (i < p.size() && p[i] == ']') ++i;  // a leading ']' is a member
  while (i < p.size()) {
    const char c = p[i++];
    if (c == ']') return i;
    if (c == '\\') {
      ++i;
    } else if (c == '[' && i < p.size() && (p[i] == ':' || p[i] == '=' || p[i] == '.')) {
      // [:alpha:], [=a=], [.a.]: may hold a ']' of their own.
      const char close[] = {p[i], ']', '\0'};
      const std::size_t end = p.find(close, i + 1);
      i = end == std::string_view::npos ? p.size() : end + 2;
    }
  }
  return p.size();
}

// Throws RegexError for a repeat count ({m}, {m,}, {m,n}: a '{' outside [...],
// not escaped) above kMaxRepeatCount. A '{' that does not start a count is
// text, for Boost as for ECMAScript.
void refuse_large_counts(std::string_view p) {
  std::size_t i = 0;
  while (i < p.size()) {
    const char c = p[i++];
    if (c == '\\') {
      if (i >= p.size()) return;
      const char e = p[i++];
      if (e == 'Q') {  // \Q...\E: quoted text
        const std::size_t end = p.find("\\E", i);
        i = end == std::string_view::npos ? p.size() : end + 2;
      } else if (is_letter(e) && i < p.size() && p[i] == '{') {  // \x{41}, \p{L}, \g{1}: an argument
        const std::size_t end = p.find('}', i);
        i = end == std::string_view::npos ? p.size() : end + 1;
      }
      continue;
    }
    if (c == '[') {
      i = skip_class(p, i);
      continue;
    }
    if (c != '{') continue;
    std::size_t j = i;
    auto number = [&](std::size_t& value) {
      const std::size_t start = j;
      for (value = 0; j < p.size() && is_digit(p[j]); ++j) {
        value = std::min<std::size_t>(value * 10 + static_cast<std::size_t>(p[j] - '0'), kMaxRepeatCount + 1);
      }
      return j > start;
    };
    std::size_t low = 0, high = 0;
    if (!number(low)) continue;
    if (j < p.size() && p[j] == ',') {
      ++j;
      (void)number(high);
    }
    if (j >= p.size() || p[j] != '}') continue;
    if (low > kMaxRepeatCount || high > kMaxRepeatCount) {
      throw RegexError("a repeat count above " + std::to_string(kMaxRepeatCount));
    }
    i = j + 1;
  }
}

// Boost's codes in our words; Boost's own messages quote the pattern with
// >>>HERE>>> marks, which read badly inside a config error.
std::string problem_of(boost::regex_constants::error_type code) {
  namespace rc = boost::regex_constants;
  switch (code) {
    case rc::error_paren:
    case rc::error_right_paren: return "unbalanced ( )";
    case rc::error_brack: return "unbalanced [ ]";
    case rc::error_brace: return "unbalanced { }";
    case rc::error_badbrace: return "a bad {m,n} count";
    case rc::error_collate:
    case rc::error_ctype:
    case rc::error_range: return "a bad character class or range";
    case rc::error_escape: return "a bad escape";
    case rc::error_backref: return "a back reference to a group that does not exist";
    case rc::error_badrepeat: return "a repeat (* + ? {n}) with nothing to repeat";
    case rc::error_complexity: return "groups nested too deeply";
    case rc::error_perl_extension: return "a bad (?...) group";
    default: return "a syntax error";
  }
}

// Boost gives up with a plain std::runtime_error (error_complexity: too many
// steps; error_stack: too much backtracking memory); to the operator both are
// a pattern that backtracks too much on this value.
Error gave_up(const std::string& pattern, std::size_t size) {
  return Error{ErrorKind::kInvalid, "regex /" + pattern + "/ gave up on a value of " + std::to_string(size) +
                                        " bytes: too much backtracking; a pattern without nested or overlapping "
                                        "repeats (such as (a+)+ or (a|ab)*) avoids this"};
}

// Appends `with` for match `m` of `text`, the way std::regex_replace reads
// ECMAScript replacement text (see Regex::replace).
void append_replacement(std::string& out, const boost::cmatch& m, std::string_view with) {
  for (std::size_t i = 0; i < with.size(); ++i) {
    if (with[i] != '$' || i + 1 >= with.size()) {
      out += with[i];
      continue;
    }
    const char next = with[i + 1];
    if (next == '$') {
      out += '$';
    } else if (next == '&') {
      out.append(m[0].first, m[0].second);
    } else if (next == '`') {
      out.append(m.prefix().first, m.prefix().second);
    } else if (next == '\'') {
      out.append(m.suffix().first, m.suffix().second);
    } else if (is_digit(next)) {
      std::size_t group = static_cast<std::size_t>(next - '0');
      if (i + 2 < with.size() && is_digit(with[i + 2])) {
        group = group * 10 + static_cast<std::size_t>(with[i + 2] - '0');
        ++i;
      }
      if (group < m.size() && m[static_cast<int>(group)].matched) {
        out.append(m[static_cast<int>(group)].first, m[static_cast<int>(group)].second);
      }
    } else {
      out += '$';
      continue;  // the next character is plain text
    }
    ++i;
  }
}

// A string_view's bounds as the pointers Boost works on (never null).
std::pair<const char*, const char*> bounds(std::string_view text) {
  static constexpr char kEmpty[] = "";
  const char* begin = text.data() ? text.data() : kEmpty;
  return {begin, begin + text.size()};
}

}  // namespace

Regex::Regex(std::string pattern) : pattern_(std::move(pattern)) {
  refuse_large_counts(pattern_);
  // no_mod_m / no_mod_s: ^ $ and '.' as in ECMAScript (see the header).
  const auto flags = boost::regex::ECMAScript | boost::regex::no_mod_m | boost::regex::no_mod_s;
  try {
    compiled_ = std::make_shared<const Compiled>(Compiled{boost::regex(pattern_, flags)});
  } catch (const boost::regex_error& e) {
    throw RegexError(problem_of(e.code()));
  }
}

Result<bool> Regex::search(std::string_view text) const {
  const auto [begin, end] = bounds(text);
  try {
    return boost::regex_search(begin, end, compiled_->re);
  } catch (const std::runtime_error&) {
    return gave_up(pattern_, text.size());
  }
}

Result<std::string> Regex::replace(std::string_view text, std::string_view with) const {
  const auto [begin, end] = bounds(text);
  std::string out;
  try {
    const char* copied = begin;  // the text before it is in `out`
    for (boost::cregex_iterator it(begin, end, compiled_->re), stop; it != stop; ++it) {
      const boost::cmatch& m = *it;
      out.append(copied, m[0].first);
      append_replacement(out, m, with);
      copied = m[0].second;
    }
    out.append(copied, end);
  } catch (const std::runtime_error&) {
    return gave_up(pattern_, text.size());
  }
  return out;
}

}  // namespace dirsync::core
