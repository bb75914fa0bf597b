// The SCIM path language (scim_path.h): pure, no server.
#include "connectors/sources/scim/scim_path.h"

#include <gtest/gtest.h>

namespace dirsync::sources {
namespace {

using nlohmann::json;
using Values = std::vector<std::string>;

const json& user() {
  static const json u = json::parse(R"({
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
    "id": "2819c223",
    "userName": "bjensen@example.com",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "active": true,
    "emails": [
      {"value": "bjensen@home.example.org", "type": "home"},
      {"value": "bjensen@example.com", "type": "work", "primary": true}
    ],
    "phoneNumbers": [
      {"value": "555-555-8377", "type": "Work"},
      {"value": "555-555-4444", "type": "mobile"},
      {"value": "555-555-0000", "type": "work", "display": null}
    ],
    "roles": ["admin", "auditor"],
    "x509Certificates": [],
    "groups": [{"value": "e9e30dba", "$ref": "https://example.com/v2/Groups/e9e30dba", "display": "Tour Guides"}],
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
      "employeeNumber": "701984",
      "costCenter": 4130,
      "manager": {"value": "26118915", "displayName": "John Smith"}
    }
  })");
  return u;
}

Values values(const std::string& path, const json& resource = user()) {
  auto parsed = ScimPath::parse(path);
  EXPECT_TRUE(parsed.ok()) << parsed.error().message;
  return parsed ? parsed->values(resource) : Values{};
}

std::string parse_error(const std::string& path) {
  auto parsed = ScimPath::parse(path);
  EXPECT_FALSE(parsed.ok()) << path;
  return parsed ? "" : parsed.error().message;
}

TEST(ScimPath, ReadsSimpleAndSubAttributes) {
  EXPECT_EQ(values("userName"), Values{"bjensen@example.com"});
  EXPECT_EQ(values("name.givenName"), Values{"Barbara"});
  EXPECT_EQ(values("active"), Values{"true"});
  EXPECT_EQ(values("id"), Values{"2819c223"});
}

TEST(ScimPath, ComparesAttributeNamesCaseInsensitively) {
  EXPECT_EQ(values("USERNAME"), Values{"bjensen@example.com"});
  EXPECT_EQ(values("Name.GivenName"), Values{"Barbara"});
  EXPECT_EQ(values("EMAILS[PRIMARY EQ TRUE].VALUE"), Values{"bjensen@example.com"});
}

TEST(ScimPath, StepsThroughMultiValuedAttributesInOrder) {
  EXPECT_EQ(values("emails.value"), (Values{"bjensen@home.example.org", "bjensen@example.com"}));
  EXPECT_EQ(values("roles"), (Values{"admin", "auditor"}));
  EXPECT_EQ(values("groups.$ref"), Values{"https://example.com/v2/Groups/e9e30dba"});
}

TEST(ScimPath, FilterKeepsOnlyMatchingValues) {
  EXPECT_EQ(values("emails[primary eq true].value"), Values{"bjensen@example.com"});
  EXPECT_EQ(values("emails[type eq \"home\"].value"), Values{"bjensen@home.example.org"});
  // eq on strings ignores case (caseExact is false for `type`).
  EXPECT_EQ(values("phoneNumbers[type eq \"work\"].value"), (Values{"555-555-8377", "555-555-0000"}));
  EXPECT_EQ(values("phoneNumbers[type ne \"work\"].value"), Values{"555-555-4444"});
  EXPECT_EQ(values("phoneNumbers[value sw \"555-555-4\"].type"), Values{"mobile"});
  EXPECT_EQ(values("phoneNumbers[value ew \"0000\"].value"), Values{"555-555-0000"});
  EXPECT_EQ(values("emails[value co \"HOME\"].value"), Values{"bjensen@home.example.org"});
  EXPECT_EQ(values("emails[primary pr].value"), Values{"bjensen@example.com"});
  // null matches an absent or null sub-attribute.
  EXPECT_EQ(values("emails[primary eq null].value"), Values{"bjensen@home.example.org"});
  EXPECT_EQ(values("phoneNumbers[display eq null].value").size(), 3u);
  EXPECT_EQ(values("roles[value eq \"AUDITOR\"]"), Values{"auditor"});
}

