// The LDAP source against a real slapd (tests/support/slapd_test_server.h).
// One 10,000-entry directory with TLS is shared by the LdapSource suite; tests
// that need a server of another shape (no TLS, no anonymous bind, a total
// limit on paged searches, one to kill) start a small one of their own.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/sources/ldap/ldap_source.h"
#include "tests/support/https_test_server.h"
#include "tests/support/slapd_test_server.h"
#include "tests/support/source_pull.h"

namespace dirsync::sources {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using testing::SlapdOptions;
using testing::SlapdServer;

constexpr int kUsers = 10'000;
constexpr int kSizeLimit = 1000;  // below kUsers: only paging gets the whole directory
constexpr const char* kAdDn = "ou=ad,dc=example,dc=com";
constexpr const char* kOddDn = "ou=odd,dc=example,dc=com";
const std::string kGuid1("\x01\x23\x45\x67\x89\xab\xcd\xef\x00\x11\x22\x33\x44\x55\x66\x77", 16);
const std::string kGuid2("\xfe\xdc\xba\x98\x76\x54\x32\x10\xff\xee\xdd\xcc\xbb\xaa\x99\x88", 16);

// Entries beside the 10,000 users: AD-like accounts, and entries whose `uid`
// cannot be a key (missing, twice the same, two values).
std::string extra_ldif() {
  using testing::ldif_line;
  std::string out = std::string("dn: ") + kAdDn + "\nobjectClass: organizationalUnit\nou: ad\n\n";
  auto ad_user = [&](const std::string& uid, int uac, const std::string& guid, const std::string& photo) {
    out += "dn: uid=" + uid + "," + kAdDn + "\nobjectClass: inetOrgPerson\nobjectClass: dirsyncAdUser\n" +
           ldif_line("uid", uid) + ldif_line("cn", uid) + ldif_line("sn", uid) +
           ldif_line("userAccountControl", std::to_string(uac)) + ldif_line("objectGUID", guid);
    if (!photo.empty()) out += ldif_line("jpegPhoto", photo);
    out += "\n";
  };
  ad_user("enabled", 512, kGuid1, std::string("\xff\xd8\xff\xe0", 4));
  ad_user("disabled", 514, kGuid2, "");

  out += std::string("dn: ") + kOddDn + "\nobjectClass: organizationalUnit\nou: odd\n\n";
  auto odd = [&](const std::string& cn, const std::vector<std::string>& uids) {
    out += "dn: cn=" + cn + "," + kOddDn + "\nobjectClass: inetOrgPerson\n" + ldif_line("cn", cn) + ldif_line("sn", cn);
    for (const auto& u : uids) out += ldif_line("uid", u);
    out += "\n";
  };
  odd("Alpha", {"alpha"});
  odd("Dup A", {"dup"});
  odd("Dup B", {"dup"});
  odd("No Uid", {});
  odd("Two Uids", {"two1", "two2"});
  return out;
}

// A whole pull of a fresh source with these settings (tests/support/source_pull.h):
// a pull that does not end fails the test.
testing::Pulled pull_all(const LdapSourceSettings& s) {
  auto source = make_ldap_source(s);
  return testing::pull_all(*source);
}

// The Error that ended the pull; a test failure (and an empty Error) when it completed.
core::Error pull_error(const LdapSourceSettings& s) {
  auto result = pull_all(s);
  if (!result.error) {
    ADD_FAILURE() << "the pull completed";
    return {core::ErrorKind::kInvalid, ""};
  }
  return *result.error;
}

std::vector<std::string> values(const core::Record& r, const std::string& name) {
  const core::Attribute* a = r.find(name);
  return a != nullptr ? a->values : std::vector<std::string>{"<absent>"};
}

// A bound TCP socket that does not listen: connecting to its port is refused
// at once, and no one else can take the port while it is held.
class ClosedPort {
 public:
  ClosedPort() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot bind a loopback port";
    }
    port_ = ntohs(addr.sin_port);
  }
  ~ClosedPort() { ::close(fd_); }
  // listen() without ever accepting: connections complete, requests get no answer.
  void listen_silently() { ASSERT_EQ(::listen(fd_, 8), 0); }
  std::string url() const { return "ldap://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_;
  std::uint16_t port_ = 0;
};

