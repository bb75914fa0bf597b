#include "connectors/sources/http_json/url.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "connectors/http/source_get.h"

namespace dirsync::sources::http_json {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view without_fragment(std::string_view url) { return url.substr(0, url.find('#')); }

// The five components of RFC 3986 Appendix B, fragment left out.
struct Parts {
  std::optional<std::string> scheme;
  std::optional<std::string> authority;
  std::string path;
  std::optional<std::string> query;
};

Parts split(std::string_view u) {
  Parts p;
  u = without_fragment(u);
  const auto colon = u.find(':');
  if (colon != std::string_view::npos && colon > 0 && std::isalpha(static_cast<unsigned char>(u[0])) &&
      std::all_of(u.begin(), u.begin() + static_cast<std::ptrdiff_t>(colon), [](unsigned char c) {
        return std::isalnum(c) || c == '+' || c == '-' || c == '.';
      })) {
    p.scheme = lower(u.substr(0, colon));
    u.remove_prefix(colon + 1);
  }
  if (u.starts_with("//")) {
    u.remove_prefix(2);
    const auto end = u.find_first_of("/?");
    p.authority = std::string(u.substr(0, end));
    u = end == std::string_view::npos ? std::string_view() : u.substr(end);
  }
  const auto q = u.find('?');
  if (q != std::string_view::npos) {
    p.query = std::string(u.substr(q + 1));
    u = u.substr(0, q);
  }
  p.path = std::string(u);
  return p;
}

// RFC 3986 §5.2.4.
std::string remove_dot_segments(std::string_view in) {
  std::string out;
  while (!in.empty()) {
    if (in.starts_with("../")) {
      in.remove_prefix(3);
    } else if (in.starts_with("./")) {
      in.remove_prefix(2);
    } else if (in.starts_with("/./")) {
      in.remove_prefix(2);
    } else if (in == "/.") {
      in = "/";
    } else if (in.starts_with("/../") || in == "/..") {
      in = in.size() == 3 ? std::string_view("/") : in.substr(3);
      const auto slash = out.rfind('/');
      out.erase(slash == std::string::npos ? 0 : slash);
    } else if (in == "." || in == "..") {
      in = {};
    } else {
      const auto next = in.find('/', in.front() == '/' ? 1 : 0);
      const auto segment = in.substr(0, next);
      out += segment;
      in.remove_prefix(segment.size());
    }
  }
  return out;
}

std::string join(const Parts& p) {
  std::string out;
  if (p.scheme) out += *p.scheme + ":";
  if (p.authority) out += "//" + *p.authority;
  out += p.path;
  if (p.query) out += "?" + *p.query;
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

// A cursor over one header value; the small grammar of RFC 8288 §3.
struct Scanner {
  std::string_view s;
  std::size_t i = 0;

  bool done() const { return i >= s.size(); }
  char peek() const { return done() ? '\0' : s[i]; }
  void skip_space() {
    while (!done() && is_space(s[i])) ++i;
  }
  // Moves past the current link-value to just after the next top-level comma.
  void skip_link_value() {
    bool quoted = false;
    bool angled = false;
    for (; !done(); ++i) {
      const char c = s[i];
      if (quoted) {
        if (c == '\\') ++i;
        else if (c == '"') quoted = false;
      } else if (angled) {
        if (c == '>') angled = false;
      } else if (c == '"') {
        quoted = true;
      } else if (c == '<') {
        angled = true;
      } else if (c == ',') {
        ++i;
        return;
      }
    }
  }
  std::string token() {
    const std::size_t start = i;
    while (!done() && !is_space(s[i]) && s[i] != '=' && s[i] != ';' && s[i] != ',') ++i;
    return std::string(s.substr(start, i - start));
  }
  std::string quoted() {  // at the opening quote
    std::string out;
    for (++i; !done(); ++i) {
      if (s[i] == '\\' && i + 1 < s.size()) {
        out += s[++i];
      } else if (s[i] == '"') {
        ++i;
        break;
      } else {
        out += s[i];
      }
    }
    return out;
  }
};

std::vector<std::string> split_rels(const std::string& value) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < value.size()) {
    while (i < value.size() && std::isspace(static_cast<unsigned char>(value[i]))) ++i;
    const std::size_t start = i;
    while (i < value.size() && !std::isspace(static_cast<unsigned char>(value[i]))) ++i;
    if (i > start) out.push_back(lower(value.substr(start, i - start)));
  }
  return out;
}

}  // namespace

