// The scim source against a loopback SCIM service provider (RFC 7644).
#include "connectors/sources/scim/scim_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/connectors/scim/scim_test_util.h"
#include "tests/support/loopback_http_server.h"

namespace dirsync::sources {
namespace {

using nlohmann::json;
using scim_test::id_of;
using scim_test::kToken;
using scim_test::make_user;
using scim_test::pull_all;
using scim_test::settings_for;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ScimFault;
using testing::ScimServerOptions;
using testing::ScimTestServer;
using Values = std::vector<std::string>;

ScimServerOptions server_options(std::size_t max_page_size = 50) {
  ScimServerOptions o;
  o.token = kToken;
  o.max_page_size = max_page_size;
  return o;
}

class ScimSourceTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.start(); }

  void add_users(int n, int from = 1) {
    for (int i = from; i < from + n; ++i) server_.add_user(make_user(i));
  }
  // Before each of requests first..last, one more user joins at the end.
  void add_one_user_before_requests(std::size_t first, std::size_t last) {
    for (std::size_t n = first; n <= last; ++n) {
      server_.before_request(
          n, [](std::vector<json>& users) { users.push_back(make_user(static_cast<int>(users.size()) + 1)); });
    }
  }
  config::ScimSourceSettings settings(std::size_t page_size = 100) const {
    return settings_for(server_.base_url(), page_size);
  }
  scim_test::Pulled pull(const config::ScimSourceSettings& s) {
    auto source = make_scim_source(s);
    return pull_all(*source);
  }
  std::vector<std::string> asked_start_indexes() const {
    std::vector<std::string> out;
    for (const auto& r : server_.request_log())
      out.push_back(r.query.count("startIndex") ? r.query.at("startIndex") : "-");
    return out;
  }
  static std::vector<std::string> keys(const std::vector<core::Record>& records) {
    std::vector<std::string> out;
    for (const auto& r : records) out.push_back(r.key);
    return out;
  }
  static Values values(const core::Record& r, const std::string& name) {
    const auto* a = r.find(name);
    return a ? a->values : Values{"<absent>"};
  }

  ScimTestServer server_{server_options()};
};