LdapSourceSettings settings_for(const SlapdServer& server) {
  LdapSourceSettings s;
  s.url = server.ldap_url();
  s.start_tls = !server.ca_file().empty();
  s.ca_file = server.ca_file();
  s.bind_dn = SlapdServer::kReaderDn;
  s.bind_password = core::Secret(SlapdServer::kReaderPassword, "${env:LDAP_PASSWORD}");
  s.base_dn = SlapdServer::kPeopleDn;
  s.filter = "(objectClass=inetOrgPerson)";
  s.page_size = 500;
  s.timeout = std::chrono::seconds(20);
  s.connect_timeout = std::chrono::seconds(5);
  return s;
}

// Starts a small server of its own shape; nullptr (and a failure) when it cannot.
std::unique_ptr<SlapdServer> small_server(SlapdOptions options) {
  if (options.ldif.empty()) options.ldif = testing::users_ldif(50);
  auto server = std::make_unique<SlapdServer>(std::move(options));
  try {
    server->start();
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
    return nullptr;
  }
  return server;
}

class LdapSource : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SlapdOptions options;
    options.ldif = testing::users_ldif(kUsers) + extra_ldif();
    options.size_limit = kSizeLimit;
    options.tls = true;
    server_ = std::make_unique<SlapdServer>(std::move(options));
    try {
      server_->start();
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override { ASSERT_EQ(setup_error_, ""); }

  static LdapSourceSettings settings() { return settings_for(*server_); }

  // Pulls one user of ou=people by uid.
  static core::Record one_user(const std::string& uid) {
    auto s = settings();
    s.filter = "(uid=" + uid + ")";
    auto result = pull_all(s);
    if (result.error) ADD_FAILURE() << result.error->message;
    if (result.records.size() != 1) {
      ADD_FAILURE() << "expected one record for " << uid << ", got " << result.records.size();
      return {};
    }
    return result.records.front();
  }

  static std::unique_ptr<SlapdServer> server_;
  static std::string setup_error_;
};

std::unique_ptr<SlapdServer> LdapSource::server_;
std::string LdapSource::setup_error_;

TEST_F(LdapSource, ServerSizeLimitStopsASearchWithoutPaging) {
  std::string output;
  const int rc = server_->ldapsearch({"-x", "-D", SlapdServer::kReaderDn, "-w", SlapdServer::kReaderPassword, "-b",
                                      SlapdServer::kPeopleDn, "(objectClass=inetOrgPerson)", "1.1"},
                                     &output);
  EXPECT_EQ(rc, 4) << output;  // LDAP_SIZELIMIT_EXCEEDED
  EXPECT_THAT(output, HasSubstr("Size limit exceeded"));
  EXPECT_THAT(output, HasSubstr("# numEntries: " + std::to_string(kSizeLimit)));
}

TEST_F(LdapSource, PullsEveryEntryAcrossPagesPastTheServerSizeLimit) {
  auto result = pull_all(settings());
  ASSERT_FALSE(result.error) << result.error->message;
  EXPECT_EQ(result.pages, static_cast<std::size_t>(kUsers / 500));
  EXPECT_THAT(result.issues, IsEmpty());
  ASSERT_EQ(result.records.size(), static_cast<std::size_t>(kUsers));
  std::set<std::string> keys;
  std::set<std::string> uids;
  for (const auto& r : result.records) {
    keys.insert(r.key);
    uids.insert(values(r, "uid").at(0));
  }
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kUsers));  // entryUUIDs: one per entry
  EXPECT_EQ(uids.size(), static_cast<std::size_t>(kUsers));
  EXPECT_TRUE(uids.contains("user00001"));
  EXPECT_TRUE(uids.contains("user10000"));
}

TEST_F(LdapSource, PageSizeAboveTheServerSizeLimitStillPullsWhole) {
  auto s = settings();
  s.page_size = 4 * kSizeLimit;
  auto result = pull_all(s);
  ASSERT_FALSE(result.error) << result.error->message;
  EXPECT_EQ(result.records.size(), static_cast<std::size_t>(kUsers));
  EXPECT_GE(result.pages, static_cast<std::size_t>(kUsers / s.page_size));
}

