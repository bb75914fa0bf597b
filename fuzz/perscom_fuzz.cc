// PERSCOM's response decoder (perscom::decode): any answer to any valid batch
// gives either a job-stopping Error with no outcomes, or exactly one slot per
// change; `bisect` only for a batch of more than one. encode() runs too.
//
// Input: the body is PERSCOM's answer. Header (optional): "status" (default
// 200), "headers", "failure", "attempts", "batch" (see fuzz_input.h; default:
// three creates). Changes that break decode's preconditions (mixed ops, a
// failing precheck, an update with nothing to patch) are dropped.
#include "connectors/targets/perscom/perscom_target.h"
#include "fuzz/fuzz_input.h"

using namespace dirsync;
using namespace dirsync::targets;
using fuzz::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fuzz::Input in = fuzz::split_input(data, size);
  const std::vector<core::Change> all = fuzz::batch(
      in.header, {fuzz::create("1", {{"name", "Ann Lee"}, {"email", "ann@example.org"}}),
                  fuzz::create("2", {{"name", "Bob Roe"}, {"email", "Bob@Example.org"}}),
                  fuzz::create("3", {{"name", "Cy Doe"}, {"email", "cy@example.org"}})});
  std::vector<core::Change> batch;
  for (const core::Change& c : all) {
    if (c.op != all.front().op || perscom::precheck(c)) continue;
    if (c.op == core::Op::kUpdate && perscom::patch_fields(c).empty()) continue;
    batch.push_back(c);
  }
  if (batch.empty()) return 0;

  config::PerscomTargetSettings settings;
  settings.base_url = "https://api.perscom.io";
  settings.token = core::Secret("token", "(fuzz)");
  (void)perscom::encode(settings, batch);

  const int attempts = static_cast<int>(fuzz::integer(in.header, "attempts", 1, 1, 10));
  const perscom::Decoded d = perscom::decode(fuzz::response(in.header, in.body), batch, attempts);
  if (d.error) {
    fuzz::require(d.outcomes.empty());
  } else {
    fuzz::require(d.outcomes.size() == batch.size());
  }
  fuzz::require(!d.bisect || batch.size() > 1);
  return 0;
}
