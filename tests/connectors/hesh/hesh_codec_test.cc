// Hesh's wire format without sockets: encode(batch) → request and
// decode(response, batch) → outcomes, quirks included.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/targets/hesh/hesh_target.h"

namespace dirsync::targets {
namespace {

using core::Change;
using core::Op;
using core::OutcomeKind;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kTenant = "40dd0c53-2fa7-4193-82ae-14d4e62c20fb";
constexpr const char* kKey = "hesh-key-S3cr3t";

config::HeshTargetSettings settings(bool with_key = false) {
  config::HeshTargetSettings s;
  s.base_url = "https://api.hesh.app/";
  s.tenant_id = core::Secret(kTenant, "${env:HESH_TENANT_ID}");
  if (with_key) s.api_key = core::Secret(kKey, "${file:hesh.key}");
  return s;
}

Change create(const std::string& key, const std::string& email, json extra = json::object()) {
  Change c;
  c.op = Op::kCreate;
  c.key = key;
  c.payload = {{"external_user_id", key}, {"email", email}};
  c.payload.update(extra);
  return c;
}

http::Response answer(int status, json body) {
  http::Response r;
  r.status = status;
  r.body = body.dump();
  return r;
}

// A user as Hesh answers it, with the seed's echo bug: external_user_id == id.
json hesh_user(const std::string& id, const std::string& email, std::string external = {}) {
  return {{"id", id},
          {"email", email},
          {"avatar_image_url", nullptr},
          {"first_name", "Vova"},
          {"last_name", "Smith"},
          {"external_user_id", external.empty() ? id : external},
          {"full_name", "Luke Smith"},
          {"phone", "38000"},
          {"status", "Active"},
          {"created_at", "2023-08-25T09:07:21.759Z"},
          {"userVacations", json::array()}};
}

hesh::Decoded decode(const http::Response& r, const std::vector<Change>& batch, int attempts = 1,
                     const config::HeshTargetSettings& s = settings()) {
  return hesh::decode(s, r, batch, attempts);
}

// --- encode ---------------------------------------------------------------

TEST(HeshEncode, PostsTheUsersToTheBatchPathWithTheTenantAsASecretHeader) {
  const std::vector<Change> batch = {
      create("E1", "ann@x.org", {{"first_name", "Ann"}, {"last_name", "Lee"}, {"phone", "+1 555"}}),
      create("E2", "bob@x.org")};
  const auto req = hesh::encode(settings(), batch);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "https://api.hesh.app/api/v1/public/users/batch");
  EXPECT_EQ(req.content_type, "application/json");
  EXPECT_FALSE(req.bearer.has_value());
  EXPECT_TRUE(req.headers.empty()) << "the tenant id never goes in the loggable header list";
  ASSERT_EQ(req.secret_headers.size(), 1u);
  EXPECT_EQ(req.secret_headers[0].first, "x-tenant-id");
  EXPECT_EQ(req.secret_headers[0].second.reveal(), kTenant);
  EXPECT_EQ(json::parse(req.body),
            json({{"users",
                   {{{"external_user_id", "E1"}, {"email", "ann@x.org"}, {"first_name", "Ann"}, {"last_name", "Lee"},
                     {"phone", "+1 555"}},
                    {{"external_user_id", "E2"}, {"email", "bob@x.org"}}}}}));
  EXPECT_THAT(req.describe(), Not(HasSubstr(kTenant)));
}

TEST(HeshEncode, SendsTheApiKeyOnlyWhenConfigured) {
  const auto req = hesh::encode(settings(true), std::vector<Change>{create("E1", "ann@x.org")});
  ASSERT_EQ(req.secret_headers.size(), 2u);
  EXPECT_EQ(req.secret_headers[1].first, "x-api-key");
  EXPECT_EQ(req.secret_headers[1].second.reveal(), kKey);
  EXPECT_THAT(req.body, Not(HasSubstr(kKey)));
}

TEST(HeshEncode, MarksTheCreateSafeToRepeatBecauseHeshSkipsExistingUsers) {
  EXPECT_TRUE(hesh::encode(settings(), std::vector<Change>{create("E1", "ann@x.org")}).idempotent);
}

TEST(HeshEncode, LeavesOutEmptyAndNullOptionalFieldsSoAnEmptyPhoneMatchesNobody) {
  const auto req = hesh::encode(settings(), std::vector<Change>{create(
                                                "E1", "ann@x.org", {{"phone", ""}, {"first_name", nullptr}})});
  EXPECT_EQ(json::parse(req.body)["users"][0], json({{"external_user_id", "E1"}, {"email", "ann@x.org"}}));
}

TEST(HeshEncode, SendsOnlyTheFieldsHeshKnows) {
  const auto req = hesh::encode(settings(), std::vector<Change>{create("E1", "ann@x.org", {{"title", "Dr"}})});
  EXPECT_FALSE(json::parse(req.body)["users"][0].contains("title"));
}

// --- precheck ---------------------------------------------------------------

TEST(HeshPrecheck, AcceptsACompleteCreate) {
  EXPECT_FALSE(hesh::precheck(create("E1", "ann@x.org", {{"phone", "1"}})).has_value());
}

TEST(HeshPrecheck, RejectsAnEmptyRequiredField) {
  const auto o = hesh::precheck(create("E1", ""));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->kind, OutcomeKind::kRejected);
  EXPECT_EQ(o->message, "field 'email' is required by Hesh and is empty");
  Change no_ext = create("E1", "a@x.org");
  no_ext.payload.erase("external_user_id");
  EXPECT_EQ(hesh::precheck(no_ext)->message, "field 'external_user_id' is required by Hesh and is empty");
}