TEST(ScimPath, FilterWithoutMatchYieldsNothing) {
  EXPECT_TRUE(values("emails[type eq \"other\"].value").empty());
  EXPECT_TRUE(values("emails[primary eq false].value").empty());
  EXPECT_TRUE(values("nickName").empty());
  EXPECT_TRUE(values("x509Certificates.value").empty());
  EXPECT_TRUE(values("name").empty());  // an object is not a value
}

TEST(ScimPath, ComparesNumbersByValue) {
  EXPECT_EQ(values("enterprise[costCenter eq 4130].employeeNumber"), Values{"701984"});
  EXPECT_EQ(values("enterprise[costCenter eq 4130.0].employeeNumber"), Values{"701984"});
  EXPECT_TRUE(values("enterprise[costCenter eq \"4130\"].employeeNumber").empty());
}

TEST(ScimPath, ReadsTheEnterpriseExtensionByPrefixOrUrn) {
  EXPECT_EQ(values("enterprise.employeeNumber"), Values{"701984"});
  EXPECT_EQ(values("enterprise.manager.value"), Values{"26118915"});
  EXPECT_EQ(values("enterprise.costCenter"), Values{"4130"});
  EXPECT_EQ(values("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"), Values{"701984"});
  EXPECT_EQ(values("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName"),
            Values{"John Smith"});
  EXPECT_EQ(values("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName"), Values{"Jensen"});
}

TEST(ScimPath, ReadsNonAsciiValuesUnchanged) {
  const json u = {{"name", {{"givenName", "Zoë"}}}, {"emails", {{{"value", "žofie@example.cz"}, {"type", "wörk"}}}}};
  EXPECT_EQ(values("name.givenName", u), Values{"Zoë"});
  EXPECT_EQ(values("emails[type eq \"WöRK\"].value", u), Values{"žofie@example.cz"});
}

TEST(ScimPath, AcceptsQuotedStringsWithEscapesAndBrackets) {
  const json u = {{"emails", {{{"value", "a@x"}, {"type", "say \"hi\" ]"}}}}};
  EXPECT_EQ(values(R"(emails[type eq "say \"hi\" ]"].value)", u), Values{"a@x"});
}

TEST(ScimPath, RejectsMalformedPathsWithTheReason) {
  EXPECT_EQ(parse_error(""), "'': empty; expected an attribute name such as userName");
  EXPECT_EQ(parse_error("emails[primary eq]"), "'emails[primary eq]': expected a value after 'eq' at column 18");
  EXPECT_EQ(parse_error("emails[primary is true].value"),
            "'emails[primary is true].value': expected an operator (eq, ne, co, sw, ew or pr) at column 16");
  EXPECT_EQ(parse_error("emails[type eq \"work].value"),
            "'emails[type eq \"work].value': unterminated string at column 16");
  EXPECT_EQ(parse_error("emails[type eq work].value"),
            "'emails[type eq work].value': expected true, false, null, a number or a \"quoted string\" at column 16");
  EXPECT_EQ(parse_error("emails[type eq \"a\" and primary eq true]"),
            "'emails[type eq \"a\" and primary eq true]': expected ']' (one comparison per filter; 'and', 'or', "
            "'not' are not supported) at column 20");
  EXPECT_EQ(parse_error("name..givenName"), "'name..givenName': expected an attribute name at column 6");
  EXPECT_EQ(parse_error("name givenName"), "'name givenName': expected '.' or '[' at column 5");
  EXPECT_EQ(parse_error("1name"), "'1name': expected an attribute name at column 1");
  EXPECT_EQ(parse_error("emails[value co true]"), "'emails[value co true]': 'co' compares strings only");
  EXPECT_EQ(parse_error("urn:ietf:params:scim:schemas:core:2.0:User:"),
            "'urn:ietf:params:scim:schemas:core:2.0:User:': expected an attribute name after the schema URN");
}

TEST(ScimPath, ValidScimPathExplainsWhy) {
  std::string why;
  EXPECT_TRUE(valid_scim_path("emails[primary eq true].value", &why));
  EXPECT_TRUE(why.empty());
  EXPECT_FALSE(valid_scim_path("emails[", &why));
  EXPECT_EQ(why, "'emails[': expected a sub-attribute name after '[' at column 8");
  EXPECT_FALSE(valid_scim_path("a b", nullptr));
}

}  // namespace
}  // namespace dirsync::sources
