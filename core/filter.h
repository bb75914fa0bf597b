#pragma once
// Per-job record filters: which source records a job manages.
//
// A Filter has an optional `include` and an optional `exclude` condition; a
// record is kept when it matches `include` (or there is none) and does not
// match `exclude`. A record that is not kept counts as "not in the source":
// a user already in the snapshot is detached (or handled by on_missing), and
// plans say that the filter is why.
//
// Conditions on a multi-valued attribute look at every value:
//   equals V       some value is exactly V
//   not_equals V   no value is V (an absent attribute qualifies)
//   regex R        some value contains a match of R (core/regex.h: ECMAScript, bytes;
//                  anchor with ^...$)
//   in [V...]      some value is one of the list
//   present        the attribute has at least one non-empty value (`present: false`: it has none)
// combined with all [...] (and), any [...] (or) and not.
//
// A regex test can fail to give an answer: Boost.Regex gives up on a value
// that would take it too long (see core/regex.h). Such a record is undecided
// (FilterDecision::decided), never silently kept or dropped.
//
// Immutable after construction; `decide` is thread safe.
#include <optional>
#include <string>
#include <vector>

#include "core/record.h"
#include "core/regex.h"
#include "core/result.h"

namespace dirsync::core {

class Condition {
 public:
  enum class Kind { kEquals, kNotEquals, kRegex, kIn, kPresent, kAbsent, kAll, kAny, kNot };

  static Condition equals(std::string attribute, std::string value);
  static Condition not_equals(std::string attribute, std::string value);
  // Throws RegexError for a bad pattern (the config loader reports it).
  static Condition regex(std::string attribute, const std::string& pattern);
  static Condition in(std::string attribute, std::vector<std::string> values);
  static Condition present(std::string attribute, bool present);
  static Condition all(std::vector<Condition> parts);
  static Condition any(std::vector<Condition> parts);
  static Condition negate(Condition part);

  // Whether the record satisfies the condition, or an Error (kInvalid) when a
  // regex test gave up on one of its values: "filter condition on 'title'
  // cannot be decided: regex /(a+)+$/ gave up on a value of 31 bytes: ...".
  // all/any stop at the first part that decides, as && and || do.
  Result<bool> evaluate(const Record& record) const;
  // Why `evaluate` gave its answer, in operator words:
  // "department equals 'Sales'", "not (title matches /^Contractor/)",
  // for all/any the part that decided. Meant for a record that `evaluate`
  // decided; a part that cannot be decided counts as not holding.
  std::string explain(const Record& record) const;
  // The condition itself: "all(department equals 'Sales', mail is present)".
  std::string describe() const;

 private:
  Kind kind_ = Kind::kAll;
  std::string attribute_;
  std::vector<std::string> values_;
  std::optional<Regex> regex_;
  std::vector<Condition> parts_;
};

struct FilterDecision {
  bool keep = true;
  // "no filter", "included: ...", "excluded: ...", "not included: ...", or
  // for an undecided record "undecided: <the condition's Error message>".
  std::string reason;
  // False when a condition could not be evaluated for this record (a regex
  // gave up on one of its values). The record is then neither kept nor
  // dropped: the caller reports it as an invalid record with `reason`, and
  // neither sends it nor detaches its user. `keep` is true then, so that a
  // caller that looks at `keep` alone never detaches the user, and a
  // `protect:` condition keeps protecting it.
  bool decided = true;
};

class Filter {
 public:
  Filter() = default;
  Filter(std::optional<Condition> include, std::optional<Condition> exclude)
      : include_(std::move(include)), exclude_(std::move(exclude)) {}

  bool empty() const { return !include_ && !exclude_; }
  // decide(record).keep: true for an undecided record too.
  bool keeps(const Record& record) const;
  FilterDecision decide(const Record& record) const;

 private:
  std::optional<Condition> include_;
  std::optional<Condition> exclude_;
};

}  // namespace dirsync::core
