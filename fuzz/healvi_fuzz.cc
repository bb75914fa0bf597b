// Healvi's response decoders: decode_list (the GET of the customer's set),
// listed_ids, and decode_sync (the answer to the full-set POST). For any answer
// and any batch: prepare() decides or plans every change; decode_sync gives
// either a job-stopping Error or one slot per change, and a decided change
// keeps the outcome prepare() gave it; check_against answers every change.
//
// Input: the body is Healvi's answer, used for both requests. Header
// (optional): "status", "headers", "failure", "attempts", "customer_id",
// "batch" (see fuzz_input.h; any mix of ops; default: a create, an update
// that moves a user, a detach).
#include <set>

#include "connectors/targets/healvi/healvi_target.h"
#include "fuzz/fuzz_input.h"

using namespace dirsync;
using namespace dirsync::targets;
using fuzz::json;

namespace {

std::vector<core::Change> default_batch() {
  core::Change update;
  update.op = core::Op::kUpdate;
  update.key = "2";
  update.payload = {{"user_id", 12}};
  update.previous = {{"user_id", 11}};
  update.changed_fields = {"user_id"};
  core::Change detach;
  detach.op = core::Op::kDetach;
  detach.key = "3";
  detach.previous = {{"user_id", 13}};
  return {fuzz::create("1", {{"user_id", 10}}), update, detach};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fuzz::Input in = fuzz::split_input(data, size);
  const std::vector<core::Change> batch = fuzz::batch(in.header, default_batch());
  const std::int64_t customer = fuzz::integer(in.header, "customer_id", 7, 1, INT64_MAX);
  const int attempts = static_cast<int>(fuzz::integer(in.header, "attempts", 1, 1, 10));
  const http::Response response = fuzz::response(in.header, in.body);

  const healvi::Prepared prepared = healvi::prepare(batch);
  fuzz::require(prepared.intents.size() == batch.size() && prepared.decided.size() == batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const healvi::Intent& intent = prepared.intents[i];
    fuzz::require(!prepared.live(i) || !intent.attach || !intent.detach || *intent.attach != *intent.detach);
  }

  (void)healvi::listed_ids(response);
  const healvi::Listing listing = healvi::decode_list(response, customer, attempts);
  std::set<std::int64_t> current;
  if (!listing.error && !listing.everyone) current = listing.ids;
  const std::vector<std::int64_t> sent = healvi::full_set(current, prepared);
  fuzz::require(std::is_sorted(sent.begin(), sent.end()));

  const auto checked = healvi::check_against(current, prepared, customer);
  fuzz::require(checked.size() == batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) fuzz::require(!prepared.live(i) || checked[i].has_value());

  const healvi::SyncDecoded d = healvi::decode_sync(response, prepared, sent, customer, attempts);
  if (d.error) return 0;
  fuzz::require(d.outcomes.size() == batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!prepared.live(i)) fuzz::require(!d.outcomes[i]);
  }
  return 0;
}
