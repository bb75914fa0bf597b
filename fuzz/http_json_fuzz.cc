// The http_json source's page handling (http_json_source.h), driven through its
// transport seam, with every pagination style: JSON pointers, cursors, next
// URLs and Link headers (url.h) all come from the input. For any answers a
// pull ends (a last page or an Error) within the pages given; records have
// non-empty keys that no earlier record had.
//
// Input: the body is the pages' bodies, separated by lines "---". Header
// (optional): "pagination" (none, page, offset, cursor, link_header,
// next_url; default cursor), "records" (default "/data"), "key" (default
// "/id"), "cursor_path", "next_url_path", "url", "attributes" ({name:
// [pointers]}), "statuses", "links" ([Link header of page 1, ...]).
#include <string>
#include <vector>

#include "connectors/sources/http_json/http_json_source.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/pull_harness.h"

using namespace dirsync;
using fuzz::json;

namespace {

config::Pagination pagination(const std::string& name) {
  using config::Pagination;
  if (name == "none") return Pagination::kNone;
  if (name == "page") return Pagination::kPage;
  if (name == "offset") return Pagination::kOffset;
  if (name == "link_header") return Pagination::kLinkHeader;
  if (name == "next_url") return Pagination::kNextUrl;
  return Pagination::kCursor;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fuzz::Input in = fuzz::split_input(data, size);
  config::HttpJsonSourceSettings settings;
  settings.url = fuzz::str(in.header, "url", "https://hr.example/api/users?active=1");
  settings.pagination = pagination(fuzz::str(in.header, "pagination"));
  settings.records = fuzz::str(in.header, "records", "/data");
  settings.key = fuzz::str(in.header, "key", "/id");
  settings.cursor_path = fuzz::str(in.header, "cursor_path", "/next_cursor");
  settings.next_url_path = fuzz::str(in.header, "next_url_path", "/links/next");
  settings.size_param = fuzz::str(in.header, "size_param");
  settings.first_page = fuzz::integer(in.header, "first_page", 1, INT64_MIN, INT64_MAX);
  settings.page_size = static_cast<std::size_t>(fuzz::integer(in.header, "page_size", 2, 0, 1000));
  settings.http.max_attempts = 1;  // no retry, so no backoff sleep
  settings.attributes = fuzz::attribute_paths<config::AttributePath>(
      in.header, {{"mail", {"/emails/0/value", "/email"}}, {"manager", {"/manager/id"}}});

  fuzz::pull_pages(in.header, in.body, [&](auto connect) {
    return sources::detail::make_http_json_source(settings, std::move(connect));
  });
  return 0;
}