std::string add_query(std::string_view url, const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out(without_fragment(url));
  for (const auto& [name, value] : params) {
    const auto q = out.find('?');
    if (q == std::string::npos) out += '?';
    else if (q + 1 != out.size() && out.back() != '&') out += '&';
    out += http::url_encode(name) + "=" + http::url_encode(value);
  }
  return out;
}

std::string resolve_url(std::string_view base, std::string_view reference) {
  const Parts r = split(reference);
  const Parts b = split(base);
  Parts t;
  if (r.scheme) {
    t = r;
    t.path = remove_dot_segments(r.path);
    return join(t);
  }
  if (r.authority) {
    t.authority = r.authority;
    t.path = remove_dot_segments(r.path);
    t.query = r.query;
  } else {
    if (r.path.empty()) {
      t.path = b.path;
      t.query = r.query ? r.query : b.query;
    } else {
      if (r.path.front() == '/') {
        t.path = remove_dot_segments(r.path);
      } else if (b.authority && b.path.empty()) {
        t.path = remove_dot_segments("/" + r.path);  // §5.2.3 merge
      } else {
        const auto slash = b.path.rfind('/');
        t.path = remove_dot_segments((slash == std::string::npos ? "" : b.path.substr(0, slash + 1)) + r.path);
      }
      t.query = r.query;
    }
    t.authority = b.authority;
  }
  t.scheme = b.scheme;
  return join(t);
}

std::optional<UrlOrigin> url_origin(std::string_view url) {
  const Parts p = split(url);
  if (!p.scheme || (*p.scheme != "http" && *p.scheme != "https") || !p.authority) return std::nullopt;
  UrlOrigin o;
  o.scheme = *p.scheme;
  std::string_view authority = *p.authority;
  const auto at = authority.rfind('@');
  if (at != std::string_view::npos) {
    o.userinfo = true;
    authority.remove_prefix(at + 1);
  }
  std::string_view port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    o.host = lower(authority.substr(0, close + 1));
    const auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    o.host = lower(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (o.host.empty()) return std::nullopt;
  o.port = o.scheme == "https" ? 443 : 80;
  if (!port.empty()) {  // "host:" (empty port) means the default (RFC 3986 §3.2.3)
    int n = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (ec != std::errc() || end != port.data() + port.size() || n < 1 || n > 65535) return std::nullopt;
    o.port = n;
  }
  return o;
}

std::string to_string(const UrlOrigin& origin) {
  return origin.scheme + "://" + origin.host + ":" + std::to_string(origin.port);
}

std::vector<Link> parse_link_header(std::string_view value) {
  std::vector<Link> links;
  Scanner sc{value};
  while (!sc.done()) {
    sc.skip_space();
    if (sc.peek() == ',') {
      ++sc.i;
      continue;
    }
    if (sc.peek() != '<') {
      sc.skip_link_value();
      continue;
    }
    const auto close = value.find('>', sc.i);
    if (close == std::string_view::npos) break;
    Link link;
    link.target = std::string(value.substr(sc.i + 1, close - sc.i - 1));
    sc.i = close + 1;
    bool have_rel = false;
    bool malformed = false;
    for (;;) {
      sc.skip_space();
      if (sc.done()) break;
      if (sc.peek() == ',') {
        ++sc.i;
        break;
      }
      if (sc.peek() != ';') {
        malformed = true;
        sc.skip_link_value();
        break;
      }
      ++sc.i;
      sc.skip_space();
      const std::string name = lower(sc.token());
      sc.skip_space();
      std::string param;
      if (sc.peek() == '=') {
        ++sc.i;
        sc.skip_space();
        param = sc.peek() == '"' ? sc.quoted() : sc.token();
      }
      if (name == "rel" && !have_rel) {
        have_rel = true;
        link.rels = split_rels(param);
      }
    }
    if (!malformed) links.push_back(std::move(link));
  }
  return links;
}

std::optional<std::string> next_link(const std::vector<http::Header>& headers) {
  for (const auto& header : headers) {
    if (header.name != "link") continue;
    for (auto& link : parse_link_header(header.value)) {
      if (std::find(link.rels.begin(), link.rels.end(), "next") != link.rels.end()) return std::move(link.target);
    }
  }
  return std::nullopt;
}

}  // namespace dirsync::sources::http_json
