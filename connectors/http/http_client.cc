#include "connectors/http/http_client.h"

#include "core/validate.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/version.h"

namespace dirsync::http {
namespace {

// A body larger than this is not something a directory API answers with; stop
// reading instead of exhausting memory (reported as a failure after sending).
constexpr std::size_t kMaxBody = 64u << 20;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

struct Sink {
  Response* response;
  bool too_big = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const std::size_t len = size * n;
  if (sink->response->body.size() + len > kMaxBody) {
    sink->too_big = true;
    return 0;  // makes libcurl abort with CURLE_WRITE_ERROR
  }
  sink->response->body.append(data, len);
  return len;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const std::size_t len = size * n;
  std::string_view line(data, len);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new status line: an interim (1xx) response's headers are not ours.
    sink->response->headers.clear();
    return len;
  }
  const auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    sink->response->headers.push_back(
        {lower(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1)))});
  }
  return len;
}

bool is_tls_failure(CURLcode rc) {
  switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
      return true;
    default:
      return false;
  }
}

// Failures that by their nature happen before the request is written.
bool fails_before_sending(CURLcode rc) {
  switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
      return true;
    default:
      return is_tls_failure(rc);
  }
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw std::runtime_error("curl_global_init failed");
  });
}

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

}  // namespace

const char* to_string(TransportFailure failure) {
  switch (failure) {
    case TransportFailure::kNone: return "none";
    case TransportFailure::kNothingSent: return "nothing sent";
    case TransportFailure::kAfterSend: return "failed after sending";
  }
  return "?";
}

std::string Response::header(std::string_view name) const {
  const std::string key = lower(name);
  for (const auto& h : headers) {
    if (h.name == key) return h.value;
  }
  return {};
}

std::string user_agent() { return std::string("dirsync/") + dirsync::kVersion; }

std::string server_message(const Response& response) {
  const auto parsed = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) {
    const auto err = parsed.find("error");
    if (err != parsed.end() && err->is_object()) {
      const auto msg = err->find("message");
      if (msg != err->end() && msg->is_string() && !msg->get<std::string>().empty()) return msg->get<std::string>();
    }
    if (err != parsed.end() && err->is_string() && !err->get<std::string>().empty()) return err->get<std::string>();
    for (const char* key : {"message", "detail"}) {
      const auto it = parsed.find(key);
      if (it != parsed.end() && it->is_string() && !it->get<std::string>().empty()) return it->get<std::string>();
    }
  }
  // A non-JSON body (an HTML error page, a Latin-1 message) is shown as text:
  // control characters as spaces, bytes that are not UTF-8 escaped, cut at 300
  // bytes on a character boundary — it ends up in reports and JSON.
  std::string text(trim(response.body).substr(0, 1200));
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  if (!text.empty()) return core::printable(text, 300);
  return "HTTP " + std::to_string(response.status);
}

HttpClient::HttpClient(config::HttpSettings settings) : settings_(std::move(settings)) {
  global_init();
  curl_ = curl_easy_init();
  if (!curl_) throw std::runtime_error("curl_easy_init failed");
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

namespace {

std::mutex g_observer_mutex;
std::shared_ptr<const ExchangeObserver> g_observer;

std::shared_ptr<const ExchangeObserver> observer() {
  std::lock_guard lock(g_observer_mutex);
  return g_observer;
}

}  // namespace

void set_exchange_observer(ExchangeObserver fn) {
  std::lock_guard lock(g_observer_mutex);
  g_observer = fn ? std::make_shared<const ExchangeObserver>(std::move(fn)) : nullptr;
}

Response HttpClient::send(const Request& request) {
  const auto started = std::chrono::steady_clock::now();
  Response response = perform(request);
  if (const auto obs = observer()) {
    (*obs)(ExchangeEvent{settings_.label, response.status, response.failure, std::chrono::steady_clock::now() - started});
  }
  return response;
}

Response HttpClient::perform(const Request& request) {
  CURL* curl = static_cast<CURL*>(curl_);
  // Reset drops the previous request's options but keeps the connection
  // cache, so keep-alive connections are still reused.
  curl_easy_reset(curl);

  Response response;
  Sink sink{&response};
  char errbuf[CURL_ERROR_SIZE] = {0};

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add_header = [&headers](const std::string& line) {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (!next) throw std::bad_alloc();
    (void)headers.release();
    headers.reset(next);
  };
  const bool has_body = !request.body.empty() || request.method == "POST" || request.method == "PATCH" ||
                        request.method == "PUT";
  add_header("Accept: application/json");
  add_header("Expect:");  // no 100-continue round trip
  if (has_body) add_header("Content-Type: " + request.content_type);
  for (const auto& h : request.headers) add_header(h.name + ": " + h.value);
  if (request.bearer) add_header("Authorization: Bearer " + request.bearer->reveal());
  for (const auto& [name, secret] : request.secret_headers) add_header(name + ": " + secret.reveal());

  const std::string ua = user_agent();
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // we run on threads; no SIGALRM for DNS timeouts
  curl_easy_setopt(curl, CURLOPT_USERAGENT, ua.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(settings_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(settings_.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPIDLE, 60L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPINTVL, 30L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!settings_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, settings_.ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &sink);
  // See the header: never let libcurl replay a non-idempotent request.
  curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, request.idempotent ? 0L : 1L);

  if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    if (has_body) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    }
    if (request.method != "POST") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  const CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    response.status = static_cast<int>(status);
    return response;
  }

  // A failure: did the request leave? A connect-phase failure by its code, or
  // nothing written at all (CURLINFO_REQUEST_SIZE counts bytes sent, reset per
  // transfer), means the server cannot have seen it.
  long request_size = 0;
  curl_easy_getinfo(curl, CURLINFO_REQUEST_SIZE, &request_size);
  const bool nothing_sent = fails_before_sending(rc) || request_size == 0;
  response.failure = nothing_sent ? TransportFailure::kNothingSent : TransportFailure::kAfterSend;
  response.tls_problem = is_tls_failure(rc);
  response.status = 0;
  response.headers.clear();
  response.body.clear();

  std::string detail = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
  if (sink.too_big) detail = "response body larger than " + std::to_string(kMaxBody >> 20) + " MiB";
  if (response.tls_problem) {
    response.error = "TLS/certificate problem on " + request.describe() + ": " + detail +
                     " (check the server's certificate and the target's ca_file)";
  } else {
    response.error = request.describe() + ": " + detail +
                     (nothing_sent ? " (the request was not sent)"
                                   : " (the request was sent; the server may have processed it)");
  }
  return response;
}

}  // namespace dirsync::http
