// Royalti's response decoder (royalti::decode): any answer to any valid request
// gives either a job-stopping Error with no outcomes, or exactly one outcome
// per change (Royalti's answer is always fully attributed); the token never
// appears in a message. encode() runs too.
//
// Input: the body is Royalti's answer. Header (optional): "status", "headers",
// "failure", "attempts", "batch" (see fuzz_input.h; default: three creates).
// As the target does, only creates passing precheck go in, and only the first
// group of distinct_name_groups (no two users of a request share a name).
#include "connectors/targets/royalti/royalti_target.h"
#include "fuzz/fuzz_input.h"

using namespace dirsync;
using namespace dirsync::targets;
using fuzz::json;

namespace {

constexpr const char* kToken = "royalti-fuzz-token-0123456789";

json user(const char* first, const char* last, const char* email) {
  return {{"firstName", first}, {"lastName", last}, {"email", email}};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fuzz::Input in = fuzz::split_input(data, size);
  if (in.body.find(kToken) != std::string::npos || in.header.dump().find(kToken) != std::string::npos) return 0;
  const std::vector<core::Change> all =
      fuzz::batch(in.header, {fuzz::create("1", user("John", "Doe", "john@example.org")),
                              fuzz::create("2", user("Jane", "Doe", "jane@example.org")),
                              fuzz::create("3", user("Jake", "Doe", "jake@example"))});
  const std::vector<core::Change> batch = fuzz::first_request(all, royalti::precheck, royalti::distinct_name_groups);
  if (batch.empty()) return 0;

  config::RoyaltiTargetSettings settings;
  settings.base_url = "https://royalti.example";
  settings.token = core::Secret(kToken, "${env:ROYALTI_TOKEN}");
  (void)royalti::encode(settings, batch);

  const int attempts = static_cast<int>(fuzz::integer(in.header, "attempts", 1, 1, 10));
  const royalti::Decoded d = royalti::decode(fuzz::response(in.header, in.body), batch, attempts);
  if (d.error) {
    fuzz::require(d.outcomes.empty() && d.error->message.find(kToken) == std::string::npos);
  } else {
    fuzz::require(d.outcomes.size() == batch.size());
    for (const core::Outcome& o : d.outcomes) fuzz::require(o.message.find(kToken) == std::string::npos);
  }
  return 0;
}