TEST(HeshPrecheck, RejectsAFieldThatIsNotAString) {
  EXPECT_EQ(hesh::precheck(create("E1", "a@x.org", {{"phone", 38000}}))->message,
            "field 'phone' must be a string for Hesh");
}

TEST(HeshPrecheck, RejectsUpdatesAndDetachesBecauseHeshIsCreateOnly) {
  Change c = create("E1", "a@x.org");
  c.op = Op::kUpdate;
  EXPECT_EQ(hesh::precheck(c)->message, "Hesh has no endpoint to update users (create-only)");
  c.op = Op::kDetach;
  EXPECT_EQ(hesh::precheck(c)->message, "Hesh has no endpoint to delete users (create-only)");
}

// --- decode: 200 ---------------------------------------------------------------

TEST(HeshDecode, MatchesUsersByEmailWhenHeshEchoesTheIdAsExternalUserId) {
  const std::vector<Change> batch = {create("E1", "Ann@X.org"), create("E2", "bob@x.org")};
  // The seed's example: external_user_id equal to id, and in another order.
  const auto d = decode(answer(200, json::array({hesh_user("id-b", "bob@x.org"), hesh_user("id-a", "ann@x.org")})),
                        batch);
  ASSERT_FALSE(d.error);
  ASSERT_EQ(d.outcomes.size(), 2u);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[0]->target_id, "id-a");
  EXPECT_EQ(d.outcomes[0]->message, "");
  EXPECT_EQ(d.outcomes[1]->target_id, "id-b");
}

TEST(HeshDecode, MatchesByExternalUserIdBeforeEmail) {
  // Hesh normalised the email in some way dirsync cannot predict; the correct
  // external_user_id still identifies the user.
  const std::vector<Change> batch = {create("E1", "ann@x.org"), create("E2", "bob@x.org")};
  const auto d = decode(answer(200, json::array({hesh_user("id-1", "someone@else.org", "E2")})), batch);
  EXPECT_EQ(d.outcomes[1]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[1]->target_id, "id-1");
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[0]->message, hesh::kSkippedNote);
}

TEST(HeshDecode, RecordsAUserAbsentFromTheAnswerAsAlreadyExisting) {
  const std::vector<Change> batch = {create("E1", "ann@x.org"), create("E2", "bob@x.org")};
  const auto d = decode(answer(200, json::array({hesh_user("id-b", "bob@x.org")})), batch);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[0]->target_id, "") << "the engine keeps the id the snapshot had";
  EXPECT_EQ(d.outcomes[0]->message, "already existed (skipped by Hesh)");
  EXPECT_EQ(d.outcomes[1]->target_id, "id-b");
}

TEST(HeshDecode, ReadsAnEmptyArrayAsEveryUserAlreadyExisting) {
  const std::vector<Change> batch = {create("E1", "ann@x.org"), create("E2", "bob@x.org")};
  const auto d = decode(answer(200, json::array()), batch);
  for (const auto& o : d.outcomes) {
    EXPECT_EQ(o->kind, OutcomeKind::kApplied);
    EXPECT_EQ(o->message, hesh::kSkippedNote);
  }
}

TEST(HeshDecode, CallsAnAnswerThatMatchesNoSentUserUnknownNeverAllExisted) {
  const std::vector<Change> batch = {create("E1", "ann@x.org"), create("E2", "bob@x.org")};
  const auto d = decode(answer(200, json::array({hesh_user("id-z", "zed@x.org")})), batch);
  ASSERT_EQ(d.outcomes.size(), 2u);
  for (const auto& o : d.outcomes) {
    EXPECT_EQ(o->kind, OutcomeKind::kUnknown);
    EXPECT_EQ(o->message,
              "Hesh returned 1 users for 2 sent and none of them matches a sent user; whether these users were "
              "created is unknown");
  }
}

