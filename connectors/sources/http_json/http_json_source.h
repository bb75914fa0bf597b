#pragma once
// The http_json source (`type: http_json`). Contract: see core/source.h.
#include <memory>

#include "config/config.h"
#include "core/source.h"

namespace dirsync::sources {

// No I/O happens here; requests are made by start() and next().
std::unique_ptr<core::Source> make_http_json_source(const config::HttpJsonSourceSettings& settings);

}  // namespace dirsync::sources
