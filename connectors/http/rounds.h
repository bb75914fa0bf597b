#pragma once
// The request rounds of a batch API: send groups of a batch, let the target's
// decoder say what each answer decided, and send again what it left undecided,
// until every change has an outcome. PERSCOM, Hesh and Royalti share it; only
// their encode/decode differ.
//
// Rules (each target's decoder feeds them):
// - A change the answer decided gets that outcome; an undecided one is sent
//   again with the rest of its group (e.g. a 422 named another record, and
//   nothing of the request was written).
// - `bisect`: nothing could be attributed — the group is split in halves.
// - `error`: the job must stop and this request was not processed. If an
//   earlier round of the batch already landed, its outcomes must still reach
//   the snapshot, so the undecided changes become "retry" instead and the next
//   batch meets the same error and stops the job; otherwise the Error returns.
// - A round that decides nothing and does not bisect ends its group as
//   "unknown" (a decoder bug must not loop forever).
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/change.h"
#include "core/result.h"

namespace dirsync::http {

struct RoundDecision {
  std::vector<std::optional<core::Outcome>> outcomes;  // one per change sent; nullopt: send it again
  bool bisect = false;
  std::optional<core::Error> error;
};

// Sends one request for `changes` and decodes the answer.
using SendRound = std::function<RoundDecision(std::span<const core::Change> changes)>;

// `decided`: one slot per change of `batch`, filled for those decided before
// sending (prechecks). `groups`: positions in `batch` to send, one request per
// group. `name` names the target in messages ("PERSCOM").
core::Result<std::vector<core::Outcome>> run_rounds(std::span<const core::Change> batch,
                                                    std::vector<std::optional<core::Outcome>> decided,
                                                    std::vector<std::vector<std::size_t>> groups,
                                                    const SendRound& send, const std::string& name);

}  // namespace dirsync::http
