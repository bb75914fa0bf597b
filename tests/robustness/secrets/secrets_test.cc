// Issue 6, "Secrets": the real `dirsync` binary, at its most verbose log level
// (trace), is run with a distinctive value for every kind of secret it knows —
// target tokens and keys, the auth_sync_user password secret and the passwords
// derived from it, the LDAP bind password, SCIM's bearer token, HTTP JSON basic
// auth and a secret header — delivered through ${env:}, ${file:} and ${cred:}.
// It runs every command an operator has (check-config, sync, plan, plan --json,
// plan --explain, resync, status, status --json, and the daemon with its
// stderr, its journal records, its sd_notify status and its control-socket
// replies), through successes and every failure (401, 500, TLS, LDAP's wrong
// password, connection refused, configuration errors). Then every byte an
// operator or a log collector could see — each command's output, the audit
// log, every file in the state directory (LMDB's data.mdb and lock files
// included), the file targets' output — is searched for every secret in every
// form an encoder could give it (see secret_scanner.h).
//
// The values contain characters that URL, JSON and base64 encoders change, so
// that an encoded leak is found too. A finding names the artifact and the
// secret, never the value; failure messages print output only redacted.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "connectors/targets/auth_sync_user/auth_sync_user_target.h"
#include "core/secret.h"
#include "tests/daemon/daemon_process.h"
#include "tests/e2e/process.h"
#include "tests/robustness/secrets/secret_scanner.h"
#include "tests/support/auth_sync_user_test_server.h"
#include "tests/support/healvi_test_server.h"
#include "tests/support/hesh_test_server.h"
#include "tests/support/http_json_test_server.h"
#include "tests/support/https_test_server.h"
#include "tests/support/perscom_test_server.h"
#include "tests/support/royalti_test_server.h"
#include "tests/support/scim_test_server.h"
#include "tests/support/slapd_test_server.h"

namespace dirsync::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

// Every secret below (but Hesh's tenant ids, which must be UUIDs) carries this
// marker, which is searched for on its own: a leak cut short is found too.
constexpr const char* kMarker = "S3CR3T";

// Target secrets. Header values stay printable ASCII without spaces (HTTP
// header rules); the others carry spaces, quotes, backslashes, '%', '&', '+',
// '/', '=' and non-ASCII letters.
const std::string kPerscomToken = "S3CR3T-perscom~token/7f3a9c+=";
const std::string kPerscomId = "S3CR3T-perscom-id-41d0&x";
const std::string kHeshTenant = "5ec2e7a1-7f3a-4c9d-8b1e-93c1d5e0a7f4";        // UUID v4, as Hesh requires
const std::string kHeshWrongTenant = "0dd5e3c2-91b4-4e7a-a2f1-6c3b8e9d0f15";   // one Hesh does not know
const std::string kHeshApiKey = "S3CR3T-hesh-key-b7e2/+=";
const std::string kRoyaltiToken = "S3CR3T-royalti.eyJzdWIiOiJ4In0.c2ln-9d1e";
const std::string kHealviToken = "S3CR3T-healvi-token-0c8e%41";
const std::string kAuthPasswordSecret = "S3CR3T auth pw-secret \"qu\\ote\" é+&%=/ü";
const std::string kAuthToken = "S3CR3T-auth-token-d91f";
const std::string kAuthApiKey = "S3CR3T-auth-key-6a2b";
// Source secrets.
const std::string kLdapPassword = "S3CR3T ldap pässword \"q\" \\ &%+=/#:";
const std::string kLdapWrongPassword = "S3CR3T wrong ldap pässword \"7\"";
const std::string kScimToken = "S3CR3T-scim-bearer-5e1a~x";
const std::string kBasicUser = "svc-reader";
const std::string kBasicPassword = "S3CR3T basic:pä55 \"w\\rd\" &%+=/";
const std::string kHeaderSecret = "S3CR3T-tenant-header-88f2";

// For dirsync(): exit 1 (the run failed) or 4 (it finished with problems) —
// where which one is the target's business, not this test's.
constexpr int kAnyFailure = -1;

// A port nothing listens on: bound by the kernel, then closed again.
std::uint16_t closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("cannot probe a free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// Stands in for $NOTIFY_SOCKET and /run/systemd/journal/socket
// ($DIRSYNC_JOURNAL_SOCKET): a datagram socket drained by a thread of its own,
// as systemd drains them, so that a daemon never blocks on a full queue
// (tests/daemon's NotifySocket only reads while a test waits on it, and cuts
// datagrams at 4 KiB). Keeps every datagram whole.
class DatagramCatcher {
 public:
  explicit DatagramCatcher(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (fd_ < 0 || path_.size() >= sizeof addr.sun_path) throw std::runtime_error("journal socket " + path_);
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    ::unlink(path_.c_str());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("bind " + path_ + ": " + std::strerror(errno));
    }
    timeval tv{0, 50'000};  // lets the thread see stop_ without a datagram
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    thread_ = std::thread([this] {
      std::vector<char> buf(1 << 20);
      while (!stop_) {
        const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n <= 0) continue;
        std::lock_guard lock(mu_);
        datagrams_.emplace_back(buf.data(), static_cast<std::size_t>(n));
      }
    });
  }
  ~DatagramCatcher() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  // Every datagram so far, one after another.
  std::string all() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& d : datagrams_) out += d + "\n";
    return out;
  }
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return datagrams_.size();
  }
  bool received(const std::string& text) const { return has(all(), text); }

 private:
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<std::string> datagrams_;
  std::thread thread_;
};

