#pragma once
// Mapping templates: how a source record becomes a target payload.
//
// Template syntax:   literal text and {expr} segments; "{{" and "}}" are literal braces.
//   expr      := attribute ( "|" function )*
//   function  := name [ ":" arg ( "," arg )* ]
//   arg       := 'single quoted' | "double quoted" | bare-word
// Functions: lower, upper, trim, default:'x' (used when the value is missing or
// empty), int, bool, first, join:'sep'. More can be added in one table
// (mapping.cc, kFunctions).
//
// A template that is exactly one {expr} yields that expression's typed value
// (so "{age | int}" is an integer); anything else yields a string.
// A missing attribute without a default is a per-record error, never a crash.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/record.h"
#include "core/result.h"

namespace dirsync::core {

enum class FieldType { kAny, kString, kInt, kBool };
const char* to_string(FieldType type);

// Thrown by Template::parse. `column` is the 1-based offset into the template text.
struct TemplateError : std::exception {
  TemplateError(std::string msg, int col) : message(std::move(msg)), column(col) {}
  const char* what() const noexcept override { return message.c_str(); }
  std::string message;
  int column;
};

class Template {
 public:
  // Throws TemplateError on bad syntax or an unknown function.
  static Template parse(std::string_view text);
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
