#include "connectors/sources/ldap/ldap_source.h"

#include <ldap.h>
#include <poll.h>
#include <strings.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>

#include "core/diff.h"

namespace dirsync::sources {
namespace {

using core::Error;
using core::ErrorKind;

struct LdapDeleter {
  void operator()(LDAP* ld) const { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};
using LdapPtr = std::unique_ptr<LDAP, LdapDeleter>;

// An LDAP handle plus what libldap 2.5 leaves out:
// - a connect callback, to tell a refused TCP connection from a failed TLS
//   handshake (libldap reports both of ldaps:// as "Can't contact LDAP server");
// - a bound on the TLS handshake. libldap 2.5 with GnuTLS spins in it for as
//   long as the peer stays silent; a sockbuf layer under the TLS layer waits
//   (poll) for the socket at most `timeout_ms` before each read and write while
//   `guard_io` is set, and fails that read or write with ETIMEDOUT.
// Heap-allocated and never moved: libldap keeps pointers to `cb` and to this
// object until the handle is freed, so `ld` is declared last and destroyed first.
struct Connection {
  ldap_conncb cb{};
  int timeout_ms = -1;  // -1: no bound
  bool tcp_connected = false;
  bool guard_io = false;   // during connect, StartTLS and the TLS handshake
  bool timed_out = false;  // a guarded read or write gave up
  ber_socket_t fd = -1;
  LdapPtr ld;

