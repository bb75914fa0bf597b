// Healvi's wire format and set arithmetic, without sockets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/targets/healvi/healvi_target.h"

namespace dirsync::targets::healvi {
namespace {

using core::Change;
using core::Op;
using core::OutcomeKind;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using Ids = std::set<std::int64_t>;

constexpr const char* kToken = "tok-codec-do-not-print";

config::HealviTargetSettings settings() {
  config::HealviTargetSettings s;
  s.base_url = "https://acme.healvi-chat/third-party/v1/";
  s.token = core::Secret(kToken, "${env:HEALVI_TOKEN}");
  s.customer_id = 42;
  return s;
}

Change create(const std::string& key, json user_id) {
  Change c;
  c.op = Op::kCreate;
  c.key = key;
  c.payload = {{"user_id", std::move(user_id)}};
  return c;
}

Change update(const std::string& key, std::int64_t from, std::int64_t to, bool resync = false) {
  Change c;
  c.op = Op::kUpdate;
  c.key = key;
  c.previous = {{"user_id", from}};
  c.payload = {{"user_id", to}};
  c.target_id = std::to_string(from);
  if (from != to) c.changed_fields = {"user_id"};
  c.resync = resync;
  return c;
}

Change detach(const std::string& key, std::int64_t from) {
  Change c;
  c.op = Op::kDetach;
  c.key = key;
  c.previous = {{"user_id", from}};
  c.target_id = std::to_string(from);
  return c;
}

http::Response answer(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

json users(std::initializer_list<std::int64_t> ids) {
  json data = json::array();
  for (auto id : ids) data.push_back({{"id", id}, {"name", "U"}, {"email", nullptr}, {"roles", {"agent"}}});
  return {{"data", data}};
}

TEST(HealviCodec, DeclaresOneRequiredIntegerField) {
  ASSERT_EQ(field_specs().size(), 1u);
  EXPECT_EQ(field_specs()[0].name, "user_id");
  EXPECT_EQ(field_specs()[0].type, core::FieldType::kInt);
  EXPECT_TRUE(field_specs()[0].required);
}

TEST(HealviCodec, ListIsAnIdempotentGetOnTheCustomersPath) {
  const auto req = encode_list(settings());
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.url, "https://acme.healvi-chat/third-party/v1/customers/42/users");
  ASSERT_TRUE(req.bearer);
  EXPECT_EQ(req.bearer->reveal(), kToken);
  EXPECT_TRUE(req.idempotent);
  EXPECT_TRUE(req.body.empty());
  EXPECT_THAT(req.describe(), Not(HasSubstr(kToken)));
}

TEST(HealviCodec, SyncPostsTheWholeListAndIsSafeToRepeat) {
  const auto req = encode_sync(settings(), {3, 5, 8});
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "https://acme.healvi-chat/third-party/v1/customers/42/users");
  EXPECT_EQ(req.body, R"({"user_ids":[3,5,8]})");
  EXPECT_EQ(req.content_type, "application/json");
  EXPECT_TRUE(req.idempotent) << "the same list twice leaves the same state";
  EXPECT_EQ(encode_sync(settings(), {}).body, R"({"user_ids":[]})");
}

TEST(HealviCodec, PrepareTurnsEachOpIntoAttachOrDetach) {
  const std::vector<Change> batch = {create("a", 1), update("b", 2, 2, true), update("c", 3, 30), detach("d", 4)};
  const auto p = prepare(batch);
  for (std::size_t i = 0; i < batch.size(); ++i) EXPECT_TRUE(p.live(i)) << i;
  EXPECT_EQ(p.intents[0].attach, 1);
  EXPECT_FALSE(p.intents[0].detach);
  EXPECT_EQ(p.intents[1].attach, 2);
  EXPECT_FALSE(p.intents[1].detach) << "an unchanged id is attached again, never detached";
  EXPECT_EQ(p.intents[2].attach, 30);
  EXPECT_EQ(p.intents[2].detach, 3);
  EXPECT_FALSE(p.intents[3].attach);
  EXPECT_EQ(p.intents[3].detach, 4);
}

TEST(HealviCodec, RejectsAUserIdThatIsNotAPositiveInteger) {
  const std::vector<Change> batch = {create("a", "abc"), create("b", nullptr), create("c", -4), create("d", 1.5),
                                     create("e", 7)};
  const auto p = prepare(batch);
  ASSERT_TRUE(p.decided[0]);
  EXPECT_EQ(p.decided[0]->kind, OutcomeKind::kRejected);
  EXPECT_EQ(p.decided[0]->message, "user_id must be a positive integer (Healvi's user id), got \"abc\"");
  EXPECT_EQ(p.decided[1]->message, "user_id is missing");
  EXPECT_EQ(p.decided[2]->message, "user_id must be a positive integer (Healvi's user id), got -4");
  EXPECT_EQ(p.decided[3]->kind, OutcomeKind::kRejected);
  EXPECT_TRUE(p.live(4));
}

TEST(HealviCodec, RejectsTheSecondKeyWantingTheSameUser) {
  const auto p = prepare(std::vector<Change>{create("a", 5), create("b", 5)});
  EXPECT_TRUE(p.live(0));
  ASSERT_TRUE(p.decided[1]);
  EXPECT_EQ(p.decided[1]->kind, OutcomeKind::kRejected);
  EXPECT_EQ(p.decided[1]->message,
            "user_id 5 is also the user_id of key 'a' in this run; one Healvi user cannot belong to two keys");
}

TEST(HealviCodec, KeepsAnIdThatOneKeyLeavesAndAnotherTakes) {
  // A user re-keyed in the source: the old key is detached, the new one created with the same id.
  const std::vector<Change> batch = {detach("old-key", 9), create("new-key", 9), update("c", 4, 9 + 1)};
  const auto p = prepare(batch);
  ASSERT_TRUE(p.decided[0]);
  EXPECT_EQ(p.decided[0]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(p.decided[0]->message, "user id 9 stays attached: key 'new-key' now has it");
  EXPECT_EQ(full_set({4, 9}, p), (std::vector<std::int64_t>{9, 10}));
}

TEST(HealviCodec, AnUpdateLeavingAnIdAnotherChangeTakesDoesNotDetachIt) {
  const auto p = prepare(std::vector<Change>{update("a", 3, 4), create("b", 3)});
  EXPECT_EQ(p.intents[0].attach, 4);
  EXPECT_FALSE(p.intents[0].detach);
  EXPECT_EQ(full_set({3}, p), (std::vector<std::int64_t>{3, 4}));
}

TEST(HealviCodec, DetachFallsBackToTheSnapshotIdWhenThePreviousPayloadHasNone) {
  Change c = detach("a", 12);
  c.previous = json::object();
  EXPECT_EQ(prepare(std::vector<Change>{c}).intents[0].detach, 12);
  c.target_id.clear();
  const auto p = prepare(std::vector<Change>{c});
  ASSERT_TRUE(p.decided[0]);
  EXPECT_EQ(p.decided[0]->kind, OutcomeKind::kApplied);
}

TEST(HealviCodec, FullSetIsCurrentMinusDetachedPlusDesired) {
  const auto p = prepare(std::vector<Change>{create("a", 5), detach("b", 2), update("c", 3, 6)});
  EXPECT_EQ(full_set({1, 2, 3, 9}, p), (std::vector<std::int64_t>{1, 5, 6, 9}))
      << "1 and 9 (attached by someone else) stay";
}

TEST(HealviCodec, FullSetLeavesOutChangesDecidedLocally) {
  const auto p = prepare(std::vector<Change>{create("a", "x"), create("b", 4)});
  EXPECT_EQ(full_set({}, p), (std::vector<std::int64_t>{4}));
}

// ---- the users the job manages (core::Target::set_managed) ------------------

core::Member member(const std::string& key, json payload, std::string target_id = {}) {
  return {key, std::move(target_id), std::move(payload)};
}

TEST(HealviCodec, ManagedUsersAreEveryMembersIdAndKeptOnesAreThoseTheBatchLeavesAlone) {
  const std::vector<core::Member> members = {
      member("a", {{"user_id", 1}}, "1"), member("b", {{"user_id", 2}}, "2"),
      member("c", json::object(), "3"),        // a snapshot that predates the mapping: its id
      member("d", {{"user_id", "x"}}, "none"),  // no id known: nothing to keep
  };
  const auto m = managed(members, std::vector<Change>{update("b", 2, 7)});
  EXPECT_EQ(m.ids, (Ids{1, 2, 3}));
  EXPECT_EQ(m.kept, (std::map<std::int64_t, std::string>{{1, "a"}, {3, "c"}}));
}

TEST(HealviCodec, FullSetKeepsManagedUsersAListingLeftOutButNotTheOnesDetached) {
  const std::vector<core::Member> members = {member("a", {{"user_id", 1}}), member("b", {{"user_id", 2}}),
                                             member("c", {{"user_id", 3}})};
  const std::vector<Change> batch = {detach("b", 2), create("n", 8)};
  const auto m = managed(members, batch);
  const auto p = prepare(batch, m.kept);
  Ids base = {9};  // the listing showed only a user someone else attached
  base.insert(m.ids.begin(), m.ids.end());
  EXPECT_EQ(full_set(base, p), (std::vector<std::int64_t>{1, 3, 8, 9}));
}

TEST(HealviCodec, NeverDetachesNorGivesAwayAnIdAnotherManagedKeyHolds) {
  const std::map<std::int64_t, std::string> kept = {{5, "holder"}};
  const auto p = prepare(std::vector<Change>{detach("twin", 5), create("new", 5), update("mover", 5, 6)}, kept);
  ASSERT_TRUE(p.decided[0]);
  EXPECT_EQ(p.decided[0]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(p.decided[0]->message, "user id 5 stays attached: key 'holder' has it too");
  ASSERT_TRUE(p.decided[1]);
  EXPECT_EQ(p.decided[1]->kind, OutcomeKind::kRejected);
  EXPECT_EQ(p.decided[1]->message,
            "user_id 5 is already the user_id of key 'holder', which this job manages; one Healvi user cannot "
            "belong to two keys");
  EXPECT_EQ(p.intents[2].attach, 6);
  EXPECT_FALSE(p.intents[2].detach);
  EXPECT_EQ(full_set({5}, p), (std::vector<std::int64_t>{5, 6}));
}

TEST(HealviCodec, ListedIdsTolerateTheEmailOddityAndStringIds) {
  const auto r = answer(200, R"({"data":[{"id":1,"email":"a@x.org"},{"id":2,"email":12},{"id":"3","email":null},
                                          {"id":4,"name":"no email at all"}]})");
  EXPECT_EQ(listed_ids(r), (Ids{1, 2, 3, 4}));
}

TEST(HealviCodec, ListedIdsRefuseWhatIsNotTheWholeSet) {
  EXPECT_FALSE(listed_ids(answer(200, R"({"data":{"id":1}})")));
  EXPECT_FALSE(listed_ids(answer(200, R"({"data":[{"id":1},{"name":"no id"}]})")));
  EXPECT_FALSE(listed_ids(answer(200, R"({"data":[{"id":1}],"meta":{"current_page":1,"last_page":2}})")));
  EXPECT_FALSE(listed_ids(answer(200, R"({"data":[{"id":1}],"links":{"next":"https://x/?page=2"}})")));
  EXPECT_EQ(listed_ids(answer(200, R"({"data":[{"id":1}],"meta":{"current_page":1,"last_page":1},
                                     "links":{"next":null}})")),
            (Ids{1}));
  EXPECT_FALSE(listed_ids(answer(200, R"({"data":[{"id":1})")));
}

TEST(HealviCodec, ListingDecodesTheCurrentSet) {
  const auto l = decode_list(answer(200, users({3, 1}).dump()), 42);
  EXPECT_FALSE(l.error);
  EXPECT_FALSE(l.everyone);
  EXPECT_EQ(l.ids, (Ids{1, 3}));
}

TEST(HealviCodec, ListingRefusedTokenStopsTheJob) {
  const auto l = decode_list(answer(401, R"({"message":"Unauthenticated."})"), 42);
  ASSERT_TRUE(l.error);
  EXPECT_EQ(l.error->kind, core::ErrorKind::kAuth);
  EXPECT_EQ(l.error->message, "Healvi refused the token (HTTP 401): Unauthenticated.");
}

TEST(HealviCodec, UnknownCustomerStopsTheJob) {
  const auto l = decode_list(answer(404, R"({"message":"No query results for model [App\\Models\\Customer] 42"})"), 42);
  ASSERT_TRUE(l.error);
  EXPECT_EQ(l.error->kind, core::ErrorKind::kTarget);
  EXPECT_EQ(l.error->message,
            "Healvi has no customer 42 (check customer_id and base_url, which must end in /third-party/v1): HTTP 404: "
            "No query results for model [App\\Models\\Customer] 42");
}

TEST(HealviCodec, AnUnreadableOrFailedListingSendsNothingAndRetriesNextRun) {
  auto l = decode_list(answer(200, "<html>"), 42);
  ASSERT_TRUE(l.everyone);
  EXPECT_EQ(l.everyone->kind, OutcomeKind::kRetry);
  l = decode_list(answer(500, R"({"message":"Server Error"})"), 42, 3);
  ASSERT_TRUE(l.everyone);
  EXPECT_EQ(l.everyone->kind, OutcomeKind::kRetry);
  EXPECT_EQ(l.everyone->message,
            "could not read which users are attached to Healvi customer 42 after 3 attempts (HTTP 500: Server Error); "
            "nothing sent");
  http::Response refused;
  refused.failure = http::TransportFailure::kNothingSent;
  refused.error = "connection refused";
  l = decode_list(refused, 42);
  ASSERT_TRUE(l.error);
  EXPECT_EQ(l.error->kind, core::ErrorKind::kTarget);
}

TEST(HealviCodec, AnswerIsCheckedAgainstWhatWasSent) {
  const std::vector<Change> batch = {create("a", 1), create("b", 2), detach("c", 3), detach("d", 4),
                                     update("e", 5, 6)};
  const auto p = prepare(batch);
  const auto d = decode_sync(answer(200, users({1, 4, 6}).dump()), p, {1, 2, 6}, 42);
  ASSERT_FALSE(d.error);
  ASSERT_EQ(d.outcomes.size(), 5u);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[0]->target_id, "1");
  EXPECT_EQ(d.outcomes[1]->kind, OutcomeKind::kRejected);
  EXPECT_EQ(d.outcomes[1]->message,
            "Healvi does not list user id 2 as attached to Healvi customer 42 after the sync (an unknown user id, or "
            "an admin: Healvi leaves admins out of its listings, and they see every customer anyway)");
  EXPECT_EQ(d.outcomes[2]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[3]->kind, OutcomeKind::kRejected);
  EXPECT_EQ(d.outcomes[3]->message, "Healvi still lists user id 4 as attached to Healvi customer 42 after the sync");
  EXPECT_EQ(d.outcomes[4]->kind, OutcomeKind::kApplied);
  EXPECT_EQ(d.outcomes[4]->target_id, "6");
}

TEST(HealviCodec, UnprocessableIdsAreNamedAndTheRestLeftToSendAgain) {
  const std::vector<Change> batch = {create("a", 1), create("b", 99), create("c", 2)};
  const auto p = prepare(batch);
  const auto d = decode_sync(
      answer(422, R"j({"message":"The selected user_ids.1 is invalid. (and 1 more error)",
                      "errors":{"user_ids.1":["The selected user_ids.1 is invalid."],
                                "user_ids.3":["The selected user_ids.3 is invalid."]}})j"),
      p, {1, 2, 77, 99}, 42);
  ASSERT_FALSE(d.error);
  EXPECT_EQ(d.invalid, (std::map<std::int64_t, std::string>{{2, "The selected user_ids.1 is invalid."},
                                                            {99, "The selected user_ids.3 is invalid."}}));
  ASSERT_EQ(d.outcomes.size(), 3u);
  EXPECT_FALSE(d.outcomes[0]) << "undecided: sent again without the bad ids";
  ASSERT_TRUE(d.outcomes[1]);
  EXPECT_EQ(d.outcomes[1]->kind, OutcomeKind::kRejected);
  EXPECT_EQ(d.outcomes[1]->message, "Healvi refused user id 99: The selected user_ids.3 is invalid.");
  EXPECT_EQ(d.outcomes[2]->message, "Healvi refused user id 2: The selected user_ids.1 is invalid.");
}

TEST(HealviCodec, AnUnprocessableListNamingNoIdRejectsEveryone) {
  const auto p = prepare(std::vector<Change>{create("a", 1), create("b", 2)});
  const auto d = decode_sync(answer(422, R"({"message":"The user_ids field is required.",
      "errors":{"user_ids":["The user_ids field is required."]}})"),
                             p, {1, 2}, 42);
  EXPECT_TRUE(d.invalid.empty());
  for (const auto& o : d.outcomes) {
    ASSERT_TRUE(o);
    EXPECT_EQ(o->kind, OutcomeKind::kRejected);
    EXPECT_EQ(o->message,
              "Healvi rejected the user list for Healvi customer 42 (HTTP 422: The user_ids field is required.)");
  }
}

TEST(HealviCodec, ServerErrorsAndUnreadableAnswersAreUnknown) {
  const auto p = prepare(std::vector<Change>{create("a", 1), create("b", "bad")});
  auto d = decode_sync(answer(500, R"({"message":"Server Error"})"), p, {1}, 42, 4);
  ASSERT_TRUE(d.outcomes[0]);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kUnknown);
  EXPECT_EQ(d.outcomes[0]->message,
            "outcome unknown after 4 attempts: HTTP 500: Server Error (the same set is sent again next run)");
  EXPECT_FALSE(d.outcomes[1]) << "decided locally, not by the answer";
  d = decode_sync(answer(200, R"({"data":[{"id":1)"), p, {1}, 42);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kUnknown);
  d = decode_sync(answer(429, R"({"message":"Too Many Attempts."})"), p, {1}, 42);
  EXPECT_EQ(d.outcomes[0]->kind, OutcomeKind::kRetry);
}

TEST(HealviCodec, RefusedTokenOnTheSyncStopsTheJob) {
  const auto p = prepare(std::vector<Change>{create("a", 1)});
  const auto d = decode_sync(answer(403, R"({"message":"This action is unauthorized."})"), p, {1}, 42);
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->kind, core::ErrorKind::kAuth);
  EXPECT_EQ(d.error->message, "Healvi refused the token (HTTP 403): This action is unauthorized.");
}

}  // namespace
}  // namespace dirsync::targets::healvi
