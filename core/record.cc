#include "core/record.h"

#include <algorithm>

namespace dirsync::core {

const Attribute* Record::find(std::string_view name) const {
  // Records have a handful of attributes: a linear scan beats any map here.
  for (const auto& attribute : attributes) {
    if (attribute.name == name) return &attribute;
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
