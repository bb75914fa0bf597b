#pragma once
// The target contract.
//
// - `apply` takes one batch of changes, all with the same Op and at most
//   `batch_size()` of them, and returns exactly one Outcome per change, in the
//   same order. The engine checks the count; a short or long answer is a bug.
// - A full-set target (`Capabilities::full_set`) instead gets ONE call per run,
//   after the pull, holding every change of the run with ops mixed (creates,
//   updates, and detaches when the pull was complete and the guards allowed
//   them). It sends the whole set the job manages in the way its API wants:
//   right before that call the engine hands it every user the job manages
//   (`set_managed`), because a listing of the target's current set may be
//   partial, and a set built on it alone would silently drop the rest.
// - A target without `update` never receives updates; in a resync it receives
//   the current users as creates (flagged `resync`), which create-only APIs
//   that skip existing users answer harmlessly.
// - An applied Outcome may carry a note (e.g. "already existed (skipped by
//   Hesh)"); the run report lists it. An applied Outcome with an empty id keeps
//   the id the snapshot already had.
// - Per-record failures are Outcomes. An Error means the whole job must stop
//   (authentication refused, the target misconfigured): the batch's changes are
//   then treated as not applied.
// - `apply` never re-sends a create blindly: where the outcome of a create is
//   unknown it returns kUnknown.
// - A Target is used from one thread at a time.
// - Creates whose outcome is unknown (a lost answer, a crash between sending
//   and recording) are settled by the engine's outbox according to
//   `create_recovery()`; see CreateRecovery.
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/change.h"
#include "core/mapping.h"
#include "core/result.h"

namespace dirsync::core {

struct Capabilities {
  bool create = true;
  bool update = true;
  bool detach = true;
  bool full_set = false;    // the target takes the whole set in one request
  std::size_t max_batch = 1;
};

// What a field's string value must look like (checked per record by core::validate_payload).
enum class FieldFormat { kText, kEmail };

struct FieldSpec {
  std::string name;
  FieldType type = FieldType::kString;
  bool required = false;  // a job's mapping must yield it
  bool unique = false;    // unique on the server: never re-sent unchanged (PERSCOM email)
  FieldFormat format = FieldFormat::kText;
  std::size_t max_length = 0;  // in Unicode code points; 0: no limit known
};

// How the outbox settles a create whose outcome is unknown.
enum class CreateRecovery {
  // Sending it again is harmless: the API upserts, skips users it already has,
  // answers "already exists" (taken as applied), or takes the whole set.
  kResend,
  // The target can be searched: `lookup` tells whether the create took effect.
  kLookup,
  // Neither: the create stays pending and is reported for an operator.
  kReport,
};

// A user the job manages, as a full-set target is told about it (`Target::set_managed`).
struct Member {
  std::string key;        // the source key
  std::string target_id;  // the target's id for the user ("" where none is known)
  nlohmann::json payload; // the payload the target last acknowledged (a pending create: the one sent)
};

// A user `Target::lookup` found: its id and its fields as a payload.
struct Found {
  std::string target_id;
  nlohmann::json current;
};

class Target {
 public:
  virtual ~Target() = default;
  virtual const Capabilities& capabilities() const = 0;
  // The payload fields the target knows. Empty: it accepts any fields (file target).
  virtual const std::vector<FieldSpec>& fields() const = 0;
  // Configured batch size, 1..capabilities().max_batch.
  virtual std::size_t batch_size() const = 0;
  virtual Result<std::vector<Outcome>> apply(std::span<const Change> batch) = 0;
  // Full-set targets only (other targets never get it): every user the job
  // manages, handed over right before each `apply` (a run's, a resync's and a
  // saved plan's alike), from the same thread. Members are the job's whole
  // snapshot — users whose change this run withholds (protected, quarantined,
  // blocked by a guard, absent from an incomplete pull) included — and the
  // creates whose outcome is still unknown (a set cannot hold a user twice, so
  // keeping one in it is harmless). The batch may name members too: its
  // changes decide for them (a detach removes the member's id). The target
  // keeps every other member in the set it sends, whether or not its own
  // listing of the current set shows it, and never reports on them.
  // The list holds for the next `apply` only, which consumes it; not called,
  // or empty: the job manages no user outside the batch.
  virtual void set_managed(std::vector<Member> members) { (void)members; }
  // How long the target's rate limits make pushing this many changes take,
  // e.g. "~42 min at 4,000/h"; empty when they do not slow it down. Plans show it.
  virtual std::string pace(std::size_t creates, std::size_t updates, std::size_t detaches) const {
    (void)creates, (void)updates, (void)detaches;
    return {};
  }
  virtual CreateRecovery create_recovery() const { return CreateRecovery::kReport; }
  // kLookup targets: for each create (in order), the user the target holds
  // that matches it (by the target's unique fields, e.g. email), or nullopt
  // when it has none. An Error: the lookup itself failed; nothing is decided.
  virtual Result<std::vector<std::optional<Found>>> lookup(std::span<const Change> creates) {
    (void)creates;
    return Error{ErrorKind::kInvalid, "target " + describe() + " cannot look users up"};
  }
  // A short description for logs, e.g. "perscom https://api.perscom.io/v2". Never secrets.
  virtual std::string describe() const = 0;
};

}  // namespace dirsync::core
