#pragma once
// The scim source (`type: scim`): users read from a SCIM 2.0 service provider
// (RFC 7643 / RFC 7644). Contract: see core/source.h for what issues and errors
// mean to the engine.
//
// Paging (RFC 7644 §3.4.2.4): every next() is ONE request,
//   GET {base_url}/Users?startIndex=S&count=C[&filter=<url-encoded filter>]
// with the source's authentication (bearer token, basic, or API-key header).
// S starts at 1 and advances by the number of Resources the page actually held
// (a server may return fewer than `count`); C is `page_size`.
// - A page must be a ListResponse: `schemas` lists
//   urn:ietf:params:scim:api:messages:2.0:ListResponse, `totalResults` is a
//   non-negative integer, `Resources` an array (absent only when totalResults
//   or itemsPerPage is 0), `startIndex`, when present, the S that was asked
//   for. Anything else is an Error (kSource): the pull is incomplete.
// - The pull ends after an empty page, or once S-1 reaches the latest
//   totalResults.
// - Transport trouble, timeouts, 5xx and 429 are retried (connectors/http/
//   source_get.h); what remains is an Error. 401/403 → kAuth. A SCIM error
//   body (§3.12) contributes its `detail` and `scimType` to the message.
// - Guards against loops: a page whose users were all read on earlier pages
//   (a server ignoring startIndex) is an Error; so is a pull that runs past
//   2 × the first totalResults + 16 pages.
//
// Offset paging over a changing set (the risk, and what is done about it):
// startIndex counts positions in the server's current result set, so a user
// deleted from a page already read shifts every later user one position down,
// and the user that moved across the page boundary is never seen. A complete
// pull that missed a user would detach that user. Therefore:
// - if totalResults differs between pages, the pull reads on to an empty page
//   or the latest totalResults, then reports an issue with an empty key
//   ("totalResults changed during the pull (250 → 249) ...") which makes the
//   pull incomplete: creates and updates go out, nothing is detached;
// - an empty page before S-1 reaches totalResults (a server that stops
//   listing early) is reported the same way.
// A deletion and a creation between two pages leave totalResults unchanged
// and can still hide a user from one complete pull; requiring a user to be
// absent from several complete pulls before it is detached covers that.
//
// Records:
// - key: the values of the `key` SCIM path (default `id`); it must yield
//   exactly one non-empty value. Otherwise the user is an issue with an empty
//   key (origin "GET <page url> #<index>"; the pull is then incomplete). A key
//   already yielded earlier in the pull is an issue carrying the key
//   ("duplicate key 'K' (first at #N)"); the first user with it stays.
// - origin: "scim <base_url>/Users #<index>", index = the user's 1-based
//   position in the pull (its SCIM index).
// - attributes: the resource flattened by core::flatten_json, except that the
//   enterprise extension (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User)
//   is flattened under `enterprise.` (enterprise.employeeNumber,
//   enterprise.manager.value); then every `attributes` entry by name: the
//   values of its first path that yields at least one value, else present with
//   no value. Paths: see scim_path.h.
// - A resource that is not a JSON object is an issue with an empty key.
//
// No I/O happens in make_scim_source(); a `key` or attribute path that does not
// parse (config validates them with valid_scim_path) makes start() fail with
// kInvalid. describe() is "scim <base_url>".
// Thread safety: the Source is immutable after construction, so pulls may be
// started from any thread; each Pull owns its HTTP connection and is used from
// one thread at a time.
#include <functional>
#include <memory>

#include "config/config.h"
#include "core/source.h"

namespace dirsync::http {
class Transport;
}

namespace dirsync::sources {

// No I/O happens here; requests are made by start() and next().
std::unique_ptr<core::Source> make_scim_source(const config::ScimSourceSettings& settings);

namespace detail {
// make_scim_source whose pulls send their requests through `connect()` (called
// once per start(); may throw, which start() reports) instead of an
// http::HttpClient: drives the page handling without sockets (fuzz/).
std::unique_ptr<core::Source> make_scim_source(const config::ScimSourceSettings& settings,
                                               std::function<std::unique_ptr<http::Transport>()> connect);
}  // namespace detail

}  // namespace dirsync::sources
