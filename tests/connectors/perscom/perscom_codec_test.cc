// PERSCOM's wire format without sockets: encode(batch) → request and
// decode(response, batch) → outcomes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/targets/perscom/perscom_target.h"

namespace dirsync::targets {
namespace {

using core::Change;
using core::Op;
using core::OutcomeKind;
using nlohmann::json;
using ::testing::HasSubstr;

config::PerscomTargetSettings settings() {
  config::PerscomTargetSettings s;
  s.base_url = "https://api.perscom.io/";
  s.api_version = "v2";
  s.token = core::Secret("tok", "${env:PERSCOM_TOKEN}");
  return s;
}

Change create(const std::string& key, const std::string& name, const std::string& email) {
  Change c;
  c.op = Op::kCreate;
  c.key = key;
  c.payload = {{"name", name}, {"email", email}};
  return c;
}

Change update(const std::string& id, json payload, std::vector<std::string> changed, bool resync = false) {
  Change c;
  c.op = Op::kUpdate;
  c.key = "k" + id;
  c.target_id = id;
  c.payload = std::move(payload);
  c.changed_fields = std::move(changed);
  c.resync = resync;
  return c;
}

Change detach(const std::string& id) {
  Change c;
  c.op = Op::kDetach;
  c.key = "k" + id;
  c.target_id = id;
  return c;
}

http::Response answer(int status, json body) {
  http::Response r;
  r.status = status;
  r.body = body.dump();
  return r;
}

TEST(PerscomEncode, SendsCreatesAsAPostOfResources) {
  const std::vector<Change> batch = {create("1", "Ann", "ann@x.org"), create("2", "Bob", "bob@x.org")};
  const http::Request r = perscom::encode(settings(), batch);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "https://api.perscom.io/v2/users/batch");
  EXPECT_FALSE(r.idempotent) << "a create must never be repeated blindly";
  ASSERT_TRUE(r.bearer);
  EXPECT_EQ(r.bearer->reveal(), "tok");
  EXPECT_EQ(json::parse(r.body), json({{"resources", {{{"email", "ann@x.org"}, {"name", "Ann"}},
                                                       {{"email", "bob@x.org"}, {"name", "Bob"}}}}}));
  EXPECT_TRUE(r.secret_headers.empty());
}

TEST(PerscomEncode, AddsTheTenantHeaderWhenConfigured) {
  auto s = settings();
  s.perscom_id = core::Secret("77", "(literal)");
  const std::vector<Change> batch = {create("1", "Ann", "ann@x.org")};
  const http::Request r = perscom::encode(s, batch);
  ASSERT_EQ(r.secret_headers.size(), 1u);
  EXPECT_EQ(r.secret_headers[0].first, "X-Perscom-Id");
  EXPECT_EQ(r.secret_headers[0].second.reveal(), "77");
}

TEST(PerscomEncode, PatchesOnlyTheChangedFields) {
  const std::vector<Change> batch = {
      update("12", {{"name", "Ann B"}, {"email", "ann@x.org"}, {"rank_id", 3}}, {"name"}),
      update("15", {{"name", "Bob"}, {"email", "bob2@x.org"}, {"rank_id", 4}}, {"email", "rank_id"})};
  const http::Request r = perscom::encode(settings(), batch);
  EXPECT_EQ(r.method, "PATCH");
  EXPECT_TRUE(r.idempotent);
  EXPECT_EQ(json::parse(r.body),
            json({{"resources", {{"12", {{"name", "Ann B"}}}, {"15", {{"email", "bob2@x.org"}, {"rank_id", 4}}}}}}))
      << "an unchanged email must not be sent: PERSCOM's unique rule has no exception for the user itself";
}

TEST(PerscomEncode, ResyncPatchesEveryFieldButTheUniqueEmail) {
  const Change c = update("12", {{"name", "Ann"}, {"email", "ann@x.org"}, {"rank_id", 3}, {"approved", true}}, {}, true);
  EXPECT_EQ(perscom::patch_fields(c), json({{"name", "Ann"}, {"rank_id", 3}, {"approved", true}}));
}

TEST(PerscomEncode, ClearsAChangedFieldThatIsNoLongerMappedUnlessItIsRequired) {
  const Change c = update("12", {{"email", "ann@x.org"}}, {"name", "phone_number"});
  EXPECT_EQ(perscom::patch_fields(c), json({{"phone_number", nullptr}}));
}

TEST(PerscomEncode, SendsDetachesAsADeleteOfIntegerIds) {
  const std::vector<Change> batch = {detach("12"), detach("15")};
  const http::Request r = perscom::encode(settings(), batch);
  EXPECT_EQ(r.method, "DELETE");
  EXPECT_TRUE(r.idempotent);
  EXPECT_EQ(json::parse(r.body), json({{"resources", {12, 15}}}));
}

TEST(PerscomPrecheck, RejectsAnUpdateOrDetachWithoutAPerscomId) {
  auto u = update("", {{"name", "x"}}, {"name"});
  auto o = perscom::precheck(u);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->kind, OutcomeKind::kRejected);
  EXPECT_EQ(o->message, "no PERSCOM id is known for this user, so it cannot be updated");
  EXPECT_FALSE(perscom::precheck(create("1", "a", "a@x.org")));
  EXPECT_FALSE(perscom::precheck(detach("3")));
}

