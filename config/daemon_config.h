#pragma once
// Internal to config/: a job's `schedule:` and the top-level `daemon:` section.
//
//   jobs.<name>.schedule:  {every: 15m, jitter: 1m}  |  {cron: "*/15 * * * *", timezone: local|UTC}
//                          | manual
//   daemon:                {max_concurrent_jobs: 2, shutdown_timeout: 60s,
//                           failure_backoff: 1m, failure_backoff_max: 1h}
#include <optional>

#include <yaml-cpp/yaml.h>

#include "config/yaml_section.h"

namespace dirsync::config::detail {

std::optional<Schedule> read_schedule(Section& job, const YAML::Node& value);
std::optional<DaemonSettings> read_daemon(Section& top, const YAML::Node& value);

// The keys of `schedule:` and `daemon:`, for schema() and the README.
std::vector<SectionDoc> daemon_docs();

}  // namespace dirsync::config::detail