TEST_F(ScimSourceTest, FollowsStartIndexAcrossPagesShorterThanAskedFor) {
  add_users(250);  // the server returns at most 50 per page, the source asks for 100
  auto got = pull(settings(100));
  ASSERT_FALSE(got.error) << got.error->message;
  EXPECT_TRUE(got.complete);
  EXPECT_TRUE(got.issues.empty());
  ASSERT_EQ(got.records.size(), 250u);
  for (int i = 1; i <= 250; ++i) EXPECT_EQ(got.records[i - 1].key, id_of(i));
  // Advanced by what each page held, not by `count`; no request after the end.
  EXPECT_EQ(asked_start_indexes(), (Values{"1", "51", "101", "151", "201"}));
  for (const auto& r : server_.request_log()) {
    EXPECT_EQ(r.query.at("count"), "100");
    EXPECT_EQ(r.target.substr(0, r.target.find('?')), "/scim/v2/Users");
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_EQ(got.records[0].origin, "scim " + server_.base_url() + "/Users #1");
  EXPECT_EQ(got.records[249].origin, "scim " + server_.base_url() + "/Users #250");
}

TEST_F(ScimSourceTest, HandlesUnevenShortPagesUpToTheLastUser) {
  server_.set_options(server_options(7));
  add_users(23);
  auto got = pull(settings(10));
  ASSERT_FALSE(got.error) << got.error->message;
  EXPECT_EQ(got.records.size(), 23u);
  EXPECT_EQ(asked_start_indexes(), (Values{"1", "8", "15", "22"}));
  EXPECT_EQ(got.pages, 4u);
}

TEST_F(ScimSourceTest, SendsTheBearerToken) {
  add_users(1);
  auto got = pull(settings());
  ASSERT_FALSE(got.error) << got.error->message;
  const auto log = server_.request_log();
  ASSERT_EQ(log.size(), 1u);
  const auto& headers = log[0].headers;
  const auto auth =
      std::find_if(headers.begin(), headers.end(), [](const auto& h) { return h.first == "authorization"; });
  ASSERT_NE(auth, headers.end());
  EXPECT_EQ(auth->second, std::string("Bearer ") + kToken);
}

TEST_F(ScimSourceTest, EmptyServiceIsOneCompletePage) {
  auto got = pull(settings());
  ASSERT_FALSE(got.error) << got.error->message;
  EXPECT_TRUE(got.complete);
  EXPECT_EQ(got.pages, 1u);
  EXPECT_TRUE(got.records.empty());
  EXPECT_TRUE(got.issues.empty());
}

TEST_F(ScimSourceTest, AcceptsAnEmptyListResponseWithoutResources) {
  auto o = server_options();
  o.omit_empty_resources = true;
  server_.set_options(o);
  auto got = pull(settings());
  ASSERT_FALSE(got.error) << got.error->message;
  EXPECT_TRUE(got.complete);
  EXPECT_TRUE(got.records.empty());
}

TEST_F(ScimSourceTest, FlattensTheUserWithTheEnterpriseExtensionUnderItsPrefix) {
  add_users(2);
  auto got = pull(settings());
  ASSERT_EQ(got.records.size(), 2u);
  const core::Record& r = got.records[1];
  EXPECT_EQ(r.key, "u002");
  EXPECT_EQ(values(r, "userName"), Values{"user2@example.com"});
  EXPECT_EQ(values(r, "name.givenName"), Values{"Given2"});
  EXPECT_EQ(values(r, "active"), Values{"true"});
  EXPECT_EQ(values(got.records[0], "active"), Values{"false"});
  EXPECT_EQ(values(r, "emails.value"), (Values{"home2@example.org", "user2@example.com"}));
  EXPECT_EQ(values(r, "emails.primary"), Values{"true"});
  EXPECT_EQ(values(r, "enterprise.employeeNumber"), Values{"E2"});
  EXPECT_EQ(values(r, "enterprise.manager.value"), Values{"u001"});
  EXPECT_EQ(values(r, "meta.version"), Values{"W/\"2\""});
  for (const auto& a : r.attributes)
    EXPECT_THAT(a.name, Not(HasSubstr("urn:ietf:params:scim:schemas:extension"))) << a.name;
  // `schemas` still lists the URN as a value.
  EXPECT_THAT(values(r, "schemas"), ::testing::Contains(scim_test::kEnterpriseUrn));
}

TEST_F(ScimSourceTest, NamedAttributesTakeTheFirstPathWithAValue) {
  json no_primary = make_user(7);
  no_primary["emails"] = {{{"value", "first7@example.org"}, {"type", "home"}}, {{"value", "second7@example.org"}}};
  no_primary["phoneNumbers"] = {{{"value", "+1 555 0207"}, {"type", "Work"}}};
  json bare = {{"id", "bare"}, {"userName", "bare@example.com"}};
  server_.add_user(make_user(1));
  server_.add_user(no_primary);
  server_.add_user(bare);
  auto s = settings();
  s.attributes = {
      {"email", {"emails[primary eq true].value", "emails.value"}},
      {"work_phone", {"phoneNumbers[type eq \"work\"].value"}},
      {"given", {"name.givenName"}},
      {"employee", {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"}},
      {"manager", {"enterprise.manager.value"}},
      {"is_active", {"active"}},
  };
  auto got = pull(s);
  ASSERT_EQ(got.records.size(), 3u);
  const auto& full = got.records[0];
  EXPECT_EQ(values(full, "email"), Values{"user1@example.com"});
  EXPECT_EQ(values(full, "work_phone"), Values{"+1 555 021"});
  EXPECT_EQ(values(full, "given"), Values{"Given1"});
  EXPECT_EQ(values(full, "employee"), Values{"E1"});
  EXPECT_EQ(values(full, "manager"), Values{"u001"});
  EXPECT_EQ(values(full, "is_active"), Values{"false"});
  // No primary email: the fallback path yields every email, in order (a template takes `first`).
  EXPECT_EQ(values(got.records[1], "email"), (Values{"first7@example.org", "second7@example.org"}));
  EXPECT_EQ(values(got.records[1], "work_phone"), Values{"+1 555 0207"});  // "Work": eq ignores case
  // Nothing found: present without a value (so a template's `default` applies).
  EXPECT_EQ(values(got.records[2], "email"), Values{});
  EXPECT_EQ(values(got.records[2], "employee"), Values{});
}

TEST_F(ScimSourceTest, KeepsNonAsciiTextAndSendsTheFilterUrlEncoded) {
  json zoe = make_user(1);
  zoe["userName"] = "zoë.łukasiewicz@example.com";
  zoe["name"]["givenName"] = "Zoë";
  zoe["name"]["familyName"] = "Łukasiewicz";
  server_.add_user(zoe);
  add_users(3, 2);
  auto s = settings();
  s.filter = "userName eq \"ZOË.łukasiewicz@example.com\"";  // the server ignores ASCII case only
  auto got = pull(s);
  ASSERT_FALSE(got.error) << got.error->message;
  EXPECT_EQ(got.records.size(), 0u);

  s.filter = "userName eq \"zoë.łukasiewicz@example.com\"";
  got = pull(s);
  ASSERT_FALSE(got.error) << got.error->message;
  ASSERT_EQ(got.records.size(), 1u);
  EXPECT_EQ(values(got.records[0], "name.givenName"), Values{"Zoë"});
  EXPECT_EQ(values(got.records[0], "name.familyName"), Values{"Łukasiewicz"});
  const auto log = server_.request_log();
  EXPECT_EQ(
      log.back().target,
      "/scim/v2/Users?startIndex=1&count=100&filter=userName%20eq%20%22zo%C3%AB.%C5%82ukasiewicz%40example.com%22");
  EXPECT_EQ(log.back().query.at("filter"), s.filter);
}

TEST_F(ScimSourceTest, FilterIsAppliedByTheServerAcrossPages) {
  add_users(130);
  auto s = settings(100);
  s.filter = "active eq true";
  auto got = pull(s);
  ASSERT_FALSE(got.error) << got.error->message;
  ASSERT_EQ(got.records.size(), 65u);
  for (const auto& r : got.records) EXPECT_EQ(values(r, "active"), Values{"true"});
  EXPECT_EQ(asked_start_indexes(), (Values{"1", "51"}));
  EXPECT_EQ(server_.request_log()[1].query.at("filter"), "active eq true");
}

TEST_F(ScimSourceTest, InvalidFilterFailsWithTheServersDetailAndScimType) {
  add_users(3);
  auto s = settings();
  s.filter = "userName co \"x\"";  // this server knows only eq
  auto got = pull(s);
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->kind, core::ErrorKind::kSource);
  EXPECT_EQ(got.error->message, "GET " + server_.base_url() +
                                    "/Users?startIndex=1&count=100&filter=userName%20co%20%22x%22: HTTP 400: The "
                                    "specified filter syntax was invalid: userName co \"x\" (scimType invalidFilter)");
  EXPECT_EQ(server_.request_count(), 1u);  // a 400 is not retried
}

TEST_F(ScimSourceTest, UnauthorizedIsAnAuthErrorWithoutTheToken) {
  add_users(3);
  auto s = settings();
  s.auth.token = core::Secret("wrong-token-value", "${env:SCIM_TOKEN}");
  auto got = pull(s);
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->kind, core::ErrorKind::kAuth);
  EXPECT_THAT(got.error->message, HasSubstr("HTTP 401: Authorization failure."));
  EXPECT_THAT(got.error->message, Not(HasSubstr("wrong-token-value")));
  EXPECT_THAT(got.error->message, Not(HasSubstr(kToken)));
  EXPECT_EQ(server_.request_count(), 1u);
  EXPECT_TRUE(got.records.empty());
}

TEST_F(ScimSourceTest, DescribeNamesTheServiceAndNoSecret) {
  auto s = settings();
  s.base_url += "/";
  auto source = make_scim_source(s);
  EXPECT_EQ(source->describe(), "scim " + server_.base_url());
  EXPECT_THAT(source->describe(), Not(HasSubstr(kToken)));
  EXPECT_EQ(server_.request_count(), 0u);  // no I/O before a pull
}

TEST_F(ScimSourceTest, ServerErrorIsRetriedThenRecovers) {
  add_users(120);
  server_.fail_request(2, ScimFault::k500);
  server_.fail_request(3, ScimFault::k503);
  auto got = pull(settings(100));
  ASSERT_FALSE(got.error) << got.error->message;
  EXPECT_EQ(got.records.size(), 120u);
  EXPECT_EQ(asked_start_indexes(), (Values{"1", "51", "51", "51", "101"}));
}

TEST_F(ScimSourceTest, ServerErrorOnEveryAttemptFailsThePullMidway) {
  add_users(250);
  server_.fail_request(3, ScimFault::k500, 3);  // max_attempts is 3
  auto source = make_scim_source(settings(100));
  auto pull = source->start();
  ASSERT_TRUE(pull.ok());
  for (int i = 0; i < 2; ++i) {
    auto page = pull.value()->next();
    ASSERT_TRUE(page.ok()) << page.error().message;
    EXPECT_EQ(page->records.size(), 50u);
    EXPECT_FALSE(page->last);
  }
  auto failed = pull.value()->next();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().kind, core::ErrorKind::kSource);
  EXPECT_EQ(failed.error().message, "GET " + server_.base_url() +
                                        "/Users?startIndex=101&count=100: HTTP 500: Internal error while listing "
                                        "users (after 3 attempts)");
  EXPECT_EQ(server_.request_count(), 5u);
}

