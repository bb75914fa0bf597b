#pragma once
// The configuration schema as data: every section's keys with their type,
// default and description. The loader validates against these same tables, so
// what `schema()` prints (and what the README documents) is what is accepted.
#include <string>
#include <vector>

namespace dirsync::config {

struct KeyDoc {
  std::string key;
  std::string type;           // "string", "path", "integer", "duration", "secret", "v1 | v2", ...
  std::string default_value;  // empty: required, or no default (see `required`)
  bool required = false;
  std::string description;
};

struct SectionDoc {
  std::string section;  // "top level", "sources.<name> (type: csv)", "jobs.<name>", ...
  std::vector<KeyDoc> keys;
};

// Every section, top level first. Stable order; safe to call from any thread.
const std::vector<SectionDoc>& schema();

// The accepted values of `type:` under sources / targets, sorted.
std::vector<std::string> source_types();
std::vector<std::string> target_types();

}  // namespace dirsync::config
