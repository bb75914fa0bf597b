#include "core/validate.h"

#include <algorithm>
#include <cstdio>

namespace dirsync::core {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxEmail = 254;       // RFC 5321 path limit minus the angle brackets
constexpr std::size_t kMaxEmailLocal = 64;   // RFC 5321 local-part limit
constexpr std::size_t kMaxDomainLabel = 63;  // RFC 1035

// One UTF-8 sequence: its length in bytes and its code point. Length 0: the
// bytes at that position are not valid UTF-8.
struct Decoded {
  std::size_t length = 0;
  char32_t code_point = 0;
};

bool in(unsigned char c, unsigned char lo, unsigned char hi) { return c >= lo && c <= hi; }

// Well-formed sequences as Unicode's table 3-7 lists them: the second-byte
// ranges are what exclude overlongs (C0, C1, E0 80..9F, F0 80..8F), surrogates
// (ED A0..BF) and code points above U+10FFFF (F4 90.., F5..FF).
Decoded decode(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char b0 = byte(0);
  if (b0 < 0x80) return {1, b0};
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (in(b0, 0xC2, 0xDF)) n = 2;
  else if (b0 == 0xE0) n = 3, lo = 0xA0;
  else if (b0 == 0xED) n = 3, hi = 0x9F;
  else if (in(b0, 0xE1, 0xEF)) n = 3;
  else if (b0 == 0xF0) n = 4, lo = 0x90;
  else if (b0 == 0xF4) n = 4, hi = 0x8F;
  else if (in(b0, 0xF1, 0xF3)) n = 4;
  else return {};
  if (s.size() - i < n || !in(byte(1), lo, hi)) return {};
  char32_t cp = b0 & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (std::size_t k = 1; k < n; ++k) {
    if (!in(byte(k), 0x80, 0xBF)) return {};
    cp = (cp << 6) | (byte(k) & 0x3F);
  }
  return {n, cp};
}

bool is_control(char32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

// What a string holds, as far as these checks care.
struct Scan {
  std::size_t invalid_at = std::string_view::npos;  // offset of the first byte that is not UTF-8
  std::size_t control_at = std::string_view::npos;  // offset of the first control character
  char32_t control = 0;
  std::size_t code_points = 0;  // meaningful when valid
  bool valid() const { return invalid_at == std::string_view::npos; }
  bool clean() const { return valid() && control_at == std::string_view::npos; }
};

Scan scan(std::string_view s) {
  Scan out;
  for (std::size_t i = 0; i < s.size();) {
    const Decoded d = decode(s, i);
    if (d.length == 0) {
      out.invalid_at = i;
      return out;
    }
    if (is_control(d.code_point) && out.control_at == std::string_view::npos) {
      out.control_at = i;
      out.control = d.code_point;
    }
    ++out.code_points;
    i += d.length;
  }
  return out;
}

std::string hex_byte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02X", c);
  return buf;
}

std::string shown(std::string_view s) { return "\"" + printable(s) + "\""; }

// "is not valid UTF-8 (byte 0xFF at offset 3)" or "contains a control
// character (U+0009 at offset 3)"; empty when the string is clean.
std::string encoding_problem(std::string_view s, const Scan& sc) {
  char buf[96];
  if (!sc.valid()) {
    std::snprintf(buf, sizeof buf, "is not valid UTF-8 (byte 0x%02X at offset %zu)",
                  static_cast<unsigned char>(s[sc.invalid_at]), sc.invalid_at);
    return buf;
  }
  if (!sc.clean()) {
    std::snprintf(buf, sizeof buf, "contains a control character (U+%04X at offset %zu)",
                  static_cast<unsigned>(sc.control), sc.control_at);
    return buf;
  }
  return {};
}

bool is_ascii_alnum(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// RFC 5322 atext, plus non-ASCII (RFC 6531). The string is known to be UTF-8
// without control characters, so every byte >= 0x80 belongs to a character.
bool is_local_char(unsigned char c) {
  static constexpr std::string_view kSpecials = "!#$%&'*+/=?^_`{|}~-";
  return is_ascii_alnum(c) || c >= 0x80 || kSpecials.find(static_cast<char>(c)) != std::string_view::npos;
}

std::string char_name(char c) { return c == ' ' ? std::string("a space") : "'" + std::string(1, c) + "'"; }

// Why `s` (valid UTF-8, no control characters) is not an email address by the
// pragmatic rules in the header; nullopt when it is one.
std::optional<std::string> email_problem(std::string_view s) {
  if (s.empty()) return "empty";
  if (s.size() > kMaxEmail) return "longer than " + std::to_string(kMaxEmail) + " octets";
  const auto at = s.find('@');
  if (at == std::string_view::npos) return "no '@'";
  if (s.find('@', at + 1) != std::string_view::npos) return "more than one '@'";
  const std::string_view local = s.substr(0, at);
  const std::string_view domain = s.substr(at + 1);
  if (local.empty()) return "nothing before the '@'";
  if (local.size() > kMaxEmailLocal) return "more than " + std::to_string(kMaxEmailLocal) + " octets before the '@'";
  for (std::size_t i = 0; i < local.size(); ++i) {
    const char c = local[i];
    if (c == '.') {
      if (i == 0 || i + 1 == local.size() || local[i - 1] == '.') {
        return "the part before the '@' starts or ends with a dot, or has two in a row";
      }
    } else if (!is_local_char(static_cast<unsigned char>(c))) {
      return char_name(c) + " before the '@'";
    }
  }
  if (domain.empty()) return "nothing after the '@'";
  if (domain.find('.') == std::string_view::npos) return "the domain has no dot";
  std::size_t start = 0;
  while (true) {
    const auto dot = domain.find('.', start);
    const std::string_view label = domain.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty()) return "the domain starts or ends with a dot, or has two in a row";
    if (label.size() > kMaxDomainLabel) return "a domain label is longer than " + std::to_string(kMaxDomainLabel) + " octets";
    for (const char c : label) {
      const auto u = static_cast<unsigned char>(c);
      if (!is_ascii_alnum(u) && c != '-' && u < 0x80) return char_name(c) + " in the domain";
    }
    if (label.front() == '-' || label.back() == '-') return "a domain label starts or ends with '-'";
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return std::nullopt;
}

const FieldSpec* find_spec(std::span<const FieldSpec> fields, std::string_view name) {
  for (const auto& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string where(const std::string& path) { return path.empty() ? "the payload: " : "field '" + path + "': "; }

void check_string(const std::string& path, const std::string& s, const FieldSpec* spec, std::vector<std::string>& out) {
  const Scan sc = scan(s);
  if (const std::string bad = encoding_problem(s, sc); !bad.empty()) {
    out.push_back(where(path) + shown(s) + " " + bad);
    if (!sc.valid()) return;  // code points and addresses mean nothing in broken bytes
  }
  if (spec == nullptr) return;
  if (spec->max_length != 0 && sc.code_points > spec->max_length) {
    out.push_back(where(path) + shown(s) + " is " + std::to_string(sc.code_points) +
                  " characters long; the target takes at most " + std::to_string(spec->max_length));
  }
  // A control character was reported above; the address check would only say it again.
  if (spec->format == FieldFormat::kEmail && sc.clean()) {
    if (auto why = email_problem(s)) out.push_back(where(path) + shown(s) + " is not a valid email address (" + *why + ")");
  }
}

void check_value(const json& v, const std::string& path, const FieldSpec* spec, std::vector<std::string>& out);

// Members of an object at `path` (empty: the payload itself, whose members are
// the target's fields and pick their spec by name).
void check_members(const json& object, const std::string& path, std::span<const FieldSpec> fields,
                   const FieldSpec* spec, std::vector<std::string>& out) {
  for (const auto& [name, value] : object.items()) {
    const std::string member = path.empty() ? printable(name, 0) : path + "." + printable(name, 0);
    const Scan sc = scan(name);
    if (const std::string bad = encoding_problem(name, sc); !bad.empty()) {
      out.push_back(where(member) + "the name " + bad);
    }
    check_value(value, member, path.empty() ? find_spec(fields, name) : spec, out);
  }
}

void check_value(const json& v, const std::string& path, const FieldSpec* spec, std::vector<std::string>& out) {
  if (v.is_string()) {
    check_string(path, v.get_ref<const std::string&>(), spec, out);
  } else if (v.is_array()) {
    for (std::size_t i = 0; i < v.size(); ++i) check_value(v[i], path + "[" + std::to_string(i) + "]", spec, out);
  } else if (v.is_object()) {
    check_members(v, path, {}, spec, out);
  }
}

}  // namespace

std::vector<std::string> validate_payload(const json& payload, std::span<const FieldSpec> fields) {
  std::vector<std::string> out;
  if (payload.is_object()) check_members(payload, "", fields, nullptr, out);
  else check_value(payload, "", nullptr, out);
  return out;
}

std::optional<std::string> validate_key(std::string_view key) {
  if (key.empty()) return "the key is empty";
  const Scan sc = scan(key);
  if (const std::string bad = encoding_problem(key, sc); !bad.empty()) return "the key " + shown(key) + " " + bad;
  return std::nullopt;
}

std::string printable(std::string_view text, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes == 0 ? text.size() : max_bytes + 3));
  std::string escaped;
  for (std::size_t i = 0; i < text.size();) {
    const Decoded d = decode(text, i);
    const std::size_t length = d.length == 0 ? 1 : d.length;
    const bool escape = d.length == 0 || is_control(d.code_point);
    escaped.clear();
    if (escape) {
      for (std::size_t k = 0; k < length; ++k) escaped += hex_byte(static_cast<unsigned char>(text[i + k]));
    }
    const std::size_t add = escape ? escaped.size() : length;
    if (max_bytes != 0 && out.size() + add > max_bytes) {
      out += "...";
      return out;
    }
    if (escape) out += escaped;
    else out.append(text.substr(i, length));
    i += length;
  }
  return out;
}

}  // namespace dirsync::core
