#pragma once
// A real OpenLDAP slapd for tests (Debian's `slapd` package), in a fresh temp
// directory removed again by stop() and the destructor.
//
// The server uses an slapd.conf (-f) with back-mdb, the core, cosine,
// inetorgperson and nis schemas, and a small test schema with AD-like
// attributes: userAccountControl (INTEGER), objectGUID (OctetString) and the
// AUXILIARY class `dirsyncAdUser` that carries them. One database:
// dc=example,dc=com, with
//   kAdminDn / kAdminPassword    the rootdn (not subject to size limits)
//   kReaderDn / kReaderPassword  an ordinary entry that may read everything
//                                (size limits apply to it)
// The LDIF is loaded with `slapadd -q` before slapd starts (fast; slapadd
// assigns entryUUID and the other operational attributes). base_ldif() has the
// suffix, ou=people and the reader; add users and entries of your own after it.
//
// start() picks free loopback ports (a bind-to-0 probe; retried when slapd
// cannot bind one), runs `/usr/sbin/slapd -d 0 -f slapd.conf -h "ldap://… [ldaps://…]"`
// as the current user, and polls a TCP connect (bounded) until it answers.
// kill() ends slapd at once (SIGKILL) and keeps the directory, to lose a
// connection mid-pull; freeze() stops it (SIGSTOP) to make requests time out.
// Errors throw std::runtime_error with slapd's output.
//
// Not thread safe: one test thread drives a server.
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dirsync::testing {

class TestPki;

struct SlapdOptions {
  std::string ldif;       // loaded before start; usually base_ldif() + entries
  int size_limit = 1000;  // sizelimit size.soft = size.hard
  // size.prtotal: entries a whole paged search may return; nullopt: unlimited.
  std::optional<int> paged_total_limit;
  bool tls = false;             // StartTLS and an ldaps:// listener, with a test CA
  bool allow_anonymous = true;  // false: `disallow bind_anon`
};

class SlapdServer {
 public:
  static constexpr const char* kSuffix = "dc=example,dc=com";
  static constexpr const char* kPeopleDn = "ou=people,dc=example,dc=com";
  static constexpr const char* kAdminDn = "cn=admin,dc=example,dc=com";
  static constexpr const char* kAdminPassword = "admin-secret";
  static constexpr const char* kReaderDn = "cn=reader,dc=example,dc=com";
  static constexpr const char* kReaderPassword = "reader-pa55word";

  explicit SlapdServer(SlapdOptions options);
  ~SlapdServer();
  SlapdServer(const SlapdServer&) = delete;
  SlapdServer& operator=(const SlapdServer&) = delete;

  void start();   // config, slapadd, slapd, wait; after kill(): slapd again on the same data
  void kill();    // SIGKILL and reap; the directory stays until stop()
  void freeze();  // SIGSTOP: connections stay open but nothing is answered, until thaw()
  void thaw();    // SIGCONT
  void stop();    // kill() and remove the directory
  bool running() const { return pid_ > 0; }

  std::string ldap_url() const;   // "ldap://127.0.0.1:<port>"
  std::string ldaps_url() const;  // "ldaps://127.0.0.1:<port>"; tls only
  std::string ca_file() const;    // PEM of the CA that signed the server's certificate; tls only
  const std::string& dir() const { return dir_; }

  // Runs the `ldapsearch` CLI against ldap_url() with these arguments (each one
  // shell-quoted here); returns its exit status (the LDAP result code) and
  // fills `output` with stdout + stderr when given.
  int ldapsearch(const std::vector<std::string>& args, std::string* output = nullptr) const;

 private:
  void write_config();
  bool try_start();

  SlapdOptions options_;
  std::unique_ptr<TestPki> pki_;
  std::string dir_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::uint16_t ldaps_port_ = 0;
};

// --- LDIF --------------------------------------------------------------------

// One LDIF attribute line: `name: value`, or `name:: base64` for values LDIF
// cannot carry as they are (non-ASCII, control characters, leading space, `:` or `<`).
std::string ldif_line(const std::string& name, const std::string& value);

// The suffix, ou=people and the reader entry.
std::string base_ldif();

// A generated user under ou=people. Deterministic in `index` (from 1).
struct TestUser {
  std::string uid;  // "user00001"
  std::string dn;   // "uid=user00001,ou=people,dc=example,dc=com"
  std::string cn;   // UTF-8; non-ASCII for most users ("Zoë Ångström 1")
  std::string sn;
  std::vector<std::string> mail;  // two values for every third user
};
TestUser test_user(int index);

// LDIF of an inetOrgPerson entry for `user`.
std::string user_ldif(const TestUser& user);
// base_ldif() followed by test_user(1..count).
std::string users_ldif(int count);

}  // namespace dirsync::testing
