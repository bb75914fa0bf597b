#pragma once
// Regular expressions that the operator writes: a filter's `regex:` test and a
// mapping's `replace`. They run against source values, which nobody bounds.
//
// Boost.Regex, not std::regex: libstdc++'s std::regex recurses a few frames
// per character (a long value overflows the stack), reads big {m,n} counts and
// back references without overflow checks, and backtracks without a step
// limit ((a+)+$ never finishes on 40 bytes). Boost.Regex matches without
// recursion and gives up with an error once a match has taken about
// max(N·S², min(N², 10^8)) steps (N the value's length, S the pattern's size;
// 10^8 steps is about a second) or more than a few MB of backtracking memory.
// Giving up is a per-record Error here, never a crash.
//
// Syntax: ECMAScript as std::regex read it, through Boost's perl syntax (a
// superset: it also has lookbehind, (?i), \A, \z, ...). As in ECMAScript, ^ and
// $ anchor at the value's start and end only (not at newlines inside it) and
// '.' matches neither \n nor \r (Boost: nor \f). Values are bytes: '.' is one
// byte of a UTF-8 sequence, and \w, [[:alpha:]] are ASCII.
//
// Refused when compiled, besides what Boost refuses: a repeat count above
// kMaxRepeatCount ({m}, {m,}, {m,n}). Boost does not count the steps of a
// one-character repeat against its limit, so x{99999999} costs N² steps on a
// long value; no directory attribute needs more than a few hundred.
//
// Thread safety: immutable after construction; search and replace may run
// concurrently. Copies share the compiled pattern.
#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace dirsync::core {

inline constexpr std::size_t kMaxRepeatCount = 1000;

// Thrown by Regex's constructor for a pattern that does not compile.
struct RegexError : std::exception {
  explicit RegexError(std::string p) : problem(std::move(p)) {}
  const char* what() const noexcept override { return problem.c_str(); }
  // In our own words, without the pattern (the caller quotes it with its
  // context): "unbalanced ( )", "a repeat count above 1000".
  std::string problem;
};

class Regex {
 public:
  // Throws RegexError. An empty pattern matches everywhere.
  explicit Regex(std::string pattern);

  const std::string& pattern() const { return pattern_; }

  // Whether some part of `text` matches (anchor with ^...$ for all of it).
  // An Error (kInvalid) when the match gave up on this value:
  // "regex /(a+)+$/ gave up on a value of 31 bytes: too much backtracking; ...".
  Result<bool> search(std::string_view text) const;

  // `text` with every match replaced by `with`, read as std::regex_replace
  // read ECMAScript replacement text: $n or $nn a group (a second digit is
  // always read; a group that does not exist or did not take part is empty),
  // $0 and $& the match, $` the text between the previous match and this one,
  // $' the text after this one, $$ a dollar; anything else, a backslash
  // included, stays as written. Empty matches count ('x*' on "ab" with "-"
  // gives "-a-b-").
  // The same Error as `search` when a match gave up.
  Result<std::string> replace(std::string_view text, std::string_view with) const;

 private:
  struct Compiled;
  std::string pattern_;
  std::shared_ptr<const Compiled> compiled_;
};

}  // namespace dirsync::core
