#pragma once
// Mapping templates: how a source record becomes a target payload.
//
// Template syntax:   literal text and {expr} segments; "{{" and "}}" are literal braces.
//   expr      := attribute ( "|" function )*
//   function  := name [ ":" arg ( "," arg )* ]
//   arg       := 'single quoted' | "double quoted" | bare-word
// Inside quotes, \' \" and \\ are escapes and any other backslash stays as it
// is, so that regular expressions read as written: replace:'\s+',' '.
//
// Values: an attribute is a list of strings (LDAP and SCIM attributes are
// multi-valued). A list of one is a single value; an absent attribute, or a
// function that leaves no value, is "missing".
//
// Functions, applied left to right. Unless noted, a function works on every
// value of a multi-valued attribute and a missing value stays missing.
//   lower, upper, trim      ASCII case; surrounding whitespace
//   default:'x'             x when the value is missing or empty ("" or no values)
//   int, bool               a typed value (one value only; bool: true/false, yes/no, 1/0, on/off)
//   first                   the first value
//   join[:'sep']            the values joined into one (separator ", " by default)
//   replace:'re','with'     every match of the ECMAScript regex `re` replaced by `with`
//                           ($1.. are groups, $& the match, $$ a dollar; core/regex.h);
//                           the regex is compiled once, when the template is parsed.
//                           Values of any length work; a regex that gives up on a
//                           value (too much backtracking) is a per-record error
//   split:'sep'             each value split on the literal `sep`; empty parts dropped
//   digits                  only the digits 0-9 of each value
//   e164[:'+49']            a phone number as "+" and 8 to 15 digits: spaces, tabs, - . /
//                           ( ) are dropped, "(0)" after an international prefix too;
//                           "00" becomes "+"; a national number (no + or 00) loses its
//                           leading 0 trunk prefix and gets the given country code. An
//                           empty value stays empty; anything else is a per-record error
//   equals:'x'              "true" when some value is exactly x, else "false" (also when missing)
//   present                 "true" when some value is not empty, else "false"
//   if:'then'[,'else']      `then` when the value is truthy (some value is not empty and
//                           not false/0/no/off, ASCII-case-insensitively), else `else`;
//                           without `else` a falsy value becomes missing
//   map:table               every value looked up in a lookup table (see LookupTable);
//                           values not in it are dropped; the results come in TABLE
//                           order, without duplicates, so `| first` picks the match
//                           written first in the table
// e.g. "{department | equals:'Sales' | if:'sales','staff'}",
//      "{memberOf | map:roles | first | default:'3'}".
// All functions are rows of one table (mapping.cc, kFunctions).
//
// A template that is exactly one {expr} yields that expression's typed value
// (so "{age | int}" is an integer); anything else yields a string.
// A missing value without a default is a per-record error, never a crash;
// per-record errors may quote the offending value (as "'Ada' is not an
// integer" does), so that an operator can find and fix the record.
//
// Thread safety: Template, Mapping and LookupTable are immutable after
// construction; render/apply may run concurrently.
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/record.h"
#include "core/regex.h"
#include "core/result.h"

namespace dirsync::core {

enum class FieldType { kAny, kString, kInt, kBool };
const char* to_string(FieldType type);

// Thrown by Template::parse. `column` is the 1-based offset into the template text.
struct TemplateError : std::exception {
  TemplateError(std::string msg, int col) : message(std::move(msg)), column(col) {}
  // "<what>; <known_label> a, b, c": for a name that is not defined (a function
  // or a lookup table).
  static TemplateError unknown(std::string what, std::string name, std::vector<std::string> known,
                               std::string_view known_label, std::string_view none, int col);
  const char* what() const noexcept override { return message.c_str(); }
  std::string message;  // "<what is wrong>" or "<what is wrong>; <what was expected>"
  int column;
  // Set by `unknown` only, so that a caller with a did-you-mean helper (the
  // config loader) can offer the closest name instead of the whole list.
  std::string unknown_what;  // "unknown function 'lowr'"
  std::string unknown_name;  // "lowr"
  std::vector<std::string> known_names;
};

// A lookup table for `map`: source value → result, in the order written. The
// order is the priority of `map`'s output. Keys are unique (the config loader
// rejects duplicates; here the first of equal keys wins). Results are scalars
// kept as strings; the target field's type converts them (FieldType).
class LookupTable {
 public:
  struct Entry {
    std::string key;
    std::string value;
  };
  LookupTable() = default;
  explicit LookupTable(std::vector<Entry> entries);

  // The index of the entry for `key`: the exact match, or else the first key
  // equal to it ASCII-case-insensitively (LDAP DNs are); nullopt when none.
  std::optional<std::size_t> find(std::string_view key) const;
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> exact_;
  std::unordered_map<std::string, std::size_t> folded_;  // ASCII-lowercased key → first index
};

// Lookup tables by name, as `map:name` refers to them.
using Lookups = std::map<std::string, std::shared_ptr<const LookupTable>>;

class Template {
 public:
  // Throws TemplateError on bad syntax, an unknown function, a bad argument
  // (count, regex, country code, separator) or an unknown lookup table. `lookups`
  // may be null (no tables); the template keeps the tables it uses alive.
  static Template parse(std::string_view text, const Lookups* lookups = nullptr);
  // A constant (from a plain YAML scalar such as 5 or true).
  static Template constant(nlohmann::json value);

  // The rendered value, or an Error (kind kInvalid) naming what is missing.
  Result<nlohmann::json> render(const Record& record) const;
  // Attributes the template reads, for documentation and checks.
  std::vector<std::string> attributes() const;
  const std::string& text() const { return text_; }

  struct Step {
    std::string function;
    std::vector<std::string> args;
    // Resolved when the template is parsed, for the functions that need them.
    std::optional<Regex> regex;                      // replace
    std::shared_ptr<const LookupTable> table;        // map
  };
  struct Segment {
    bool is_expr = false;
    std::string literal;  // !is_expr
    std::string attribute;
    std::vector<Step> steps;
  };

 private:
  std::string text_;
  std::vector<Segment> segments_;
  bool is_constant_ = false;
  nlohmann::json constant_;
};

struct MappedField {
  std::string name;
  Template tmpl;
  FieldType type = FieldType::kAny;  // coerced to this after rendering
};

class Mapping {
 public:
  Mapping() = default;
  explicit Mapping(std::vector<MappedField> fields) : fields_(std::move(fields)) {}

  // The payload (a JSON object with one member per field), or the first
  // per-record error: "field 'email': attribute 'mail' is missing".
  Result<nlohmann::json> apply(const Record& record) const;
  const std::vector<MappedField>& fields() const { return fields_; }

 private:
  std::vector<MappedField> fields_;
};

// Converts a rendered value to `type`; an Error says why it cannot.
Result<nlohmann::json> coerce(const nlohmann::json& value, FieldType type);

}  // namespace dirsync::core
