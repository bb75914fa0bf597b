#pragma once
// SCIM attribute paths (RFC 7644 §3.10 attrPath with a value filter, a subset
// of §3.4.2.2): how the scim source reads its key and the named `attributes`
// out of one SCIM resource. Pure functions; every member is const and thread safe.
//
// Grammar (attribute names and operators compare case-insensitively, RFC 7643 §2.1):
//   path    := [URN ":"] segment *("." segment)
//   segment := NAME ["[" filter "]"]        NAME: ALPHA *(ALPHA / DIGIT / "_" / "-"), or "$ref"
//   filter  := NAME "pr" | NAME OP VALUE    OP: eq ne co sw ew
//   VALUE   := true | false | null | a JSON number | a JSON "string" (escapes as in JSON)
// Examples: userName, name.givenName, emails[primary eq true].value,
// phoneNumbers[type eq "work"].value, enterprise.manager.value,
// urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber.
//
// Meaning:
// - A URN prefix names a schema extension member of the resource; the core
//   User schema's URN (urn:ietf:params:scim:schemas:core:2.0:User) names the
//   resource itself. A first segment `enterprise` is short for the enterprise
//   extension (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User), the
//   prefix under which the source also flattens it.
// - Each segment steps into a member; a multi-valued (array) attribute is
//   stepped through element by element, so `emails.value` is every email.
// - A filter keeps the elements of a multi-valued attribute that match (a
//   single complex value counts as a list of one). Inside it, `value` of an
//   element that is not an object is the element itself.
// - eq/ne: strings compare case-insensitively (caseExact is false for the
//   attributes this is meant for; ASCII letters only are folded), booleans and
//   numbers by value, `null` matches an absent or null sub-attribute; ne is not
//   eq. co/sw/ew: case-insensitive contains / starts with / ends with, strings
//   only. pr: present, not null, not "" and not an empty array. A
//   multi-valued sub-attribute matches when one of its values does.
// - The values a path yields are the scalars it reaches, in document order
//   (core::json_values); objects it reaches contribute nothing. No values is
//   not an error: the user simply lacks the attribute.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace dirsync::sources {

// The enterprise User extension and the prefix its attributes get (enterprise.employeeNumber).
inline constexpr const char* kScimEnterpriseUrn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
inline constexpr const char* kScimEnterprisePrefix = "enterprise";

class ScimPath {
 public:
  enum class Op { kPresent, kEq, kNe, kContains, kStartsWith, kEndsWith };
  struct Filter {
    std::string attribute;
    Op op = Op::kEq;
    nlohmann::json value;  // a scalar; null for kPresent
  };
  struct Segment {
    std::string name;  // a member name, or a schema URN
    std::optional<Filter> filter;
  };

  // A parsed path, or an Error (kInvalid) saying what is wrong and where:
  // "'emails[primary eq]': expected a value after 'eq' at column 17".
  static core::Result<ScimPath> parse(std::string_view text);

  // Every value the path reaches in `resource` (see "Meaning" above).
  std::vector<std::string> values(const nlohmann::json& resource) const;
  const std::string& text() const { return text_; }
  const std::vector<Segment>& segments() const { return segments_; }

 private:
  std::string text_;
  std::vector<Segment> segments_;
};

// True when `path` parses; otherwise false with the reason in `*why` (when not
// null). For config validation: the source itself refuses to start with a bad path.
bool valid_scim_path(std::string_view path, std::string* why);

// A member of a JSON object by name, exact match first, then ASCII-case-insensitively; null if none.
const nlohmann::json* scim_member(const nlohmann::json& object, std::string_view name);
nlohmann::json* scim_member(nlohmann::json& object, std::string_view name);

}  // namespace dirsync::sources