  explicit Connection(std::chrono::milliseconds timeout) {
    if (timeout.count() > 0) timeout_ms = static_cast<int>(std::min<std::int64_t>(timeout.count(), INT_MAX));
    cb.lc_add = &on_connect;
    cb.lc_del = [](LDAP*, Sockbuf*, ldap_conncb*) {};
    cb.lc_arg = this;
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  LDAP* get() const { return ld.get(); }

 private:
  static int on_connect(LDAP*, Sockbuf* sb, LDAPURLDesc*, sockaddr*, ldap_conncb* cb) {
    auto* c = static_cast<Connection*>(cb->lc_arg);
    c->tcp_connected = true;
    if (c->timeout_ms >= 0 && ber_sockbuf_ctrl(sb, LBER_SB_OPT_GET_FD, &c->fd) == 1) {
      static Sockbuf_IO io = {&setup, nullptr, &ctrl, &read, &write, nullptr};
      ber_sockbuf_add_io(sb, &io, LBER_SBIOD_LEVEL_TRANSPORT, c);
    }
    return 0;
  }
  static int setup(Sockbuf_IO_Desc* d, void* arg) {
    d->sbiod_pvt = arg;
    return 0;
  }
  static int ctrl(Sockbuf_IO_Desc* d, int opt, void* arg) { return LBER_SBIOD_CTRL_NEXT(d, opt, arg); }
  static ber_slen_t read(Sockbuf_IO_Desc* d, void* buf, ber_len_t len) {
    return ready(d, POLLIN) ? LBER_SBIOD_READ_NEXT(d, buf, len) : -1;
  }
  static ber_slen_t write(Sockbuf_IO_Desc* d, void* buf, ber_len_t len) {
    return ready(d, POLLOUT) ? LBER_SBIOD_WRITE_NEXT(d, buf, len) : -1;
  }
  static bool ready(Sockbuf_IO_Desc* d, short events) {
    auto* c = static_cast<Connection*>(d->sbiod_pvt);
    if (!c->guard_io) return true;
    pollfd p{c->fd, events, 0};
    int n = 0;
    do {
      n = ::poll(&p, 1, c->timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n != 0) return true;  // ready, or an error the read/write itself reports
    c->timed_out = true;
    errno = ETIMEDOUT;
    return false;
  }
};

struct MessageDeleter {
  void operator()(LDAPMessage* m) const { ldap_msgfree(m); }
};
struct ControlsDeleter {
  void operator()(LDAPControl** c) const { ldap_controls_free(c); }
};

bool iequals(const std::string& a, const char* b) { return strcasecmp(a.c_str(), b) == 0; }

// The server's diagnostic message for the last operation; empty when none.
// Debian's libldap (GnuTLS) leaves "(unknown error code)" after a refused TLS
// handshake, which says nothing: dropped.
std::string diagnostic(LDAP* ld) {
  std::string out;
  char* diag = nullptr;
  if (ld != nullptr && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) == LDAP_OPT_SUCCESS && diag != nullptr) {
    out = diag;
    ldap_memfree(diag);
  }
  return out == "(unknown error code)" ? std::string() : out;
}

// The library's text for `rc` plus the server's diagnostic, when it sent one
// (AD puts the reason there: "... AcceptSecurityContext error, data 52e").
std::string describe_rc(LDAP* ld, int rc) {
  std::string out = ldap_err2string(rc);
  if (std::string diag = diagnostic(ld); !diag.empty()) out += " (" + diag + ")";
  return out;
}

Error fail(const std::string& url, const std::string& step, LDAP* ld, int rc, ErrorKind kind = ErrorKind::kSource) {
  return Error{kind, "ldap " + url + ": " + step + " failed: " + describe_rc(ld, rc)};
}

bool connection_lost(int rc) { return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR; }

// Milliseconds as the timeval libldap wants; nullopt for "no limit".
std::optional<timeval> to_timeval(std::chrono::milliseconds ms) {
  if (ms.count() <= 0) return std::nullopt;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string hex(std::string_view v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(v.size() * 2);
  for (const char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

// Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view v) {
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  const std::size_t n = v.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

int to_ldap_scope(LdapSourceSettings::Scope scope) {
  switch (scope) {
    case LdapSourceSettings::Scope::kBase: return LDAP_SCOPE_BASE;
    case LdapSourceSettings::Scope::kOne: return LDAP_SCOPE_ONELEVEL;
    case LdapSourceSettings::Scope::kSub: return LDAP_SCOPE_SUBTREE;
  }
  return LDAP_SCOPE_SUBTREE;
}

// What the search asks for: the configured attributes (all user attributes
// when none are), plus the key attribute, which may be operational (entryUUID
// is, and `*` does not return operational attributes).
std::vector<std::string> requested_attributes(const LdapSourceSettings& s) {
  std::vector<std::string> out = s.attributes;
  if (out.empty()) out.emplace_back("*");
  const bool key_is_dn = iequals(s.key, "dn");
  const bool listed =
      std::any_of(out.begin(), out.end(), [&](const std::string& a) { return iequals(a, s.key.c_str()); });
  if (!key_is_dn && !listed) out.push_back(s.key);
  return out;
}

class LdapPull : public core::Pull {
 public:
  LdapPull(const LdapSourceSettings& s, std::unique_ptr<Connection> conn)
      : s_(s), conn_(std::move(conn)), attrs_(requested_attributes(s)), key_is_dn_(iequals(s.key, "dn")) {}
  ~LdapPull() override {
    if (cookie_.bv_val != nullptr) ber_memfree(cookie_.bv_val);
  }

  core::Result<core::Page> next() override {
    ++page_number_;
    LDAPControl* page_ctrl = nullptr;
    // Critical: a server that cannot page must refuse, not return a truncated whole.
    int rc = ldap_create_page_control(conn_->get(), static_cast<ber_int_t>(s_.page_size), &cookie_, 1, &page_ctrl);
    if (rc != LDAP_SUCCESS) return fail(s_.url, "search (paged-results control)", conn_->get(), rc);
    LDAPControl* server_ctrls[] = {page_ctrl, nullptr};

    std::vector<char*> attrs;
    for (auto& a : attrs_) attrs.push_back(const_cast<char*>(a.c_str()));
    attrs.push_back(nullptr);

    // Bounds the wait for this page and, rounded up to seconds, is sent as the
    // server-side time limit.
    auto tv = to_timeval(s_.timeout);
    LDAPMessage* raw = nullptr;
    rc = ldap_search_ext_s(conn_->get(), s_.base_dn.c_str(), to_ldap_scope(s_.scope), s_.filter.c_str(), attrs.data(),
                           0, server_ctrls, nullptr, tv ? &*tv : nullptr, LDAP_NO_LIMIT, &raw);
    ldap_control_free(page_ctrl);
    std::unique_ptr<LDAPMessage, MessageDeleter> res(raw);
    if (rc != LDAP_SUCCESS) return search_failed(rc);

    int err = LDAP_SUCCESS;
    LDAPControl** raw_ctrls = nullptr;
    rc = ldap_parse_result(conn_->get(), res.get(), &err, nullptr, nullptr, nullptr, &raw_ctrls, 0);
    std::unique_ptr<LDAPControl*, ControlsDeleter> ctrls(raw_ctrls);
    if (rc != LDAP_SUCCESS) return search_failed(rc);
    if (err != LDAP_SUCCESS) return search_failed(err);

    core::Page page;
    for (LDAPMessage* e = ldap_first_entry(conn_->get(), res.get()); e != nullptr;
         e = ldap_next_entry(conn_->get(), e)) {
      add_entry(e, page);
    }
    entries_ += page.records.size() + page.issues.size();

    if (cookie_.bv_val != nullptr) ber_memfree(cookie_.bv_val);
    cookie_ = berval{0, nullptr};
    if (LDAPControl* resp = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, ctrls.get(), nullptr)) {
      ber_int_t estimate = 0;
      rc = ldap_parse_pageresponse_control(conn_->get(), resp, &estimate, &cookie_);
      if (rc != LDAP_SUCCESS) return fail(s_.url, "search (paged-results response)", conn_->get(), rc);
    }
    // An empty cookie ends the search (RFC 2696 §3).
    page.last = cookie_.bv_val == nullptr || cookie_.bv_len == 0;
    return page;
  }

 private:
  Error search_failed(int rc) {
    // "search (page 3, after 1000 entries; connection lost)": where the pull broke off.
    std::string where;
    if (page_number_ > 1)
      where = "page " + std::to_string(page_number_) + ", after " + std::to_string(entries_) + " entries";
    if (connection_lost(rc)) where += (where.empty() ? "" : "; ") + std::string("connection lost");
    const std::string step = where.empty() ? "search" : "search (" + where + ")";
    if (rc == LDAP_SIZELIMIT_EXCEEDED) {
      // With paging, only a limit on the whole paged search stops it (OpenLDAP's
      // size.prtotal): the bind DN needs a higher one on the server.
      const std::string who = s_.bind_dn.empty() ? "anonymous" : s_.bind_dn;
      return Error{ErrorKind::kSource, "ldap " + s_.url + ": " + step + " failed: " + describe_rc(conn_->get(), rc) +
                                           "; the server caps how many entries " + who +
                                           " may read, even paged: raise that limit on the server"};
    }
    return fail(s_.url, step, conn_->get(), rc);
  }

  void add_entry(LDAPMessage* e, core::Page& page) {
    core::Record rec;
    char* dn = ldap_get_dn(conn_->get(), e);
    std::string dn_str = dn != nullptr ? dn : "";
    ldap_memfree(dn);
    rec.origin = dn_str;
    rec.set("dn", {dn_str});
    BerElement* ber = nullptr;
    for (char* a = ldap_first_attribute(conn_->get(), e, &ber); a != nullptr;
         a = ldap_next_attribute(conn_->get(), e, ber)) {
      std::string name = a;
      ldap_memfree(a);
      const bool binary = std::any_of(s_.binary_attributes.begin(), s_.binary_attributes.end(),
                                      [&](const std::string& b) { return iequals(name, b.c_str()); });
      std::vector<std::string> values;
      berval** vals = ldap_get_values_len(conn_->get(), e, name.c_str());
      for (int i = 0; vals != nullptr && vals[i] != nullptr; ++i) {
        // Bytes that are not UTF-8 (photos, certificates, an undeclared binary
        // attribute) become hex as well: every value a record carries is text.
        values.push_back(detail::ldap_value_text(std::string_view(vals[i]->bv_val, vals[i]->bv_len), binary));
      }
      ldap_value_free_len(vals);
      if (iequals(name, "userAccountControl") && !values.empty()) {
        if (auto disabled = detail::account_disabled(values.front())) rec.set("accountDisabled", {*disabled});
      }
      rec.set(std::move(name), std::move(values));
    }
    if (ber != nullptr) ber_free(ber, 0);

    if (key_is_dn_) {
      rec.key = dn_str;
    } else if (const core::Attribute* key = rec.find(s_.key); key == nullptr || key->values.empty()) {
      page.issues.push_back({"", dn_str, "entry has no " + s_.key + " (the key attribute)"});
      return;
    } else if (key->values.size() > 1) {
      // Value order is not stable in LDAP: no value of several can be the key.
      page.issues.push_back({"", dn_str,
                             "key attribute " + s_.key + " has " + std::to_string(key->values.size()) +
                                 " values; a key needs exactly one"});
      return;
    } else {
      rec.key = key->values.front();
    }
    if (rec.key.empty()) {
      page.issues.push_back({"", dn_str, "entry has an empty " + s_.key + " (the key attribute)"});
      return;
    }
    if (auto first = keys_.add(rec.key, entries_)) {
      // The first one went out as a record; this one protects the key from detach.
      page.issues.push_back({rec.key, dn_str,
                             "duplicate key '" + rec.key + "' (also entry #" + std::to_string(*first) +
                                 " of this pull)"});
      return;
    }
    page.records.push_back(std::move(rec));
  }

  LdapSourceSettings s_;
  std::unique_ptr<Connection> conn_;
  std::vector<std::string> attrs_;
  bool key_is_dn_;
  berval cookie_{0, nullptr};
  int page_number_ = 0;
  std::size_t entries_ = 0;
  // Every key of this pull (8 bytes each) with its entry number, to find duplicates.
  core::PullKeys keys_;
};

class LdapSource : public core::Source {
 public:
  explicit LdapSource(LdapSourceSettings s) : s_(std::move(s)) {}

  core::Result<std::unique_ptr<core::Pull>> start() override {
    if (!s_.bind_dn.empty() && s_.bind_password.empty()) {
      // RFC 4513 §5.1.2: a DN without a password is an "unauthenticated" bind,
      // which some servers (AD) accept as anonymous. Never send one.
      return Error{ErrorKind::kAuth, "ldap " + s_.url + ": bind as " + s_.bind_dn +
                                         " refused: the password is empty (an unauthenticated bind)"};
    }
    auto conn = std::make_unique<Connection>(s_.timeout);
    LDAP* raw = nullptr;
    int rc = ldap_initialize(&raw, s_.url.c_str());
    conn->ld.reset(raw);
    if (rc != LDAP_SUCCESS) return fail(s_.url, "connect", nullptr, rc);
    LDAP* ld = conn->get();
    int version = LDAP_VERSION3;
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    if (auto tv = to_timeval(s_.connect_timeout)) ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &*tv);
    // The default wait of synchronous operations (StartTLS, bind); searches pass their own.
    if (auto tv = to_timeval(s_.timeout)) ldap_set_option(ld, LDAP_OPT_TIMEOUT, &*tv);
    ldap_set_option(ld, LDAP_OPT_CONNECT_CB, &conn->cb);

    const bool ldaps = s_.url.starts_with("ldaps://");
    if (ldaps || s_.start_tls) {
      if (auto error = setup_tls(ld)) return *error;
    }

    // TCP (and for ldaps://, the TLS handshake) now, so that a failure is named.
    conn->guard_io = true;
    rc = ldap_connect(ld);
    if (rc != LDAP_SUCCESS) {
      if (ldaps && conn->tcp_connected) return tls_failed("TLS handshake", *conn, rc);
      return fail(s_.url, "connect", ld, rc);
    }
    if (!ldaps && s_.start_tls) {
      rc = ldap_start_tls_s(ld, nullptr, nullptr);
      // The server agreed, then the handshake failed (libldap's code for it).
      if (rc == LDAP_CONNECT_ERROR) return tls_failed("StartTLS (TLS handshake)", *conn, rc);
      if (rc != LDAP_SUCCESS) {
        return fail(s_.url, rc == LDAP_SERVER_DOWN ? "StartTLS (connection lost)" : "StartTLS", ld, rc);
      }
    }
    conn->guard_io = false;  // from here on libldap's own timeouts apply

    // Anonymous simple bind: empty DN and an empty (not null) credential.
    berval cred{0, nullptr};
    if (!s_.bind_dn.empty()) {
      cred.bv_val = const_cast<char*>(s_.bind_password.reveal().data());
      cred.bv_len = s_.bind_password.reveal().size();
    }
    rc = ldap_sasl_bind_s(ld, s_.bind_dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
    if (rc != LDAP_SUCCESS) {
      std::string step = "bind as " + (s_.bind_dn.empty() ? std::string("anonymous") : s_.bind_dn);
      if (connection_lost(rc)) step += " (connection lost)";
      return fail(s_.url, step, ld, rc, rc == LDAP_INVALID_CREDENTIALS ? ErrorKind::kAuth : ErrorKind::kSource);
    }
    return std::unique_ptr<core::Pull>(std::make_unique<LdapPull>(s_, std::move(conn)));
  }

  std::string describe() const override { return "ldap " + s_.url + " " + s_.base_dn; }

 private:
  std::string ca_description() const { return s_.ca_file.empty() ? "the system CA store" : "ca_file " + s_.ca_file; }

  // Peer verification on, TLS 1.2 or later, and a context of this handle's own:
  // without NEWCTX the options would not apply to an already made global one.
  std::optional<Error> setup_tls(LDAP* ld) const {
    int demand = LDAP_OPT_X_TLS_DEMAND;
    int rc = ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
    int min_version = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
    if (rc == LDAP_OPT_SUCCESS) rc = ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &min_version);
    if (rc == LDAP_OPT_SUCCESS && !s_.ca_file.empty()) {
      rc = ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, s_.ca_file.c_str());
    }
    int is_server = 0;
    if (rc == LDAP_OPT_SUCCESS) rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &is_server);
    if (rc != LDAP_OPT_SUCCESS) {
      return fail(s_.url, "TLS setup (" + ca_description() + ")", ld, rc == LDAP_OPT_ERROR ? LDAP_LOCAL_ERROR : rc);
    }
    return std::nullopt;
  }