// The fixture: a directory for the config, its secret files and credentials
// (never scanned: they hold the secrets by design), the state directory and
// the file targets' output (scanned), plus everything the commands printed.
class SecretsTest : public ::testing::Test {
 protected:
  // Made on first use (openssl takes a moment), once per test process.
  static TestPki& pki() {
    static TestPki pki("dirsync secrets test CA");
    return pki;
  }
  static TestPki& other_pki() {
    static TestPki pki("a CA dirsync was never told about");
    return pki;
  }

  void SetUp() override {
    static int counter = 0;
    id_ = std::to_string(::getpid()) + "-" + std::to_string(++counter);
    dir_ = fs::temp_directory_path() / ("dirsync-secrets-" + id_);
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "secrets");
    fs::create_directories(dir_ / "creds");
    fs::create_directories(dir_ / "out");
    env_ = {"CREDENTIALS_DIRECTORY=" + (dir_ / "creds").string()};
    scanner_.add_form("a secret cut short", "the marker every secret carries", kMarker);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Registers the value with the scanner and delivers it as `reference`
  // says: "env:NAME", "file:NAME" (a file in secrets/, with the newline an
  // editor adds) or "cred:NAME" (a file in $CREDENTIALS_DIRECTORY). Returns
  // the ${...} text for the config.
  std::string secret(const std::string& name, const std::string& value, const std::string& reference) {
    scanner_.add(name, value);
    const auto colon = reference.find(':');
    const std::string kind = reference.substr(0, colon), arg = reference.substr(colon + 1);
    if (kind == "env") {
      env_.push_back(arg + "=" + value);
      return "${env:" + arg + "}";
    }
    if (kind == "file") {
      std::ofstream(dir_ / "secrets" / arg, std::ios::binary) << value << "\n";
      return "${file:secrets/" + arg + "}";
    }
    std::ofstream(dir_ / "creds" / arg, std::ios::binary) << value;
    return "${cred:" + arg + "}";
  }

  void write_config(const std::string& text) { std::ofstream(dir_ / "dirsync.yaml") << text; }

  // `dirsync --log-level trace <args>`; the output joins the artifacts, and the
  // exit code must be `expected` (the output is shown redacted when it is not).
  ProcessResult dirsync(const std::vector<std::string>& args, int expected) {
    std::vector<std::string> argv = {"--config", (dir_ / "dirsync.yaml").string(), "--log-level", "trace"};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = run_dirsync(argv, env_);
    std::string name = "`dirsync";
    for (const auto& a : args) name += " " + a;
    artifacts_.emplace_back(name + "` stdout", r.out);
    artifacts_.emplace_back(name + "` stderr", r.err);
    if (expected == kAnyFailure) {
      EXPECT_TRUE(r.exit_code == 1 || r.exit_code == 4) << name << "` exited " << r.exit_code << ":\n" << shown(r);
    } else {
      EXPECT_EQ(r.exit_code, expected) << name << "`:\n" << shown(r);
    }
    return r;
  }

  // Output that is safe to print in a failure message.
  std::string shown(const ProcessResult& r) const {
    return scanner_.redact("stdout:\n" + r.out + "\nstderr:\n" + r.err);
  }
  std::string shown(const std::string& text) const { return scanner_.redact(text); }

  void add_artifact(std::string name, std::string bytes) { artifacts_.emplace_back(std::move(name), std::move(bytes)); }

  // Every finding in the artifacts, the state directory and the targets' output.
  std::vector<std::string> leaks() const {
    std::vector<std::string> found;
    auto scan = [&](const std::string& name, const std::string& bytes) {
      for (auto& f : scanner_.scan(name, bytes)) found.push_back(std::move(f));
    };
    for (const auto& [name, bytes] : artifacts_) scan(name, bytes);
    for (const auto& [path, bytes] : read_tree(dir_ / "state")) scan(path, bytes);
    for (const auto& [path, bytes] : read_tree(dir_ / "out")) scan(path, bytes);
    return found;
  }

  // The check every test ends with. The state must really have been read:
  // LMDB's files are there and hold the users' data (an email from the source).
  void expect_no_leaks(const std::string& data_in_state) {
    bool has_mdb = false;
    std::string state;
    for (const auto& [path, bytes] : read_tree(dir_ / "state")) {
      has_mdb |= path.ends_with("data.mdb");
      state += bytes;
    }
    EXPECT_TRUE(has_mdb) << "no LMDB environment under " << (dir_ / "state");
    EXPECT_TRUE(has(state, data_in_state)) << "the scan would not see the snapshot's contents";
    for (const auto& leak : leaks()) ADD_FAILURE() << "secret leaked: " << leak;
  }

  std::string id_;
  fs::path dir_;
  std::vector<std::string> env_;
  SecretScanner scanner_;
  std::vector<std::pair<std::string, std::string>> artifacts_;
};

// --- the scanner can fail ------------------------------------------------------

