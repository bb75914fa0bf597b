#include "tests/support/https_test_server.h"

#include <stdlib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tests/support/asio.h"
#include "tests/support/http_session.h"

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>

namespace dirsync::testing {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("test PKI: cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs one openssl command in `dir`; throws with its output when it fails.
void openssl(const std::string& dir, const std::string& args) {
  const std::string log = dir + "/openssl.log";
  const std::string command = "cd '" + dir + "' && openssl " + args + " >'" + log + "' 2>&1";
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    throw std::runtime_error("test PKI: `openssl " + args + "` failed (status " + std::to_string(rc) +
                             "): " + read_file(log));
  }
}

}  // namespace

// --- TestPki -----------------------------------------------------------------

TestPki::TestPki(const std::string& ca_name) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "dirsync-pki-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("test PKI: mkdtemp failed");
  dir_ = tmpl;
  try {
    // Own config files, so that the distribution's openssl.cnf adds nothing unexpected.
    write_file(dir_ + "/ca.cnf",
               "[req]\n"
               "distinguished_name = dn\n"
               "prompt = no\n"
               "[dn]\n"
               "CN = " + ca_name + "\n"
               "[v3_ca]\n"
               "basicConstraints = critical,CA:TRUE\n"
               "keyUsage = critical,keyCertSign,cRLSign\n"
               "subjectKeyIdentifier = hash\n");
    write_file(dir_ + "/server.cnf",
               "[req]\n"
               "distinguished_name = dn\n"
               "prompt = no\n"
               "[dn]\n"
               "CN = localhost\n"
               "[v3_server]\n"
               "basicConstraints = critical,CA:FALSE\n"
               "keyUsage = critical,digitalSignature,keyEncipherment\n"
               "extendedKeyUsage = serverAuth\n"
               "subjectAltName = IP:127.0.0.1,DNS:localhost\n"
               "subjectKeyIdentifier = hash\n"
               "authorityKeyIdentifier = keyid\n");
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(dir_, "req -x509 -config ca.cnf -extensions v3_ca " + ec + " -keyout ca.key -out ca.crt -days 2");
    openssl(dir_, "req -new -config server.cnf " + ec + " -keyout server.key -out server.csr");
    openssl(dir_,
            "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
            "-extfile server.cnf -extensions v3_server -out server.crt");
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    throw;
  }
}

TestPki::~TestPki() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

// --- HttpsTestServer ---------------------------------------------------------

struct HttpsTestServer::Impl {
  struct Connection {
    Connection(tcp::socket s, ssl::context& ctx) : stream(std::move(s), ctx) {}
    beast::ssl_stream<tcp::socket> stream;
    std::thread thread;
    std::atomic<bool> done{false};
    int fd() { return beast::get_lowest_layer(stream).native_handle(); }
  };

  Handler handler;
  std::string cert_file;
  std::string key_file;
  asio::io_context ioc;
  std::optional<ssl::context> ctx;
  std::optional<tcp::acceptor> acceptor;
  std::thread accept_thread;
  std::mutex mu;
  std::vector<std::shared_ptr<Connection>> connections;
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> accepted{0};
  std::atomic<std::size_t> handshakes_ok{0};
  std::atomic<std::size_t> handshakes_failed{0};
  std::uint16_t port = 0;
  bool running = false;

  void accept_loop() {
    while (!stopping) {
      tcp::socket socket(ioc);
      boost::system::error_code ec;
      acceptor->accept(socket, ec);
      if (stopping) break;
      if (ec) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      ++accepted;
      auto conn = std::make_shared<Connection>(std::move(socket), *ctx);
      std::lock_guard lock(mu);
      reap_locked();
      conn->thread = std::thread([this, conn] { serve(*conn); });
      connections.push_back(std::move(conn));
    }
  }

  void reap_locked() {
    for (auto it = connections.begin(); it != connections.end();) {
      if ((*it)->done) {
        if ((*it)->thread.joinable()) (*it)->thread.join();
        it = connections.erase(it);
      } else {
        ++it;
      }
    }
  }

  void serve(Connection& conn) {
    boost::system::error_code ec;
    conn.stream.handshake(ssl::stream_base::server, ec);
    if (ec) {
      ++handshakes_failed;
    } else {
      ++handshakes_ok;
      serve_http(conn);
    }
    // Shut down but do not close: stop() may still call shutdown on this fd.
    beast::get_lowest_layer(conn.stream).shutdown(tcp::socket::shutdown_both, ec);
    conn.done = true;
  }

  void serve_http(Connection& conn) {
    if (detail::serve_http_session(conn.stream, handler, stopping) == detail::SessionEnd::kClosedAfterReply) {
      boost::system::error_code ec;
      conn.stream.shutdown(ec);  // a clean TLS close_notify before the TCP close
    }
  }
};

HttpsTestServer::HttpsTestServer(Handler handler, std::string cert_file, std::string key_file)
    : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  impl_->cert_file = std::move(cert_file);
  impl_->key_file = std::move(key_file);
}

HttpsTestServer::~HttpsTestServer() { stop(); }

void HttpsTestServer::start(std::uint16_t port) {
  if (impl_->running) return;
  boost::system::error_code ec;
  impl_->ctx.emplace(ssl::context::tls_server);
  impl_->ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                          ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  impl_->ctx->use_certificate_chain_file(impl_->cert_file, ec);
  if (ec) throw std::runtime_error("https test server: cannot read " + impl_->cert_file + ": " + ec.message());
  impl_->ctx->use_private_key_file(impl_->key_file, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("https test server: cannot read " + impl_->key_file + ": " + ec.message());

  impl_->acceptor.emplace(impl_->ioc);
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
  impl_->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor->bind(endpoint, ec);
  if (!ec) impl_->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("https test server: cannot listen on 127.0.0.1:" + std::to_string(port) + ": " +
                             ec.message());
  }
  impl_->port = impl_->acceptor->local_endpoint().port();
  impl_->stopping = false;
  impl_->running = true;
  impl_->accept_thread = std::thread([this] { impl_->accept_loop(); });
}

void HttpsTestServer::stop() {
  if (!impl_->running) return;
  impl_->stopping = true;
  // shutdown(2) on a listening socket makes a blocked accept(2) return on Linux.
  ::shutdown(impl_->acceptor->native_handle(), SHUT_RDWR);
  impl_->accept_thread.join();
  std::vector<std::shared_ptr<Impl::Connection>> conns;
  {
    std::lock_guard lock(impl_->mu);
    conns.swap(impl_->connections);
  }
  for (auto& c : conns) ::shutdown(c->fd(), SHUT_RDWR);  // unblocks a pending handshake or read
  for (auto& c : conns) {
    if (c->thread.joinable()) c->thread.join();
  }
  boost::system::error_code ec;
  impl_->acceptor->close(ec);
  impl_->acceptor.reset();
  impl_->running = false;
}

std::uint16_t HttpsTestServer::port() const { return impl_->port; }

std::string HttpsTestServer::base_url() const { return "https://127.0.0.1:" + std::to_string(impl_->port); }

std::size_t HttpsTestServer::connections_accepted() const { return impl_->accepted; }

std::size_t HttpsTestServer::handshakes_completed() const { return impl_->handshakes_ok; }

std::size_t HttpsTestServer::handshakes_failed() const { return impl_->handshakes_failed; }

}  // namespace dirsync::testing
