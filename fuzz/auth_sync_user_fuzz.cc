// auth_sync_user's response decoder (auth_sync_user::decode, fastapi_details):
// any answer to a valid change gives one outcome whose message never holds
// the derived password, even when the server echoes it. encode() runs too.
//
// Input: the body is the server's answer. Header (optional): "status",
// "headers", "failure", "attempts", "batch" (its first change that passes
// precheck is sent; default: a create), "echo" (true: the password is put at
// the start of the body, as a server echoing the request would).
#include <chrono>

#include "connectors/http/retry.h"
#include "connectors/targets/auth_sync_user/auth_sync_user_target.h"
#include "fuzz/fuzz_input.h"

using namespace dirsync;
using namespace dirsync::targets;
using fuzz::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fuzz::Input in = fuzz::split_input(data, size);
  const std::vector<core::Change> all = fuzz::batch(
      in.header, {fuzz::create("u1", {{"id", "u1"}, {"email", "ann@example.org"}, {"first_name", "Ann"},
                                      {"last_name", "Lee"}, {"organization_id", "o1"}, {"role_id", "r1"},
                                      {"phone_number", "5550100"}, {"phone_country_code", "+1"}})});
  const core::Change* change = nullptr;
  for (const core::Change& c : all) {
    if (!auth_sync_user::precheck(c)) {
      change = &c;
      break;
    }
  }
  if (change == nullptr) return 0;

  config::AuthSyncUserTargetSettings settings;
  settings.base_url = "https://auth.example";
  settings.password_secret = core::Secret("fuzz-secret", "${env:AUTH_SYNC_SECRET}");
  const std::string password = auth_sync_user::derive_password(settings.password_secret, change->key);
  (void)auth_sync_user::encode(settings, *change, password);

  std::string body = in.body;
  if (fuzz::boolean(in.header, "echo")) body = password + body;
  http::Exchange exchange;
  exchange.response = fuzz::response(in.header, std::move(body));
  // A fixed clock: an HTTP-date Retry-After must not make runs differ.
  exchange.classification = http::classify(exchange.response, std::chrono::system_clock::time_point{});
  exchange.attempts = static_cast<int>(fuzz::integer(in.header, "attempts", 1, 1, 10));

  (void)auth_sync_user::fastapi_details(exchange.response.body);
  const core::Outcome outcome = auth_sync_user::decode(exchange, *change, password);
  // redact() replaces every run that starts with the password's first 8 characters.
  fuzz::require(outcome.message.find(password.substr(0, 8)) == std::string::npos);
  return 0;
}
