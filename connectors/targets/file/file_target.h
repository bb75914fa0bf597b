#pragma once
// The local file target: appends one JSON line per change to a file. Needs no
// network; operators use it for the quickstart, audits and dry runs.
//
// Each line: {"time": "...Z", "op": "create|update|detach", "key": ..., "payload": ...,
// "changed_fields": [...]} (payload omitted for detach). A batch is written with
// one write(2) and fsync'd before any change is reported applied, so the
// snapshot never runs ahead of the file.
#include <memory>

#include "config/config.h"
#include "core/target.h"

namespace dirsync::targets {

std::unique_ptr<core::Target> make_file_target(const config::FileTargetSettings& settings);

}  // namespace dirsync::targets
