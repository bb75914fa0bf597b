#include "connectors/sources/ldap/ldap_source.h"

#include <ldap.h>

#include <algorithm>
#include <cstdlib>
#include <strings.h>
#include <utility>

namespace dirsync::sources {
namespace {

using core::Error;
using core::ErrorKind;

// Frees an LDAP handle, message or control on scope exit.
struct LdapDeleter {
  void operator()(LDAP* ld) const { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};
using LdapPtr = std::unique_ptr<LDAP, LdapDeleter>;

std::string diagnostic(LDAP* ld, int rc) {
  std::string out = ldap_err2string(rc);
  char* diag = nullptr;
  if (ld != nullptr && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) == LDAP_OPT_SUCCESS && diag != nullptr) {
    if (*diag != '\0') out += std::string(" (") + diag + ")";
    ldap_memfree(diag);
  }
  return out;
}

Error fail(const std::string& url, const std::string& step, LDAP* ld, int rc) {
  return Error{ErrorKind::kSource, "ldap " + url + ": " + step + " failed: " + diagnostic(ld, rc)};
}

bool is_binary(const LdapSourceSettings& s, const char* name) {
  return std::any_of(s.binary_attributes.begin(), s.binary_attributes.end(),
                     [&](const std::string& b) { return strcasecmp(b.c_str(), name) == 0; });
}

std::string hex(const berval& v) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(v.bv_len * 2);
  for (ber_len_t i = 0; i < v.bv_len; ++i) {
    auto c = static_cast<unsigned char>(v.bv_val[i]);
    out += digits[c >> 4];
    out += digits[c & 0xf];
  }
  return out;
}

class LdapPull : public core::Pull {
 public:
  LdapPull(LdapSourceSettings s, LdapPtr ld) : s_(std::move(s)), ld_(std::move(ld)) {}
  ~LdapPull() override {
    if (cookie_.bv_val != nullptr) ber_memfree(cookie_.bv_val);
  }

  core::Result<core::Page> next() override {
    LDAPControl* page_ctrl = nullptr;
    int rc = ldap_create_page_control(ld_.get(), static_cast<ber_int_t>(s_.page_size), &cookie_, 1, &page_ctrl);
    if (rc != LDAP_SUCCESS) return fail(s_.url, "search (paged-results control)", ld_.get(), rc);
    LDAPControl* server_ctrls[] = {page_ctrl, nullptr};

    std::vector<char*> attrs;
    for (auto& a : s_.attributes) attrs.push_back(const_cast<char*>(a.c_str()));
    attrs.push_back(nullptr);

    int scope = s_.scope == LdapSourceSettings::Scope::kBase  ? LDAP_SCOPE_BASE
                : s_.scope == LdapSourceSettings::Scope::kOne ? LDAP_SCOPE_ONELEVEL
                                                              : LDAP_SCOPE_SUBTREE;
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(s_.timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((s_.timeout.count() % 1000) * 1000);
    LDAPMessage* res = nullptr;
    rc = ldap_search_ext_s(ld_.get(), s_.base_dn.c_str(), scope, s_.filter.c_str(),
                           s_.attributes.empty() ? nullptr : attrs.data(), 0, server_ctrls, nullptr, &tv,
                           LDAP_NO_LIMIT, &res);
    ldap_control_free(page_ctrl);
    std::unique_ptr<LDAPMessage, int (*)(LDAPMessage*)> guard(res, ldap_msgfree);
    if (rc == LDAP_SIZELIMIT_EXCEEDED) return fail(s_.url, "search (size limit)", ld_.get(), rc);
    if (rc != LDAP_SUCCESS) return fail(s_.url, "search", ld_.get(), rc);

    core::Page page;
    for (LDAPMessage* e = ldap_first_entry(ld_.get(), res); e != nullptr; e = ldap_next_entry(ld_.get(), e)) {
      add_entry(e, page);
    }

    // Read the server's paged-results response to get the next cookie.
    int err = 0;
    LDAPControl** ctrls = nullptr;
    rc = ldap_parse_result(ld_.get(), res, &err, nullptr, nullptr, nullptr, &ctrls, 0);
    if (rc != LDAP_SUCCESS) return fail(s_.url, "search (result)", ld_.get(), rc);
    if (err == LDAP_SIZELIMIT_EXCEEDED) {
      ldap_controls_free(ctrls);
      return fail(s_.url, "search (size limit)", ld_.get(), err);
    }
    if (err != LDAP_SUCCESS) {
      ldap_controls_free(ctrls);
      return fail(s_.url, "search", ld_.get(), err);
    }
    LDAPControl* resp = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, ctrls, nullptr);
    if (cookie_.bv_val != nullptr) {
      ber_memfree(cookie_.bv_val);
      cookie_ = berval{0, nullptr};
    }
    if (resp != nullptr) {
      ber_int_t estimate = 0;
      rc = ldap_parse_pageresponse_control(ld_.get(), resp, &estimate, &cookie_);
      if (rc != LDAP_SUCCESS) {
        ldap_controls_free(ctrls);
        return fail(s_.url, "search (paged-results response)", ld_.get(), rc);
      }
    }
    ldap_controls_free(ctrls);
    // No response control (server ignored paging) or an empty cookie: done.
    page.last = cookie_.bv_val == nullptr || cookie_.bv_len == 0;
    return page;
  }

