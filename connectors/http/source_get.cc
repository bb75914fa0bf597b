#include "connectors/http/source_get.h"

#include <openssl/evp.h>

#include <cctype>

#include "connectors/http/rate_limiter.h"

namespace dirsync::http {
namespace {

std::string base64(const std::string& text) {
  std::string out(4 * ((text.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace

void add_source_auth(Request& request, const config::HttpSourceAuth& auth,
                     const std::vector<std::pair<std::string, core::Secret>>& headers) {
  for (const auto& [name, value] : headers) request.secret_headers.emplace_back(name, value);
  if (auth.token) request.bearer = *auth.token;
  if (auth.password) {
    request.secret_headers.emplace_back(
        "Authorization",
        core::Secret("Basic " + base64(auth.username + ":" + auth.password->reveal()), auth.password->describe()));
  }
  if (auth.api_key) request.secret_headers.emplace_back(auth.api_key_header, *auth.api_key);
}

core::Result<JsonPage> get_json(Transport& transport, Request request, const RetryOptions& options) {
  request.method = "GET";
  request.body.clear();
  request.idempotent = true;
  Exchange ex = send_with_retry(transport, request, options);
  const std::string what = request.describe();
  switch (ex.classification.verdict) {
    case Verdict::kSuccess:
      break;
    case Verdict::kAuth:
      return core::Error{core::ErrorKind::kAuth, what + ": " + ex.classification.message};
    default: {
      std::string msg = what + ": " + ex.classification.message;
      if (ex.attempts > 1) msg += " (after " + std::to_string(ex.attempts) + " attempts)";
      return core::Error{core::ErrorKind::kSource, msg};
    }
  }
  JsonPage page;
  page.body = nlohmann::json::parse(ex.response.body, nullptr, /*allow_exceptions=*/false);
  if (page.body.is_discarded()) {
    return core::Error{core::ErrorKind::kSource,
                       what + ": HTTP " + std::to_string(ex.response.status) + " with a body that is not JSON"};
  }
  page.response = std::move(ex.response);
  return page;
}

RetryOptions source_retry_options(const config::HttpSettings& settings) {
  RetryOptions options;
  options.policy = RetryPolicy::from(settings);
  options.rate_limiter = make_rate_limiter(effective_rate_limits(settings.rate_limits, {}));
  return options;
}

std::string url_encode(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace dirsync::http
