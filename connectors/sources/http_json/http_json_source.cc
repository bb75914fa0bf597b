#include "connectors/sources/http_json/http_json_source.h"

// PLACEHOLDER: replaced by the real implementation before this lands.
namespace dirsync::sources {

std::unique_ptr<core::Source> make_http_json_source(const config::HttpJsonSourceSettings&) { return nullptr; }

}  // namespace dirsync::sources
