#pragma once
// Reading pages from an HTTP source (SCIM, generic JSON APIs): authentication
// headers and one GET with the shared retry policy, answered as parsed JSON or
// as an Error a Pull can return.
//
// Contract:
// - GETs are idempotent: timeouts, resets, 5xx, 429 and 503 are retried with
//   the job's backoff up to `max_attempts`; 401/403 come back as kAuth; any
//   other failure, a non-JSON body, or an exhausted retry as kSource. Every
//   message starts with "GET <url>" and carries the server's own words; never a
//   header value (tokens and passwords travel only as secret headers).
// - Not thread safe beyond what the Transport is (one Pull at a time).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "connectors/http/http_client.h"
#include "connectors/http/retry.h"
#include "core/result.h"

namespace dirsync::http {

// Adds the source's authentication (bearer, basic, API-key header) and extra
// headers to `request` as secret headers.
void add_source_auth(Request& request, const config::HttpSourceAuth& auth,
                     const std::vector<std::pair<std::string, core::Secret>>& headers = {});

struct JsonPage {
  nlohmann::json body;
  Response response;  // headers included (Link, ...); body duplicated in `body`
};

// One GET of `request.url` (method forced to GET, idempotent), parsed as JSON.
core::Result<JsonPage> get_json(Transport& transport, Request request, const RetryOptions& options);

// RetryOptions for a source from its HttpSettings (policy and rate limits, real sleeper).
RetryOptions source_retry_options(const config::HttpSettings& settings);

// "a b&c" → "a%20b%26c" (RFC 3986 unreserved characters kept).
std::string url_encode(const std::string& text);

}  // namespace dirsync::http
