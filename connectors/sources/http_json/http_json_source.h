#pragma once
// The http_json source (`type: http_json`): users from any JSON API that
// answers GET with a page of records. Contract beyond core/source.h:
//
// Requests
// - One GET per next(), with the source's authentication (bearer, basic or an
//   API-key header) and extra headers, all sent as secret headers: never in a
//   message, a log line or describe(). GETs are retried with the job's backoff
//   (connectors/http/source_get.h): 5xx, 429, timeouts and dropped connections
//   up to `max_attempts`; 401/403 fail the pull at once as kAuth.
// - Query parameters are appended to `url` (which may carry a query of its
//   own), percent-encoded.
//
// Pagination (`pagination`)
//   none         one request.
//   page         page_param = first_page, +1 per page; size_param = page_size when size_param is set.
//   offset       offset_param = 0, + the number of records received; limit_param = page_size.
//   cursor       the first request carries no cursor; the next cursor is read at cursor_path
//                (a string, or an integer sent in decimal) and sent as cursor_param.
//                Absent, null or "" ends the pull.
//   link_header  the next page is the `Link: <...>; rel="next"` target (RFC 8288: several
//                links, several Link headers, quoted or plain rel; relative targets are read
//                against the URL of the page that carried them). No such link ends the pull.
//   next_url     the next page's URL is read at next_url_path (relative URLs as above);
//                absent, null or "" ends the pull.
// Every style: a page with no records ends the pull (page and offset styles end
// only so: a short page does not, because servers may cap the page size below
// what was asked). A cursor or a next URL already requested in this pull is an
// Error ("cursor repeats" / "next page URL repeats"), never a loop; so is a
// pull longer than 1,000,000 pages. A followed URL (link_header, next_url) must
// keep the scheme, host and port of `url` and carry no user:password@, else
// the pull fails naming it: credentials are only sent where the config points.
// Problems with the NEXT page (a repeating cursor, a foreign URL, a cursor of
// the wrong type) are returned by the next call, after the page that carried
// them: its records are good.
//
// Records
// - `records` is a JSON pointer to the page's array of records ("" = the body
//   is the array). A page where it does not point at an array fails the pull
//   with an Error naming the pointer and the page's URL.
// - Each element must be an object whose key, at JSON pointer `key`, is a
//   non-blank string (taken exactly) or an integer (in decimal). Otherwise the
//   element is a RecordIssue with an EMPTY key (the pull is incomplete: nothing
//   is detached) and origin "GET <page url> #<index in the page's array, from 0>";
//   records carry the same origin.
// - A key seen before in this pull makes the later element a RecordIssue
//   carrying that key ("duplicate key 'K'"): the first one is yielded, and the
//   key is protected from detach. The pull keeps one hash-set entry per key.
// - Attributes: every member of the record, flattened (core/json_record.h:
//   nested members as a.b, arrays multi-valued), plus `attributes`: each name
//   takes the values of the first of its JSON pointers that yields at least
//   one value (json_values); when none does, the name is absent, even if the
//   record has a member of that name (configured names win).
//
// Caveat: page and offset paging over a listing that changes during the pull
// can skip or repeat records. A user inserted before the current position
// shifts later users one place on: one of them is seen twice (a duplicate-key
// issue, harmless). A user deleted before the current position shifts them
// back: one user is never seen and looks gone from the source, so a complete
// pull would detach it. Prefer cursor, link_header or next_url paging where the
// API offers it; otherwise guard detaches by requiring a user to be absent in
// several complete pulls before it is detached.
//
// Thread safety: a Source may start pulls from any thread; each Pull is used
// from one thread at a time (it owns its HTTP connection).
#include <functional>
#include <memory>

#include "config/config.h"
#include "core/source.h"

namespace dirsync::http {
class Transport;
}

namespace dirsync::sources {

// No I/O happens here; every request is made by Pull::next(). Malformed JSON
// pointers in `settings` (config validates them) make start() fail with kInvalid.
std::unique_ptr<core::Source> make_http_json_source(const config::HttpJsonSourceSettings& settings);

namespace detail {
// make_http_json_source whose pulls send their requests through `connect()`
// (called once per start(); may throw, which start() reports) instead of an
// http::HttpClient: drives the page handling without sockets (fuzz/).
std::unique_ptr<core::Source> make_http_json_source(const config::HttpJsonSourceSettings& settings,
                                                    std::function<std::unique_ptr<http::Transport>()> connect);
}  // namespace detail

}  // namespace dirsync::sources
