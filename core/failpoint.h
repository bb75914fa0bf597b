#pragma once
// Failpoints for crash tests: DIRSYNC_FAILPOINT="NAME:N[,NAME:N...]" makes the
// process kill itself with SIGKILL the Nth time (1-based) execution reaches
// `failpoint("NAME")`. Unset (production): one relaxed load and nothing else.
//
// The names, in the order a batch meets them:
//   before_intent   a batch is ready; its intent is not yet in the outbox
//   after_intent    the intent is durable; nothing was sent
//   after_send      the target answered; the snapshot has not moved
//   after_commit    the snapshot moved and the intent is cleared
//   before_reconcile / after_reconcile   around the reconciliation of pending intents
//
// Thread-safe. The variable is read once, at the first call.
#include <string_view>

namespace dirsync::core {

void failpoint(std::string_view name);

}  // namespace dirsync::core
