// The http_json source against a loopback JSON API (tests/support/http_json_test_server):
// every pagination style over several pages, the loop guards, authentication,
// failures mid-pull and what records look like.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/sources/http_json/http_json_source.h"
#include "tests/connectors/http_json/test_util.h"

namespace dirsync::sources {
namespace {

using config::Pagination;
using dirsync::testing::http_json::Auth;
using dirsync::testing::http_json::EndCursor;
using dirsync::testing::http_json::Fault;
using dirsync::testing::http_json::HttpJsonTestServer;
using dirsync::testing::http_json::ServerOptions;
using dirsync::testing::http_json::Style;
using nlohmann::json;
using testing::pull_all;
using testing::Pulled;
using testing::settings_for;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> keys(const Pulled& pulled) {
  std::vector<std::string> out;
  for (const auto& r : pulled.records) out.push_back(r.key);
  return out;
}

std::vector<std::string> expected_keys(int n) {
  std::vector<std::string> out;
  for (int i = 1; i <= n; ++i) out.push_back("u" + std::to_string(i));
  return out;
}

const core::Attribute* attribute(const core::Record& r, const std::string& name) {
  for (const auto& a : r.attributes) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

class HttpJsonSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.add_users(25);
    server_.start();
  }

  void serve(Style style, std::function<void(ServerOptions&)> tweak = {}) {
    ServerOptions o;
    o.style = style;
    if (tweak) tweak(o);
    server_.set_options(o);
  }

  Pulled pull(const config::HttpJsonSourceSettings& settings) {
    auto source = make_http_json_source(settings);
    return pull_all(*source);
  }

  std::vector<std::string> targets() const {
    std::vector<std::string> out;
    for (const auto& r : server_.request_log()) out.push_back(r.target);
    return out;
  }

  std::string url() const { return server_.users_url(); }