TEST(SecretScanner, FindsAPlantedSecretInEveryFormAndNamesItWithoutTheValue) {
  SecretScanner scanner;
  const std::string password = "pä55 \"w\\rd\" &%+=/";
  scanner.add("the planted password", password);
  ASSERT_GE(scanner.forms().size(), 9u);
  const fs::path dir = fs::temp_directory_path() / ("dirsync-secrets-plant-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "state");
  for (const auto& form : scanner.forms()) {
    // Planted between binary bytes, as in an LMDB page.
    std::ofstream(dir / "state" / "data.mdb", std::ios::binary)
        << std::string("\0\x01header", 8) << form.bytes << std::string("\0\xfftrailer", 9);
    const auto files = read_tree(dir);
    ASSERT_EQ(files.size(), 1u);
    const auto found = scanner.scan(files[0].first, files[0].second);
    ASSERT_FALSE(found.empty()) << form.label << " was not found";
    EXPECT_TRUE(has(found[0], "data.mdb: the planted password (")) << found[0];
    for (const auto& line : found) {
      EXPECT_FALSE(has(line, password)) << "the finding shows the value";
      EXPECT_FALSE(has(line, form.bytes)) << "the finding shows the form itself: " << form.label;
    }
  }
  // The forms a real request carries: a Basic header, a JSON body, a query string.
  for (const std::string& carrier : std::vector<std::string>{
           "Authorization: Basic " + base64("svc-reader:" + password), json{{"password", password}}.dump(),
        json{{"password", password}}.dump(-1, ' ', true), "GET /users?pw=p%C3%A455%20%22w%5Crd%22%20%26%25%2B%3D%2F"}) {
    EXPECT_FALSE(scanner.scan("carrier", carrier).empty()) << scanner.redact(carrier);
    EXPECT_FALSE(has(scanner.redact(carrier), password));
  }
  EXPECT_TRUE(scanner.scan("clean", "nothing secret here: svc-reader, pä55").empty());
  fs::remove_all(dir);
}

TEST(SecretScanner, RedactsEveryFormForPrinting) {
  SecretScanner scanner;
  scanner.add("tok", "S3CR3T-abc/def");
  EXPECT_EQ(scanner.redact("a S3CR3T-abc/def b S3CR3T-abc%2Fdef c"),
            "a [tok (as is)] b [tok (percent-encoded)] c");
}

// The control for every test below: a value dirsync is meant to show — a
// source attribute mapped into the payload — registered like a secret, is
// found by the same collection and scan in the plan's output, the file
// target's output and LMDB's data.mdb, and is named without being shown.
TEST_F(SecretsTest, TheScanFindsAValueThatDoesReachThePlanTheTargetAndTheSnapshot) {
  const std::string value = "S3CR3T planted in a payload \"é\"";
  scanner_.add("planted value", value);
  std::ofstream(dir_ / "users.csv") << "id,note\n1,\"S3CR3T planted in a payload \"\"é\"\"\"\n";
  write_config("state_dir: state\ndaemon: {control_socket: /tmp/dsec-" + id_ + ".sock}\n"
               "sources:\n  hr: {type: csv, path: users.csv, key: id}\n"
               "targets:\n  out: {type: file, path: out/changes.jsonl}\n"
               "jobs:\n  j: {source: hr, target: out, mapping: {name: \"{note}\"}}\n");
  dirsync({"plan", "j"}, 0);
  dirsync({"sync", "j"}, 0);
  const auto found = leaks();
  auto reported = [&](const std::string& where) {
    for (const auto& line : found) {
      if (has(line, where) && has(line, ": planted value (")) return true;
    }
    return false;
  };
  EXPECT_TRUE(reported("`dirsync plan j` stdout: "));
  EXPECT_TRUE(reported("changes.jsonl: "));
  EXPECT_TRUE(reported("data.mdb: "));
  for (const auto& line : found) {
    EXPECT_FALSE(has(line, value)) << "a finding shows the value";
    EXPECT_FALSE(has(line, kMarker)) << "a finding shows part of the value";
  }
}

// --- targets -----------------------------------------------------------------

class TargetSecrets : public SecretsTest {
 protected:
  void SetUp() override {
    SecretsTest::SetUp();
    perscom_.set_token(kPerscomToken);
    perscom_.require_perscom_id(kPerscomId);
    perscom_.start();
    tls_perscom_.set_token(kPerscomToken);
    https_ = std::make_unique<HttpsTestServer>([this](const ServerRequest& r) { return tls_perscom_.handle(r); },
                                               pki().server_cert(), pki().server_key());
    https_->start();
    hesh_.require_api_key(kHeshApiKey);
    hesh_.start();
    royalti_.set_token(kRoyaltiToken);
    royalti_.start();
    healvi::HealviServerOptions healvi_options;
    healvi_options.token = kHealviToken;
    healvi_.set_options(healvi_options);
    healvi_.add_customer(7);
    healvi_.add_users(10);
    healvi_.start();
    auth_.require_bearer(kAuthToken);
    auth_.require_header("X-API-Key", kAuthApiKey);
    auth_.start();
  }

  // Every target kind, each with its secrets, plus PERSCOM over TLS (trusted
  // and untrusted) and on a port nothing listens on.
  void write_target_config() {
    const std::string http = "    max_attempts: 2\n    backoff_initial: 1ms\n    backoff_max: 2ms\n"
                             "    retry_after_max: 2ms\n    connect_timeout: 2s\n";
    const std::string perscom_token = secret("perscom token", kPerscomToken, "env:PERSCOM_TOKEN");
    const std::string perscom = "    type: perscom\n    token: " + perscom_token +
                                "\n    perscom_id: " + secret("perscom id", kPerscomId, "file:perscom-id") + "\n" + http;
    const std::string hesh_key = secret("hesh api key", kHeshApiKey, "file:hesh-key");
    const std::string hesh = "    type: hesh\n    base_url: " + hesh_.base_url() + "\n    api_key: " + hesh_key + "\n" + http;
    std::string text =
        "state_dir: state\n"
        "daemon: {control_socket: /tmp/dsec-" + id_ + ".sock}\n"
        "sources:\n  hr: {type: csv, path: users.csv, key: employee_id}\n"
        "targets:\n"
        "  perscom:\n    base_url: " + perscom_.base_url() + "\n" + perscom +
        "  perscom-tls:\n    base_url: " + https_->base_url() + "\n    ca_file: " + pki().ca_cert() + "\n"
        "    type: perscom\n    token: " + perscom_token + "\n" + http +
        "  perscom-untrusted:\n    base_url: " + https_->base_url() + "\n    ca_file: " + other_pki().ca_cert() + "\n"
        "    type: perscom\n    token: " + perscom_token + "\n" + http +
        "  perscom-refused:\n    base_url: http://127.0.0.1:" + std::to_string(closed_port()) + "\n" + perscom +
        "  hesh:\n" + hesh + "    tenant_id: " + secret("hesh tenant id", kHeshTenant, "cred:hesh-tenant") + "\n" +
        "  hesh-unknown-tenant:\n" + hesh + "    tenant_id: " +
        secret("unknown hesh tenant id", kHeshWrongTenant, "env:HESH_WRONG_TENANT") + "\n" +
        "  royalti:\n    type: royalti\n    base_url: " + royalti_.base_url() + "\n    token: " +
        secret("royalti token", kRoyaltiToken, "env:ROYALTI_TOKEN") + "\n" + http +
        "  healvi:\n    type: healvi\n    base_url: " + healvi_.base_url() + "\n    customer_id: 7\n    token: " +
        secret("healvi token", kHealviToken, "cred:healvi-token") + "\n" + http +
        "  auth:\n    type: auth_sync_user\n    base_url: " + auth_.base_url() + "\n    password_secret: " +
        secret("auth_sync_user password secret", kAuthPasswordSecret, "file:auth-password-secret") +
        "\n    token: " + secret("auth_sync_user token", kAuthToken, "env:AUTH_TOKEN") +
        "\n    api_key: " + secret("auth_sync_user api key", kAuthApiKey, "cred:auth-key") + "\n" + http +
        "jobs:\n";
    const std::string perscom_mapping =
        "    mapping: {name: \"{first_name} {last_name}\", email: \"{email}\", approved: true}\n";
    for (const char* t : {"perscom", "perscom-tls", "perscom-untrusted", "perscom-refused"}) {
      text += "  to-" + std::string(t) + ":\n    source: hr\n    target: " + t + "\n" + perscom_mapping;
    }
    const std::string hesh_mapping =
        "    mapping: {external_user_id: \"{employee_id}\", email: \"{email}\", first_name: \"{first_name}\"}\n"
        "    on_missing: ignore\n";
    text += "  to-hesh:\n    source: hr\n    target: hesh\n" + hesh_mapping;
    text += "  to-hesh-unknown-tenant:\n    source: hr\n    target: hesh-unknown-tenant\n" + hesh_mapping;
    text += "  to-royalti:\n    source: hr\n    target: royalti\n    on_missing: ignore\n"
            "    mapping: {firstName: \"{first_name}\", lastName: \"{last_name}\", email: \"{email}\"}\n";
    text += "  to-healvi:\n    source: hr\n    target: healvi\n    mapping: {user_id: \"{healvi_id}\"}\n";
    text += "  to-auth:\n    source: hr\n    target: auth\n    on_missing: ignore\n"
            "    mapping: {id: \"{employee_id}\", email: \"{email}\", organization_id: org-1, role_id: member,\n"
            "              first_name: \"{first_name}\", last_name: \"{last_name}\", phone_number: \"555\",\n"
            "              phone_country_code: \"+1\"}\n";
    write_config(text);
    // The passwords the job derives for its users are secrets as well.
    for (int i = 1; i <= 6; ++i) {
      const std::string key = "E" + std::to_string(i);
      scanner_.add_form("auth_sync_user password derived for " + key, "as is",
                        targets::auth_sync_user::derive_password(core::Secret(kAuthPasswordSecret, "test"), key));
    }
  }

  void write_csv(int users) {
    std::ofstream out(dir_ / "users.csv");
    out << "employee_id,first_name,last_name,email,healvi_id\n";
    for (int i = 1; i <= users; ++i) {
      const std::string s = std::to_string(i);
      out << "E" << s << ",First" << s << ",Last" << s << ",user" << s << "@example.com," << s << "\n";
    }
  }

  PerscomTestServer perscom_;
  PerscomTestServer tls_perscom_;  // answers through https_
  std::unique_ptr<HttpsTestServer> https_;
  HeshTestServer hesh_{HeshServerOptions{{kHeshTenant}, std::nullopt, true}};
  RoyaltiTestServer royalti_;
  healvi::HealviTestServer healvi_;
  AuthSyncUserTestServer auth_;
};

const std::vector<std::string> kTargetJobs = {"to-perscom", "to-perscom-tls", "to-hesh", "to-royalti", "to-healvi",
                                              "to-auth"};

TEST_F(TargetSecrets, NoTargetCredentialAppearsThroughSuccessesAndEveryFailure) {
  write_csv(3);
  write_target_config();
  dirsync({"check-config"}, 0);

  // Successes: each secret really went out (the servers checked it).
  for (const auto& job : kTargetJobs) {
    dirsync({"plan", job}, 0);
    dirsync({"plan", job, "--json"}, 0);
    dirsync({"plan", job, "--explain", "E1"}, 0);
    auto run = dirsync({"sync", job}, 0);
    EXPECT_TRUE(has(run.err, " debug ")) << "trace logging is on: " << shown(run);
  }
  EXPECT_EQ(perscom_.users().size(), 3u);
  EXPECT_EQ(tls_perscom_.users().size(), 3u) << "PERSCOM over TLS with the right CA";
  EXPECT_EQ(hesh_.users().size(), 3u);
  EXPECT_EQ(royalti_.users().size(), 3u);
  EXPECT_EQ(healvi_.attached(7).size(), 3u);
  ASSERT_EQ(auth_.users().size(), 3u);
  EXPECT_EQ(auth_.user("E1")["password"],
            targets::auth_sync_user::derive_password(core::Secret(kAuthPasswordSecret, "test"), "E1"))
      << "the password secret from ${file:} was used";

  write_csv(4);  // one more user: every failure below has something to send
  for (const auto& job : kTargetJobs) {
    dirsync({"resync", job, "--dry-run"}, 0);
    dirsync({"plan", job, "--resync", "--json"}, 0);
  }
  dirsync({"resync", "to-perscom"}, 0);
  dirsync({"resync", "to-auth"}, 0);

  // Failures that never reach a server.
  auto untrusted = dirsync({"sync", "to-perscom-untrusted"}, 1);
  EXPECT_TRUE(has(untrusted.out + untrusted.err, "TLS")) << shown(untrusted);
  auto refused = dirsync({"sync", "to-perscom-refused"}, 1);
  EXPECT_TRUE(has(refused.out + refused.err, "onnect")) << shown(refused);
  auto unknown_tenant = dirsync({"sync", "to-hesh-unknown-tenant"}, 1);
  EXPECT_TRUE(has(unknown_tenant.out + unknown_tenant.err, "401")) << shown(unknown_tenant);

  // 500 everywhere, with a new user to send.
  write_csv(5);
  perscom_.inject(Fault::k500, 4);
  tls_perscom_.inject(Fault::k500, 4);
  hesh_.inject(HeshFault::k500, 4);
  royalti_.inject(RoyaltiFault::k500, 4);
  healvi_.inject(healvi::Fault::k500, 4);
  auth_.inject(AuthSyncFault::k500, 4);
  for (const auto& job : kTargetJobs) {
    auto run = dirsync({"sync", job}, kAnyFailure);
    EXPECT_TRUE(has(run.out + run.err, "500")) << job << ": " << shown(run);
  }
  perscom_.clear_faults();
  tls_perscom_.clear_faults();
  hesh_.clear_faults();
  royalti_.clear_faults();
  healvi_.clear_faults();
  auth_.clear_faults();

  // 401: every server now expects another credential than the one dirsync sends.
  write_csv(6);
  perscom_.set_token("another-token");
  tls_perscom_.set_token("another-token");
  hesh_.require_api_key("another-key");
  royalti_.set_token("another-token");
  healvi::HealviServerOptions healvi_options;
  healvi_options.token = "another-token";
  healvi_.set_options(healvi_options);
  auth_.require_bearer("another-token");
  for (const auto& job : kTargetJobs) {
    auto run = dirsync({"sync", job}, 1);
    EXPECT_TRUE(has(run.out + run.err, "401")) << job << ": " << shown(run);
    dirsync({"resync", job}, 1);
  }

  auto status = dirsync({"status"}, 0);
  EXPECT_TRUE(has(status.out, "to-auth")) << shown(status);
  auto status_json = dirsync({"status", "--json"}, 0);
  EXPECT_EQ(json::parse(status_json.out).size(), 9u) << shown(status_json);
  dirsync({"sync", "--all", "--json"}, 1);

  EXPECT_TRUE(fs::exists(dir_ / "state" / "audit.jsonl"));
  expect_no_leaks("user3@example.com");
}

// --- sources -----------------------------------------------------------------

class SourceSecrets : public SecretsTest {
 protected:
  // The account dirsync binds as, with the distinctive password (slapd compares
  // the plain userPassword on a simple bind).
  static std::string service_account_ldif() {
    return std::string("dn: ") + kServiceDn +
           "\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: dirsync-svc\n" +
           ldif_line("userPassword", kLdapPassword) + "\n";
  }
  static constexpr const char* kServiceDn = "cn=dirsync-svc,dc=example,dc=com";

  void SetUp() override {
    SecretsTest::SetUp();
    SlapdOptions options;
    options.ldif = users_ldif(5) + service_account_ldif();
    options.tls = true;  // ldaps:// with a CA of its own, to be refused with another one
    slapd_ = std::make_unique<SlapdServer>(options);
    slapd_->start();
    ScimServerOptions scim_options;
    scim_options.token = kScimToken;
    scim_ = std::make_unique<ScimTestServer>(scim_options);
    for (int i = 1; i <= 5; ++i) {
      scim_->add_user({{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User"}},
                       {"id", "id-" + std::to_string(i)},
                       {"userName", "scim-user" + std::to_string(i) + "@example.com"}});
    }
    scim_->start();
    api_.set_options(api_options(kBasicPassword));
    api_.add_users(15);
    api_.start();
  }

  static http_json::ServerOptions api_options(const std::string& password) {
    http_json::ServerOptions o;
    o.style = http_json::Style::kCursor;
    o.auth = http_json::Auth::kBasic;
    o.username = kBasicUser;
    o.password = password;
    o.required_headers = {{"X-Tenant-Secret", kHeaderSecret}};
    return o;
  }

  void write_source_config() {
    const std::string http = "    max_attempts: 2\n    backoff_initial: 1ms\n    backoff_max: 2ms\n"
                             "    retry_after_max: 2ms\n    connect_timeout: 2s\n";
    const std::string ldap = "    type: ldap\n    bind_dn: " + std::string(kServiceDn) +
                             "\n    base_dn: ou=people,dc=example,dc=com\n    filter: (objectClass=inetOrgPerson)\n"
                             "    key: uid\n    timeout: 5s\n    connect_timeout: 2s\n";
    const std::string password = secret("ldap bind password", kLdapPassword, "file:ldap-password");
    const std::string api = "    type: http_json\n    records: /data\n    key: /id\n    pagination: cursor\n"
                            "    cursor_path: /meta/next_cursor\n    username: " + kBasicUser +
                            "\n    password: " + secret("http_json basic password", kBasicPassword, "env:API_PASSWORD") +
                            "\n    headers: {X-Tenant-Secret: '" +
                            secret("http_json secret header", kHeaderSecret, "cred:api-header") + "'}\n" + http;
    scanner_.add_form("http_json basic password", "Basic header form", base64(kBasicUser + ":" + kBasicPassword));
    std::string text =
        "state_dir: state\n"
        "daemon: {control_socket: /tmp/dsec-" + id_ + ".sock}\n"
        "sources:\n"
        "  ldap:\n" + ldap + "    url: " + slapd_->ldaps_url() + "\n    ca_file: " + slapd_->ca_file() +
        "\n    bind_password: " + password + "\n" +
        "  ldap-untrusted:\n" + ldap + "    url: " + slapd_->ldaps_url() + "\n    ca_file: " + other_pki().ca_cert() +
        "\n    bind_password: " + password + "\n" +
        "  ldap-wrong-password:\n" + ldap + "    url: " + slapd_->ldap_url() + "\n    start_tls: false\n" +
        "    bind_password: " + secret("wrong ldap bind password", kLdapWrongPassword, "cred:ldap-wrong") + "\n" +
        "  scim:\n    type: scim\n    base_url: " + scim_->base_url() + "\n    token: " +
        secret("scim token", kScimToken, "cred:scim-token") + "\n" + http +
        "  api:\n    url: " + api_.users_url() + "\n" + api +
        "  api-refused:\n    url: http://127.0.0.1:" + std::to_string(closed_port()) + "/api/users\n" + api +
        "targets:\n";
    std::string jobs = "jobs:\n";
    const std::vector<std::pair<std::string, std::string>> mappings = {
        {"ldap", "{name: \"{cn}\", email: \"{mail | first}\"}"},
        {"ldap-untrusted", "{name: \"{cn}\"}"},
        {"ldap-wrong-password", "{name: \"{cn}\"}"},
        {"scim", "{name: \"{userName}\"}"},
        {"api", "{name: \"{name.given} {name.family}\", email: \"{email}\"}"},
        {"api-refused", "{name: \"{email}\"}"}};
    for (const auto& [source, mapping] : mappings) {
      text += "  out-" + source + ": {type: file, path: out/" + source + ".jsonl}\n";
      jobs += "  from-" + source + ":\n    source: " + source + "\n    target: out-" + source +
              "\n    mapping: " + mapping + "\n";
    }
    write_config(text + jobs);
  }

  std::unique_ptr<SlapdServer> slapd_;
  std::unique_ptr<ScimTestServer> scim_;
  http_json::HttpJsonTestServer api_;
};

TEST_F(SourceSecrets, NoSourceCredentialAppearsThroughSuccessesAndEveryFailure) {
  write_source_config();
  dirsync({"check-config"}, 0);

  const std::vector<std::pair<std::string, std::string>> working = {
      {"from-ldap", "user00001"}, {"from-scim", "id-1"}, {"from-api", "u1"}};
  for (const auto& [job, key] : working) {
    dirsync({"plan", job}, 0);
    dirsync({"plan", job, "--json"}, 0);
    dirsync({"plan", job, "--explain", key}, 0);
    auto run = dirsync({"sync", job}, 0);
    EXPECT_TRUE(has(run.out, "created")) << shown(run);
    EXPECT_TRUE(has(run.err, " debug ")) << "trace logging is on: " << shown(run);
    dirsync({"resync", job, "--dry-run"}, 0);
    dirsync({"resync", job}, 0);
  }
  bool scim_token_sent = false;
  std::string seen;
  const auto scim_log = scim_->request_log();
  for (const auto& [name, value] : scim_log.at(0).headers) {
    scim_token_sent |= name == "authorization" && value == "Bearer " + kScimToken;
    seen += name + ": " + value + "\n";
  }
  EXPECT_TRUE(scim_token_sent) << "the SCIM token from ${cred:} was sent: " << shown(seen);
  EXPECT_EQ(api_.request_log().at(0).status, 200) << "basic auth and the secret header were accepted";

  // Refused before a credential is sent: an untrusted LDAP certificate, a closed port.
  auto untrusted = dirsync({"sync", "from-ldap-untrusted"}, 1);
  EXPECT_TRUE(has(untrusted.out + untrusted.err, "TLS")) << shown(untrusted);
  auto refused = dirsync({"sync", "from-api-refused"}, 1);
  EXPECT_TRUE(has(refused.out + refused.err, "onnect")) << shown(refused);
  dirsync({"plan", "from-api-refused", "--explain", "u1"}, 1);

  // The directory refuses the password.
  auto wrong = dirsync({"sync", "from-ldap-wrong-password"}, 1);
  EXPECT_TRUE(has(wrong.out + wrong.err, "nvalid credentials")) << shown(wrong);
  dirsync({"plan", "from-ldap-wrong-password", "--explain", "user00001"}, 1);

  // 500 on every request.
  scim_->fail_request(scim_->request_count() + 1, ScimFault::k500, 2);  // both attempts
  api_.inject(0, http_json::Fault::k500, -1);
  for (const std::string job : {"from-scim", "from-api"}) {
    auto run = dirsync({"sync", job}, kAnyFailure);
    EXPECT_TRUE(has(run.out + run.err, "500")) << job << ": " << shown(run);
  }
  api_.clear_faults();

  // 401: the servers expect other credentials.
  ScimServerOptions scim_options;
  scim_options.token = "another-token";
  scim_->set_options(scim_options);
  api_.set_options(api_options("another password"));
  for (const std::string job : {"from-scim", "from-api"}) {
    auto run = dirsync({"sync", job}, 1);
    EXPECT_TRUE(has(run.out + run.err, "401")) << job << ": " << shown(run);
    dirsync({"plan", job, "--json"}, 1);
  }

  // The directory goes away: connection refused.
  slapd_->kill();
  auto gone = dirsync({"sync", "from-ldap"}, 1);
  EXPECT_TRUE(has(gone.out + gone.err, "ldap")) << shown(gone);

  dirsync({"status"}, 0);
  auto status = dirsync({"status", "--json"}, 0);
  EXPECT_EQ(json::parse(status.out).size(), 6u) << shown(status);
  dirsync({"sync", "--all"}, 1);

  const auto written = read_tree(dir_ / "out");
  EXPECT_EQ(written.size(), 3u) << "the three working jobs wrote their changes";
  expect_no_leaks("scim-user1@example.com");
}

// --- the daemon ----------------------------------------------------------------

class DaemonSecrets : public SecretsTest {
 protected:
  void SetUp() override {
    SecretsTest::SetUp();
    perscom_.set_token(kPerscomToken);
    perscom_.start();
    royalti_.set_token("the token royalti expects");  // dirsync's is refused: 401
    royalti_.start();
    ScimServerOptions scim_options;
    scim_options.token = kScimToken;
    scim_ = std::make_unique<ScimTestServer>(scim_options);
    scim_->add_user({{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User"}},
                     {"id", "id-1"},
                     {"userName", "scim-user1@example.com"}});
    scim_->start();
    socket_ = "/tmp/dsec-" + id_ + ".sock";
  }

  void write_daemon_config() {
    const std::string http = "    max_attempts: 2\n    backoff_initial: 1ms\n    backoff_max: 2ms\n"
                             "    retry_after_max: 2ms\n    connect_timeout: 2s\n";
    write_config(
        "state_dir: state\n"
        "daemon: {control_socket: " + socket_ + "}\n"
        "sources:\n"
        "  hr: {type: csv, path: users.csv, key: employee_id}\n"
        "  scim:\n    type: scim\n    base_url: " + scim_->base_url() + "\n    token: " +
        secret("scim token", kScimToken, "file:scim-token") + "\n" + http +
        "  api-refused:\n    type: http_json\n    url: http://127.0.0.1:" + std::to_string(closed_port()) +
        "/api/users\n    records: /data\n    key: /id\n    username: " + kBasicUser + "\n    password: " +
        secret("http_json basic password", kBasicPassword, "cred:api-password") + "\n" + http +
        "targets:\n"
        "  perscom:\n    type: perscom\n    base_url: " + perscom_.base_url() + "\n    token: " +
        secret("perscom token", kPerscomToken, "env:PERSCOM_TOKEN") + "\n" + http +
        "  royalti:\n    type: royalti\n    base_url: " + royalti_.base_url() + "\n    token: " +
        secret("royalti token", kRoyaltiToken, "cred:royalti-token") + "\n" + http +
        "  out: {type: file, path: out/changes.jsonl}\n"
        "jobs:\n"
        "  to-perscom:\n    source: hr\n    target: perscom\n"
        "    mapping: {name: \"{first_name}\", email: \"{email}\"}\n"
        "  to-royalti:\n    source: hr\n    target: royalti\n    on_missing: ignore\n"
        "    mapping: {firstName: \"{first_name}\", lastName: \"{first_name}\", email: \"{email}\"}\n"
        "  scim-to-file:\n    source: scim\n    target: out\n    mapping: {name: \"{userName}\"}\n"
        "  api-to-file:\n    source: api-refused\n    target: out\n    mapping: {name: \"{id}\"}\n");
    scanner_.add_form("http_json basic password", "Basic header form", base64(kBasicUser + ":" + kBasicPassword));
  }

  void write_csv(int users) {
    std::ofstream out(dir_ / "users.csv");
    out << "employee_id,first_name,email\n";
    for (int i = 1; i <= users; ++i) out << "E" << i << ",First" << i << ",user" << i << "@example.com\n";
  }

  // Runs the daemon until every job has run once (each at start), then stops it
  // with SIGTERM. `journal`: its records go to a socket of ours instead of
  // stderr, as under systemd. `while_running` runs against the live daemon.
  void run_daemon(const std::string& label, bool journal, const std::function<void()>& while_running = {}) {
    const fs::path log = dir_ / (label + ".log");
    std::ofstream(log).close();  // created now: $JOURNAL_STREAM names its inode
    struct stat st {};
    ASSERT_EQ(::stat(log.c_str(), &st), 0);
    DatagramCatcher notify("/tmp/dsntf-" + id_ + "-" + label + ".sock");
    std::unique_ptr<DatagramCatcher> catcher;
    std::vector<std::string> env = env_;
    env.push_back("NOTIFY_SOCKET=" + notify.path());
    if (journal) {
      catcher = std::make_unique<DatagramCatcher>("/tmp/dsjrn-" + id_ + ".sock");
      env.push_back("JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino));
      env.push_back("DIRSYNC_JOURNAL_SOCKET=" + catcher->path());
    }
    {
      DaemonProcess daemon({"--config", (dir_ / "dirsync.yaml").string(), "--log-level", "trace", "daemon"}, env,
                           log.string());
      auto output = [&] { return daemon.log() + (catcher ? catcher->all() : ""); };
      EXPECT_TRUE(eventually([&] { return notify.received("READY=1"); })) << shown(output());
      EXPECT_TRUE(eventually([&] {
        const std::string text = output();
        for (const char* job : {"to-perscom", "to-royalti", "scim-to-file", "api-to-file"}) {
          if (!has(text, std::string(job) + ": sync ")) return false;
        }
        return true;
      })) << shown(output());
      if (while_running) while_running();
      daemon.signal(SIGTERM);
      EXPECT_EQ(daemon.wait(), 0) << shown(output());
      add_artifact("daemon " + label + ": stdout and stderr", daemon.log());
      EXPECT_TRUE(notify.received("STOPPING=1"));
      add_artifact("daemon " + label + ": sd_notify messages", notify.all());
      if (catcher) {
        EXPECT_GT(catcher->size(), 4u) << "the daemon logged to the journal";
        EXPECT_TRUE(has(catcher->all(), "SYSLOG_IDENTIFIER=dirsync")) << "records in the journal's native protocol";
        add_artifact("daemon " + label + ": journal records", catcher->all());
      }
    }
  }

  PerscomTestServer perscom_;
  RoyaltiTestServer royalti_;
  std::unique_ptr<ScimTestServer> scim_;
  std::string socket_;
};

TEST_F(DaemonSecrets, NoCredentialInTheDaemonsLogJournalStatusOrControlSocketReplies) {
  write_csv(3);
  write_daemon_config();
  run_daemon("stderr", false, [&] {
    // The CLI talks to the daemon: its replies and the progress it streams.
    auto status = dirsync({"status"}, 0);
    EXPECT_TRUE(has(status.out, "to-royalti")) << shown(status);
    dirsync({"status", "--json"}, 0);
    write_csv(4);
    dirsync({"sync", "to-perscom"}, 0);
    auto refused = dirsync({"sync", "to-royalti"}, 1);
    EXPECT_TRUE(has(refused.out + refused.err, "401")) << shown(refused);
    dirsync({"sync", "api-to-file"}, 1);
    dirsync({"plan", "to-royalti", "--json"}, 0);
    dirsync({"plan", "to-perscom", "--explain", "E1"}, 0);
    dirsync({"resync", "to-perscom"}, 0);
  });
  EXPECT_EQ(perscom_.users().size(), 4u);

  write_csv(5);  // something to send again
  run_daemon("journal", true);
  EXPECT_EQ(perscom_.users().size(), 5u);
  dirsync({"status", "--json"}, 0);
  expect_no_leaks("user5@example.com");
}

// --- configuration errors --------------------------------------------------------

TEST_F(SecretsTest, ConfigurationErrorsNameTheReferenceButNeverTheValue) {
  // Every place a secret can be wrong, with literal values too (which are in
  // the config file by the operator's choice, but must not reach a log).
  std::ofstream(dir_ / "secrets" / "too-big", std::ios::binary) << std::string(70'000, 'x') + kPerscomToken;
  scanner_.add("literal perscom token", "S3CR3T-literal-token-in-a-list");
  scanner_.add("literal tenant id", "S3CR3T-literal-tenant \"q\" é");
  scanner_.add("tenant id from env", "S3CR3T-env-tenant-not-a-uuid");
  scanner_.add("password in a URL", "S3CR3T-url-password");
  scanner_.add("literal under a misspelled key", "S3CR3T-misspelled-key-value");
  scanner_.add("literal bind password in a map", "S3CR3T-bind-password-in-a-map");
  scanner_.add("duplicated token", "S3CR3T-first-of-two-tokens");
  scanner_.add("perscom token", kPerscomToken);
  env_.push_back("TENANT_NOT_A_UUID=S3CR3T-env-tenant-not-a-uuid");
  write_config(
      "state_dir: state\n"
      "sources:\n"
      "  hr: {type: csv, path: users.csv, key: id}\n"
      "  ldap:\n    type: ldap\n    url: ldap://127.0.0.1:1\n    bind_dn: cn=x\n"
      "    bind_password: {value: S3CR3T-bind-password-in-a-map}\n"
      "  api:\n    type: http_json\n    url: 'https://svc:S3CR3T-url-password@api.example.com/users'\n    key: /id\n"
      "targets:\n"
      "  perscom:\n    type: perscom\n    base_url: https://perscom.example.com\n"
      "    token: [S3CR3T-literal-token-in-a-list]\n"
      "    perscom_id: ${file:secrets/too-big}\n"
      "    tokn: S3CR3T-misspelled-key-value\n"
      "  hesh-literal:\n    type: hesh\n    tenant_id: 'S3CR3T-literal-tenant \"q\" é'\n"
      "  hesh-env:\n    type: hesh\n    tenant_id: ${env:TENANT_NOT_A_UUID}\n    api_key: ${cred:no-such-credential}\n"
      "  royalti:\n    type: royalti\n    base_url: https://royalti.example.com\n"
      "    token: S3CR3T-first-of-two-tokens\n    token: ${env:NO_SUCH_VARIABLE}\n"
      "  healvi:\n    type: healvi\n    base_url: https://healvi.example.com\n    customer_id: 1\n"
      "    token: ${vault:S3CR3T-unknown-kind}\n"
      "jobs: {}\n");
  auto check = dirsync({"check-config"}, 2);
  const std::string errors = check.out + check.err;
  for (const char* expected : {"tenant_id from (literal) is not a UUID v4", "${env:TENANT_NOT_A_UUID}",
                               "${file:secrets/too-big}", "larger than 64 KiB", "${cred:no-such-credential}",
                               "holds credentials", "unknown key 'tokn'", "duplicate key 'token'",
                               "bad value (a list) for 'token'", "bad value (a map) for 'bind_password'",
                               "unknown kind of reference 'vault'"}) {
    EXPECT_TRUE(has(errors, expected)) << "missing: " << expected << "\n" << shown(check);
  }
  dirsync({"sync", "--all"}, 2);
  dirsync({"status", "--json"}, 2);
  dirsync({"plan", "any", "--explain", "x"}, 2);
  {
    DaemonProcess daemon({"--config", (dir_ / "dirsync.yaml").string(), "--log-level", "trace", "daemon"}, env_,
                         (dir_ / "daemon.log").string());
    EXPECT_EQ(daemon.wait(), 2) << shown(daemon.log());
    add_artifact("daemon refusing the configuration", daemon.log());
  }

  // A YAML syntax error on the very line of a literal secret.
  scanner_.add("literal token on a malformed line", "S3CR3T-on-a-broken-line");
  write_config("state_dir: state\ntargets:\n  p:\n    type: perscom\n    token: \"S3CR3T-on-a-broken-line\" [x\n"
               "    base_url: https://perscom.example.com\n");
  auto malformed = dirsync({"check-config"}, 2);
  EXPECT_TRUE(has(malformed.out + malformed.err, "malformed YAML")) << shown(malformed);

  for (const auto& leak : leaks()) ADD_FAILURE() << "secret leaked: " << leak;
}

}  // namespace
}  // namespace dirsync::testing
