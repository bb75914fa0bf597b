// Royalti's encode/decode without sockets: the bulk body, display-name
// attribution of the 201's results, and what each status means.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/targets/royalti/royalti_target.h"

namespace dirsync::targets {
namespace {

using core::Change;
using core::Op;
using core::OutcomeKind;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kToken = "codec-token-Hk29-secret";

Change create(const std::string& first, const std::string& last, const std::string& email, json extra = json::object()) {
  Change c;
  c.op = Op::kCreate;
  c.key = email;
  c.payload = {{"firstName", first}, {"lastName", last}, {"email", email}};
  c.payload.update(extra);
  return c;
}

config::RoyaltiTargetSettings settings() {
  config::RoyaltiTargetSettings s;
  s.base_url = "https://royalti.example/api/";
  s.token = core::Secret(kToken, "${env:ROYALTI_TOKEN}");
  return s;
}

http::Response answer(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http::Response created(const json& created_users, const json& errors, int processed = 0) {
  return answer(201, json{{"message", "Done."},
                          {"createdUsers", created_users},
                          {"processedCount", processed},
                          {"errors", errors}}
                         .dump());
}

// The five users of the seed's example answer.
std::vector<Change> seed_batch() {
  return {create("John", "Doe", "john@x.org"), create("Jericho", "Doe", "jericho@x.org"),
          create("Jane", "Doe", "jane@x.org"), create("Jacob", "Doe", "jacob@"), create("Jake", "Doe", "jake")};
}

TEST(RoyaltiFields, RequireFirstNameLastNameAndEmailAsStrings) {
  std::vector<std::string> required, optional;
  for (const auto& f : royalti::field_specs()) {
    EXPECT_EQ(f.type, core::FieldType::kString) << f.name;
    (f.required ? required : optional).push_back(f.name);
  }
  EXPECT_THAT(required, ::testing::ElementsAre("firstName", "lastName", "email"));
  EXPECT_THAT(optional, ::testing::ElementsAre("nickName", "userType", "ipi", "role", "phone", "country"));
}

TEST(RoyaltiEncode, PostsTheUsersToUserBulkWithTheBearerToken) {
  const std::vector<Change> batch = {create("Ann", "Lee", "ann@x.org", {{"country", "NG"}, {"role", "admin"}})};
  const auto req = royalti::encode(settings(), batch);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "https://royalti.example/api/user/bulk");
  ASSERT_TRUE(req.bearer.has_value());
  EXPECT_EQ(req.bearer->reveal(), kToken);
  EXPECT_THAT(req.body, Not(HasSubstr(kToken)));
  EXPECT_TRUE(req.headers.empty());
  const json body = json::parse(req.body);
  EXPECT_EQ(body["users"], json::parse(R"([{"firstName":"Ann","lastName":"Lee","email":"ann@x.org",
                                             "country":"NG","role":"admin"}])"));
}

TEST(RoyaltiEncode, AlwaysSendsSendEmailFalseUnlessTheJobTurnsInvitationsOn) {
  const std::vector<Change> batch = {create("Ann", "Lee", "ann@x.org")};
  json body = json::parse(royalti::encode(settings(), batch).body);
  ASSERT_TRUE(body.contains("sendEmail")) << "Royalti's default is true: the flag must never be left out";
  EXPECT_EQ(body["sendEmail"], false);
  EXPECT_FALSE(body.contains("redirect_url"));
  EXPECT_FALSE(body.contains("message"));

  auto s = settings();
  s.send_email = true;
  s.redirect_url = "https://app.example/welcome";
  s.message = "Welcome aboard";
  body = json::parse(royalti::encode(s, batch).body);
  EXPECT_EQ(body["sendEmail"], true);
  EXPECT_EQ(body["redirect_url"], "https://app.example/welcome");
  EXPECT_EQ(body["message"], "Welcome aboard");
}

TEST(RoyaltiEncode, LeavesOutEmptyOptionalFieldsAndFieldsRoyaltiDoesNotKnow) {
  const std::vector<Change> batch = {
      create("Ann", "Lee", "", {{"phone", ""}, {"country", nullptr}, {"ipi", "00012345678"}, {"shoe_size", "9"}})};
  const json user = json::parse(royalti::encode(settings(), batch).body)["users"][0];
  EXPECT_EQ(user, json::parse(R"({"firstName":"Ann","lastName":"Lee","email":"","ipi":"00012345678"})"))
      << "an empty required field is still sent: Royalti judges it";
}

TEST(RoyaltiEncode, MarksTheRequestSafeToRepeat) {
  // Royalti answers "already associated" for a user a lost request created:
  // a re-send cannot duplicate anyone.
  EXPECT_TRUE(royalti::encode(settings(), seed_batch()).idempotent);
}

TEST(RoyaltiNames, DisplayNameIsFirstNameSpaceLastName) {
  EXPECT_EQ(royalti::display_name(json{{"firstName", "Jane"}, {"lastName", "Doe"}}), "Jane Doe");
  EXPECT_EQ(royalti::display_name(json{{"firstName", "Jane"}}), "Jane ");
  EXPECT_EQ(royalti::name_key("  John \t  DOE "), "john doe");
  EXPECT_EQ(royalti::name_key("Émile Zola"), "Émile zola") << "only ASCII is folded";
}

TEST(RoyaltiGroups, PutsUsersWithOneDisplayNameInSeparateRequests) {
  const std::vector<Change> batch = {create("John", "Doe", "a@x.org"), create("Ann", "Lee", "b@x.org"),
                                     create("john ", " doe", "c@x.org"), create("JOHN", "DOE", "d@x.org"),
                                     create("Ann", "Lee", "e@x.org"), create("Bo", "Li", "f@x.org")};
  const auto groups = royalti::distinct_name_groups(batch, {0, 1, 2, 3, 4, 5});
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_THAT(groups[0], ::testing::ElementsAre(0u, 1u, 5u));
  EXPECT_THAT(groups[1], ::testing::ElementsAre(2u, 4u));
  EXPECT_THAT(groups[2], ::testing::ElementsAre(3u));
  EXPECT_EQ(royalti::distinct_name_groups(batch, {1, 5}).size(), 1u);
}

TEST(RoyaltiPrecheck, RefusesWhatCannotBeSentOrAttributed) {
  EXPECT_FALSE(royalti::precheck(create("Ann", "Lee", "ann@x.org")).has_value());
  EXPECT_FALSE(royalti::precheck(create("", "Lee", "ann@x.org")).has_value()) << "a name of one part still works";

  auto blank = royalti::precheck(create(" ", "", "ann@x.org"));
  ASSERT_TRUE(blank.has_value());
  EXPECT_EQ(blank->kind, OutcomeKind::kRejected);
  EXPECT_THAT(blank->message, HasSubstr("could not be told apart"));

  Change no_email = create("Ann", "Lee", "x");
  no_email.payload.erase("email");
  EXPECT_EQ(royalti::precheck(no_email)->message, "Royalti needs 'email' as a string");

  Change update = create("Ann", "Lee", "ann@x.org");
  update.op = Op::kUpdate;
  EXPECT_EQ(royalti::precheck(update)->message, "Royalti has no endpoint to update users");
  Change detach;
  detach.op = Op::kDetach;
  EXPECT_EQ(royalti::precheck(detach)->message, "Royalti has no endpoint to remove users");
}

TEST(RoyaltiDecode, AttributesTheSeedsExampleAnswerToEachUserAndIgnoresProcessedCount) {
  // The seed's example, verbatim: 2 created + 3 errors, but processedCount 3.
  const auto r = answer(201, R"({"message":"Done.","createdUsers":["John Doe","Jericho Doe"],"processedCount":3,
      "errors":["User Jane Doe already associated with workspace!","Invalid email format for Jacob Doe",
                "Invalid email format for Jake Doe"]})");
  const auto d = royalti::decode(r, seed_batch());
  ASSERT_FALSE(d.error);
  ASSERT_EQ(d.outcomes.size(), 5u);
  EXPECT_EQ(d.outcomes[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[0].target_id, "") << "Royalti returns no id";
  EXPECT_EQ(d.outcomes[0].message, "");
  EXPECT_EQ(d.outcomes[1].kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[2].kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[2].message, "already associated with the workspace");
  EXPECT_EQ(d.outcomes[3].kind, OutcomeKind::kRejected);
  EXPECT_EQ(d.outcomes[3].message, "Invalid email format for Jacob Doe");
  EXPECT_EQ(d.outcomes[4].kind, OutcomeKind::kRejected);
  EXPECT_EQ(d.outcomes[4].message, "Invalid email format for Jake Doe");

  // The same answer with any processedCount, or none, means the same.
  for (const char* count : {R"(0)", R"(5)", R"("three")"}) {
    auto body = json::parse(r.body);
    body["processedCount"] = json::parse(count);
    const auto again = royalti::decode(answer(201, body.dump()), seed_batch());
    for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(again.outcomes[i].kind, d.outcomes[i].kind) << count << " " << i;
  }
}

TEST(RoyaltiDecode, MatchesNamesWhateverTheirOrderCaseAndSpacing) {
  const auto d = royalti::decode(created({"jericho   DOE", " John Doe"}, {"Invalid email format for JAKE DOE",
                                                                           "User jane doe already associated with workspace!",
                                                                           "Invalid email format for Jacob Doe"}),
                                 seed_batch());
  EXPECT_EQ(d.outcomes[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[1].kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[2].message, "already associated with the workspace");
  EXPECT_EQ(d.outcomes[3].message, "Invalid email format for Jacob Doe");
  EXPECT_EQ(d.outcomes[4].message, "Invalid email format for JAKE DOE");
}

TEST(RoyaltiDecode, AUserTheAnswerDoesNotMentionIsUnknown) {
  const auto d = royalti::decode(created({"John Doe"}, json::array()), std::vector<Change>{
                                                                           create("John", "Doe", "john@x.org"),
                                                                           create("Ann", "Lee", "ann@x.org")});
  EXPECT_EQ(d.outcomes[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[1].kind, OutcomeKind::kUnknown);
  EXPECT_EQ(d.outcomes[1].message,
            "Royalti's answer (HTTP 201) does not mention this user; whether it was created is unknown");
}

TEST(RoyaltiDecode, AnErrorThatNamesNoUserMakesNobodyAppliedAndTheUnaccountedUnknown) {
  const std::vector<Change> batch = {create("John", "Doe", "john@x.org"), create("Ann", "Lee", "ann@x.org"),
                                     create("Bo", "Li", "bo@x.org"), create("Cy", "Ng", "cy@")};
  const auto d = royalti::decode(
      created({"John Doe"}, {"Request failed with status code 502", "Invalid email format for Cy Ng"}), batch);
  ASSERT_EQ(d.outcomes.size(), 4u);
  EXPECT_EQ(d.outcomes[0].kind, OutcomeKind::kApplied) << "named as created: not affected";
  EXPECT_EQ(d.outcomes[3].kind, OutcomeKind::kRejected) << "named by its own error: not affected";
  for (std::size_t i : {1u, 2u}) {
    EXPECT_EQ(d.outcomes[i].kind, OutcomeKind::kUnknown) << i;
    EXPECT_EQ(d.outcomes[i].message,
              "Royalti's answer does not name this user but reports results that name no user of the request "
              "(\"Request failed with status code 502\"); they may concern this user, so whether it was created is "
              "unknown");
  }
}

TEST(RoyaltiDecode, AnswersAboutSomeoneNotInTheRequestAreNotAttributedToAnyone) {
  const std::vector<Change> batch = {create("John", "Doe", "john@x.org"), create("Ann", "Lee", "ann@x.org")};
  const auto d = royalti::decode(created({"Johnny Doe"}, {"User Annie Lee already associated with workspace!"}), batch);
  for (const auto& o : d.outcomes) {
    EXPECT_EQ(o.kind, OutcomeKind::kUnknown);
    EXPECT_THAT(o.message, HasSubstr("\"created Johnny Doe\", \"User Annie Lee already associated with workspace!\""));
  }
}

TEST(RoyaltiDecode, AnotherErrorNamingExactlyOneUserRejectsThatUser) {
  const std::vector<Change> batch = {create("Ann", "Lee", "ann@x.org"), create("Ann", "Lee-Smith", "als@x.org"),
                                     create("Bo", "Li", "bo@x.org")};
  const auto d = royalti::decode(
      created({"Bo Li"}, {"Could not create Ann Lee-Smith: role is not valid"}), batch);
  EXPECT_EQ(d.outcomes[1].kind, OutcomeKind::kRejected) << "the longest name wins over one it contains";
  EXPECT_EQ(d.outcomes[1].message, "Could not create Ann Lee-Smith: role is not valid");
  EXPECT_EQ(d.outcomes[0].kind, OutcomeKind::kUnknown);
  EXPECT_THAT(d.outcomes[0].message, HasSubstr("does not mention this user"));
  EXPECT_EQ(d.outcomes[2].kind, OutcomeKind::kApplied);
}

TEST(RoyaltiDecode, AnErrorNamingTwoUsersBelongsToNeither) {
  const std::vector<Change> batch = {create("Ann", "Lee", "ann@x.org"), create("Bo", "Li", "bo@x.org")};
  const auto d = royalti::decode(created(json::array(), {"Ann Lee and Bo Li share a phone number"}), batch);
  for (const auto& o : d.outcomes) {
    EXPECT_EQ(o.kind, OutcomeKind::kUnknown);
    EXPECT_THAT(o.message, HasSubstr("Ann Lee and Bo Li share a phone number"));
  }
}

TEST(RoyaltiDecode, AUserReportedBothCreatedAndInvalidIsUnknown) {
  const std::vector<Change> batch = {create("Ann", "Lee", "ann@x.org")};
  const auto d = royalti::decode(created({"Ann Lee"}, {"Invalid email format for Ann Lee"}), batch);
  EXPECT_EQ(d.outcomes[0].kind, OutcomeKind::kUnknown);
  EXPECT_EQ(d.outcomes[0].message,
            "Royalti reported this user created and also: Invalid email format for Ann Lee; whether it exists is "
            "unknown");
}

TEST(RoyaltiDecode, UsersSharingADisplayNameInOneAnswerAreNeverGuessed) {
  // apply() never sends them together; decode alone must still not guess.
  const std::vector<Change> batch = {create("John", "Doe", "a@x.org"), create("John", "Doe", "b@"),
                                     create("Ann", "Lee", "ann@x.org")};
  const auto d = royalti::decode(created({"John Doe", "Ann Lee"}, {"Invalid email format for John Doe"}), batch);
  EXPECT_EQ(d.outcomes[0].kind, OutcomeKind::kUnknown);
  EXPECT_EQ(d.outcomes[1].kind, OutcomeKind::kUnknown);
  EXPECT_THAT(d.outcomes[0].message, HasSubstr("another user of the same request has the display name \"John Doe\""));
  EXPECT_EQ(d.outcomes[2].kind, OutcomeKind::kApplied);
}

TEST(RoyaltiDecode, AlreadyAssociatedAfterARetrySaysAnEarlierAttemptMayHaveCreatedTheUser) {
  const std::vector<Change> batch = {create("Ann", "Lee", "ann@x.org")};
  const auto d = royalti::decode(created(json::array(), {"User Ann Lee already associated with workspace!"}), batch, 2);
  EXPECT_EQ(d.outcomes[0].kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[0].message,
            "already associated with the workspace (the request was sent 2 times: an earlier attempt whose answer "
            "was lost may have created it)");
}

TEST(RoyaltiDecode, AnUnreadableSuccessIsUnknownForEveryUser) {
  for (const char* body : {R"({"message":"Done.","createdUsers":["John Doe"],"proc)", R"("Done.")",
                           R"({"createdUsers":"John Doe","errors":[]})", R"({"createdUsers":[],"errors":{}})"}) {
    const auto d = royalti::decode(answer(201, body), seed_batch());
    ASSERT_EQ(d.outcomes.size(), 5u) << body;
    for (const auto& o : d.outcomes) {
      EXPECT_EQ(o.kind, OutcomeKind::kUnknown) << body;
      EXPECT_THAT(o.message, HasSubstr("with a body dirsync cannot read")) << body;
    }
  }
}

TEST(RoyaltiDecode, RefusedTokenStopsTheJobWithoutQuotingIt) {
  const auto d = royalti::decode(answer(401, R"({"statusCode":401,"message":"Unauthorized"})"), seed_batch());
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->kind, core::ErrorKind::kAuth);
  EXPECT_EQ(d.error->message, "Royalti refused the token (HTTP 401): Unauthorized");
  EXPECT_TRUE(d.outcomes.empty());
}

TEST(RoyaltiDecode, NotFoundRejectsEveryUserWithTheSameMessage) {
  const auto d = royalti::decode(
      answer(404, R"({"statusCode":404,"message":"Cannot POST /v9/user/bulk","error":"Not Found"})"), seed_batch());
  ASSERT_EQ(d.outcomes.size(), 5u);
  for (const auto& o : d.outcomes) {
    EXPECT_EQ(o.kind, OutcomeKind::kRejected);
    EXPECT_EQ(o.message, "Royalti rejected the request (HTTP 404: Cannot POST /v9/user/bulk)");
  }
}

TEST(RoyaltiDecode, ABadRequestRejectsEveryUserWithEveryProblemListed) {
  const auto d = royalti::decode(answer(400, R"({"statusCode":400,"message":["users.1.phone must be a string",
      "sendEmail must be a boolean value"],"error":"Bad Request"})"),
                                 seed_batch());
  ASSERT_EQ(d.outcomes.size(), 5u);
  for (const auto& o : d.outcomes) {
    EXPECT_EQ(o.kind, OutcomeKind::kRejected);
    EXPECT_EQ(o.message,
              "Royalti rejected the request (HTTP 400: users.1.phone must be a string; sendEmail must be a boolean "
              "value)");
  }
}