TEST_F(LdapSource, NonAsciiValuesComeThroughAsExactUtf8) {
  for (int i : {1, 2, 6}) {
    const auto expected = testing::test_user(i);
    const auto r = one_user(expected.uid);
    EXPECT_THAT(values(r, "cn"), ElementsAre(expected.cn));
    EXPECT_THAT(values(r, "sn"), ElementsAre(expected.sn));
  }
  EXPECT_THAT(values(one_user("user00001"), "cn"), ElementsAre("Łukasz Żółć 1"));
  EXPECT_THAT(values(one_user("user00002"), "sn"), ElementsAre("渡辺"));
  EXPECT_THAT(values(one_user("user00006"), "cn"), ElementsAre("Zoë Ångström 6"));
}

TEST_F(LdapSource, MultiValuedAttributesStayMultiValued) {
  EXPECT_THAT(values(one_user("user00003"), "mail"),
              ElementsAre("user00003@example.com", "user00003@mail.example.org"));
  EXPECT_THAT(values(one_user("user00004"), "mail"), ElementsAre("user00004@example.com"));
}

TEST_F(LdapSource, EntryDnIsAnAttributeAndTheOrigin) {
  const auto r = one_user("user00007");
  EXPECT_THAT(values(r, "dn"), ElementsAre("uid=user00007,ou=people,dc=example,dc=com"));
  EXPECT_EQ(r.origin, "uid=user00007,ou=people,dc=example,dc=com");
}

TEST_F(LdapSource, KeyIsTheEntryUuidByDefaultAndIsFetchedWhenNotListed) {
  auto s = settings();
  s.filter = "(|(uid=user00001)(uid=user00002))";
  s.attributes = {"cn"};
  auto result = pull_all(s);
  ASSERT_FALSE(result.error) << result.error->message;
  ASSERT_EQ(result.records.size(), 2u);
  for (const auto& r : result.records) {
    EXPECT_THAT(r.key, MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"));
    EXPECT_THAT(values(r, "entryUUID"), ElementsAre(r.key));
    EXPECT_EQ(r.find("mail"), nullptr);  // only what was asked for (and the key, and dn)
    EXPECT_NE(r.find("cn"), nullptr);
  }
  EXPECT_NE(result.records[0].key, result.records[1].key);
}

TEST_F(LdapSource, KeyCanBeTheUid) {
  auto s = settings();
  s.key = "uid";
  s.filter = "(uid=user00042)";
  auto result = pull_all(s);
  ASSERT_FALSE(result.error) << result.error->message;
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].key, "user00042");
}

TEST_F(LdapSource, KeyCanBeTheDn) {
  auto s = settings();
  s.key = "dn";
  s.filter = "(uid=user00042)";
  s.attributes = {"cn"};
  auto result = pull_all(s);
  ASSERT_FALSE(result.error) << result.error->message;
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].key, "uid=user00042,ou=people,dc=example,dc=com");
}

TEST_F(LdapSource, AdAccountsHaveHexGuidsAndAccountDisabled) {
  auto s = settings();
  s.base_dn = kAdDn;
  s.key = "objectGUID";
  auto result = pull_all(s);
  ASSERT_FALSE(result.error) << result.error->message;
  EXPECT_THAT(result.issues, IsEmpty());
  std::map<std::string, core::Record> by_uid;
  for (auto& r : result.records) by_uid[values(r, "uid").at(0)] = r;
  ASSERT_EQ(by_uid.size(), 2u);
  EXPECT_EQ(by_uid["enabled"].key, "0123456789abcdef0011223344556677");
  EXPECT_THAT(values(by_uid["enabled"], "objectGUID"), ElementsAre("0123456789abcdef0011223344556677"));
  EXPECT_THAT(values(by_uid["enabled"], "userAccountControl"), ElementsAre("512"));
  EXPECT_THAT(values(by_uid["enabled"], "accountDisabled"), ElementsAre("false"));
  EXPECT_EQ(by_uid["disabled"].key, "fedcba9876543210ffeeddccbbaa9988");
  EXPECT_THAT(values(by_uid["disabled"], "accountDisabled"), ElementsAre("true"));
  // Bytes that are not UTF-8 in an attribute not declared binary are hex too.
  EXPECT_THAT(values(by_uid["enabled"], "jpegPhoto"), ElementsAre("ffd8ffe0"));
  // Entries without userAccountControl get no accountDisabled.
  EXPECT_EQ(one_user("user00001").find("accountDisabled"), nullptr);
}

