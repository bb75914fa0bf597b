#pragma once
// The Healvi target (shared/seeds/003): which users are attached to one
// customer, a FULL-SET API.
//
// Endpoints (base_url carries the `/third-party/v1` path; bearer token):
//   GET  {base_url}/customers/{customer_id}/users       → {"data": [User...]}  the attached users,
//                                                          admins left out (vendor docs)
//   POST {base_url}/customers/{customer_id}/users        {"user_ids": [int...]} → {"data": [User...]}
//        "It will automatically determine which IDs to attach or detach": the list REPLACES the
//        customer's set. Sending the same list twice gives the same state: idempotent, so the
//        POST is retried after a 500 or a dropped connection like any idempotent request.
//
// How one run works (the engine calls `apply` ONCE per run with every change,
// ops mixed — core/target.h):
//   1. Each change says what it wants: a create attaches payload.user_id; an
//      update attaches payload.user_id and, when previous.user_id differs,
//      detaches the old id; a detach detaches previous.user_id. A user_id that
//      is not a positive integer is rejected for that change only.
//   2. GET the current set, then send
//        (current ∪ managed) − detached-by-us ∪ desired.
//      Users attached by someone else are in `current`, so they stay attached.
//      `managed` holds every user the job manages (the engine's `set_managed`
//      before the call): a 2xx listing that shows only some users (a partial
//      result) must not detach the others, who stay in the snapshot as
//      attached. (So a run that sends also re-attaches a managed user someone
//      else detached.) An id that one change detaches and another change, or
//      another managed user, keeps (a user re-keyed in the source) stays
//      attached; an id a change wants that another managed user already has is
//      rejected for that change (one Healvi user cannot belong to two keys).
//   3. When that set equals the current set nothing is sent (every change is
//      already true on the server, and every managed user is listed).
//   4. An empty set is never sent unless `allow_empty`: every change is
//      rejected instead, saying why (an empty list detaches everyone).
//   5. The answer's `data` is checked against what was sent: an id we attach
//      must be listed, an id we detach must not be; otherwise the change is
//      rejected with what Healvi listed.
//   A 422 naming `user_ids.N` (Laravel's `exists` rule: an unknown user id)
//   rejects the changes that want that id and sends the rest again (a 422
//   proves nothing was written). 401/403 stop the job (kAuth); 404 on the
//   customer's path stops the job (kTarget: customer_id or base_url is wrong).
//
// Admins: Healvi's GET never lists users with role `admin` ("Users with role
// admin can always see and interact with all customers"), so dirsync cannot
// see an admin someone attached, and a POST — a sync of the whole list —
// detaches it. That is harmless by Healvi's own account (an admin's access
// never depends on being attached), and step 3 avoids even that when nothing
// changes. An admin that the job itself manages is not listed in Healvi's
// answer either, so it is reported rejected with that explanation.
//
// Concurrency: one customer never has two requests in flight — the engine
// calls `apply` once per run and the target sends its GET and POST one after
// the other over one connection (`max_in_flight` is ignored: a second
// concurrent full-set POST would race the first). Between the GET and the
// POST someone else may attach a user; the POST then detaches it (the API
// offers no conditional request). The window is one round trip.
//
// Rate limits: Healvi documents none, so there is no default; a job's
// `rate_limits` apply to every request (retries included) when set.
//
// A HealviTarget is used from one thread at a time (it owns one HttpClient).
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "config/config.h"
#include "connectors/http/http_client.h"
#include "connectors/http/retry.h"
#include "core/target.h"

