#pragma once
// Internal to config/: reads a job's `filter:` section into a core::Filter.
//
//   filter:
//     include: {attribute: objectClass, equals: person}
//     exclude:
//       any:
//         - {attribute: title, regex: '^Contractor'}
//         - {attribute: department, in: [Test, Demo]}
//         - not: {attribute: mail, present: true}
//
// Errors (unknown keys, two tests in one condition, a bad regex with its
// column, an empty all/any) go to the diagnostics with file:line:col.
#include <optional>

#include <yaml-cpp/yaml.h>

#include "config/yaml_section.h"
#include "core/filter.h"

namespace dirsync::config::detail {

std::optional<core::Filter> read_filter(Section& job, const YAML::Node& value);

// The keys of `filter:` and of a condition, for schema() and the README.
std::vector<SectionDoc> filter_docs();

}  // namespace dirsync::config::detail
