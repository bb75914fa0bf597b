#pragma once
// Per-record checks of source data before it reaches a target: bad data is
// reported for that one record (with the reason) and never aborts the run.
//
// What counts as bad, for every string (keys, values at any depth of a
// payload, member names of nested objects):
// - invalid UTF-8: a stray continuation byte, a truncated sequence, an overlong
//   encoding (C0 80, E0 80 80, ...), a UTF-16 surrogate (U+D800..U+DFFF) or a
//   code point above U+10FFFF;
// - a control character: C0 (U+0000..U+001F, tab and line breaks included:
//   every field a target takes is single-line), DEL (U+007F) or C1
//   (U+0080..U+009F).
// For fields with a FieldSpec (core/target.h), also:
// - FieldSpec::max_length: more Unicode code points than that;
// - FieldFormat::kEmail: not an address by this pragmatic check, which accepts
//   `local@domain` where
//     the whole address is at most 254 octets and holds exactly one '@';
//     local is 1..64 octets of letters, digits, !#$%&'*+/=?^_`{|}~- and
//       non-ASCII UTF-8 (RFC 6531), with dots between (not first, last or
//       doubled); quoted local parts ("a b"@x.org) are refused;
//     domain is two or more dot-separated labels of 1..63 octets, each of
//       [A-Za-z0-9-] or non-ASCII UTF-8 (an IDN as typed), not starting or
//       ending with '-'; no trailing dot, no address literal ([1.2.3.4]).
//   An empty string is not an address.
// Only strings are checked: numbers, booleans and null pass (the mapping's
// FieldType coercion is what decides types).
//
// Pure functions, thread-safe.
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/target.h"

namespace dirsync::core {

// Problems of a mapped payload against the target's field specs: invalid
// UTF-8, control characters, values longer than FieldSpec::max_length, values
// that are not email addresses in FieldFormat::kEmail fields. Empty: the
// payload is fine. Each message is one line, names the field (with its path
// inside arrays and objects: "emails[1]", "address.city") and says what is
// wrong, quoting the value through `printable` (never raw bytes), e.g.
//   field 'email': "bob@@x" is not a valid email address (more than one '@')
// A spec applies to every string under its field (each element of an array
// field is checked against the format and length). Fields without a spec are
// still checked for UTF-8 and control characters. One message per problem:
// a value that is not UTF-8 gets only that message.
std::vector<std::string> validate_payload(const nlohmann::json& payload, std::span<const FieldSpec> fields);

// A source key that cannot be used as a key (empty, invalid UTF-8, control
// characters): the reason, quoting the key through `printable`; nullopt when
// the key is fine. Surrounding spaces are allowed (sources decide about those).
std::optional<std::string> validate_key(std::string_view key);

// `text` safe to print and to put in JSON: invalid UTF-8 bytes and control
// characters as \xNN (each escape is one byte of `text`; a C1 character is its
// two UTF-8 bytes), cut to `max_bytes` with "..." when longer (never inside an
// escape or a character; 0: no limit). Valid UTF-8 without control characters
// comes back unchanged when it fits, so a good key prints as itself. Not
// reversible: a backslash is left as it is.
std::string printable(std::string_view text, std::size_t max_bytes = 80);

}  // namespace dirsync::core