  HttpJsonTestServer server_;
};

// --- pagination styles --------------------------------------------------------

TEST_F(HttpJsonSourceTest, PageStyleReadsEveryPageUntilAnEmptyOne) {
  serve(Style::kPage);
  auto pulled = pull(settings_for(server_, Pagination::kPage));
  ASSERT_FALSE(pulled.error) << pulled.error->message;
  EXPECT_TRUE(pulled.complete);
  EXPECT_EQ(keys(pulled), expected_keys(25));
  EXPECT_TRUE(pulled.issues.empty());
  // A short page does not end the pull (servers cap page sizes); the empty one does.
  EXPECT_THAT(targets(), ElementsAre("/api/users?page=1&per_page=10", "/api/users?page=2&per_page=10",
                                     "/api/users?page=3&per_page=10", "/api/users?page=4&per_page=10"));
}

TEST_F(HttpJsonSourceTest, PageStyleCountsFromZeroAndJoinsTheUrlsOwnQuery) {
  serve(Style::kPage, [](ServerOptions& o) { o.first_page = 0; });
  auto settings = settings_for(server_, Pagination::kPage);
  settings.url = url() + "?active=true";
  settings.first_page = 0;
  settings.size_param.clear();  // the server's own page size (10)
  auto pulled = pull(settings);
  ASSERT_FALSE(pulled.error) << pulled.error->message;
  EXPECT_EQ(keys(pulled), expected_keys(25));
  EXPECT_THAT(targets(), ElementsAre("/api/users?active=true&page=0", "/api/users?active=true&page=1",
                                     "/api/users?active=true&page=2", "/api/users?active=true&page=3"));
}

TEST_F(HttpJsonSourceTest, OffsetStyleAdvancesByTheRecordsReceivedNotByTheLimitAsked) {
  serve(Style::kOffset, [](ServerOptions& o) { o.max_page_size = 7; });
  auto pulled = pull(settings_for(server_, Pagination::kOffset));
  ASSERT_FALSE(pulled.error) << pulled.error->message;
  EXPECT_TRUE(pulled.complete);
  EXPECT_EQ(keys(pulled), expected_keys(25));
  EXPECT_THAT(targets(), ElementsAre("/api/users?offset=0&limit=10", "/api/users?offset=7&limit=10",
                                     "/api/users?offset=14&limit=10", "/api/users?offset=21&limit=10",
                                     "/api/users?offset=25&limit=10"));
}

TEST_F(HttpJsonSourceTest, CursorStyleSendsTheEncodedCursorUntilItIsNullAbsentOrEmpty) {
  for (EndCursor end : {EndCursor::kNull, EndCursor::kAbsent, EndCursor::kEmpty}) {
    SCOPED_TRACE(static_cast<int>(end));
    serve(Style::kCursor, [&](ServerOptions& o) { o.end_cursor = end; });
    const auto before = server_.request_count();
    auto pulled = pull(settings_for(server_, Pagination::kCursor));
    ASSERT_FALSE(pulled.error) << pulled.error->message;
    EXPECT_TRUE(pulled.complete);
    EXPECT_EQ(keys(pulled), expected_keys(25));
    auto all = targets();
    EXPECT_THAT(std::vector<std::string>(all.begin() + static_cast<std::ptrdiff_t>(before), all.end()),
                ElementsAre("/api/users", "/api/users?cursor=after%2F10%3D%2B%20x",
                            "/api/users?cursor=after%2F20%3D%2B%20x"));
  }
}

TEST_F(HttpJsonSourceTest, LinkHeaderStyleFindsRelNextAmongSeveralLinksAndResolvesRelativeTargets) {
  serve(Style::kLinkHeader, [](ServerOptions& o) {
    o.several_links = true;
    o.relative_links = true;
  });
  auto pulled = pull(settings_for(server_, Pagination::kLinkHeader));
  ASSERT_FALSE(pulled.error) << pulled.error->message;
  EXPECT_TRUE(pulled.complete);
  EXPECT_EQ(keys(pulled), expected_keys(25));
  EXPECT_THAT(targets(), ElementsAre("/api/users", "/api/users?page=2", "/api/users?page=3"));
  EXPECT_EQ(pulled.records[10].origin, "GET " + url() + "?page=2 #0");
}

TEST_F(HttpJsonSourceTest, NextUrlStyleFollowsRelativeAndAbsoluteUrls) {
  for (bool relative : {true, false}) {
    SCOPED_TRACE(relative);
    serve(Style::kNextUrl, [&](ServerOptions& o) { o.relative_links = relative; });
    const auto before = server_.request_count();
    auto pulled = pull(settings_for(server_, Pagination::kNextUrl));
    ASSERT_FALSE(pulled.error) << pulled.error->message;
    EXPECT_TRUE(pulled.complete);
    EXPECT_EQ(keys(pulled), expected_keys(25));
    auto all = targets();
    EXPECT_THAT(std::vector<std::string>(all.begin() + static_cast<std::ptrdiff_t>(before), all.end()),
                ElementsAre("/api/users", "/api/users?page=2", "/api/users?page=3"));
  }
}

TEST_F(HttpJsonSourceTest, NoPaginationMakesOneRequestAndReadsABareArray) {
  serve(Style::kNone, [](ServerOptions& o) { o.bare_array = true; });
  auto settings = settings_for(server_, Pagination::kNone);
  settings.records = "";
  auto pulled = pull(settings);
  ASSERT_FALSE(pulled.error) << pulled.error->message;
  EXPECT_TRUE(pulled.complete);
  EXPECT_EQ(pulled.pages, 1u);
  EXPECT_EQ(keys(pulled), expected_keys(25));
  EXPECT_THAT(targets(), ElementsAre("/api/users"));
}

TEST_F(HttpJsonSourceTest, EveryStyleStopsOnAnEmptyPageEvenWhenTheServerOffersAnother) {
  const std::pair<Style, Pagination> styles[] = {{Style::kPage, Pagination::kPage},
                                                 {Style::kCursor, Pagination::kCursor},
                                                 {Style::kLinkHeader, Pagination::kLinkHeader},
                                                 {Style::kNextUrl, Pagination::kNextUrl}};
  for (const auto& [style, pagination] : styles) {
    SCOPED_TRACE(static_cast<int>(style));
    serve(style, [](ServerOptions& o) { o.always_next = true; });
    const auto before = server_.request_count();
    auto pulled = pull(settings_for(server_, pagination));
    ASSERT_FALSE(pulled.error) << pulled.error->message;
    EXPECT_TRUE(pulled.complete);
    EXPECT_EQ(keys(pulled), expected_keys(25));
    EXPECT_EQ(pulled.pages, 4u);
    EXPECT_EQ(server_.request_count() - before, 4u);
  }
}

TEST_F(HttpJsonSourceTest, AnEmptyListingIsACompletePullWithNoRecords) {
  server_.set_users({});
  serve(Style::kCursor);
  auto pulled = pull(settings_for(server_, Pagination::kCursor));
  ASSERT_FALSE(pulled.error) << pulled.error->message;
  EXPECT_TRUE(pulled.complete);
  EXPECT_TRUE(pulled.records.empty());
}

// --- loop and host guards -------------------------------------------------------

TEST_F(HttpJsonSourceTest, RepeatingCursorIsAnErrorAfterThePageThatCarriedIt) {
  serve(Style::kCursor);
  server_.inject(1, Fault::kRepeatCursor);
  auto pulled = pull(settings_for(server_, Pagination::kCursor));
  ASSERT_TRUE(pulled.error);
  EXPECT_EQ(pulled.error->kind, core::ErrorKind::kSource);
  EXPECT_EQ(pulled.error->message, "GET " + url() + "?cursor=after%2F10%3D%2B%20x: cursor repeats: 'after/10=+ x' "
                                   "was already followed in this pull; stopped instead of looping");
  EXPECT_EQ(keys(pulled), expected_keys(20));  // the page that carried it was good
  EXPECT_FALSE(pulled.complete);
  EXPECT_EQ(server_.request_count(), 2u);
}

TEST_F(HttpJsonSourceTest, RepeatingNextUrlIsAnErrorInBothUrlStyles) {
  const std::pair<Style, Pagination> styles[] = {{Style::kNextUrl, Pagination::kNextUrl},
                                                 {Style::kLinkHeader, Pagination::kLinkHeader}};
  for (const auto& [style, pagination] : styles) {
    SCOPED_TRACE(static_cast<int>(style));
    serve(style);
    server_.inject(1, Fault::kRepeatNextUrl);
    const auto before = server_.request_count();
    auto pulled = pull(settings_for(server_, pagination));
    ASSERT_TRUE(pulled.error);
    EXPECT_EQ(pulled.error->message, "GET " + url() + "?page=2: next page URL repeats: " + url() +
                                         "?page=2 was already requested in this pull; stopped instead of looping");
    EXPECT_EQ(server_.request_count() - before, 2u);
  }
}

TEST_F(HttpJsonSourceTest, NextUrlPointingBackToTheFirstPageIsARepeat) {
  serve(Style::kLinkHeader);
  server_.inject(0, Fault::kRepeatNextUrl);
  auto pulled = pull(settings_for(server_, Pagination::kLinkHeader));
  ASSERT_TRUE(pulled.error);
  EXPECT_THAT(pulled.error->message, HasSubstr("next page URL repeats: " + url() + " was already requested"));
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(HttpJsonSourceTest, NextUrlOnAnotherHostIsRefusedWithoutARequestThere) {
  const std::pair<Style, Pagination> styles[] = {{Style::kNextUrl, Pagination::kNextUrl},
                                                 {Style::kLinkHeader, Pagination::kLinkHeader}};
  for (const auto& [style, pagination] : styles) {
    SCOPED_TRACE(static_cast<int>(style));
    serve(style, [](ServerOptions& o) { o.auth = Auth::kBearer; });
    server_.inject(0, Fault::kForeignNextUrl);
    auto settings = settings_for(server_, pagination);
    settings.auth.token = core::Secret("test-token", "${env:API_TOKEN}");
    const auto before = server_.request_count();
    auto pulled = pull(settings);
    ASSERT_TRUE(pulled.error);
    const std::string port = server_.base_url().substr(std::string("http://127.0.0.1:").size());
    EXPECT_THAT(pulled.error->message,
                HasSubstr(", http://127.0.0.2:" + port + "/api/users?page=2, is not on http://127.0.0.1:" + port +
                          " (the url's scheme, host and port); refused"));
    EXPECT_THAT(pulled.error->message, Not(HasSubstr("test-token")));
    EXPECT_EQ(pulled.records.size(), 10u);
    EXPECT_EQ(server_.request_count() - before, 1u);
  }
}

// --- authentication -------------------------------------------------------------

TEST_F(HttpJsonSourceTest, EveryKindOfAuthenticationReachesTheServerExactly) {
  struct Case {
    Auth auth;
    std::function<void(config::HttpJsonSourceSettings&)> configure;
    std::string header;
    std::string value;
  };
  const Case cases[] = {
      {Auth::kBearer, [](auto& s) { s.auth.token = core::Secret("test-token", "${env:T}"); }, "authorization",
       "Bearer test-token"},
      {Auth::kBasic,
       [](auto& s) {
         s.auth.username = "reader";
         s.auth.password = core::Secret("pä55:word", "${env:P}");
       },
       "authorization", "Basic cmVhZGVyOnDDpDU1OndvcmQ="},
      {Auth::kApiKey,
       [](auto& s) {
         s.auth.api_key = core::Secret("test-api-key", "${env:K}");
         s.auth.api_key_header = "X-Api-Token";
       },
       "x-api-token", "test-api-key"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.header + ": " + c.value);
    serve(Style::kPage, [&](ServerOptions& o) {
      o.auth = c.auth;
      o.api_key_header = "X-Api-Token";
      o.required_headers = {{"X-Tenant", "acme-7"}};
    });
    auto settings = settings_for(server_, Pagination::kPage);
    c.configure(settings);
    settings.headers = {{"X-Tenant", core::Secret("acme-7", "(literal)")}};
    const auto before = server_.request_count();
    auto pulled = pull(settings);
    ASSERT_FALSE(pulled.error) << pulled.error->message;
    EXPECT_EQ(pulled.records.size(), 25u);
    const auto log = server_.request_log();
    ASSERT_EQ(log.size() - before, 4u);
    for (std::size_t i = before; i < log.size(); ++i) {
      EXPECT_EQ(log[i].status, 200);
      EXPECT_EQ(log[i].header(c.header), c.value);
      EXPECT_EQ(log[i].header("x-tenant"), "acme-7");
    }
  }
}

TEST_F(HttpJsonSourceTest, RefusedCredentialsFailAsAuthWithoutTheSecretAnywhere) {
  struct Case {
    Auth auth;
    std::function<void(config::HttpJsonSourceSettings&)> configure;
    std::string secret;
  };
  const Case cases[] = {
      {Auth::kBearer, [](auto& s) { s.auth.token = core::Secret("wrong-token-123", "${env:T}"); }, "wrong-token-123"},
      {Auth::kBasic,
       [](auto& s) {
         s.auth.username = "reader";
         s.auth.password = core::Secret("wrong-pass-456", "${env:P}");
       },
       "wrong-pass-456"},
      {Auth::kApiKey, [](auto& s) { s.auth.api_key = core::Secret("wrong-key-789", "${env:K}"); }, "wrong-key-789"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.secret);
    serve(Style::kPage, [&](ServerOptions& o) { o.auth = c.auth; });
    auto settings = settings_for(server_, Pagination::kPage);
    c.configure(settings);
    auto source = make_http_json_source(settings);
    auto pulled = pull_all(*source);
    ASSERT_TRUE(pulled.error);
    EXPECT_EQ(pulled.error->kind, core::ErrorKind::kAuth);
    EXPECT_EQ(pulled.error->message, "GET " + url() + "?page=1&per_page=10: HTTP 401: Unauthenticated.");
    EXPECT_THAT(source->describe(), Not(HasSubstr(c.secret)));
  }
  EXPECT_EQ(server_.request_count(), 3u);  // 401 is not retried
}

TEST_F(HttpJsonSourceTest, DescribesItselfByUrl) {
  EXPECT_EQ(make_http_json_source(settings_for(server_, Pagination::kPage))->describe(), "http_json " + url());
}

// --- failures -------------------------------------------------------------------

TEST_F(HttpJsonSourceTest, ServiceUnavailableIsRetriedAndThePullCompletes) {
  serve(Style::kPage);
  server_.inject(1, Fault::k503, 2);
  auto pulled = pull(settings_for(server_, Pagination::kPage));
  ASSERT_FALSE(pulled.error) << pulled.error->message;
  EXPECT_TRUE(pulled.complete);
  EXPECT_EQ(keys(pulled), expected_keys(25));
  EXPECT_THAT(targets(), ElementsAre("/api/users?page=1&per_page=10", "/api/users?page=2&per_page=10",
                                     "/api/users?page=2&per_page=10", "/api/users?page=2&per_page=10",
                                     "/api/users?page=3&per_page=10", "/api/users?page=4&per_page=10"));
}

TEST_F(HttpJsonSourceTest, FailureMidPullEndsThePullWithAnError) {
  const std::string page2 = "GET " + url() + "?page=2&per_page=10: ";
  struct Case {
    Fault fault;
    core::ErrorKind kind;
    std::string message;
  };
  const Case cases[] = {
      {Fault::k500, core::ErrorKind::kSource, page2 + "HTTP 500: Server Error (after 3 attempts)"},
      {Fault::k401, core::ErrorKind::kAuth, page2 + "HTTP 401: Unauthenticated."},
      {Fault::kNotJson, core::ErrorKind::kSource, page2 + "HTTP 200 with a body that is not JSON"},
      {Fault::kRecordsNotArray, core::ErrorKind::kSource,
       page2 + "records pointer '/data' leads to an object, not an array of records"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    serve(Style::kPage);
    server_.clear_faults();
    server_.inject(1, c.fault, -1);
    auto pulled = pull(settings_for(server_, Pagination::kPage));
    ASSERT_TRUE(pulled.error);
    EXPECT_EQ(pulled.error->kind, c.kind);
    EXPECT_EQ(pulled.error->message, c.message);
    EXPECT_EQ(keys(pulled), expected_keys(10));
    EXPECT_FALSE(pulled.complete);
  }
}

TEST_F(HttpJsonSourceTest, DroppedConnectionIsRetriedThenEndsThePull) {
  serve(Style::kCursor);
  server_.inject(2, Fault::kDrop, -1);
  auto pulled = pull(settings_for(server_, Pagination::kCursor));
  ASSERT_TRUE(pulled.error);
  EXPECT_EQ(pulled.error->kind, core::ErrorKind::kSource);
  EXPECT_THAT(pulled.error->message, HasSubstr("GET " + url() + "?cursor=after%2F20%3D%2B%20x: "));
  EXPECT_THAT(pulled.error->message, HasSubstr("(after 3 attempts)"));
  EXPECT_EQ(keys(pulled), expected_keys(20));
  // Every attempt (libcurl may add a silent retry of its own on a reused
  // connection) asked for the third page and was dropped.
  const auto log = server_.request_log();
  ASSERT_GE(log.size(), 5u);
  for (std::size_t i = 2; i < log.size(); ++i) {
    EXPECT_EQ(log[i].target, "/api/users?cursor=after%2F20%3D%2B%20x");
    EXPECT_EQ(log[i].status, 0);
  }
}

TEST_F(HttpJsonSourceTest, NextCallAfterAnErrorReturnsTheSameError) {
  serve(Style::kPage);
  server_.inject(0, Fault::k401);
  auto source = make_http_json_source(settings_for(server_, Pagination::kPage));
  auto pull = source->start();
  ASSERT_TRUE(pull.ok());
  auto first = pull.value()->next();
  ASSERT_FALSE(first.ok());
  auto again = pull.value()->next();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(HttpJsonSourceTest, RecordsPointerToNothingFailsNamingPointerAndUrl) {
  serve(Style::kNone);
  auto settings = settings_for(server_, Pagination::kNone);
  settings.records = "/items";
  auto pulled = pull(settings);
  ASSERT_TRUE(pulled.error);
  EXPECT_EQ(pulled.error->message,
            "GET " + url() + ": records pointer '/items' leads to nothing, not an array of records");
  settings.records = "";
  pulled = pull(settings);
  ASSERT_TRUE(pulled.error);
  EXPECT_EQ(pulled.error->message,
            "GET " + url() + ": records pointer '' (the body) leads to an object, not an array of records");
}

TEST_F(HttpJsonSourceTest, MalformedPointerInSettingsFailsTheStartAsInvalid) {
  auto settings = settings_for(server_, Pagination::kPage);
  settings.key = "/a~2b";
  auto started = make_http_json_source(settings)->start();
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().kind, core::ErrorKind::kInvalid);
  EXPECT_EQ(started.error().message, "http_json " + url() + ": key '/a~2b' is not a JSON pointer");
  EXPECT_EQ(server_.request_count(), 0u);
}

// --- records --------------------------------------------------------------------

TEST_F(HttpJsonSourceTest, RecordWithoutAUsableKeyIsAnIssueWithAnEmptyKey) {
  serve(Style::kPage);
  server_.edit_user(2, {{"id", nullptr}});  // merge-patch: removes the member
  server_.edit_user(4, {{"id", "  "}});
  server_.edit_user(6, {{"id", true}});
  server_.edit_user(11, {{"id", 1.5}});
  auto users = server_.users();
  users[8] = "not an object";
  server_.set_users(users);
  auto pulled = pull(settings_for(server_, Pagination::kPage));
  ASSERT_FALSE(pulled.error) << pulled.error->message;
  EXPECT_TRUE(pulled.complete);
  EXPECT_EQ(pulled.records.size(), 20u);
  ASSERT_EQ(pulled.issues.size(), 5u);
  const std::string page1 = "GET " + url() + "?page=1&per_page=10";
  EXPECT_EQ(pulled.issues[0].key, "");
  EXPECT_EQ(pulled.issues[0].origin, page1 + " #2");
  EXPECT_EQ(pulled.issues[0].message, "no key at '/id'");
  EXPECT_EQ(pulled.issues[1].message, "blank key at '/id'");
  EXPECT_EQ(pulled.issues[2].message, "key at '/id' is a boolean; expected a string or an integer");
  EXPECT_EQ(pulled.issues[3].origin, page1 + " #8");
  EXPECT_EQ(pulled.issues[3].message, "record is a string; expected an object");
  EXPECT_EQ(pulled.issues[4].origin, "GET " + url() + "?page=2&per_page=10 #1");
  EXPECT_EQ(pulled.issues[4].message, "key at '/id' is a number; expected a string or an integer");
  for (const auto& issue : pulled.issues) EXPECT_EQ(issue.key, "");
}

TEST_F(HttpJsonSourceTest, DuplicateKeyIsAnIssueCarryingTheKeyAndTheFirstRecordStays) {
  serve(Style::kOffset);
  server_.edit_user(14, {{"id", "u3"}, {"email", "second@example.com"}});
  auto pulled = pull(settings_for(server_, Pagination::kOffset));
  ASSERT_FALSE(pulled.error) << pulled.error->message;
  EXPECT_TRUE(pulled.complete);
  EXPECT_EQ(pulled.records.size(), 24u);
  ASSERT_EQ(pulled.issues.size(), 1u);
  EXPECT_EQ(pulled.issues[0].key, "u3");
  EXPECT_EQ(pulled.issues[0].origin, "GET " + url() + "?offset=10&limit=10 #4");
  EXPECT_EQ(pulled.issues[0].message, "duplicate key 'u3'");
  EXPECT_EQ(attribute(pulled.records[2], "email")->values, std::vector<std::string>{"user3@example.com"});
}

TEST_F(HttpJsonSourceTest, IntegerKeysAndNestedKeyPointersAreRead) {
  serve(Style::kNone);
  server_.set_users({json{{"id", 42}, {"ids", {{"employee", "E-1"}}}}, json{{"id", -7}, {"ids", {{"employee", 9}}}}});
  auto settings = settings_for(server_, Pagination::kNone);
  auto pulled = pull(settings);
  ASSERT_FALSE(pulled.error) << pulled.error->message;
  EXPECT_THAT(keys(pulled), ElementsAre("42", "-7"));
  settings.key = "/ids/employee";
  pulled = pull(settings);
  ASSERT_FALSE(pulled.error) << pulled.error->message;
  EXPECT_THAT(keys(pulled), ElementsAre("E-1", "9"));
}

TEST_F(HttpJsonSourceTest, EveryMemberIsFlattenedIntoAttributesNonAsciiIntact) {
  serve(Style::kNone);
  server_.set_users({json::parse(R"({
      "id": "u1",
      "name": {"given": "Zoë", "family": "Ødegård-Łukasz"},
      "emails": [{"value": "zoe@example.com", "primary": true}, {"value": "z@example.org"}],
      "groups": ["staff", "研究"],
      "active": true, "age": 41, "manager": null, "score": 2.5})")});
  auto pulled = pull(settings_for(server_, Pagination::kNone));
  ASSERT_FALSE(pulled.error) << pulled.error->message;
  ASSERT_EQ(pulled.records.size(), 1u);
  const auto& r = pulled.records[0];
  EXPECT_EQ(r.origin, "GET " + url() + " #0");
  EXPECT_EQ(attribute(r, "id")->values, std::vector<std::string>{"u1"});
  EXPECT_EQ(attribute(r, "name.given")->values, std::vector<std::string>{"Zoë"});
  EXPECT_EQ(attribute(r, "name.family")->values, std::vector<std::string>{"Ødegård-Łukasz"});
  EXPECT_THAT(attribute(r, "emails.value")->values, ElementsAre("zoe@example.com", "z@example.org"));
  EXPECT_THAT(attribute(r, "emails.primary")->values, ElementsAre("true"));
  EXPECT_THAT(attribute(r, "groups")->values, ElementsAre("staff", "研究"));
  EXPECT_THAT(attribute(r, "active")->values, ElementsAre("true"));
  EXPECT_THAT(attribute(r, "age")->values, ElementsAre("41"));
  EXPECT_THAT(attribute(r, "score")->values, ElementsAre("2.5"));
  ASSERT_NE(attribute(r, "manager"), nullptr);
  EXPECT_TRUE(attribute(r, "manager")->values.empty());
}

TEST_F(HttpJsonSourceTest, ConfiguredAttributesTakeTheFirstPointerThatYieldsAValue) {
  serve(Style::kNone);
  server_.set_users({
      json{{"id", "a"}, {"contact", {{"email", "work@a.example"}}}, {"email", "home@a.example"}, {"title", "Boss"}},
      json{{"id", "b"}, {"contact", {{"email", nullptr}}}, {"email", "home@b.example"}, {"job", {{"title", "Dev"}}}},
      json{{"id", "c"}, {"contact", {{"email", json::array()}}}, {"email", nullptr}, {"title", "Ops"}},
      json{{"id", "d"}, {"tags", {"x", "y"}}, {"title", {{"nested", "object"}}}},
  });
  auto settings = settings_for(server_, Pagination::kNone);
  settings.attributes = {{"email", {"/contact/email", "/email"}},
                         {"title", {"/job/title", "/title"}},
                         {"first_tag", {"/tags/0"}}};
  auto pulled = pull(settings);
  ASSERT_FALSE(pulled.error) << pulled.error->message;
  ASSERT_EQ(pulled.records.size(), 4u);
  const auto& a = pulled.records[0];
  const auto& b = pulled.records[1];
  const auto& c = pulled.records[2];
  const auto& d = pulled.records[3];
  EXPECT_THAT(attribute(a, "email")->values, ElementsAre("work@a.example"));
  EXPECT_THAT(attribute(b, "email")->values, ElementsAre("home@b.example"));  // null falls back
  EXPECT_EQ(attribute(c, "email"), nullptr);  // nothing yields a value: absent, not the record's own null
  EXPECT_THAT(attribute(a, "title")->values, ElementsAre("Boss"));
  EXPECT_THAT(attribute(b, "title")->values, ElementsAre("Dev"));
  EXPECT_EQ(attribute(d, "title"), nullptr);  // an object has no value
  EXPECT_THAT(attribute(d, "first_tag")->values, ElementsAre("x"));
  EXPECT_EQ(attribute(a, "first_tag"), nullptr);
  EXPECT_THAT(attribute(a, "contact.email")->values, ElementsAre("work@a.example"));  // flattened members stay
}

}  // namespace
}  // namespace dirsync::sources