TEST(PerscomDecode, MatchesCreatedUsersBySentEmailIgnoringCaseAndOrder) {
  const std::vector<Change> batch = {create("1", "Ann", "Ann@X.org"), create("2", "Bob", "bob@x.org")};
  const auto d = perscom::decode(
      answer(200, {{"data", {{{"id", 8}, {"email", "bob@x.org"}}, {{"id", 7}, {"email", "ann@x.org"}}}}}), batch);
  ASSERT_FALSE(d.error);
  ASSERT_EQ(d.outcomes.size(), 2u);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[0]->target_id, "7");
  EXPECT_EQ(d.outcomes[1]->target_id, "8");
}

TEST(PerscomDecode, NeverAssumesACreatedUserTheAnswerDoesNotList) {
  const std::vector<Change> batch = {create("1", "Ann", "ann@x.org"), create("2", "Bob", "bob@x.org")};
  const auto d = perscom::decode(answer(200, {{"data", {{{"id", 7}, {"email", "ann@x.org"}}}}}), batch);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[1]->kind, OutcomeKind::kUnknown);
  EXPECT_THAT(d.outcomes[1]->message, HasSubstr("PERSCOM returned 1 users for 2 sent"));
}

TEST(PerscomDecode, CallsAnUnreadableCreateAnswerUnknown) {
  const std::vector<Change> batch = {create("1", "Ann", "ann@x.org")};
  http::Response r;
  r.status = 200;
  r.body = R"({"data":[{"id":)";
  const auto d = perscom::decode(r, batch);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kUnknown);
  EXPECT_THAT(d.outcomes[0]->message, HasSubstr("cannot read"));
}

TEST(PerscomDecode, RejectsAPatchOfAnIdPerscomDoesNotHave) {
  const std::vector<Change> batch = {update("12", {{"name", "A"}}, {"name"}), update("99", {{"name", "B"}}, {"name"})};
  const auto d = perscom::decode(answer(200, {{"data", {{{"id", 12}, {"name", "A"}}}}}), batch);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[0]->target_id, "12");
  EXPECT_EQ(d.outcomes[1]->kind, OutcomeKind::kRejected);
  EXPECT_EQ(d.outcomes[1]->message, "user id 99 does not exist in PERSCOM");
}

TEST(PerscomDecode, TreatsADeleteOfAMissingIdAsAlreadyAbsent) {
  const std::vector<Change> batch = {detach("12"), detach("99")};
  const auto d = perscom::decode(answer(200, {{"data", {{{"id", 12}}}}}), batch);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[0]->message, "");
  EXPECT_EQ(d.outcomes[1]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[1]->message, "already absent");
}

TEST(PerscomDecode, RejectsOnlyTheRecordPerscomsValidationErrorNames) {
  const std::vector<Change> batch = {create("0", "A", "a@x.org"), create("1", "B", "b@x.org"),
                                     create("2", "C", "c@x.org"), create("3", "D", "taken@x.org")};
  const auto d = perscom::decode(
      answer(422, {{"error",
                    {{"message", "The resources.3.email has already been taken. (and 2 more errors)"},
                     {"type", "ValidationException"}}}}),
      batch);
  ASSERT_FALSE(d.error);
  EXPECT_FALSE(d.bisect);
  EXPECT_FALSE(d.outcomes[0]);
  EXPECT_FALSE(d.outcomes[1]);
  EXPECT_FALSE(d.outcomes[2]) << "undecided: sent again";
  ASSERT_TRUE(d.outcomes[3]);
  EXPECT_EQ(d.outcomes[3]->kind, OutcomeKind::kRejected);
  EXPECT_EQ(d.outcomes[3]->message, "The resources.3.email has already been taken.");
}

TEST(PerscomDecode, RejectsEveryRecordLaravelsValidationErrorsName) {
  const std::vector<Change> batch = {create("0", "A", "a@x.org"), create("1", "B", "bad"), create("2", "C", "c@x.org")};
  const auto d = perscom::decode(
      answer(422, {{"message", "The resources.1.email field must be a valid email address. (and 2 more errors)"},
                   {"errors",
                    {{"resources.1.email", {"The resources.1.email field must be a valid email address."}},
                     {"resources.2.name", {"The resources.2.name field must be a string."}},
                     {"resources.2.unit_id", {"The resources.2.unit_id field must be an integer."}}}}}),
      batch);
  EXPECT_FALSE(d.outcomes[0]);
  EXPECT_EQ(d.outcomes[1]->message, "The resources.1.email field must be a valid email address.");
  EXPECT_EQ(d.outcomes[2]->message,
            "The resources.2.name field must be a string. The resources.2.unit_id field must be an integer.");
}

