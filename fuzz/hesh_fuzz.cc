// Hesh's response decoder (hesh::decode): any answer to any valid request
// gives either a job-stopping Error with no outcomes, or exactly one slot per
// change; the tenant id and api key never appear in a message. encode() runs too.
//
// Input: the body is Hesh's answer. Header (optional): "status", "headers",
// "failure", "attempts", "batch" (see fuzz_input.h; default: three creates).
// As the target does, only creates passing precheck go in, and only the first
// group of distinct_groups (a request never holds two users alike).
#include "connectors/targets/hesh/hesh_target.h"
#include "fuzz/fuzz_input.h"

using namespace dirsync;
using namespace dirsync::targets;
using fuzz::json;

namespace {

constexpr const char* kTenant = "40dd0c53-2fa7-4193-82ae-14d4e62c20fb";
constexpr const char* kApiKey = "hesh-fuzz-api-key-0123456789";

json user(const char* id, const char* email, const char* first, const char* last) {
  return {{"external_user_id", id}, {"email", email}, {"first_name", first}, {"last_name", last}, {"phone", "38000"}};
}

bool leaks(const std::string& text) {
  return text.find(kTenant) != std::string::npos || text.find(kApiKey) != std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fuzz::Input in = fuzz::split_input(data, size);
  // The secrets are quoted by a server only if it echoes them; the input must
  // not carry them itself, or any quote of the body would count as a leak.
  if (leaks(in.body) || leaks(in.header.dump())) return 0;
  const std::vector<core::Change> all =
      fuzz::batch(in.header, {fuzz::create("1", user("u1", "ann@example.org", "Ann", "Lee")),
                              fuzz::create("2", user("u2", "bob@example.org", "Bob", "Roe")),
                              fuzz::create("3", user("u3", "cy@example.org", "Cy", "Doe"))});
  const std::vector<core::Change> batch = fuzz::first_request(all, hesh::precheck, hesh::distinct_groups);
  if (batch.empty()) return 0;

  config::HeshTargetSettings settings;
  settings.tenant_id = core::Secret(kTenant, "${env:HESH_TENANT_ID}");
  settings.api_key = core::Secret(kApiKey, "${env:HESH_API_KEY}");
  (void)hesh::encode(settings, batch);

  const int attempts = static_cast<int>(fuzz::integer(in.header, "attempts", 1, 1, 10));
  const hesh::Decoded d = hesh::decode(settings, fuzz::response(in.header, in.body), batch, attempts);
  if (d.error) {
    fuzz::require(d.outcomes.empty() && !leaks(d.error->message));
  } else {
    fuzz::require(d.outcomes.size() == batch.size());
    for (const auto& o : d.outcomes) fuzz::require(!o || !leaks(o->message));
  }
  return 0;
}