TEST_F(ScimSourceTest, DroppedConnectionMidPullIsAnError) {
  add_users(250);
  // libcurl silently re-sends once on a reused connection that died: drop more than 3 times.
  server_.fail_request(3, ScimFault::kDrop, 10);
  auto got = pull(settings(100));
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->kind, core::ErrorKind::kSource);
  EXPECT_THAT(got.error->message, HasSubstr("GET " + server_.base_url() + "/Users?startIndex=101&count=100: "));
  EXPECT_THAT(got.error->message, HasSubstr("(after 3 attempts)"));
  EXPECT_FALSE(got.complete);
  EXPECT_EQ(got.records.size(), 100u);  // what came before stays usable (creates/updates)
}

TEST_F(ScimSourceTest, MalformedPageIsAnError) {
  add_users(250);
  server_.fail_request(2, ScimFault::kMalformedJson);
  auto got = pull(settings(100));
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->kind, core::ErrorKind::kSource);
  EXPECT_EQ(got.error->message,
            "GET " + server_.base_url() + "/Users?startIndex=51&count=100: HTTP 200 with a body that is not JSON");
  EXPECT_EQ(got.records.size(), 50u);
  EXPECT_EQ(server_.request_count(), 2u);  // a bad body is not retried
}

TEST_F(ScimSourceTest, GrowingTotalMidPullReadsToTheNewEndAndMarksThePullIncomplete) {
  add_users(250);
  server_.before_request(3, [](std::vector<json>& users) {
    for (int i = 251; i <= 280; ++i) users.push_back(make_user(i));
  });
  auto got = pull(settings(100));
  ASSERT_FALSE(got.error) << got.error->message;
  EXPECT_TRUE(got.complete);
  EXPECT_EQ(got.records.size(), 280u);
  EXPECT_EQ(asked_start_indexes(), (Values{"1", "51", "101", "151", "201", "251"}));
  ASSERT_EQ(got.issues.size(), 1u);
  EXPECT_EQ(got.issues[0].key, "");  // no key: no detach from this pull
  EXPECT_EQ(got.issues[0].origin, "scim " + server_.base_url() + "/Users");
  EXPECT_EQ(got.issues[0].message,
            "totalResults changed during the pull (250 → 280): offset paging over a changing set can skip users, so "
            "this pull detaches nobody");
}

