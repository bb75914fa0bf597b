#include "tests/support/loopback_http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "tests/support/asio.h"
#include "tests/support/http_session.h"

namespace dirsync::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

}  // namespace

namespace detail {
std::string lower_ascii(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}
}  // namespace detail

std::string ServerRequest::header(std::string_view name) const {
  const std::string key = detail::lower_ascii(name);
  for (const auto& [n, v] : headers) {
    if (n == key) return v;
  }
  return {};
}

bool ServerRequest::has_header(std::string_view name) const {
  const std::string key = detail::lower_ascii(name);
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return h.first == key; });
}

struct LoopbackHttpServer::Impl {
  struct Connection {
    explicit Connection(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  Handler handler;
  asio::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::thread accept_thread;
  std::mutex mu;
  std::vector<std::shared_ptr<Connection>> connections;
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> accepted{0};
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
      auto conn = std::make_shared<Connection>(std::move(socket));
      std::lock_guard lock(mu);
      reap_locked();
      conn->thread = std::thread([this, conn] { serve(*conn); });
      connections.push_back(std::move(conn));
    }
  }

  // Joins connections whose thread has finished, so a long test does not pile up fds.
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
    detail::serve_http_session(conn.socket, handler, stopping);
    boost::system::error_code ec;
    // Shut down but do not close: stop() may still call shutdown on this fd,
    // and closing here would let the kernel reuse the number meanwhile.
    conn.socket.shutdown(tcp::socket::shutdown_both, ec);
    conn.done = true;
  }
};

LoopbackHttpServer::LoopbackHttpServer(Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
}

LoopbackHttpServer::~LoopbackHttpServer() { stop(); }

void LoopbackHttpServer::start(std::uint16_t port) {
  if (impl_->running) return;
  boost::system::error_code ec;
  impl_->acceptor.emplace(impl_->ioc);
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
  impl_->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor->bind(endpoint, ec);
  if (!ec) impl_->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("loopback server: cannot listen on 127.0.0.1:" + std::to_string(port) + ": " + ec.message());
  impl_->port = impl_->acceptor->local_endpoint().port();
  impl_->stopping = false;
  impl_->running = true;
  impl_->accept_thread = std::thread([this] { impl_->accept_loop(); });
}

void LoopbackHttpServer::stop() {
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
  for (auto& c : conns) ::shutdown(c->socket.native_handle(), SHUT_RDWR);  // unblocks a pending read
  for (auto& c : conns) {
    if (c->thread.joinable()) c->thread.join();
  }
  boost::system::error_code ec;
  impl_->acceptor->close(ec);
  impl_->acceptor.reset();
  impl_->running = false;
}

std::uint16_t LoopbackHttpServer::port() const { return impl_->port; }

std::string LoopbackHttpServer::base_url() const { return "http://127.0.0.1:" + std::to_string(impl_->port); }

std::size_t LoopbackHttpServer::connections_accepted() const { return impl_->accepted; }

}  // namespace dirsync::testing
