#include "core/record.h"

#include <algorithm>
#include <cctype>

namespace dirsync::core {

const Attribute* Record::find(std::string_view name) const {
  // Records have a handful of attributes: a linear scan beats any map here.
  for (const auto& attribute : attributes) {
    if (attribute.name == name) return &attribute;
  }
  // LDAP and SCIM attribute names are case-insensitive ("mail" is "Mail"); an
  // exact match wins, so a CSV with both "Email" and "email" stays exact.
  for (const auto& attribute : attributes) {
    if (std::equal(attribute.name.begin(), attribute.name.end(), name.begin(), name.end(),
                   [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) ==
                                               std::tolower(static_cast<unsigned char>(b)); })) {
      return &attribute;
    }
  }
  return nullptr;
}

void Record::set(std::string name, std::vector<std::string> values) {
  for (auto& attribute : attributes) {
    if (attribute.name == name) {
      attribute.values = std::move(values);
      return;
    }
  }
  attributes.push_back({std::move(name), std::move(values)});
}

}  // namespace dirsync::core