TEST_F(ScimSourceTest, ShrinkingTotalMidPullSkipsUsersAndSaysSo) {
  add_users(250);
  // Ten users already read are deleted before the third page: everyone after
  // them moves ten places down, so u101..u110 slip past the offset.
  server_.before_request(3, [](std::vector<json>& users) { users.erase(users.begin(), users.begin() + 10); });
  auto got = pull(settings(100));
  ASSERT_FALSE(got.error) << got.error->message;
  EXPECT_TRUE(got.complete);
  EXPECT_EQ(got.records.size(), 240u);
  const auto k = keys(got.records);
  EXPECT_EQ(std::count(k.begin(), k.end(), "u105"), 0);  // skipped although still on the server
  EXPECT_EQ(asked_start_indexes(), (Values{"1", "51", "101", "151", "201"}));
  ASSERT_EQ(got.issues.size(), 1u);
  EXPECT_EQ(got.issues[0].key, "");
  EXPECT_THAT(got.issues[0].message, HasSubstr("totalResults changed during the pull (250 → 240)"));
}

TEST_F(ScimSourceTest, TotalChangingOnEveryPageEndsAtTheLatestTotal) {
  server_.set_options(server_options(1));
  add_users(100);
  add_one_user_before_requests(2, 40);
  auto got = pull(settings(1));
  ASSERT_FALSE(got.error) << got.error->message;
  EXPECT_TRUE(got.complete);
  EXPECT_EQ(got.records.size(), 139u);
  EXPECT_EQ(server_.request_count(), 139u);
  ASSERT_EQ(got.issues.size(), 1u);
  EXPECT_THAT(got.issues[0].message, HasSubstr("(100 → 101 → 102 → 103 → 104 → ... → 139)"));
}

