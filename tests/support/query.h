#pragma once
// Query strings as the loopback test servers read them. Written here rather
// than borrowed from the client side (connectors/http), so that a wrong
// encoding in a client cannot agree with itself. Header-only; pure functions,
// safe from any thread.
#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace dirsync::testing {

namespace query_detail {
inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace query_detail

// application/x-www-form-urlencoded decoding, as web servers apply it to
// queries: '+' is a space, %XX a byte; a '%' not followed by two hex digits
// stays as it is.
inline std::string url_decode(std::string_view text) {
  using query_detail::hex_digit;
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && hex_digit(text[i + 1]) >= 0 && hex_digit(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(text[i + 1]) * 16 + hex_digit(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// The decoded parameters of a query (the part after '?', without it). A name
// without '=' has the empty value; a name given twice keeps its first value.
// Empty query: no parameters.
inline std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    out.emplace(url_decode(pair.substr(0, eq)), eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1)));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

}  // namespace dirsync::testing
