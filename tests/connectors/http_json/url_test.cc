// The http_json source's URL helpers, without sockets: RFC 3986 resolution
// (the RFC's own examples), origins, query joining and RFC 8288 Link headers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/sources/http_json/url.h"

namespace dirsync::sources::http_json {
namespace {

using ::testing::ElementsAre;

TEST(ResolveUrl, FollowsTheNormalExamplesOfRfc3986) {
  const std::string base = "http://a/b/c/d;p?q";
  const std::pair<const char*, const char*> examples[] = {
      {"g:h", "g:h"},          {"g", "http://a/b/c/g"},        {"./g", "http://a/b/c/g"},
      {"g/", "http://a/b/c/g/"}, {"/g", "http://a/g"},          {"//g", "http://g"},
      {"?y", "http://a/b/c/d;p?y"}, {"g?y", "http://a/b/c/g?y"}, {"#s", "http://a/b/c/d;p?q"},
      {"g#s", "http://a/b/c/g"}, {";x", "http://a/b/c/;x"},      {"", "http://a/b/c/d;p?q"},
      {".", "http://a/b/c/"},    {"./", "http://a/b/c/"},        {"..", "http://a/b/"},
      {"../", "http://a/b/"},    {"../g", "http://a/b/g"},       {"../..", "http://a/"},
      {"../../", "http://a/"},   {"../../g", "http://a/g"},
  };
  for (const auto& [reference, expected] : examples) {
    EXPECT_EQ(resolve_url(base, reference), expected) << reference;
  }
}

TEST(ResolveUrl, FollowsTheAbnormalExamplesOfRfc3986) {
  const std::string base = "http://a/b/c/d;p?q";
  const std::pair<const char*, const char*> examples[] = {
      {"../../../g", "http://a/g"}, {"/./g", "http://a/g"},       {"/../g", "http://a/g"},
      {"g.", "http://a/b/c/g."},    {"..g", "http://a/b/c/..g"},  {"./../g", "http://a/b/g"},
      {"g/./h", "http://a/b/c/g/h"}, {"g/../h", "http://a/b/c/h"}, {"g;x=1/../y", "http://a/b/c/y"},
      {"g?y/./x", "http://a/b/c/g?y/./x"},
  };
  for (const auto& [reference, expected] : examples) {
    EXPECT_EQ(resolve_url(base, reference), expected) << reference;
  }
}

TEST(ResolveUrl, ReadsAPathAgainstAHostWithoutOne) {
  EXPECT_EQ(resolve_url("https://api.example.com", "users?page=2"), "https://api.example.com/users?page=2");
  EXPECT_EQ(resolve_url("https://api.example.com/v1/users?page=1", "https://other.example/x"),
            "https://other.example/x");
}

TEST(UrlOrigin, ComparesSchemeHostAndPortWithDefaultPorts) {
  EXPECT_EQ(*url_origin("https://API.example.com/x"), *url_origin("https://api.example.com:443/y?z"));
  EXPECT_EQ(*url_origin("http://h/"), *url_origin("HTTP://h:80"));
  EXPECT_FALSE(*url_origin("http://h/") == *url_origin("https://h/"));
  EXPECT_FALSE(*url_origin("http://h:8080/") == *url_origin("http://h:8081/"));
  EXPECT_FALSE(*url_origin("http://localhost/") == *url_origin("http://127.0.0.1/"));
  EXPECT_EQ(to_string(*url_origin("https://[::1]/api")), "https://[::1]:443");
  EXPECT_EQ(url_origin("http://[::1]:9000/")->port, 9000);
}

TEST(UrlOrigin, FlagsCredentialsAndRefusesWhatIsNotAnAbsoluteHttpUrl) {
  EXPECT_TRUE(url_origin("https://user:pw@h/")->userinfo);
  EXPECT_FALSE(url_origin("https://h/")->userinfo);
  EXPECT_FALSE(url_origin("/relative"));
  EXPECT_FALSE(url_origin("ftp://h/"));
  EXPECT_FALSE(url_origin("http:///path"));
  EXPECT_FALSE(url_origin("http://h:99999/"));
  EXPECT_FALSE(url_origin("http://h:8x/"));
}

TEST(AddQuery, JoinsAnExistingQueryAndEncodesNamesAndValues) {
  EXPECT_EQ(add_query("https://h/u", {{"page", "2"}, {"per_page", "10"}}), "https://h/u?page=2&per_page=10");
  EXPECT_EQ(add_query("https://h/u?active=true", {{"cursor", "a/b=+ c&d"}}),
            "https://h/u?active=true&cursor=a%2Fb%3D%2B%20c%26d");
  EXPECT_EQ(add_query("https://h/u?", {{"page[number]", "1"}}), "https://h/u?page%5Bnumber%5D=1");
  EXPECT_EQ(add_query("https://h/u?a=1&", {{"b", "2"}}), "https://h/u?a=1&b=2");
  EXPECT_EQ(add_query("https://h/u#frag", {{"b", "2"}}), "https://h/u?b=2");
}

TEST(ParseLinkHeader, ReadsSeveralLinksWithQuotedAndPlainRels) {
  auto links = parse_link_header(
      R"(<https://h/u?page=1>; rel="first"; title="One, two; three", <https://h/u?page=3>; REL=next,)"
      R"( <https://h/u?page=9>;rel="last prev")");
  ASSERT_EQ(links.size(), 3u);
  EXPECT_EQ(links[0].target, "https://h/u?page=1");
  EXPECT_THAT(links[0].rels, ElementsAre("first"));
  EXPECT_EQ(links[1].target, "https://h/u?page=3");
  EXPECT_THAT(links[1].rels, ElementsAre("next"));
  EXPECT_THAT(links[2].rels, ElementsAre("last", "prev"));
}

TEST(ParseLinkHeader, KeepsCommasInsideTargetsAndCountsOnlyTheFirstRel) {
  auto links = parse_link_header(R"(<https://h/u?ids=1,2>; rel="self"; rel="next", <next?x=1>; rel="NEXT")");
  ASSERT_EQ(links.size(), 2u);
  EXPECT_EQ(links[0].target, "https://h/u?ids=1,2");
  EXPECT_THAT(links[0].rels, ElementsAre("self"));
  EXPECT_EQ(links[1].target, "next?x=1");
  EXPECT_THAT(links[1].rels, ElementsAre("next"));
}

TEST(ParseLinkHeader, SkipsMalformedLinkValuesAndKeepsTheRest) {
  auto links = parse_link_header(R"(garbage; rel="next", <a> junk; rel="next", <b>; rel="next")");
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].target, "b");
  EXPECT_TRUE(parse_link_header("").empty());
  EXPECT_TRUE(parse_link_header("<unterminated; rel=next").empty());
}

TEST(NextLink, LooksThroughEveryLinkHeader) {
  std::vector<http::Header> headers{{"content-type", "application/json"},
                                    {"link", R"(<https://h/u?page=1>; rel="first")"},
                                    {"link", R"(<https://h/u?page=1>; rel="prev", </u?page=3>; rel="next")"}};
  EXPECT_EQ(next_link(headers), "/u?page=3");
  headers.pop_back();
  EXPECT_FALSE(next_link(headers));
}

}  // namespace
}  // namespace dirsync::sources::http_json
