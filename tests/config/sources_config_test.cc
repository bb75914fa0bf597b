// The network sources' sections: ldap, scim, http_json.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "tests/config/test_util.h"

namespace dirsync::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::errors_of;
using testing::yaml;

// The source section starts on line 3.
std::string with_source(std::string_view source) {
  if (!source.empty() && source.front() == '\n') source.remove_prefix(1);
  return "state_dir: /var/lib/dirsync\nsources:\n" + std::string(source);
}

class SourcesConfig : public ::testing::Test {
 protected:
  void SetUp() override { ::setenv("DIRSYNC_TEST_SOURCE_SECRET", "s3cret-value", 1); }
  void TearDown() override { ::unsetenv("DIRSYNC_TEST_SOURCE_SECRET"); }
};

TEST_F(SourcesConfig, ReadsAnLdapSourceWithDefaults) {
  const auto cfg = load_string(with_source(R"(
  ad:
    type: ldap
    url: ldaps://dc1.example.com/
    bind_dn: CN=sync,OU=Service,DC=example,DC=com
    bind_password: ${env:DIRSYNC_TEST_SOURCE_SECRET}
    base_dn: OU=People,DC=example,DC=com
    filter: (&(objectClass=user)(!(objectClass=computer)))
    key: objectGUID
    attributes: [mail, givenName, sn, memberOf, userAccountControl]
)"),
                               "dirsync.yaml");
  const auto& s = std::get<LdapSourceSettings>(cfg.sources.at("ad").settings);
  EXPECT_EQ(s.url, "ldaps://dc1.example.com");
  EXPECT_EQ(s.bind_password.reveal(), "s3cret-value");
  EXPECT_EQ(s.key, "objectGUID");
  EXPECT_EQ(s.scope, LdapSourceSettings::Scope::kSub);
  EXPECT_EQ(s.page_size, 500);
  EXPECT_TRUE(s.start_tls);
  EXPECT_EQ(s.attributes.size(), 5u);
  EXPECT_THAT(s.binary_attributes, ElementsAre("objectGUID", "objectSid"));
}