TEST(RoyaltiDecode, ServerErrorIsUnknownAndTooManyRequestsIsRetry) {
  const auto d500 =
      royalti::decode(answer(500, R"({"statusCode":500,"message":"Internal server error"})"), seed_batch(), 5);
  for (const auto& o : d500.outcomes) {
    EXPECT_EQ(o.kind, OutcomeKind::kUnknown);
    EXPECT_THAT(o.message, HasSubstr("outcome unknown after 5 attempts: HTTP 500: Internal server error"));
  }
  const auto d429 = royalti::decode(answer(429, R"({"statusCode":429,"message":"ThrottlerException"})"), seed_batch());
  for (const auto& o : d429.outcomes) EXPECT_EQ(o.kind, OutcomeKind::kRetry);
}

TEST(RoyaltiDecode, NothingSentAfterEveryAttemptMeansRoyaltiIsUnreachable) {
  http::Response r;
  r.failure = http::TransportFailure::kNothingSent;
  r.error = "Couldn't connect to server";
  const auto d = royalti::decode(r, seed_batch(), 3);
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->kind, core::ErrorKind::kTarget);
  EXPECT_EQ(d.error->message, "Royalti is unreachable after 3 attempts: Couldn't connect to server");
}

}  // namespace
}  // namespace dirsync::targets
