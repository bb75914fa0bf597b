#pragma once
// HTTPS for tests: a certificate authority made at test time, and a loopback
// HTTPS/1.1 server (Boost.Beast over asio::ssl::stream; this header does not
// include them) that serves a Handler like LoopbackHttpServer does.
//
// TestPki runs the `openssl` CLI (Debian's `openssl` package) in a fresh temp
// directory, removed again by its destructor:
//   ca.key, ca.crt          a self-signed CA (EC P-256, CA:TRUE, keyCertSign)
//   server.key, server.crt  a server certificate signed by that CA, with
//                           subjectAltName IP:127.0.0.1, DNS:localhost and
//                           extendedKeyUsage serverAuth
// Each TestPki is a different CA: a second one plays "a CA that did not sign it".
//
// HttpsTestServer: `start()` binds 127.0.0.1 (port 0: the kernel picks one),
// accepts on its own thread, one thread per connection; TLS 1.2+ handshake,
// then HTTP/1.1 with keep-alive. The handler is called on connection threads,
// possibly concurrently: it must be thread safe. A failed handshake (the client
// refused the certificate) closes the connection and is counted. `stop()`
// (also run by the destructor) closes everything and joins all threads.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "tests/support/loopback_http_server.h"

namespace dirsync::testing {

class TestPki {
 public:
  // Throws std::runtime_error (with openssl's output) when a step fails.
  // `ca_name` becomes the CA's common name.
  explicit TestPki(const std::string& ca_name = "dirsync test CA");
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  const std::string& dir() const { return dir_; }
  std::string ca_cert() const { return dir_ + "/ca.crt"; }
  std::string ca_key() const { return dir_ + "/ca.key"; }
  std::string server_cert() const { return dir_ + "/server.crt"; }
  std::string server_key() const { return dir_ + "/server.key"; }

 private:
  std::string dir_;
};

class HttpsTestServer {
 public:
  // PEM files: the server's certificate (chain) and its private key. They are
  // read by start(), which throws std::runtime_error when they cannot be.
  HttpsTestServer(Handler handler, std::string cert_file, std::string key_file);
  ~HttpsTestServer();
  HttpsTestServer(const HttpsTestServer&) = delete;
  HttpsTestServer& operator=(const HttpsTestServer&) = delete;

  void start(std::uint16_t port = 0);
  void stop();

  std::uint16_t port() const;
  std::string base_url() const;  // "https://127.0.0.1:<port>"
  std::size_t connections_accepted() const;
  std::size_t handshakes_completed() const;
  std::size_t handshakes_failed() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dirsync::testing
