#pragma once
// A source record: a stable key plus attributes whose values are always a list
// of strings (LDAP and SCIM attributes are multi-valued; CSV cells are one value).
#include <string>
#include <string_view>
#include <vector>

namespace dirsync::core {

struct Attribute {
  std::string name;
  std::vector<std::string> values;  // empty: present but no value
};

struct Record {
  std::string key;                   // never empty for a record a source yields
  std::vector<Attribute> attributes;
  std::string origin;                // where it came from, for messages: "users.csv:12"

  // nullptr when the attribute is absent. An exact name match wins; otherwise
  // names compare ASCII-case-insensitively (LDAP and SCIM names are).
  const Attribute* find(std::string_view name) const;
  // Appends or replaces.
  void set(std::string name, std::vector<std::string> values);
};

}  // namespace dirsync::core