TEST_F(LdapSource, EntriesWhoseKeyCannotBeReadAreIssues) {
  auto s = settings();
  s.base_dn = kOddDn;
  s.key = "uid";
  auto result = pull_all(s);
  ASSERT_FALSE(result.error) << result.error->message;
  std::vector<std::string> keys;
  for (const auto& r : result.records) keys.push_back(r.key);
  EXPECT_THAT(keys, ::testing::UnorderedElementsAre("alpha", "dup"));

  std::map<std::string, core::RecordIssue> by_origin;
  for (const auto& i : result.issues) by_origin[i.origin] = i;
  ASSERT_EQ(by_origin.size(), 3u);
  const auto& missing = by_origin["cn=No Uid,ou=odd,dc=example,dc=com"];
  EXPECT_EQ(missing.key, "");  // the pull is incomplete: nothing may be detached
  EXPECT_EQ(missing.message, "entry has no uid (the key attribute)");
  const auto& two = by_origin["cn=Two Uids,ou=odd,dc=example,dc=com"];
  EXPECT_EQ(two.key, "");
  EXPECT_EQ(two.message, "key attribute uid has 2 values; a key needs exactly one");
  // The second "dup" is an issue that carries (and so protects) its key.
  const std::string first = result.records[0].key == "dup" ? result.records[0].origin : result.records[1].origin;
  const std::string second = first == "cn=Dup A,ou=odd,dc=example,dc=com" ? "cn=Dup B,ou=odd,dc=example,dc=com"
                                                                          : "cn=Dup A,ou=odd,dc=example,dc=com";
  ASSERT_TRUE(by_origin.contains(second));
  EXPECT_EQ(by_origin[second].key, "dup");
  EXPECT_THAT(by_origin[second].message,
              MatchesRegex("duplicate key 'dup' \\(also entry #[0-9]+ of this pull\\)"));
}

TEST_F(LdapSource, BadPasswordIsAnAuthErrorThatNamesTheBindButNotThePassword) {
  auto s = settings();
  s.bind_password = core::Secret("not-the-Pa55word", "${env:LDAP_PASSWORD}");
  auto error = pull_error(s);
  EXPECT_EQ(error.kind, core::ErrorKind::kAuth);
  EXPECT_EQ(error.message,
            "ldap " + server_->ldap_url() + ": bind as cn=reader,dc=example,dc=com failed: Invalid credentials");
  EXPECT_THAT(error.message, Not(HasSubstr("not-the-Pa55word")));
  EXPECT_THAT(make_ldap_source(s)->describe(), Not(HasSubstr("not-the-Pa55word")));
}

TEST_F(LdapSource, AnonymousBindWorksWhenTheServerAllowsIt) {
  auto s = settings();
  s.bind_dn.clear();
  s.bind_password = {};
  s.filter = "(uid=user00005)";
  auto result = pull_all(s);
  ASSERT_FALSE(result.error) << result.error->message;
  EXPECT_EQ(result.records.size(), 1u);
}

TEST_F(LdapSource, StartTlsWithTheTestCaWorks) {
  auto s = settings();
  ASSERT_TRUE(s.start_tls);
  s.filter = "(uid=user00009)";
  auto result = pull_all(s);
  ASSERT_FALSE(result.error) << result.error->message;
  EXPECT_EQ(result.records.size(), 1u);
}

TEST_F(LdapSource, StartTlsWithoutTheCaFailsTheCertificate) {
  auto s = settings();
  s.ca_file.clear();  // the system store did not sign the test server's certificate
  auto error = pull_error(s);
  EXPECT_EQ(error.kind, core::ErrorKind::kSource);
  EXPECT_EQ(error.message, "ldap " + server_->ldap_url() +
                               ": StartTLS (TLS handshake) failed: Connect error; is the server's certificate "
                               "signed by a CA in the system CA store and issued for the host in the URL, "
                               "and does the port speak TLS?");
}