TEST_F(ScimSourceTest, EndlesslyGrowingTotalHitsThePageCap) {
  server_.set_options(server_options(1));
  add_users(10);
  add_one_user_before_requests(2, 500);
  auto got = pull(settings(1));
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->kind, core::ErrorKind::kSource);
  EXPECT_EQ(got.error->message, "GET " + server_.base_url() +
                                    "/Users?startIndex=37&count=1: gave up after 36 pages (totalResults 10 → 11 → 12 → "
                                    "13 → 14 → ... → 45): the server keeps reporting more users");
  EXPECT_EQ(server_.request_count(), 36u);  // 2 × 10 + 16
}

TEST_F(ScimSourceTest, ServerThatStopsListingEarlyMakesThePullIncomplete) {
  auto o = server_options();
  o.listing_cap = 101;
  server_.set_options(o);
  add_users(250);
  auto got = pull(settings(100));
  ASSERT_FALSE(got.error) << got.error->message;
  EXPECT_TRUE(got.complete);
  EXPECT_EQ(got.records.size(), 100u);
  ASSERT_EQ(got.issues.size(), 1u);
  EXPECT_EQ(got.issues[0].key, "");
  EXPECT_EQ(got.issues[0].message,
            "the server returned no users at startIndex 101 although totalResults is 250: users may be missing, so "
            "this pull detaches nobody");
}

