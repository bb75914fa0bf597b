#pragma once
// The scim source (`type: scim`). Contract: see core/source.h.
#include <memory>

#include "config/config.h"
#include "core/source.h"

namespace dirsync::sources {

// No I/O happens here; requests are made by start() and next().
std::unique_ptr<core::Source> make_scim_source(const config::ScimSourceSettings& settings);

}  // namespace dirsync::sources
