// The slapd test server itself: what it loads, how it starts and stops.
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/slapd_test_server.h"

namespace dirsync::testing {
namespace {

using ::testing::HasSubstr;

TEST(SlapdLdif, NonAsciiAndUnsafeValuesAreBase64) {
  EXPECT_EQ(ldif_line("cn", "Ada Lovelace"), "cn: Ada Lovelace\n");
  EXPECT_EQ(ldif_line("cn", "Zoë"), "cn:: Wm/Dqw==\n");
  EXPECT_EQ(ldif_line("description", ":colon first"), "description:: OmNvbG9uIGZpcnN0\n");
  EXPECT_EQ(ldif_line("description", " space first"), "description:: IHNwYWNlIGZpcnN0\n");
}

TEST(SlapdLdif, GeneratedUsersHaveNonAsciiNamesAndSomeTwoMails) {
  EXPECT_EQ(test_user(1).uid, "user00001");
  EXPECT_EQ(test_user(1).dn, "uid=user00001,ou=people,dc=example,dc=com");
  EXPECT_EQ(test_user(1).cn, "Łukasz Żółć 1");
  EXPECT_EQ(test_user(1).mail.size(), 1u);
  EXPECT_EQ(test_user(3).mail.size(), 2u);
  EXPECT_THAT(user_ldif(test_user(2)), HasSubstr("cn:: "));
}

TEST(SlapdServer, ServesTheLoadedEntriesUntilKilled) {
  SlapdOptions options;
  options.ldif = users_ldif(3);
  SlapdServer server(options);
  server.start();
  ASSERT_TRUE(server.running());
  const std::string dir = server.dir();

  std::string out;
  EXPECT_EQ(server.ldapsearch({"-x", "-LLL", "-D", SlapdServer::kAdminDn, "-w", SlapdServer::kAdminPassword, "-b",
                               SlapdServer::kPeopleDn, "(uid=user00003)", "mail", "entryUUID"},
                              &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("mail: user00003@example.com\nmail: user00003@mail.example.org\n"));
  EXPECT_THAT(out, HasSubstr("entryUUID: "));  // assigned by slapadd

  server.kill();
  EXPECT_FALSE(server.running());
  EXPECT_NE(server.ldapsearch({"-x", "-b", SlapdServer::kSuffix}, &out), 0);
  EXPECT_TRUE(std::filesystem::exists(dir));
  server.stop();
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(SlapdServer, SizeLimitAppliesToTheReaderButNotTheAdmin) {
  SlapdOptions options;
  options.ldif = users_ldif(12);
  options.size_limit = 5;
  SlapdServer server(options);
  server.start();
  std::string out;
  EXPECT_EQ(server.ldapsearch({"-x", "-D", SlapdServer::kReaderDn, "-w", SlapdServer::kReaderPassword, "-b",
                               SlapdServer::kPeopleDn, "(uid=*)", "1.1"},
                              &out),
            4)  // LDAP_SIZELIMIT_EXCEEDED
      << out;
  EXPECT_EQ(server.ldapsearch({"-x", "-D", SlapdServer::kAdminDn, "-w", SlapdServer::kAdminPassword, "-b",
                               SlapdServer::kPeopleDn, "(uid=*)", "1.1"},
                              &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("# numEntries: 12"));
}

}  // namespace
}  // namespace dirsync::testing
