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
//   regex R        some value contains a match of R (ECMAScript; anchor with ^...$)
//   in [V...]      some value is one of the list
//   present        the attribute has at least one non-empty value (`present: false`: it has none)
// combined with all [...] (and), any [...] (or) and not.
//
// Immutable after construction; `decide` is thread safe.
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "core/record.h"

namespace dirsync::core {

class Condition {
 public:
  enum class Kind { kEquals, kNotEquals, kRegex, kIn, kPresent, kAbsent, kAll, kAny, kNot };

  static Condition equals(std::string attribute, std::string value);
  static Condition not_equals(std::string attribute, std::string value);
  // Throws std::regex_error for a bad pattern (the config loader reports it).
  static Condition regex(std::string attribute, const std::string& pattern);
  static Condition in(std::string attribute, std::vector<std::string> values);
  static Condition present(std::string attribute, bool present);
  static Condition all(std::vector<Condition> parts);
  static Condition any(std::vector<Condition> parts);
  static Condition negate(Condition part);

  bool matches(const Record& record) const;
  // Why `matches` gave its answer, in operator words:
  // "department equals 'Sales'", "not (title matches /^Contractor/)",
  // for all/any the part that decided.
  std::string explain(const Record& record) const;
  // The condition itself: "all(department equals 'Sales', mail is present)".
  std::string describe() const;

 private:
  Kind kind_ = Kind::kAll;
  std::string attribute_;
  std::vector<std::string> values_;
  std::string pattern_;
  std::shared_ptr<const std::regex> regex_;
  std::vector<Condition> parts_;
};

struct FilterDecision {
  bool keep = true;
  std::string reason;  // "no filter", "included: ...", "excluded: ...", "not included: ..."
};

class Filter {
 public:
  Filter() = default;
  Filter(std::optional<Condition> include, std::optional<Condition> exclude)
      : include_(std::move(include)), exclude_(std::move(exclude)) {}

  bool empty() const { return !include_ && !exclude_; }
  bool keeps(const Record& record) const;
  FilterDecision decide(const Record& record) const;

 private:
  std::optional<Condition> include_;
  std::optional<Condition> exclude_;
};

}  // namespace dirsync::core