TEST(HeshDecode, CallsTheUnmatchedUsersUnknownWhenTheAnswerHoldsAStranger) {
  const std::vector<Change> batch = {create("E1", "ann@x.org"), create("E2", "bob@x.org")};
  const auto d =
      decode(answer(200, json::array({hesh_user("id-a", "ann@x.org"), hesh_user("id-z", "zed@x.org")})), batch);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[0]->target_id, "id-a");
  EXPECT_EQ(d.outcomes[1]->kind, OutcomeKind::kUnknown) << "the stranger might be Bob under another email";
  EXPECT_THAT(d.outcomes[1]->message, HasSubstr("1 of them matching no sent user"));
}

TEST(HeshDecode, CallsAUserReturnedTwiceUnknown) {
  const std::vector<Change> batch = {create("E1", "ann@x.org")};
  const auto d =
      decode(answer(200, json::array({hesh_user("id-1", "ann@x.org"), hesh_user("id-2", "ANN@x.org")})), batch);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kUnknown);
  EXPECT_THAT(d.outcomes[0]->message, HasSubstr("2 of them for this user"));
}

TEST(HeshDecode, DoesNotGuessBetweenTwoSentUsersWithOneEmail) {
  const std::vector<Change> batch = {create("E1", "same@x.org"), create("E2", "same@x.org")};
  const auto d = decode(answer(200, json::array({hesh_user("id-1", "same@x.org")})), batch);
  for (const auto& o : d.outcomes) EXPECT_EQ(o->kind, OutcomeKind::kUnknown);
}

TEST(HeshDecode, CallsAnUnreadableAnswerUnknown) {
  const std::vector<Change> batch = {create("E1", "ann@x.org")};
  http::Response r;
  r.status = 200;
  r.body = R"([{"id":"id-a","ema)";
  const auto d = decode(r, batch);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kUnknown);
  EXPECT_THAT(d.outcomes[0]->message, HasSubstr("cannot read"));
  const auto obj = decode(answer(200, {{"data", json::array()}}), batch);
  EXPECT_EQ(obj.outcomes[0]->kind, OutcomeKind::kUnknown) << "an object is not the documented array";
}

// --- decode: errors ---------------------------------------------------------------

TEST(HeshDecode, StopsTheJobOn401WithoutTheTenantId) {
  const auto d = decode(
      answer(401, {{"statusCode", 401}, {"message", "Missing or incorrect x-tenant-id"}, {"error", "Unauthorized"}}),
      {create("E1", "a@x.org")});
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->kind, core::ErrorKind::kAuth);
  EXPECT_EQ(d.error->message,
            "Hesh refused the tenant id (HTTP 401): Missing or incorrect x-tenant-id; check tenant_id "
            "(${env:HESH_TENANT_ID})");
  EXPECT_TRUE(d.outcomes.empty());
}

TEST(HeshDecode, NamesTheApiKeysOriginTooWhenOneIsSent) {
  const auto d = decode(answer(401, {{"statusCode", 401}, {"message", "Invalid or missing x-api-key"}}),
                        {create("E1", "a@x.org")}, 1, settings(true));
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->message,
            "Hesh refused the tenant id (HTTP 401): Invalid or missing x-api-key; check tenant_id "
            "(${env:HESH_TENANT_ID}) and api_key (${file:hesh.key})");
}

TEST(HeshDecode, NeverQuotesTheTenantIdOrKeyEvenWhenHeshEchoesThem) {
  const std::string echoed = std::string("tenant ") + kTenant + " with key " + kKey + " is not allowed";
  const auto auth = decode(answer(401, {{"message", echoed}}), {create("E1", "a@x.org")}, 1, settings(true));
  EXPECT_THAT(auth.error->message, HasSubstr("tenant [redacted] with key [redacted] is not allowed"));
  const auto bad = decode(answer(400, {{"message", echoed}}), {create("E1", "a@x.org")}, 1, settings(true));
  EXPECT_THAT(bad.outcomes[0]->message, Not(HasSubstr(kTenant)));
  EXPECT_THAT(bad.outcomes[0]->message, Not(HasSubstr(kKey)));
  const auto err = decode(answer(500, {{"message", echoed}}), {create("E1", "a@x.org")}, 1, settings(true));
  EXPECT_THAT(err.outcomes[0]->message, Not(HasSubstr(kTenant)));
}