TEST(PerscomDecode, MapsAPatchValidationErrorToTheUserWithThatId) {
  const std::vector<Change> batch = {update("12", {{"email", "x@x.org"}}, {"email"}),
                                     update("15", {{"email", "y@x.org"}}, {"email"})};
  const auto d = perscom::decode(
      answer(422, {{"error", {{"message", "The resources.15.email has already been taken."}}}}), batch);
  EXPECT_FALSE(d.outcomes[0]);
  EXPECT_EQ(d.outcomes[1]->kind, OutcomeKind::kRejected);
}

TEST(PerscomDecode, AsksToBisectAValidationErrorThatNamesNoRecord) {
  const std::vector<Change> batch = {create("0", "A", "a@x.org"), create("1", "B", "b@x.org")};
  const auto d = perscom::decode(answer(422, {{"message", "The given data was invalid."}}), batch);
  EXPECT_TRUE(d.bisect);
  const std::vector<Change> one = {create("0", "A", "a@x.org")};
  const auto single = perscom::decode(answer(422, {{"message", "The given data was invalid."}}), one);
  EXPECT_FALSE(single.bisect);
  EXPECT_EQ(single.outcomes[0]->kind, OutcomeKind::kRejected);
  EXPECT_EQ(single.outcomes[0]->message, "The given data was invalid.");
}

TEST(PerscomDecode, StopsTheJobWhenTheTokenIsRefused) {
  const std::vector<Change> batch = {create("0", "A", "a@x.org")};
  const auto d = perscom::decode(answer(401, {{"message", "Unauthenticated."}}), batch);
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->kind, core::ErrorKind::kAuth);
  EXPECT_EQ(d.error->message, "PERSCOM refused the token (HTTP 401): Unauthenticated.");
  EXPECT_EQ(perscom::decode(answer(403, {{"message", "This action is unauthorized."}}), batch).error->message,
            "PERSCOM refused the token (HTTP 403): This action is unauthorized.");
}

TEST(PerscomDecode, RejectsEveryRecordOfABatchRefusedWithAnotherClientError) {
  const std::vector<Change> batch = {detach("1"), detach("2")};
  const auto d = perscom::decode(answer(404, {{"message", "Not Found"}}), batch);
  for (const auto& o : d.outcomes) {
    EXPECT_EQ(o->kind, OutcomeKind::kRejected);
    EXPECT_EQ(o->message, "PERSCOM rejected the delete batch (HTTP 404: Not Found)");
  }
}

TEST(PerscomDecode, CallsAServerErrorOnACreateUnknownAndSaysItWasNotResent) {
  const std::vector<Change> batch = {create("0", "A", "a@x.org")};
  const auto d = perscom::decode(answer(500, {{"message", "Server Error"}}), batch);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kUnknown);
  EXPECT_EQ(d.outcomes[0]->message,
            "outcome unknown, not re-sent because a create is not safe to repeat: HTTP 500: Server Error");
}

TEST(PerscomDecode, AsksToRetryLaterAfterRateLimitsOutlastTheAttempts) {
  const std::vector<Change> batch = {detach("1")};
  const auto d = perscom::decode(answer(429, {{"message", "Too Many Attempts."}}), batch, 5);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kRetry);
  EXPECT_EQ(d.outcomes[0]->message, "PERSCOM asked to retry later after 5 attempts (HTTP 429: Too Many Attempts.)");
}

TEST(PerscomDecode, StopsTheJobWhenPerscomIsUnreachable) {
  const std::vector<Change> batch = {create("0", "A", "a@x.org")};
  http::Response r;
  r.failure = http::TransportFailure::kNothingSent;
  r.error = "POST https://api.perscom.io/v2/users/batch: Could not resolve host: api.perscom.io (the request was not sent)";
  const auto d = perscom::decode(r, batch, 5);
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->kind, core::ErrorKind::kTarget);
  EXPECT_EQ(d.error->message, "PERSCOM is unreachable after 5 attempts: " + r.error);
}

TEST(PerscomFields, DeclareNameAndEmailRequiredAndEmailUnique) {
  const auto& specs = perscom::field_specs();
  ASSERT_EQ(specs.size(), 13u);
  EXPECT_EQ(specs[0].name, "name");
  EXPECT_TRUE(specs[0].required);
  EXPECT_EQ(specs[1].name, "email");
  EXPECT_TRUE(specs[1].required);
  EXPECT_TRUE(specs[1].unique);
  const auto it = std::find_if(specs.begin(), specs.end(), [](const auto& f) { return f.name == "approved"; });
  ASSERT_NE(it, specs.end());
  EXPECT_EQ(it->type, core::FieldType::kBool);
}

}  // namespace
}  // namespace dirsync::targets
