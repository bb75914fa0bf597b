#pragma once
// URL handling for the http_json source's pagination: query parameters,
// relative references (RFC 3986 §5.2), origins (scheme, host, port) and the
// `Link` header (RFC 8288). Pure functions; thread safe. No I/O, no DNS: hosts
// are compared as written (lower-cased), so "localhost" and "127.0.0.1" are
// different origins, on purpose: credentials go only where the config said.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "connectors/http/http_client.h"

namespace dirsync::sources::http_json {

// `url` with the parameters appended, names and values percent-encoded
// (http::url_encode). An existing query is kept ('&' joins); a fragment is
// dropped (it is never sent). Empty `params`: `url` without its fragment.
std::string add_query(std::string_view url, const std::vector<std::pair<std::string, std::string>>& params);

// The target URI of `reference` read against the absolute URL `base`
// (RFC 3986 §5.2.2, strict; dot segments removed; fragments dropped).
// An absolute reference comes back as itself (normalised the same way).
std::string resolve_url(std::string_view base, std::string_view reference);

struct UrlOrigin {
  std::string scheme;     // "http" | "https", lower case
  std::string host;       // lower case; an IPv6 literal keeps its brackets
  int port = 0;           // explicit, or 80/443 by scheme
  bool userinfo = false;  // "user:password@" was present (the URL carries credentials)
  bool operator==(const UrlOrigin& other) const {
    return scheme == other.scheme && host == other.host && port == other.port;
  }
};

// The origin of an absolute http(s) URL; nullopt for anything else (relative,
// another scheme, no host, a port that is not a number from 1 to 65535).
std::optional<UrlOrigin> url_origin(std::string_view url);

// "http://127.0.0.1:8080": the origin as text (default ports included, for clarity).
std::string to_string(const UrlOrigin& origin);

// One link-value of a Link header: `<target>; rel="a b"; ...`.
struct Link {
  std::string target;             // as written between < and >, not resolved
  std::vector<std::string> rels;  // relation types, lower-cased (rel="next last" gives two)
};

// Every link-value of one Link header field value. Tolerant: a malformed
// link-value is skipped, never an error (a server's extra links must not stop
// a pull that only needs rel="next"). Commas and semicolons inside quoted
// strings and inside <...> are not separators. Only a link's first `rel`
// parameter counts (RFC 8288 §3.3).
std::vector<Link> parse_link_header(std::string_view value);

// The target of the first link with relation "next" across every `Link`
// header of a response (headers as http::Response holds them: names lower
// case, in order); nullopt when there is none.
std::optional<std::string> next_link(const std::vector<http::Header>& headers);

}  // namespace dirsync::sources::http_json