TEST_F(LdapSource, StartTlsWithAnotherCaFailsTheCertificate) {
  testing::TestPki other("another CA");
  auto s = settings();
  s.ca_file = other.ca_cert();
  auto error = pull_error(s);
  EXPECT_THAT(error.message, HasSubstr(": StartTLS (TLS handshake) failed: Connect error; is the server's "
                                       "certificate signed by a CA in ca_file " +
                                       other.ca_cert()));
}

TEST_F(LdapSource, LdapsWithTheTestCaWorks) {
  auto s = settings();
  s.url = server_->ldaps_url();
  s.start_tls = false;
  s.filter = "(uid=user00010)";
  auto result = pull_all(s);
  ASSERT_FALSE(result.error) << result.error->message;
  EXPECT_EQ(result.records.size(), 1u);
}

TEST_F(LdapSource, LdapsWithoutTheCaFailsWithATlsError) {
  auto s = settings();
  s.url = server_->ldaps_url();
  s.ca_file.clear();
  auto error = pull_error(s);
  EXPECT_EQ(error.kind, core::ErrorKind::kSource);
  EXPECT_EQ(error.message, "ldap " + server_->ldaps_url() +
                               ": TLS handshake failed: Can't contact LDAP server; is the server's certificate "
                               "signed by a CA in the system CA store and issued for the host in the URL, "
                               "and does the port speak TLS?");
}

TEST_F(LdapSource, LdapsToAPortWithoutTlsIsATlsError) {
  auto s = settings();
  s.url = "ldaps://" + server_->ldap_url().substr(7);  // the plain LDAP listener
  auto error = pull_error(s);
  EXPECT_THAT(error.message, HasSubstr("ldap " + s.url + ": TLS handshake failed: "));
}

// --- servers of other shapes ---------------------------------------------------

TEST(LdapSourceErrors, UnreachableServerIsAConnectError) {
  ClosedPort port;
  LdapSourceSettings s;
  s.url = port.url();
  s.start_tls = false;
  s.base_dn = "dc=example,dc=com";
  auto error = pull_error(s);
  EXPECT_EQ(error.kind, core::ErrorKind::kSource);
  EXPECT_EQ(error.message, "ldap " + port.url() + ": connect failed: Can't contact LDAP server");

  // With TLS on, a refused connection is still a connect error, not a TLS one.
  s.url = "ldaps://" + port.url().substr(7);
  error = pull_error(s);
  EXPECT_EQ(error.message, "ldap " + s.url + ": connect failed: Can't contact LDAP server");
  s.url = port.url();
  s.start_tls = true;
  error = pull_error(s);
  EXPECT_EQ(error.message, "ldap " + s.url + ": connect failed: Can't contact LDAP server");
}

TEST(LdapSourceErrors, BindDnWithAnEmptyPasswordIsRefusedBeforeConnecting) {
  ClosedPort port;  // nothing listens: the refusal must come before any connection
  LdapSourceSettings s;
  s.url = port.url();
  s.base_dn = "dc=example,dc=com";
  s.bind_dn = "cn=reader,dc=example,dc=com";
  const auto error = pull_error(s);
  EXPECT_EQ(error.kind, core::ErrorKind::kAuth);
  EXPECT_EQ(error.message, "ldap " + port.url() +
                               ": bind as cn=reader,dc=example,dc=com refused: the password is empty (an "
                               "unauthenticated bind)");
}

TEST(LdapSourceErrors, ServerThatNeverAnswersTimesOut) {
  ClosedPort port;
  port.listen_silently();
  LdapSourceSettings s;
  s.url = port.url();
  s.start_tls = false;
  s.base_dn = "dc=example,dc=com";
  s.timeout = std::chrono::milliseconds(200);
  auto error = pull_error(s);
  EXPECT_EQ(error.message, "ldap " + port.url() + ": bind as anonymous failed: Timed out");
}