 private:
  void add_entry(LDAPMessage* e, core::Page& page) {
    core::Record rec;
    char* dn = ldap_get_dn(ld_.get(), e);
    std::string dn_str = dn != nullptr ? dn : "";
    ldap_memfree(dn);
    rec.origin = dn_str;
    rec.set("dn", {dn_str});
    BerElement* ber = nullptr;
    for (char* a = ldap_first_attribute(ld_.get(), e, &ber); a != nullptr; a = ldap_next_attribute(ld_.get(), e, ber)) {
      std::vector<std::string> values;
      berval** vals = ldap_get_values_len(ld_.get(), e, a);
      bool binary = is_binary(s_, a);
      for (int i = 0; vals != nullptr && vals[i] != nullptr; ++i) {
        values.push_back(binary ? hex(*vals[i]) : std::string(vals[i]->bv_val, vals[i]->bv_len));
      }
      ldap_value_free_len(vals);
      std::string name = a;
      ldap_memfree(a);
      if (strcasecmp(name.c_str(), "userAccountControl") == 0 && !values.empty()) {
        long uac = std::strtol(values.front().c_str(), nullptr, 10);
        rec.set("accountDisabled", {(uac & 0x2) != 0 ? "true" : "false"});
      }
      rec.set(std::move(name), std::move(values));
    }
    if (ber != nullptr) ber_free(ber, 0);

    if (strcasecmp(s_.key.c_str(), "dn") == 0) {
      rec.key = dn_str;
    } else {
      for (auto& attr : rec.attributes) {
        if (strcasecmp(attr.name.c_str(), s_.key.c_str()) == 0 && !attr.values.empty()) {
          rec.key = attr.values.front();
          break;
        }
      }
    }
    if (rec.key.empty()) {
      page.issues.push_back(core::RecordIssue{"", dn_str, "entry has no key attribute " + s_.key});
      return;
    }
    page.records.push_back(std::move(rec));
  }

  LdapSourceSettings s_;
  LdapPtr ld_;
  berval cookie_{0, nullptr};
};

class LdapSource : public core::Source {
 public:
  explicit LdapSource(LdapSourceSettings s) : s_(std::move(s)) {}

  core::Result<std::unique_ptr<core::Pull>> start() override {
    LDAP* raw = nullptr;
    int rc = ldap_initialize(&raw, s_.url.c_str());
    LdapPtr ld(raw);
    if (rc != LDAP_SUCCESS) return fail(s_.url, "connect", nullptr, rc);
    int version = LDAP_VERSION3;
    ldap_set_option(ld.get(), LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(ld.get(), LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(s_.timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((s_.timeout.count() % 1000) * 1000);
    ldap_set_option(ld.get(), LDAP_OPT_NETWORK_TIMEOUT, &tv);
    ldap_set_option(ld.get(), LDAP_OPT_TIMEOUT, &tv);
    int demand = LDAP_OPT_X_TLS_DEMAND;
    ldap_set_option(ld.get(), LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
    if (!s_.ca_file.empty()) ldap_set_option(ld.get(), LDAP_OPT_X_TLS_CACERTFILE, s_.ca_file.c_str());
    int is_server = 0;
    ldap_set_option(ld.get(), LDAP_OPT_X_TLS_NEWCTX, &is_server);

    bool ldaps = s_.url.rfind("ldaps://", 0) == 0;
    if (!ldaps && s_.start_tls) {
      rc = ldap_start_tls_s(ld.get(), nullptr, nullptr);
      if (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR) return fail(s_.url, "connect", ld.get(), rc);
      if (rc != LDAP_SUCCESS) return fail(s_.url, "StartTLS", ld.get(), rc);
    }
    // Anonymous simple bind: empty DN and an empty (not null) credential.
    berval cred{0, nullptr};
    if (!s_.bind_dn.empty()) {
      cred.bv_val = const_cast<char*>(s_.bind_password.reveal().c_str());
      cred.bv_len = s_.bind_password.reveal().size();
    }
    rc = ldap_sasl_bind_s(ld.get(), s_.bind_dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
    if (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR) {
      return fail(s_.url, ldaps ? "connect/TLS" : "connect", ld.get(), rc);
    }
    if (rc != LDAP_SUCCESS) {
      return Error{rc == LDAP_INVALID_CREDENTIALS ? ErrorKind::kAuth : ErrorKind::kSource,
                   "ldap " + s_.url + ": bind as " + (s_.bind_dn.empty() ? "anonymous" : s_.bind_dn) +
                       " failed: " + diagnostic(ld.get(), rc)};
    }
    return std::unique_ptr<core::Pull>(std::make_unique<LdapPull>(s_, std::move(ld)));
  }

  std::string describe() const override { return "ldap " + s_.url + " " + s_.base_dn; }

 private:
  LdapSourceSettings s_;
};

}  // namespace

std::unique_ptr<core::Source> make_ldap_source(const LdapSourceSettings& settings) {
  return std::make_unique<LdapSource>(settings);
}

}  // namespace dirsync::sources
