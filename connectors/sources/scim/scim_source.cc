#include "connectors/sources/scim/scim_source.h"

// PLACEHOLDER: replaced by the real implementation before this lands.
namespace dirsync::sources {

std::unique_ptr<core::Source> make_scim_source(const config::ScimSourceSettings&) { return nullptr; }

}  // namespace dirsync::sources