TEST(LdapSourceErrors, TlsWithAServerThatNeverAnswersTimesOut) {
  ClosedPort port;
  port.listen_silently();
  LdapSourceSettings s;
  s.url = "ldaps://" + port.url().substr(7);
  s.base_dn = "dc=example,dc=com";
  s.timeout = std::chrono::milliseconds(200);
  s.connect_timeout = std::chrono::milliseconds(200);
  auto error = pull_error(s);
  EXPECT_EQ(error.message, "ldap " + s.url + ": TLS handshake failed: Timed out (no answer within 200 ms)");

  s.url = port.url();
  s.start_tls = true;
  error = pull_error(s);
  EXPECT_EQ(error.message, "ldap " + s.url + ": StartTLS failed: Timed out");
}

TEST(LdapSourceErrors, StartTlsAgainstAServerWithoutTlsFailsWithoutPlaintextFallBack) {
  auto server = small_server({});
  ASSERT_TRUE(server);
  auto s = settings_for(*server);
  s.start_tls = true;
  auto result = pull_all(s);
  ASSERT_TRUE(result.error);
  EXPECT_EQ(result.error->kind, core::ErrorKind::kSource);
  EXPECT_EQ(result.error->message,
            "ldap " + server->ldap_url() + ": StartTLS failed: Protocol error (unsupported extended operation)");
  EXPECT_THAT(result.records, IsEmpty());
  // Without StartTLS the same server answers: it was TLS that was missing.
  s.start_tls = false;
  EXPECT_FALSE(pull_all(s).error);
}

TEST(LdapSourceErrors, RefusedAnonymousBindCarriesTheServerDiagnostic) {
  SlapdOptions options;
  options.allow_anonymous = false;
  auto server = small_server(options);
  ASSERT_TRUE(server);
  auto s = settings_for(*server);
  s.bind_dn.clear();
  s.bind_password = {};
  auto error = pull_error(s);
  EXPECT_EQ(error.message, "ldap " + server->ldap_url() +
                               ": bind as anonymous failed: Inappropriate authentication "
                               "(anonymous bind disallowed)");
}

TEST(LdapSourceErrors, SizeLimitOnThePagedSearchIsNamed) {
  SlapdOptions options;
  options.paged_total_limit = 20;
  auto server = small_server(options);
  ASSERT_TRUE(server);
  auto s = settings_for(*server);
  s.page_size = 10;
  auto error = pull_error(s);
  EXPECT_EQ(error.kind, core::ErrorKind::kSource);
  EXPECT_EQ(error.message, "ldap " + server->ldap_url() +
                               ": search (page 3, after 20 entries) failed: Size limit exceeded; the server caps how "
                               "many entries cn=reader,dc=example,dc=com may read, even paged: raise that limit on "
                               "the server");
}

TEST(LdapSourceErrors, ServerKilledBetweenPagesFailsThePull) {
  auto server = small_server({});
  ASSERT_TRUE(server);
  auto s = settings_for(*server);
  s.page_size = 10;
  auto pull = make_ldap_source(s)->start();
  ASSERT_TRUE(pull.ok()) << pull.error().message;
  auto first = pull.value()->next();
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->records.size(), 10u);
  EXPECT_FALSE(first->last);

  server->kill();
  auto second = pull.value()->next();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().kind, core::ErrorKind::kSource);
  EXPECT_THAT(second.error().message, HasSubstr("ldap " + server->ldap_url() +
                                                ": search (page 2, after 10 entries; connection lost) failed: "));
}

TEST(LdapSourceErrors, SearchThatGetsNoAnswerTimesOut) {
  auto server = small_server({});
  ASSERT_TRUE(server);
  auto s = settings_for(*server);
  s.page_size = 10;
  // Generous: the bind and the first page must come through even on a loaded CI machine.
  s.timeout = std::chrono::milliseconds(2000);
  auto pull = make_ldap_source(s)->start();
  ASSERT_TRUE(pull.ok()) << pull.error().message;
  ASSERT_TRUE(pull.value()->next().ok());

  server->freeze();
  auto second = pull.value()->next();
  server->thaw();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().kind, core::ErrorKind::kSource);
  EXPECT_EQ(second.error().message,
            "ldap " + server->ldap_url() + ": search (page 2, after 10 entries) failed: Timed out");
}

}  // namespace
}  // namespace dirsync::sources
