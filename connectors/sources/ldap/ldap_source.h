#pragma once
// LDAP source (OpenLDAP libldap, LDAPv3): one search with the Simple Paged
// Results control (RFC 2696, marked critical), one page of the server per
// core::Page, so a directory larger than the server's size limit comes through
// whole. Contract beyond core/source.h:
// - Connection: start() connects, upgrades with StartTLS (ldap://, unless
//   start_tls is off) or speaks TLS from the start (ldaps://), then binds
//   (simple; anonymous when bind_dn is empty). A StartTLS failure fails the pull:
//   never a plaintext fall-back. Certificates are always verified (DEMAND),
//   against ca_file or the system store, TLS 1.2 or later. A bind_dn with an
//   empty password is refused before anything is sent (an "unauthenticated bind"
//   that AD would accept as anonymous).
// - Timeouts: connect_timeout bounds the TCP connect; `timeout` bounds each
//   wait for the server (TLS handshake, StartTLS, bind, each page), and is sent
//   as the server-side time limit of the search.
// - Records: the key attribute is always requested (entryUUID is operational:
//   `*` alone would not return it). Attribute names are as the server returns
//   them; values stay multi-valued; the entry's DN is attribute "dn" and the
//   record's origin. Values of binary_attributes, and any value that is not
//   valid UTF-8, are lowercase hex of the bytes as stored (objectGUID included:
//   not the braced Microsoft GUID form). When userAccountControl is present,
//   "accountDisabled" is "true"/"false" (AD's ACCOUNTDISABLE bit 0x2).
// - Issues: an entry without the key attribute, or with several values of it,
//   is a RecordIssue with an empty key (the pull is then incomplete: nothing
//   detaches) and origin = its DN. A key seen a second time in one pull is a
//   RecordIssue carrying that key (it protects the key), "duplicate key 'K'
//   (also entry #N of this pull)"; the first occurrence stays a record. For this
//   the pull keeps a 64-bit hash of every key it has yielded (core::PullKeys).
// - Errors name the step and carry the server's diagnostic: "ldap <url>: <step>
//   failed: ...", where the step is connect, TLS setup, TLS handshake, StartTLS,
//   bind as <dn>, or search (with the page and the entry count when the pull
//   broke off mid-way, and "connection lost"). A size limit on the paged
//   search is "Size limit exceeded" with what to raise. Invalid credentials are ErrorKind::kAuth, everything else
//   kSource. The password never appears, nor in describe().
//
// Thread safety: a Source may start pulls from several threads; each Pull owns
// its connection and is used from one thread at a time.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/source.h"

namespace dirsync::sources {

using LdapSourceSettings = config::LdapSourceSettings;
// No I/O happens here; the connection is made by start().
std::unique_ptr<core::Source> make_ldap_source(const LdapSourceSettings& settings);

namespace detail {
// One attribute value as a record carries it: lowercase hex of the bytes when
// `binary` or when they are not strict UTF-8, else the bytes unchanged. Pure.
std::string ldap_value_text(std::string_view bytes, bool binary);
// "true"/"false" for AD's ACCOUNTDISABLE bit of a userAccountControl value;
// nullopt when the value is not a decimal integer. Pure.
std::optional<std::string> account_disabled(std::string_view user_account_control);
}  // namespace detail

}  // namespace dirsync::sources