TEST_F(SourcesConfig, RejectsAnLdapUrlOfAnotherScheme) {
  EXPECT_THAT(errors_of(with_source(R"(
  ad: {type: ldap, url: 'https://dc1', base_dn: 'dc=x'}
)")),
              ElementsAre("dirsync.yaml:3:25: bad value for 'url'; expected a URL starting with ldap:// or ldaps://"));
}

TEST_F(SourcesConfig, RejectsABindDnWithoutPassword) {
  EXPECT_THAT(errors_of(with_source(R"(
  ad: {type: ldap, url: 'ldap://dc1', base_dn: 'dc=x', bind_dn: 'cn=sync,dc=x'}
)")),
              ElementsAre(HasSubstr("bind_dn without bind_password in source 'ad'")));
}

TEST_F(SourcesConfig, RejectsAnUnbalancedLdapFilter) {
  EXPECT_THAT(errors_of(with_source(R"(
  ad: {type: ldap, url: 'ldap://dc1', base_dn: 'dc=x', filter: '(&(uid=a)'}
)")),
              ElementsAre(HasSubstr("expected a parenthesised LDAP filter")));
}

TEST_F(SourcesConfig, ReadsAScimSourceWithAttributePaths) {
  const auto cfg = load_string(with_source(R"(
  idp:
    type: scim
    base_url: https://idp.example.com/scim/v2/
    token: ${env:DIRSYNC_TEST_SOURCE_SECRET}
    filter: active eq true
    attributes:
      email: ['emails[primary eq true].value', emails.value]
      phone: 'phoneNumbers[type eq "work"].value'
)"),
                               "dirsync.yaml");
  const auto& s = std::get<ScimSourceSettings>(cfg.sources.at("idp").settings);
  EXPECT_EQ(s.base_url, "https://idp.example.com/scim/v2");
  ASSERT_TRUE(s.auth.token);
  EXPECT_EQ(s.auth.token->reveal(), "s3cret-value");
  EXPECT_EQ(s.key, "id");
  EXPECT_EQ(s.page_size, 100u);
  ASSERT_EQ(s.attributes.size(), 2u);
  EXPECT_EQ(s.attributes[0].name, "email");
  EXPECT_THAT(s.attributes[0].paths, ElementsAre("emails[primary eq true].value", "emails.value"));
  EXPECT_THAT(s.attributes[1].paths, ElementsAre("phoneNumbers[type eq \"work\"].value"));
  ASSERT_TRUE(s.http.rate_limits);
  EXPECT_TRUE(s.http.rate_limits->empty()) << "sources have no rate limit unless configured";
  EXPECT_EQ(s.http.label, "source idp") << "metrics name the connector";
}

TEST_F(SourcesConfig, RejectsMaxInFlightOnASource) {
  EXPECT_THAT(errors_of(with_source(R"(
  idp: {type: scim, base_url: 'https://idp', max_in_flight: 4}
)")),
              ElementsAre(HasSubstr("unknown key 'max_in_flight' in source 'idp'")));
}

TEST_F(SourcesConfig, RejectsTwoKindsOfAuthentication) {
  EXPECT_THAT(errors_of(with_source(R"(
  idp: {type: scim, base_url: 'https://idp', token: '${env:DIRSYNC_TEST_SOURCE_SECRET}', api_key: '${env:DIRSYNC_TEST_SOURCE_SECRET}'}
)")),
              ElementsAre(HasSubstr("more than one kind of authentication in source 'idp'")));
}

TEST_F(SourcesConfig, ReadsAnHttpJsonSourceWithCursorPaging) {
  const auto cfg = load_string(with_source(R"(
  api:
    type: http_json
    url: https://hr.example.com/api/people?active=1
    headers: {X-Tenant: '${env:DIRSYNC_TEST_SOURCE_SECRET}'}
    username: sync
    password: ${env:DIRSYNC_TEST_SOURCE_SECRET}
    records: /data
    key: /id
    pagination: cursor
    cursor_path: /meta/next
    attributes:
      email: [/contact/email, /email]
)"),
                               "dirsync.yaml");
  const auto& s = std::get<HttpJsonSourceSettings>(cfg.sources.at("api").settings);
  EXPECT_EQ(s.url, "https://hr.example.com/api/people?active=1");
  EXPECT_EQ(s.pagination, Pagination::kCursor);
  EXPECT_EQ(s.cursor_path, "/meta/next");
  EXPECT_EQ(s.records, "/data");
  EXPECT_EQ(s.key, "/id");
  ASSERT_EQ(s.headers.size(), 1u);
  EXPECT_EQ(s.headers[0].first, "X-Tenant");
  EXPECT_EQ(s.auth.username, "sync");
  ASSERT_TRUE(s.auth.password);
  EXPECT_THAT(s.attributes[0].paths, ElementsAre("/contact/email", "/email"));
}

TEST_F(SourcesConfig, RejectsCursorPagingWithoutCursorPath) {
  EXPECT_THAT(errors_of(with_source(R"(
  api: {type: http_json, url: 'https://hr', key: /id, pagination: cursor}
)")),
              ElementsAre(HasSubstr("pagination: cursor needs 'cursor_path' in source 'api'")));
}

TEST_F(SourcesConfig, RejectsAKeyThatIsNotAJsonPointer) {
  EXPECT_THAT(errors_of(with_source(R"(
  api: {type: http_json, url: 'https://hr', key: id}
)")),
              ElementsAre(HasSubstr("expected a JSON pointer such as /id")));
}

TEST_F(SourcesConfig, RejectsCredentialsInTheUrlWithoutEchoingThem) {
  const auto errors = errors_of(with_source(R"(
  api: {type: http_json, url: 'https://sync:hunter2@hr.example.com', key: /id}
)"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("'url' holds credentials"));
  EXPECT_THAT(errors[0], ::testing::Not(HasSubstr("hunter2")));
}

TEST_F(SourcesConfig, NeverPrintsASecretHeaderValue) {
  const auto errors = errors_of(with_source(R"(
  api: {type: http_json, url: 'https://hr', key: /id, headers: {'bad name': '${env:DIRSYNC_TEST_SOURCE_SECRET}'}}
)"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("bad header name 'bad name'"));
  EXPECT_THAT(errors[0], ::testing::Not(HasSubstr("s3cret")));
}

}  // namespace
}  // namespace dirsync::config
