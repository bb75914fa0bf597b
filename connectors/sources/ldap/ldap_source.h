#pragma once
// LDAP source (OpenLDAP libldap): one Simple Paged Results (RFC 2696) page per
// core::Page. Contract beyond core/source.h:
// - ldap:// uses StartTLS by default; a StartTLS failure fails the pull (never a
//   plaintext fall-back). Certificates are always verified (REQUIRE_CERT=DEMAND).
// - Values stay multi-valued; the entry's DN is attribute "dn"; attributes listed
//   in binary_attributes are rendered as lowercase hex; when userAccountControl is
//   present, "accountDisabled" is "true"/"false" (AD's ACCOUNTDISABLE bit 0x2).
// - An entry without the key attribute is a RecordIssue with an empty key (the
//   pull is incomplete) and origin = its DN.
// - Errors name the step (connect, TLS, bind, search, size limit) and carry the
//   server's diagnostic; never the password.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/source.h"

namespace dirsync::sources {

using LdapSourceSettings = config::LdapSourceSettings;
// No I/O happens here; the connection is made by start().
std::unique_ptr<core::Source> make_ldap_source(const LdapSourceSettings& settings);

}  // namespace dirsync::sources
