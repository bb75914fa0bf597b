// The auth_sync_user codec without sockets: password derivation, one request
// per user, FastAPI's 422 details, the bare-string 201.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/targets/auth_sync_user/auth_sync_user_target.h"

namespace dirsync::targets::auth_sync_user {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using nlohmann::json;

config::AuthSyncUserTargetSettings settings() {
  config::AuthSyncUserTargetSettings s;
  s.base_url = "https://auth.example/";
  s.password_secret = core::Secret("pw-secret-Q7x", "${env:AUTH_PASSWORD_SECRET}");
  return s;
}

core::Change user(const std::string& key, json extra = json::object()) {
  core::Change c;
  c.op = core::Op::kCreate;
  c.key = key;
  c.payload = {{"id", "u-" + key},       {"email", key + "@x.org"}, {"organization_id", "org1"},
               {"role_id", "role1"},      {"first_name", "Ada"},     {"last_name", "Lovelace"},
               {"phone_number", "555"},   {"phone_country_code", "+1"}};
  c.payload.update(extra);
  return c;
}

http::Exchange answer(int status, std::string body) {
  http::Exchange ex;
  ex.response.status = status;
  ex.response.body = std::move(body);
  ex.classification = http::classify(ex.response);
  ex.attempts = 1;
  return ex;
}

TEST(AuthSyncUserCodec, DerivesAStablePasswordPerUserAndSecret) {
  const core::Secret secret("pw-secret-Q7x", "x");
  const std::string p = derive_password(secret, "1001");
  EXPECT_EQ(p, derive_password(secret, "1001"));
  EXPECT_NE(p, derive_password(secret, "1002"));
  EXPECT_NE(p, derive_password(core::Secret("other-secret", "x"), "1001"));
  EXPECT_EQ(p.size(), 47u);
  EXPECT_EQ(p.rfind("Ds1-", 0), 0u);
  EXPECT_EQ(p.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 4),
            std::string::npos);
}

TEST(AuthSyncUserCodec, EncodesOneUserWithItsPasswordAsAnIdempotentPost) {
  const auto req = encode(settings(), user("1001", {{"image_url", ""}, {"device_id", "d1"}}), "Ds1-pw");
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "https://auth.example/auth/sync/user");
  EXPECT_TRUE(req.idempotent);
  const json body = json::parse(req.body);
  EXPECT_EQ(body["password"], "Ds1-pw");
  EXPECT_EQ(body["id"], "u-1001");
  EXPECT_EQ(body["device_id"], "d1");
  EXPECT_FALSE(body.contains("image_url")) << "optional fields without a value are left out";
  EXPECT_FALSE(req.bearer.has_value());
}

TEST(AuthSyncUserCodec, SendsTheOptionalAuthHeaders) {
  auto s = settings();
  s.token = core::Secret("tok", "${env:T}");
  s.api_key = core::Secret("key", "${env:K}");
  s.api_key_header = "X-Gateway-Key";
  const auto req = encode(s, user("1"), "pw");
  ASSERT_TRUE(req.bearer.has_value());
  EXPECT_EQ(req.bearer->reveal(), "tok");
  ASSERT_EQ(req.secret_headers.size(), 1u);
  EXPECT_EQ(req.secret_headers[0].first, "X-Gateway-Key");
}

TEST(AuthSyncUserCodec, PasswordIsNeverAMappableField) {
  for (const auto& f : field_specs()) EXPECT_NE(f.name, "password");
}

TEST(AuthSyncUserCodec, TheBareString201IsApplied) {
  const auto o = decode(answer(201, R"("User batch synced successfully.")"), user("1"), "pw");
  EXPECT_EQ(o.kind, core::OutcomeKind::kApplied);
  EXPECT_EQ(o.target_id, "u-1");
}

TEST(AuthSyncUserCodec, AnUndocumented2xxBodyIsUnknown) {
  const auto o = decode(answer(201, R"({"ok":tr)"), user("1"), "pw");
  EXPECT_EQ(o.kind, core::OutcomeKind::kUnknown);
}

TEST(AuthSyncUserCodec, FastApiDetailsBecomeOneMessagePerField) {
  const std::string body =
      R"({"detail":[{"loc":["body","email"],"msg":"value is not a valid email address","type":"value_error"},)"
      R"({"loc":["body","phone_number"],"msg":"Field required","type":"missing"}]})";
  const auto o = decode(answer(422, body), user("1"), "pw");
  EXPECT_EQ(o.kind, core::OutcomeKind::kRejected);
  EXPECT_EQ(o.message, "HTTP 422: email: value is not a valid email address; phone_number: Field required");
}

TEST(AuthSyncUserCodec, RedactsThePasswordFromEveryMessage) {
  const std::string pw = derive_password(core::Secret("s", "x"), "1");
  const std::string echo = R"({"detail":[{"loc":["body","password"],"msg":"bad password )" + pw + R"(","type":"x"}]})";
  const auto o = decode(answer(422, echo), user("1"), pw);
  EXPECT_THAT(o.message, Not(HasSubstr(pw)));
  EXPECT_THAT(o.message, HasSubstr("[redacted]"));
  const auto o500 = decode(answer(500, "internal error for " + pw), user("1"), pw);
  EXPECT_EQ(o500.kind, core::OutcomeKind::kUnknown);
  EXPECT_THAT(o500.message, Not(HasSubstr(pw)));
}

TEST(AuthSyncUserCodec, RedactsAPasswordCutOffByTheMessageLimit) {
  const std::string pw = derive_password(core::Secret("s", "x"), "1");
  // server_message keeps the first 300 bytes of a non-JSON body, then "...".
  const std::string page = std::string(280, '.') + pw + " was refused";
  const auto o = decode(answer(500, page), user("1"), pw);
  EXPECT_THAT(o.message, HasSubstr("[redacted]..."));
  EXPECT_THAT(o.message, Not(HasSubstr(pw.substr(4, 10))));
}

TEST(AuthSyncUserCodec, RejectsWithoutSendingAUserWithoutAnIdOrADetach) {
  core::Change no_id = user("1");
  no_id.payload.erase("id");
  EXPECT_TRUE(precheck(no_id).has_value());
  core::Change detach;
  detach.op = core::Op::kDetach;
  EXPECT_TRUE(precheck(detach).has_value());
  EXPECT_FALSE(precheck(user("1")).has_value());
}

}  // namespace
}  // namespace dirsync::targets::auth_sync_user
