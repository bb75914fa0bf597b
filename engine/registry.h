#pragma once
// Explicit connector registration: every source and target type dirsync knows
// is named here, in one place (no static initialisers in libraries).
//
// Construction does no I/O: files are opened and connections made when a pull
// starts or a batch is applied, so `check-config` can build every connector.
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/mapping.h"
#include "core/source.h"
#include "core/target.h"

namespace dirsync::engine {

std::unique_ptr<core::Source> make_source(const config::SourceConfig& source);
std::unique_ptr<core::Target> make_target(const config::TargetConfig& target);

// Checks a job against its target: every mapped field is one the target knows,
// every required field is mapped, constants have the right type, and the job
// asks nothing the target cannot do. Returns complete, positioned messages.
std::vector<std::string> check_job(const config::JobConfig& job, const core::Target& target);

// The job's mapping, each field typed by the target's field spec.
core::Mapping make_mapping(const config::JobConfig& job, const core::Target& target);

// Everything one run of a job needs, built from the config (no I/O).
struct JobParts {
  std::unique_ptr<core::Source> source;
  std::unique_ptr<core::Target> target;
  core::Mapping mapping;
};
JobParts build_job(const config::Config& config, const config::JobConfig& job);

// Builds every job's connectors and runs check_job on each: the complete list
// of problems a config has beyond what the loader checks. Empty: all good.
std::vector<std::string> check_config(const config::Config& config);

}  // namespace dirsync::engine