  // GnuTLS gives libldap no reason for a refused handshake: name the usual causes.
  Error tls_failed(const std::string& step, const Connection& conn, int rc) const {
    if (conn.timed_out) {
      return Error{ErrorKind::kSource, "ldap " + s_.url + ": " + step + " failed: Timed out (no answer within " +
                                           std::to_string(s_.timeout.count()) + " ms)"};
    }
    return Error{ErrorKind::kSource, "ldap " + s_.url + ": " + step + " failed: " + describe_rc(conn.get(), rc) +
                                         "; is the server's certificate signed by a CA in " + ca_description() +
                                         " and issued for the host in the URL, and does the port speak TLS?"};
  }

  LdapSourceSettings s_;
};

}  // namespace

std::string detail::ldap_value_text(std::string_view bytes, bool binary) {
  return binary || !valid_utf8(bytes) ? hex(bytes) : std::string(bytes);
}

std::optional<std::string> detail::account_disabled(std::string_view user_account_control) {
  long long uac = 0;
  const char* end = user_account_control.data() + user_account_control.size();
  auto [stop, ec] = std::from_chars(user_account_control.data(), end, uac);
  if (ec != std::errc() || stop != end) return std::nullopt;
  return (uac & 0x2) != 0 ? "true" : "false";  // ACCOUNTDISABLE
}

std::unique_ptr<core::Source> make_ldap_source(const LdapSourceSettings& settings) {
  return std::make_unique<LdapSource>(settings);
}

}  // namespace dirsync::sources
