#include "core/filter.h"

#include <algorithm>

namespace dirsync::core {
namespace {

std::string quote(const std::string& v) { return "'" + v + "'"; }

std::string join_quoted(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : ", ") + quote(v);
  return out;
}

const std::vector<std::string>& values_of(const Record& record, const std::string& attribute) {
  static const std::vector<std::string> kNone;
  const Attribute* a = record.find(attribute);
  return a ? a->values : kNone;
}

}  // namespace

Condition Condition::equals(std::string attribute, std::string value) {
  Condition c;
  c.kind_ = Kind::kEquals;
  c.attribute_ = std::move(attribute);
  c.values_ = {std::move(value)};
  return c;
}

Condition Condition::not_equals(std::string attribute, std::string value) {
  Condition c = equals(std::move(attribute), std::move(value));
  c.kind_ = Kind::kNotEquals;
  return c;
}

Condition Condition::regex(std::string attribute, const std::string& pattern) {
  Condition c;
  c.kind_ = Kind::kRegex;
  c.attribute_ = std::move(attribute);
  c.regex_.emplace(pattern);
  return c;
}

Condition Condition::in(std::string attribute, std::vector<std::string> values) {
  Condition c;
  c.kind_ = Kind::kIn;
  c.attribute_ = std::move(attribute);
  c.values_ = std::move(values);
  return c;
}

Condition Condition::present(std::string attribute, bool present) {
  Condition c;
  c.kind_ = present ? Kind::kPresent : Kind::kAbsent;
  c.attribute_ = std::move(attribute);
  return c;
}

Condition Condition::all(std::vector<Condition> parts) {
  Condition c;
  c.kind_ = Kind::kAll;
  c.parts_ = std::move(parts);
  return c;
}

Condition Condition::any(std::vector<Condition> parts) {
  Condition c = all(std::move(parts));
  c.kind_ = Kind::kAny;
  return c;
}

Condition Condition::negate(Condition part) {
  Condition c;
  c.kind_ = Kind::kNot;
  c.parts_.push_back(std::move(part));
  return c;
}

Result<bool> Condition::evaluate(const Record& record) const {
  const auto& values = values_of(record, attribute_);
  auto has = [&](const std::string& v) { return std::find(values.begin(), values.end(), v) != values.end(); };
  switch (kind_) {
    case Kind::kEquals:
      return has(values_[0]);
    case Kind::kNotEquals:
      return !has(values_[0]);
    case Kind::kRegex:
      for (const auto& v : values) {
        auto found = regex_->search(v);
        if (!found) {
          return Error{ErrorKind::kInvalid,
                       "filter condition on " + quote(attribute_) + " cannot be decided: " + found.error().message};
        }
        if (found.value()) return true;
      }
      return false;
    case Kind::kIn:
      return std::any_of(values_.begin(), values_.end(), has);
    case Kind::kPresent:
    case Kind::kAbsent: {
      const bool present = std::any_of(values.begin(), values.end(), [](const std::string& v) { return !v.empty(); });
      return present == (kind_ == Kind::kPresent);
    }
    case Kind::kAll:
    case Kind::kAny: {
      // all: the first part that does not hold decides; any: the first that does.
      const bool decisive = kind_ == Kind::kAny;
      for (const auto& c : parts_) {
        auto r = c.evaluate(record);
        if (!r || r.value() == decisive) return r;
      }
      return !decisive;
    }
    case Kind::kNot: {
      auto r = parts_[0].evaluate(record);
      if (!r) return r;
      return !r.value();
    }
  }
  return false;
}

std::string Condition::describe() const {
  auto list = [&](const char* name) {
    std::string out = std::string(name) + "(";
    for (std::size_t i = 0; i < parts_.size(); ++i) out += (i ? ", " : "") + parts_[i].describe();
    return out + ")";
  };
  switch (kind_) {
    case Kind::kEquals:
      return attribute_ + " equals " + quote(values_[0]);
    case Kind::kNotEquals:
      return attribute_ + " does not equal " + quote(values_[0]);
    case Kind::kRegex:
      return attribute_ + " matches /" + regex_->pattern() + "/";
    case Kind::kIn:
      return attribute_ + " in [" + join_quoted(values_) + "]";
    case Kind::kPresent:
      return attribute_ + " is present";
    case Kind::kAbsent:
      return attribute_ + " is absent";
    case Kind::kAll:
      return list("all");
    case Kind::kAny:
      return list("any");
    case Kind::kNot:
      return "not (" + parts_[0].describe() + ")";
  }
  return "";
}

std::string Condition::explain(const Record& record) const {
  // For a decided record every part evaluated here was decided too: the loops
  // below stop where evaluate stopped.
  auto holds = [&](const Condition& c) {
    auto r = c.evaluate(record);
    return r.ok() && r.value();
  };
  const bool result = holds(*this);
  switch (kind_) {
    case Kind::kAll:
      // False: the first part that failed; true: all of them.
      if (!result) {
        for (const auto& c : parts_) {
          if (!holds(c)) return "not " + c.describe();
        }
      }
      return describe();
    case Kind::kAny:
      if (result) {
        for (const auto& c : parts_) {
          if (holds(c)) return c.describe();
        }
      }
      return "none of " + describe();
    case Kind::kNot:
      return result ? describe() : parts_[0].explain(record);
    default:
      return result ? describe() : "not " + describe();
  }
}

bool Filter::keeps(const Record& record) const { return decide(record).keep; }

FilterDecision Filter::decide(const Record& record) const {
  if (empty()) return {true, "no filter"};
  auto undecided = [](const Error& e) { return FilterDecision{true, "undecided: " + e.message, false}; };
  if (include_) {
    auto included = include_->evaluate(record);
    if (!included) return undecided(included.error());
    if (!included.value()) return {false, "not included: " + include_->explain(record)};
  }
  if (exclude_) {
    auto excluded = exclude_->evaluate(record);
    if (!excluded) return undecided(excluded.error());
    if (excluded.value()) return {false, "excluded: " + exclude_->explain(record)};
  }
  if (include_) return {true, "included: " + include_->explain(record)};
  return {true, "not excluded: " + exclude_->explain(record)};
}

}  // namespace dirsync::core