TEST_F(ScimSourceTest, WrongStartIndexInTheAnswerIsAnError) {
  auto o = server_options();
  o.start_index_skew = 1;
  server_.set_options(o);
  add_users(10);
  auto got = pull(settings());
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->message, "GET " + server_.base_url() +
                                    "/Users?startIndex=1&count=100: the server answered startIndex 2 for startIndex 1 "
                                    "(it does not page as asked)");
}

TEST_F(ScimSourceTest, ServerIgnoringStartIndexIsCaughtInsteadOfLooping) {
  auto o = server_options();
  o.ignore_start_index = true;
  o.echo_start_index = false;
  server_.set_options(o);
  add_users(120);
  auto got = pull(settings(100));
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->message, "GET " + server_.base_url() +
                                    "/Users?startIndex=51&count=100: every user on this page was already read on an "
                                    "earlier page: the server does not seem to honour startIndex");
  EXPECT_EQ(server_.request_count(), 2u);
}

TEST_F(ScimSourceTest, DuplicateKeyIsAnIssueCarryingTheKey) {
  add_users(3);
  json twin = make_user(9);
  twin["externalId"] = "ext-2";
  server_.add_user(twin);
  auto s = settings();
  s.key = "externalId";
  auto got = pull(s);
  ASSERT_FALSE(got.error) << got.error->message;
  EXPECT_EQ(keys(got.records), (Values{"ext-1", "ext-2", "ext-3"}));
  EXPECT_EQ(values(got.records[1], "id"), Values{"u002"});  // the first one stays
  ASSERT_EQ(got.issues.size(), 1u);
  EXPECT_EQ(got.issues[0].key, "ext-2");
  EXPECT_EQ(got.issues[0].origin, "scim " + server_.base_url() + "/Users #4");
  EXPECT_EQ(got.issues[0].message, "duplicate key 'ext-2' (first at #2)");
}

TEST_F(ScimSourceTest, UserWithoutTheKeyIsAnIssueWithoutAKey) {
  add_users(3);
  json keyless = make_user(4);
  keyless.erase("externalId");
  server_.add_user(keyless);
  json two_keys = make_user(5);
  two_keys["externalId"] = {"a", "b"};
  server_.add_user(two_keys);
  auto s = settings();
  s.key = "EXTERNALID";  // attribute names are case-insensitive
  auto got = pull(s);
  ASSERT_FALSE(got.error) << got.error->message;
  EXPECT_TRUE(got.complete);
  EXPECT_EQ(got.records.size(), 3u);
  ASSERT_EQ(got.issues.size(), 2u);
  const std::string url = "GET " + server_.base_url() + "/Users?startIndex=1&count=100";
  EXPECT_EQ(got.issues[0].key, "");
  EXPECT_EQ(got.issues[0].origin, url + " #4");
  EXPECT_EQ(got.issues[0].message, "the user has no 'EXTERNALID' (the key); id 'u004'; userName 'user4@example.com'");
  EXPECT_EQ(got.issues[1].key, "");
  EXPECT_EQ(got.issues[1].message,
            "the user's 'EXTERNALID' (the key) has 2 values; id 'u005'; userName 'user5@example.com'");
}

TEST_F(ScimSourceTest, KeyCanBeAFilteredPath) {
  add_users(2);
  auto s = settings();
  s.key = "emails[type eq \"work\"].value";
  auto got = pull(s);
  EXPECT_EQ(keys(got.records), (Values{"user1@example.com", "user2@example.com"}));
}

TEST_F(ScimSourceTest, BadAttributePathRefusesToStart) {
  auto s = settings();
  s.attributes = {{"email", {"emails.value", "emails[primary eq].value"}}};
  auto source = make_scim_source(s);
  auto pull = source->start();
  ASSERT_FALSE(pull.ok());
  EXPECT_EQ(pull.error().kind, core::ErrorKind::kInvalid);
  EXPECT_EQ(pull.error().message, "scim " + server_.base_url() +
                                      ": attribute 'email': 'emails[primary eq].value': expected a value after 'eq' "
                                      "at column 18");
  EXPECT_EQ(server_.request_count(), 0u);
}

