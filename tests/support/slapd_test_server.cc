#include "tests/support/slapd_test_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/https_test_server.h"

extern char** environ;

namespace dirsync::testing {
namespace {

constexpr const char* kSlapd = "/usr/sbin/slapd";
constexpr const char* kSlapadd = "/usr/sbin/slapadd";
constexpr int kStartAttempts = 5;
constexpr auto kStartDeadline = std::chrono::seconds(10);

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("slapd test server: cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Exit status of a std::system() command, or -1 when it did not exit normally.
int exit_status(int rc) { return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1; }

// A port nobody listens on right now. slapd may still lose a race for it, which
// start() detects (slapd exits) and answers with a new port.
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("slapd test server: socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("slapd test server: cannot probe a free port");
  return ntohs(addr.sin_port);
}

bool accepts_connections(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// RFC 2849 SAFE-STRING: printable ASCII that does not start with space, ':' or '<'.
bool ldif_safe(const std::string& v) {
  if (v.empty()) return true;
  if (v.front() == ' ' || v.front() == ':' || v.front() == '<' || v.back() == ' ') return false;
  for (unsigned char c : v) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// The AD-like attributes, under OpenLDAP's experimental arc (1.3.6.1.4.1.4203.666).
constexpr const char* kTestSchema =
    "attributetype ( 1.3.6.1.4.1.4203.666.11.90.1.1 NAME 'userAccountControl'\n"
    "  DESC 'AD account flags (0x2: disabled)'\n"
    "  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )\n"
    "attributetype ( 1.3.6.1.4.1.4203.666.11.90.1.2 NAME 'objectGUID'\n"
    "  DESC 'AD object GUID: 16 bytes'\n"
    "  EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )\n"
    "objectclass ( 1.3.6.1.4.1.4203.666.11.90.2.1 NAME 'dirsyncAdUser'\n"
    "  DESC 'AD-like attributes for dirsync tests' AUXILIARY\n"
    "  MAY ( userAccountControl $ objectGUID ) )\n";

}  // namespace

SlapdServer::SlapdServer(SlapdOptions options) : options_(std::move(options)) {}

SlapdServer::~SlapdServer() { stop(); }

void SlapdServer::write_config() {
  std::ostringstream conf;
  for (const char* schema : {"core", "cosine", "inetorgperson", "nis"}) {
    conf << "include /etc/ldap/schema/" << schema << ".schema\n";
  }
  conf << "include " << dir_ << "/dirsync-test.schema\n"
       << "pidfile " << dir_ << "/slapd.pid\n"
       << "argsfile " << dir_ << "/slapd.args\n"
       << "modulepath /usr/lib/ldap\n"
       << "moduleload back_mdb\n";
  if (!options_.allow_anonymous) conf << "disallow bind_anon\n";
  if (options_.tls) {
    conf << "TLSCACertificateFile " << pki_->ca_cert() << "\n"
         << "TLSCertificateFile " << pki_->server_cert() << "\n"
         << "TLSCertificateKeyFile " << pki_->server_key() << "\n";
  }
  const std::string prtotal =
      options_.paged_total_limit ? std::to_string(*options_.paged_total_limit) : std::string("unlimited");
  conf << "database mdb\n"
       << "maxsize 268435456\n"
       << "dbnosync\n"
       << "suffix \"" << kSuffix << "\"\n"
       << "rootdn \"" << kAdminDn << "\"\n"
       << "rootpw " << kAdminPassword << "\n"
       << "directory " << dir_ << "/db\n"
       << "index objectClass,uid eq\n"
       << "sizelimit size.soft=" << options_.size_limit << " size.hard=" << options_.size_limit
       << " size.prtotal=" << prtotal << "\n"
       << "access to attrs=userPassword by anonymous auth by * none\n"
       << "access to * by * read\n";
  write_file(dir_ + "/dirsync-test.schema", kTestSchema);
  write_file(dir_ + "/slapd.conf", conf.str());
}

void SlapdServer::start() {
  if (running()) return;
  if (dir_.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dirsync-slapd-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("slapd test server: mkdtemp failed");
    dir_ = tmpl;
    if (options_.tls) pki_ = std::make_unique<TestPki>("dirsync slapd test CA");
    std::filesystem::create_directory(dir_ + "/db");
    write_config();
    write_file(dir_ + "/data.ldif", options_.ldif);
    const std::string command = std::string(kSlapadd) + " -q -f " + shell_quote(dir_ + "/slapd.conf") + " -l " +
                                shell_quote(dir_ + "/data.ldif") + " >" + shell_quote(dir_ + "/slapadd.log") + " 2>&1";
    if (exit_status(std::system(command.c_str())) != 0) {
      throw std::runtime_error("slapd test server: slapadd failed: " + read_file(dir_ + "/slapadd.log"));
    }
  }
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    if (try_start()) return;
  }
  throw std::runtime_error("slapd test server: slapd did not start: " + read_file(dir_ + "/slapd.log"));
}

bool SlapdServer::try_start() {
  port_ = free_port();
  std::string urls = "ldap://127.0.0.1:" + std::to_string(port_) + "/";
  if (options_.tls) {
    do {
      ldaps_port_ = free_port();
    } while (ldaps_port_ == port_);
    urls += " ldaps://127.0.0.1:" + std::to_string(ldaps_port_) + "/";
  }
  const std::string conf = dir_ + "/slapd.conf";
  const std::string log = dir_ + "/slapd.log";
  std::vector<std::string> args = {kSlapd, "-d", "0", "-f", conf, "-h", urls};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, kSlapd, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("slapd test server: cannot run " + std::string(kSlapd));
  pid_ = pid;

  // Poll until it accepts connections or exits (a port it could not bind).
  const auto deadline = std::chrono::steady_clock::now() + kStartDeadline;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    if (accepts_connections(port_) && (!options_.tls || accepts_connections(ldaps_port_))) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill();
  throw std::runtime_error("slapd test server: slapd did not answer within 10 s: " + read_file(log));
}

void SlapdServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void SlapdServer::freeze() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGSTOP);
  // kill() returns before every thread of slapd has stopped: one running on
  // another CPU could still answer a request. waitpid(WUNTRACED) returns once
  // the whole process is stopped.
  int status = 0;
  while (::waitpid(pid_, &status, WUNTRACED) < 0 && errno == EINTR) {
  }
}

void SlapdServer::thaw() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

void SlapdServer::stop() {
  kill();
  pki_.reset();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    dir_.clear();
  }
}