TEST(HeshDecode, RejectsTheRecordsA400NamesAndLeavesTheRestToResend) {
  const std::vector<Change> batch = {create("E1", "a@x.org"), create("E2", "bad"), create("E3", "c@x.org"),
                                     create("E4", "d@x.org")};
  const auto d = decode(answer(400, {{"statusCode", 400},
                                     {"message", {"users.1.email must be an email", "users.3.phone must be a string",
                                                  "users.3.property title should not exist"}},
                                     {"error", "Bad Request"}}),
                        batch);
  ASSERT_EQ(d.outcomes.size(), 4u);
  EXPECT_FALSE(d.outcomes[0].has_value());
  EXPECT_EQ(d.outcomes[1]->kind, OutcomeKind::kRejected);
  EXPECT_EQ(d.outcomes[1]->message, "users.1.email must be an email");
  EXPECT_FALSE(d.outcomes[2].has_value());
  EXPECT_EQ(d.outcomes[3]->message, "users.3.phone must be a string; users.3.property title should not exist");
}

TEST(HeshDecode, RejectsEveryRecordWhenA400NamesNone) {
  const auto d = decode(answer(400, {{"statusCode", 400}, {"message", "Invalid data"}, {"error", "Bad Request"}}),
                        {create("E1", "a@x.org"), create("E2", "b@x.org")});
  for (const auto& o : d.outcomes) {
    EXPECT_EQ(o->kind, OutcomeKind::kRejected);
    EXPECT_EQ(o->message, "Hesh rejected the batch (HTTP 400): Invalid data");
  }
}

TEST(HeshDecode, RejectsTheBatchOnAnotherClientError) {
  const auto d = decode(answer(404, {{"statusCode", 404}, {"message", "Cannot POST /x"}, {"error", "Not Found"}}),
                        {create("E1", "a@x.org")});
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kRejected);
  EXPECT_EQ(d.outcomes[0]->message, "Hesh rejected the batch (HTTP 404: Cannot POST /x)");
}

TEST(HeshDecode, CallsA500UnknownAndSaysTheNextRunMayResend) {
  const auto d = decode(answer(500, {{"statusCode", 500}, {"message", "Internal server error"}}),
                        {create("E1", "a@x.org")}, 5);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kUnknown);
  EXPECT_EQ(d.outcomes[0]->message,
            "outcome unknown after 5 attempts: HTTP 500: Internal server error (the next run sends these users "
            "again, which is safe: Hesh skips users that already exist)");
}

TEST(HeshDecode, AsksToRetryLaterAfterPersistent429s) {
  auto r = answer(429, {{"statusCode", 429}, {"message", "ThrottlerException: Too Many Requests"}});
  r.headers.push_back({"retry-after", "3"});
  const auto d = decode(r, {create("E1", "a@x.org")}, 5);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kRetry);
  EXPECT_THAT(d.outcomes[0]->message, HasSubstr("Hesh asked to retry later after 5 attempts"));
}

TEST(HeshDecode, StopsTheJobWhenHeshIsUnreachable) {
  http::Response r;
  r.failure = http::TransportFailure::kNothingSent;
  r.error = "Couldn't connect to server";
  const auto d = decode(r, {create("E1", "a@x.org")}, 3);
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->kind, core::ErrorKind::kTarget);
  EXPECT_THAT(d.error->message, HasSubstr("Hesh is unreachable after 3 attempts"));
}

// --- grouping, fields, limits ---------------------------------------------------------------

TEST(HeshGroups, PutsUsersSharingAnEmailOrExternalIdInSeparateRequests) {
  const std::vector<Change> batch = {create("E1", "a@x.org"), create("E2", "A@x.org"), create("E3", "c@x.org"),
                                     create("E1", "d@x.org"), create("E5", "a@X.org")};
  const auto groups = hesh::distinct_groups(batch, {0, 1, 2, 3, 4});
  EXPECT_THAT(groups, ElementsAre(ElementsAre(0u, 2u), ElementsAre(1u, 3u), ElementsAre(4u)));
}

TEST(HeshGroups, KeepsABatchOfDistinctUsersInOneRequest) {
  const std::vector<Change> batch = {create("E1", "a@x.org"), create("E2", "b@x.org")};
  EXPECT_THAT(hesh::distinct_groups(batch, {0, 1}), ElementsAre(ElementsAre(0u, 1u)));
}

TEST(HeshFields, DeclaresTheSeedsFieldsWithExternalIdAndEmailRequired) {
  const auto& f = hesh::field_specs();
  ASSERT_EQ(f.size(), 5u);
  std::vector<std::string> required;
  for (const auto& s : f) {
    EXPECT_EQ(s.type, core::FieldType::kString) << s.name;
    if (s.required) required.push_back(s.name);
  }
  EXPECT_THAT(required, ElementsAre("external_user_id", "email"));
}

TEST(HeshRateLimits, DefaultsToHeshsDocumentedWindows) {
  using std::chrono::milliseconds;
  EXPECT_THAT(HeshTarget::default_rate_limits(),
              ElementsAre(config::RateWindow{15, milliseconds(1000)}, config::RateWindow{300, milliseconds(60'000)},
                          config::RateWindow{4000, milliseconds(3'600'000)}));
}

}  // namespace
}  // namespace dirsync::targets
