#pragma once
// A small blocking HTTP/1.1 server on 127.0.0.1 for tests (Boost.Beast inside;
// this header does not include it).
//
// - `start()` binds 127.0.0.1 (port 0: the kernel picks one; read it with
//   `port()`), then accepts on its own thread; each connection gets a thread
//   and is kept alive as long as the client wants (HTTP/1.1 keep-alive).
// - The handler is called on connection threads, possibly concurrently: it
//   must be thread safe.
// - `stop()` (also run by the destructor) closes the listener and every open
//   connection and joins all threads. Idempotent.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dirsync::testing {

struct ServerRequest {
  std::string method;  // "POST"
  std::string target;  // path and query: "/v2/users/batch"
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;

  // The first value of a header (case-insensitive name), or empty.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

struct ServerResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";
  std::string body;
  // Close the connection without answering (after the request was read).
  bool close_without_response = false;
};

using Handler = std::function<ServerResponse(const ServerRequest&)>;

class LoopbackHttpServer {
 public:
  explicit LoopbackHttpServer(Handler handler);
  ~LoopbackHttpServer();
  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;

  // Throws std::runtime_error when the port cannot be bound.
  void start(std::uint16_t port = 0);
  void stop();

  std::uint16_t port() const;
  std::string base_url() const;  // "http://127.0.0.1:<port>"
  // TCP connections accepted so far (to observe connection reuse).
  std::size_t connections_accepted() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dirsync::testing