std::string SlapdServer::ldap_url() const { return "ldap://127.0.0.1:" + std::to_string(port_); }
std::string SlapdServer::ldaps_url() const { return "ldaps://127.0.0.1:" + std::to_string(ldaps_port_); }
std::string SlapdServer::ca_file() const { return pki_ ? pki_->ca_cert() : std::string(); }

int SlapdServer::ldapsearch(const std::vector<std::string>& args, std::string* output) const {
  const std::string out_file = dir_ + "/ldapsearch.out";
  std::string command = "ldapsearch -H " + shell_quote(ldap_url());
  for (const auto& a : args) command += " " + shell_quote(a);
  command += " >" + shell_quote(out_file) + " 2>&1";
  const int status = exit_status(std::system(command.c_str()));
  if (output != nullptr) *output = read_file(out_file);
  return status;
}

// --- LDIF --------------------------------------------------------------------

std::string ldif_line(const std::string& name, const std::string& value) {
  return ldif_safe(value) ? name + ": " + value + "\n" : name + ":: " + base64(value) + "\n";
}

std::string base_ldif() {
  return std::string("dn: ") + SlapdServer::kSuffix + "\n" +
         "objectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n" +
         "dn: " + SlapdServer::kPeopleDn + "\nobjectClass: organizationalUnit\nou: people\n\n" +
         "dn: " + SlapdServer::kReaderDn + "\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n" +
         "cn: reader\n" + ldif_line("userPassword", SlapdServer::kReaderPassword) + "\n";
}

TestUser test_user(int index) {
  struct Name {
    const char* given;
    const char* family;
  };
  static const Name kNames[] = {
      {"Zoë", "Ångström"}, {"Łukasz", "Żółć"}, {"健", "渡辺"},
      {"Ada", "Lovelace"}, {"Émile", "Zola"},  {"Søren", "Kierkegaard"},
  };
  const Name& name = kNames[static_cast<std::size_t>(index) % std::size(kNames)];
  char uid[16];
  std::snprintf(uid, sizeof uid, "user%05d", index);
  TestUser u;
  u.uid = uid;
  u.dn = "uid=" + u.uid + "," + SlapdServer::kPeopleDn;
  u.cn = std::string(name.given) + " " + name.family + " " + std::to_string(index);
  u.sn = name.family;
  u.mail.push_back(u.uid + "@example.com");
  if (index % 3 == 0) u.mail.push_back(u.uid + "@mail.example.org");
  return u;
}

std::string user_ldif(const TestUser& user) {
  std::string out = "dn: " + user.dn + "\nobjectClass: inetOrgPerson\n" + ldif_line("uid", user.uid) +
                    ldif_line("cn", user.cn) + ldif_line("sn", user.sn);
  for (const auto& m : user.mail) out += ldif_line("mail", m);
  return out + "\n";
}

std::string users_ldif(int count) {
  std::string out = base_ldif();
  out.reserve(out.size() + static_cast<std::size_t>(count) * 200);
  for (int i = 1; i <= count; ++i) out += user_ldif(test_user(i));
  return out;
}

}  // namespace dirsync::testing