// Answers that are not ListResponses, from a server scripted by hand.
struct BadAnswer {
  const char* name;
  std::string body;
  const char* error;
};
void PrintTo(const BadAnswer& answer, std::ostream* os) { *os << answer.name; }

class ScimBadAnswerTest : public ::testing::TestWithParam<BadAnswer> {};

TEST_P(ScimBadAnswerTest, IsAnErrorNamingTheProblem) {
  const std::string body = GetParam().body;
  testing::LoopbackHttpServer server([&](const testing::ServerRequest&) {
    testing::ServerResponse r;
    r.content_type = "application/scim+json";
    r.body = body;
    return r;
  });
  server.start();
  auto got = pull_all(*make_scim_source(settings_for(server.base_url())));
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->kind, core::ErrorKind::kSource);
  EXPECT_EQ(got.error->message, "GET " + server.base_url() + "/Users?startIndex=1&count=100: " + GetParam().error);
}

constexpr const char* kNotAList =
    "not a SCIM ListResponse (expected \"schemas\" to list urn:ietf:params:scim:api:messages:2.0:ListResponse)";
constexpr const char* kNoTotal = "the ListResponse has no \"totalResults\" (a non-negative integer)";
// A ListResponse's opening with `rest` after its schemas.
std::string list_response(const char* rest) {
  return std::string(R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"])") + rest;
}

INSTANTIATE_TEST_SUITE_P(
    Answers, ScimBadAnswerTest,
    ::testing::Values(BadAnswer{"Array", R"([])", kNotAList},
                      BadAnswer{"NoSchemas", R"({"totalResults": 1, "Resources": [{"id": "a"}]})", kNotAList},
                      BadAnswer{"ErrorSchema",
                                R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "totalResults": 0})",
                                kNotAList},
                      BadAnswer{"NoTotal", list_response(R"(, "Resources": []})"), kNoTotal},
                      BadAnswer{"TextTotal", list_response(R"(, "totalResults": "3"})"), kNoTotal},
                      BadAnswer{"NegativeTotal", list_response(R"(, "totalResults": -1})"), kNoTotal},
                      BadAnswer{"NoResources", list_response(R"(, "totalResults": 2})"),
                                "the ListResponse has no \"Resources\" although totalResults is 2"},
                      BadAnswer{"ResourcesObject", list_response(R"(, "totalResults": 2, "Resources": {"id": "a"}})"),
                                "\"Resources\" is not an array"},
                      BadAnswer{"TextStartIndex",
                                list_response(R"(, "totalResults": 2, "startIndex": "1", "Resources": []})"),
                                "the server answered startIndex \"1\" for startIndex 1 (it does not page as asked)"}),
    [](const ::testing::TestParamInfo<BadAnswer>& info) { return std::string(info.param.name); });

TEST(ScimSource, ResourceThatIsNotAnObjectIsAnIssueWithoutAKey) {
  testing::LoopbackHttpServer server([&](const testing::ServerRequest&) {
    testing::ServerResponse r;
    r.body = R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 2,
                 "resources": [{"id": "a"}, "b"]})";  // member names are case-insensitive
    return r;
  });
  server.start();
  auto got = pull_all(*make_scim_source(settings_for(server.base_url())));
  ASSERT_FALSE(got.error) << got.error->message;
  ASSERT_EQ(got.records.size(), 1u);
  EXPECT_EQ(got.records[0].key, "a");
  ASSERT_EQ(got.issues.size(), 1u);
  EXPECT_EQ(got.issues[0].key, "");
  EXPECT_EQ(got.issues[0].origin, "GET " + server.base_url() + "/Users?startIndex=1&count=100 #2");
  EXPECT_EQ(got.issues[0].message, "the user is not a JSON object");
}

}  // namespace
}  // namespace dirsync::sources
