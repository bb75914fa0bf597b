// The scim source's page handling (scim_source.h), driven through its
// transport seam: the pages of one pull, as a SCIM server might answer them.
// For any answers a pull ends (a last page or an Error) within the pages
// given; records have non-empty keys that no earlier record had; the key and
// attribute paths (scim_path.h) come from the input too.
//
// Input: the body is the pages' bodies, separated by lines "---". Header
// (optional): "key" (a SCIM path; default "id"), "attributes" ({name: [paths]}),
// "filter", "page_size", "statuses" ([status of page 1, ...]; default 200).
#include <string>
#include <vector>

#include "connectors/sources/scim/scim_source.h"
#include "fuzz/pull_harness.h"
#include "fuzz/fuzz_input.h"

using namespace dirsync;
using fuzz::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fuzz::Input in = fuzz::split_input(data, size);
  config::ScimSourceSettings settings;
  settings.base_url = "https://idp.example/scim/v2";
  settings.key = fuzz::str(in.header, "key", "id");
  settings.filter = fuzz::str(in.header, "filter");
  settings.page_size = static_cast<std::size_t>(fuzz::integer(in.header, "page_size", 2, 0, 1000));
  settings.http.max_attempts = 1;  // no retry, so no backoff sleep
  settings.attributes = fuzz::attribute_paths<config::AttributePath>(
      in.header, {{"mail", {"emails[primary eq true].value", "emails.value"}},
                  {"employee", {"enterprise.employeeNumber"}},
                  {"work_phone", {"phoneNumbers[type eq \"work\"].value"}}});

  fuzz::pull_pages(in.header, in.body, [&](auto connect) {
    return sources::detail::make_scim_source(settings, std::move(connect));
  });
  return 0;
}
