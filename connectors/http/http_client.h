#pragma once
// The HTTP client every HTTP target shares.
//
// Contract:
// - `HttpClient` owns one libcurl easy handle and reuses its connections
//   (HTTP keep-alive, TCP keepalive probes) across requests. It is NOT thread
//   safe: one client per target, used from one thread at a time.
// - TLS verification is always on (peer and host name); `HttpSettings::ca_file`
//   replaces the system CA store when set. There is no switch to turn it off.
// - Every request carries `User-Agent: dirsync/<version>` and
//   `Accept: application/json`. Redirects are not followed (a redirected POST
//   could be replayed somewhere else).
// - `send` never throws for network or HTTP failures: they are described in the
//   returned Response (`failure`, `error`), and the retry policy (retry.h)
//   decides what they mean.
// - A request that is not `idempotent` always goes out on a fresh connection.
//   Why: libcurl silently re-sends a request whose *reused* connection died
//   before any response byte arrived ("Connection died, retrying a fresh
//   connect"), even a POST; the server may have processed the first copy. On
//   a fresh connection libcurl never does that, so a create is sent at most
//   once per `send`.
// - Error texts never contain header values (the bearer token lives only in
//   the header list handed to libcurl).
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/secret.h"

namespace dirsync::http {

struct Header {
  std::string name;
  std::string value;
};

struct Request {
  std::string method = "GET";   // GET, POST, PATCH, DELETE, ...
  std::string url;              // absolute; never carries credentials
  std::vector<Header> headers;  // extra headers; must not contain secrets (use `bearer`)
  std::string body;             // sent as-is when non-empty (or for POST/PATCH/DELETE with a body)
  std::string content_type = "application/json";  // only sent with a body
  std::optional<core::Secret> bearer;              // → "Authorization: Bearer <value>"
  // Secret-valued headers (e.g. a tenant id that acts as a credential): sent,
  // never logged or printed.
  std::vector<std::pair<std::string, core::Secret>> secret_headers;
  // True when repeating the request cannot do harm even if the server already
  // processed it (PATCH to fixed values, DELETE by id). A create is not.
  bool idempotent = false;

  // "POST https://host/v2/users/batch": safe to print (no headers, no body).
  std::string describe() const { return method + " " + url; }
};

// How a transport failure relates to the server having seen the request.
enum class TransportFailure {
  kNone,         // an HTTP response arrived (any status)
  kNothingSent,  // the request never left: DNS, connect refused, TLS handshake, bad URL
  kAfterSend,    // the request (or part of it) went out, then timeout/reset/empty reply:
                 // the server may have processed it
};
const char* to_string(TransportFailure failure);

struct Response {
  int status = 0;  // 0 when `failure != kNone`
  // Headers of the final response; names lower-cased, values trimmed, in order.
  std::vector<Header> headers;
  std::string body;
  TransportFailure failure = TransportFailure::kNone;
  bool tls_problem = false;  // the failure was a TLS / certificate problem
  // For a failure: an operator-readable description (never header values).
  std::string error;

  // The first value of a header (name compared case-insensitively), or empty.
  std::string header(std::string_view name) const;
  bool ok() const { return failure == TransportFailure::kNone && status >= 200 && status < 300; }
};

// Whatever sends requests. HttpClient is the real one; tests substitute fakes.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual Response send(const Request& request) = 0;
};

class HttpClient final : public Transport {
 public:
  explicit HttpClient(config::HttpSettings settings);
  ~HttpClient() override;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  Response send(const Request& request) override;

  const config::HttpSettings& settings() const { return settings_; }

 private:
  Response perform(const Request& request);  // send() without the observer
  config::HttpSettings settings_;
  void* curl_ = nullptr;  // CURL*; kept opaque so that users need not include curl.h
};

// One finished HTTP exchange, for metrics. `label` is HttpSettings::label.
struct ExchangeEvent {
  const std::string& label;
  int status;                // 0 when no response arrived
  TransportFailure failure;
  std::chrono::duration<double> latency;
};
// Called by every HttpClient after each request, on the requesting thread
// (so it must be thread safe). Set once at start-up, before requests are made;
// null (the default): nothing is observed.
using ExchangeObserver = std::function<void(const ExchangeEvent&)>;
void set_exchange_observer(ExchangeObserver observer);

// The "dirsync/<version>" User-Agent value.
std::string user_agent();

// The server's own words for an error response, for a rejection message:
// PERSCOM's {"error":{"message"}}, Laravel's {"message"}, FastAPI's {"detail"},
// else the start of the body (control characters flattened, at most 300
// bytes), else "HTTP <status>". Never empty.
std::string server_message(const Response& response);

}  // namespace dirsync::http
