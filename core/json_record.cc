#include "core/json_record.h"

#include <unordered_map>

namespace dirsync::core {
namespace {

using nlohmann::json;

struct Collector {
  std::vector<Attribute> attributes;
  std::unordered_map<std::string, std::size_t> index;

  Attribute& at(const std::string& name) {
    auto [it, inserted] = index.emplace(name, attributes.size());
    if (inserted) attributes.push_back({name, {}});
    return attributes[it->second];
  }

  void add(const json& value, const std::string& name) {
    if (value.is_object()) {
      for (auto it = value.begin(); it != value.end(); ++it) add(it.value(), name.empty() ? it.key() : name + "." + it.key());
    } else if (value.is_array()) {
      if (!name.empty() && value.empty()) at(name);  // present, no value
      for (const auto& item : value) add(item, name);
    } else if (!name.empty()) {
      Attribute& a = at(name);
      if (!value.is_null()) a.values.push_back(json_scalar_text(value));
    }
  }
};

}  // namespace

std::string json_scalar_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number_integer() || value.is_number_unsigned() || value.is_number_float()) return value.dump();
  return "";
}

std::vector<Attribute> flatten_json(const json& value, const std::string& prefix) {
  Collector c;
  c.add(value, prefix);
  return std::move(c.attributes);
}

std::vector<std::string> json_values(const json& value) {
  std::vector<std::string> out;
  if (value.is_array()) {
    for (const auto& item : value) {
      auto more = json_values(item);
      out.insert(out.end(), more.begin(), more.end());
    }
  } else if (!value.is_null() && !value.is_object()) {
    out.push_back(json_scalar_text(value));
  }
  return out;
}

}  // namespace dirsync::core