namespace dirsync::targets {

std::unique_ptr<core::Target> make_healvi_target(const config::HealviTargetSettings& settings);

namespace healvi {

// The one payload field: `user_id` (integer, required).
const std::vector<core::FieldSpec>& field_specs();

// "{base_url}/customers/{customer_id}/users", tolerating a trailing '/' on base_url.
std::string users_url(const config::HealviTargetSettings& settings);

// What one change asks of the customer's set.
struct Intent {
  std::optional<std::int64_t> attach;  // must be attached afterwards
  std::optional<std::int64_t> detach;  // must be gone afterwards (never equal to `attach`)
};

struct Prepared {
  std::vector<Intent> intents;  // one per change; empty when the outcome is already decided
  // One per change: decided without asking Healvi (a bad user_id, a duplicate,
  // a detach of an id another change keeps). nullopt: decided by the answer.
  std::vector<std::optional<core::Outcome>> decided;
  bool live(std::size_t i) const { return !decided[i]; }
};

// What the job's managed users (core::Target::set_managed) bring to a run.
struct Managed {
  std::set<std::int64_t> ids;               // every member's id: the set keeps them unless a change detaches one
  std::map<std::int64_t, std::string> kept;  // id → key, for the members the batch does not name
};

// Pure: the members' ids (payload.user_id, else a numeric target_id; members
// with neither are left out).
Managed managed(std::span<const core::Member> members, std::span<const core::Change> batch);

// Pure: the intents of a batch (any mix of ops). An id wanted by two changes
// is rejected for the later ones, and an id a `kept` member holds for every
// change that wants it: one Healvi user must not belong to two keys, or
// removing one key would detach the other's user. For the same reason a
// change never detaches an id a `kept` member holds.
Prepared prepare(std::span<const core::Change> batch, const std::map<std::int64_t, std::string>& kept = {});

// Pure: the list to send: `current` minus what live changes detach, plus what
// they attach, sorted ascending.
std::vector<std::int64_t> full_set(const std::set<std::int64_t>& current, const Prepared& prepared);

// Pure: the requests.
http::Request encode_list(const config::HealviTargetSettings& settings);
http::Request encode_sync(const config::HealviTargetSettings& settings, const std::vector<std::int64_t>& user_ids);

// The ids a `{"data": [User...]}` body lists, tolerating the schema's
// oddities (`email` typed integer but really a string or null; ids as integer
// strings). nullopt: not such a body, or the listing says it has more pages
// (dirsync must see the whole set, or its POST would detach the rest).
std::optional<std::set<std::int64_t>> listed_ids(const http::Response& response);

struct Listing {
  std::set<std::int64_t> ids;  // valid when neither `error` nor `everyone` is set
  std::optional<core::Error> error;       // the job must stop (auth, unreachable, no such customer)
  std::optional<core::Outcome> everyone;  // nothing can be sent this run: every live change gets this
};

// Pure: what the answer to `encode_list` means. `attempts`: requests sent.
Listing decode_list(const http::Response& response, std::int64_t customer_id, int attempts = 1);

struct SyncDecoded {
  // One per change; nullopt for changes not live, and for live changes left
  // undecided by a 422 that named other ids (send again without `invalid`).
  std::vector<std::optional<core::Outcome>> outcomes;
  // Ids a 422 named (Laravel's "The selected user_ids.N is invalid."), with the message.
  std::map<std::int64_t, std::string> invalid;
  std::optional<core::Error> error;  // the job must stop
};

// Pure: the outcome of each change given the ids Healvi lists as attached
// after the request (or before it, when nothing needed sending).
std::vector<std::optional<core::Outcome>> check_against(const std::set<std::int64_t>& attached,
                                                        const Prepared& prepared, std::int64_t customer_id);

// Pure: what the answer to `encode_sync(sent)` means for each live change.
SyncDecoded decode_sync(const http::Response& response, const Prepared& prepared,
                        const std::vector<std::int64_t>& sent, std::int64_t customer_id, int attempts = 1);

}  // namespace healvi

class HealviTarget final : public core::Target {
 public:
  // `transport` null: a real HttpClient over `settings.http`. Tests inject a
  // recording sleeper (and a fixed jitter) so that retries never wait.
  HealviTarget(config::HealviTargetSettings settings, http::Sleeper sleeper = http::real_sleeper(),
               std::unique_ptr<http::Transport> transport = nullptr, http::Jitter jitter = http::random_jitter());

  const core::Capabilities& capabilities() const override { return caps_; }
  const std::vector<core::FieldSpec>& fields() const override { return healvi::field_specs(); }
  // A full-set target takes the whole run in one call.
  std::size_t batch_size() const override { return caps_.max_batch; }
  // Expects every change of the run at once (see the header comment): one GET,
  // then at most one POST per round of 422 isolation, never concurrently.
  core::Result<std::vector<core::Outcome>> apply(std::span<const core::Change> batch) override;
  // The users the job manages, for the next `apply` (step 2 above).
  void set_managed(std::vector<core::Member> members) override { managed_ = std::move(members); }
  // "healvi https://host/third-party/v1 customer 42": the customer id is not a secret.
  // Every request carries the whole set: a re-sent create is the same set again.
  core::CreateRecovery create_recovery() const override { return core::CreateRecovery::kResend; }
  std::string describe() const override;

 private:
  config::HealviTargetSettings settings_;
  core::Capabilities caps_;
  std::unique_ptr<http::Transport> transport_;
  http::RetryOptions retry_;
  std::vector<core::Member> managed_;  // for the next apply only
};

}  // namespace dirsync::targets
