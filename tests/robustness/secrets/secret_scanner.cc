#include "tests/robustness/secrets/secret_scanner.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace dirsync::testing {
namespace {

// Shorter middles of a base64 string would match by chance in large binary files.
constexpr std::size_t kMinBase64Middle = 8;

std::string percent_encode(std::string_view value, bool lower_hex, bool space_as_plus) {
  const char* hex = lower_hex ? "0123456789abcdef" : "0123456789ABCDEF";
  std::string out;
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else if (c == ' ' && space_as_plus) {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    }
  }
  return out;
}

std::string json_escape(const std::string& value, bool ascii_only) {
  const std::string quoted = nlohmann::json(value).dump(-1, ' ', ascii_only);
  return quoted.substr(1, quoted.size() - 2);
}

std::string to_url_alphabet(std::string b64) {
  for (char& c : b64) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return b64;
}

std::string unpadded(std::string b64) {
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  return b64;
}

// The characters of base64(prefix + value) that only `value`'s bytes decide,
// when `value` starts `shift` bytes into a 3-byte group.
std::string base64_middle(const std::string& value, std::size_t shift) {
  const std::string encoded = base64(std::string(shift, '\0') + value);
  const std::size_t first_group = (shift + 2) / 3;               // the first group made of value bytes only
  const std::size_t end_group = (shift + value.size()) / 3;      // one past the last such group
  if (end_group <= first_group) return {};
  return encoded.substr(4 * first_group, 4 * (end_group - first_group));
}

}  // namespace

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

void SecretScanner::add_form(const std::string& name, const std::string& form, const std::string& bytes) {
  if (bytes.empty()) throw std::invalid_argument("empty form of " + name);
  forms_.push_back({name + " (" + form + ")", bytes});
}

void SecretScanner::add(const std::string& name, const std::string& value) {
  if (value.empty()) throw std::invalid_argument("empty secret " + name);
  std::vector<std::string> seen;
  auto form = [&](const std::string& what, const std::string& bytes) {
    if (bytes.empty() || std::find(seen.begin(), seen.end(), bytes) != seen.end()) return;
    seen.push_back(bytes);
    add_form(name, what, bytes);
  };
  form("as is", value);
  form("percent-encoded", percent_encode(value, false, false));
  form("percent-encoded, lower-case hex", percent_encode(value, true, false));
  form("form-encoded", percent_encode(value, false, true));
  form("JSON-escaped", json_escape(value, false));
  form("JSON-escaped, ASCII only", json_escape(value, true));
  std::string slash = json_escape(value, false);
  for (std::size_t at = slash.find('/'); at != std::string::npos; at = slash.find('/', at + 2)) slash.insert(at, "\\");
  form("JSON-escaped with \\/", slash);
  const std::string b64 = base64(value);
  form("base64 form", b64);
  form("base64 form, unpadded", unpadded(b64));
  form("base64url form", to_url_alphabet(b64));
  form("base64url form, unpadded", unpadded(to_url_alphabet(b64)));
  for (std::size_t shift = 0; shift < 3; ++shift) {
    const std::string middle = base64_middle(value, shift);
    if (middle.size() < kMinBase64Middle) continue;
    form("inside a base64 string, offset " + std::to_string(shift) + " mod 3", middle);
    form("inside a base64url string, offset " + std::to_string(shift) + " mod 3", to_url_alphabet(middle));
  }
}

std::vector<std::string> SecretScanner::scan(const std::string& artifact, std::string_view bytes) const {
  std::vector<std::string> found;
  for (const auto& f : forms_) {
    const auto at = bytes.find(f.bytes);
    if (at != std::string_view::npos) found.push_back(artifact + ": " + f.label + " at byte " + std::to_string(at));
  }
  return found;
}

std::string SecretScanner::redact(std::string text) const {
  // Longest first: a shorter form may be part of a longer one.
  std::vector<const Form*> order;
  for (const auto& f : forms_) order.push_back(&f);
  std::stable_sort(order.begin(), order.end(),
                   [](const Form* a, const Form* b) { return a->bytes.size() > b->bytes.size(); });
  for (const Form* f : order) {
    const std::string mark = "[" + f->label + "]";
    for (auto at = text.find(f->bytes); at != std::string::npos; at = text.find(f->bytes, at + mark.size())) {
      text.replace(at, f->bytes.size(), mark);
    }
  }
  return text;
}

std::vector<std::pair<std::string, std::string>> read_tree(const std::filesystem::path& dir) {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    out.emplace_back(entry.path().string(),
                     std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
  }
  return out;
}

}  // namespace dirsync::testing
