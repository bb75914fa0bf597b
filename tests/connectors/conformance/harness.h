#pragma once
// What the shared target conformance suite needs from one target and its
// loopback test server (in the spirit of osquery's
// osquery/database/tests/plugin_tests.h: one fixture, every backend).
//
// A harness owns a running test server and makes targets that talk to it.
// Users are identified by a small index `i` (0, 1, 2, ...): `create(i)` is the
// change that creates user i, `record(i)` the source record that maps to the
// same user through `mapping()`, `copies(i)` how many times the server holds
// user i. Every harness is built fresh for each test: no state is shared.
//
// Facts the typed tests branch on:
// - `create_is_safe_to_resend()`: the API makes a second copy of a create
//   harmless (it skips or upserts users it already has), so the target may
//   retry a create whose outcome is unknown. Otherwise it must not.
// - capabilities (create-only, full-set) are read from the target itself.
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "connectors/http/retry.h"
#include "core/change.h"
#include "core/mapping.h"
#include "core/record.h"
#include "core/target.h"

namespace dirsync::conformance {

// Every harness configures its target with this many attempts per request.
inline constexpr int kMaxAttempts = 3;

// The faults every test server can stage, consumed one per write request (the
// request that carries the changes: for a full-set target its POST, not the
// GET that reads the current set).
enum class Fault {
  k429,                  // 429 with Retry-After; nothing processed
  k500,                  // 500; nothing processed
  kClose,                // connection closed without processing or answering
  kCloseAfterProcessing, // processed (users change), then closed without answering
};

class Harness {
 public:
  virtual ~Harness() = default;

  // The target over the harness's server. `batch_size` 0: ask for more than
  // the target's max_batch, so that batch_size() shows the clamp. The sleeper
  // records instead of sleeping; jitter is fixed; rate limits are off.
  virtual std::unique_ptr<core::Target> make_target(http::Sleeper sleeper, std::size_t batch_size = 0) = 0;

  virtual bool create_is_safe_to_resend() const = 0;
  // Users for a full-set target's "whole set" (a batch-size target uses batch_size()).
  virtual std::size_t whole_set_size() const { return 40; }
  // The job can set the batch size (the harness then asks for more than max_batch).
  virtual bool batch_size_configurable() const { return true; }
  // The API takes one user per request (the target may still take many
  // changes per apply and send them concurrently): n changes are n requests.
  virtual bool one_request_per_user() const { return false; }

  // Changes.
  virtual core::Change create(int i) const = 0;
  // A create the server refuses with a 4xx (never stored).
  virtual core::Change invalid_create(int i) const = 0;
  // An update of user i, created with outcome id `target_id`; nullopt when
  // the target cannot update.
  virtual std::optional<core::Change> update(int i, const std::string& target_id) const = 0;
  virtual std::optional<core::Change> detach(int i, const std::string& target_id) const = 0;
  // Whether the server shows the update of user i.
  virtual bool shows_update(int i) const = 0;

  // Through the engine: the source record of user i and the job's mapping.
  virtual core::Record record(int i) const = 0;
  virtual core::Mapping mapping() const = 0;

  // Server side.
  virtual void inject(Fault fault, int count = 1, int retry_after_seconds = 1) = 0;
  virtual void clear_faults() = 0;
  // From now on, the server refuses the credentials the targets send (401).
  virtual void refuse_credentials() = 0;
  // Every credential value the targets send: none may appear in a message.
  virtual std::vector<std::string> secrets() const = 0;
  virtual std::size_t users_held() const = 0;
  // How many users on the server are user i (0, 1, or a duplicate), for
  // users 0..n-1, from one read of the server's users.
  virtual std::vector<std::size_t> copies_of_first(int n) const = 0;
  std::size_t copies(int i) const { return copies_of_first(i + 1)[static_cast<std::size_t>(i)]; }
  // The ids the server gave users 0..n-1 ("(absent)" for a user it does not
  // have); nullopt when the API returns no ids.
  virtual std::optional<std::vector<std::string>> server_ids(int n) const = 0;
  // Requests that carried changes (creates/updates/detaches), and all requests.
  virtual std::size_t write_requests() const = 0;
  virtual std::size_t requests() const = 0;
};

}  // namespace dirsync::conformance
