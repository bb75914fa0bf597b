#include "tests/support/loopback_http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/support/asio.h"
#include "tests/support/http_session.h"

namespace dirsync::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

// The plan servers constructed now adopt (FaultPlanScope), behind its own lock.
std::mutex g_scope_mu;
std::shared_ptr<FaultPlan> g_scoped_plan;

bool matches(const FaultSpec& f, const std::string& method) { return f.method.empty() || f.method == method; }

ServerResponse json_message(int status, const char* text) {
  ServerResponse r;
  r.status = status;
  r.body = nlohmann::json{{"message", text}}.dump();
  return r;
}

// The second half of the first JSON array of `body` (the body itself, or an
// object's first array member) dropped; the body unchanged when it has none.
std::string drop_half_of_first_array(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  auto halve = [](nlohmann::json& a) { a.erase(a.begin() + static_cast<std::ptrdiff_t>(a.size() / 2), a.end()); };
  if (j.is_array()) {
    halve(j);
  } else if (j.is_object()) {
    for (auto& [key, value] : j.items()) {
      if (value.is_array()) {
        halve(value);
        break;
      }
    }
  } else {
    return body;
  }
  return j.dump();
}

}  // namespace

const char* to_string(FaultKind kind) {
  switch (kind) {
    case FaultKind::k429: return "429";
    case FaultKind::k500: return "500";
    case FaultKind::kDelay: return "Delay";
    case FaultKind::kClose: return "Close";
    case FaultKind::kMalformedJson: return "MalformedJson";
    case FaultKind::kTruncatedBody: return "TruncatedBody";
    case FaultKind::kWrongShape: return "WrongShape";
    case FaultKind::kPartialResults: return "PartialResults";
  }
  return "?";
}

const char* to_string(FaultPhase phase) { return phase == FaultPhase::kBefore ? "Before" : "After"; }

void FaultPlan::add(const FaultSpec& fault, int count) {
  std::lock_guard lock(mu_);
  for (int i = 0; i < count; ++i) queue_.push_back(fault);
}

void FaultPlan::every(std::size_t period, const FaultSpec& fault) {
  std::lock_guard lock(mu_);
  period_ = period;
  seen_ = 0;
  if (period == 0) {
    intermittent_.reset();
  } else {
    intermittent_ = fault;
  }
}

void FaultPlan::clear() {
  std::lock_guard lock(mu_);
  queue_.clear();
  intermittent_.reset();
  period_ = 0;
}

std::size_t FaultPlan::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

std::vector<FaultLogEntry> FaultPlan::log() const {
  std::lock_guard lock(mu_);
  return log_;
}

std::size_t FaultPlan::faults_applied() const {
  std::lock_guard lock(mu_);
  return taken_;
}

std::vector<std::string> FaultPlan::server_urls() const {
  std::lock_guard lock(mu_);
  return urls_;
}

std::optional<FaultSpec> FaultPlan::take(const std::string& method) {
  std::lock_guard lock(mu_);
  const auto it = std::find_if(queue_.begin(), queue_.end(), [&](const FaultSpec& f) { return matches(f, method); });
  if (it != queue_.end()) {
    FaultSpec f = *it;
    queue_.erase(it);
    ++taken_;
    return f;
  }
  if (intermittent_ && matches(*intermittent_, method) && seen_++ % period_ == 0) {
    ++taken_;
    return intermittent_;
  }
  return std::nullopt;
}

void FaultPlan::record(FaultLogEntry entry) {
  std::lock_guard lock(mu_);
  log_.push_back(std::move(entry));
}

void FaultPlan::attach(const std::string& base_url) {
  std::lock_guard lock(mu_);
  urls_.push_back(base_url);
}

FaultPlanScope::FaultPlanScope(std::shared_ptr<FaultPlan> plan) {
  std::lock_guard lock(g_scope_mu);
  previous_ = std::exchange(g_scoped_plan, std::move(plan));
}

FaultPlanScope::~FaultPlanScope() {
  std::lock_guard lock(g_scope_mu);
  g_scoped_plan = std::move(previous_);
}

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
  std::shared_ptr<FaultPlan> faults;
  std::mutex wait_mu;  // with `wake`: a fault's delay ends early when the server stops
  std::condition_variable wake;
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
      // Without it an answer written in two pieces waits for the client's
      // delayed ACK (Nagle): ~40 ms per request.
      socket.set_option(tcp::no_delay(true), ec);
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

  // Sleeps for `d`, or until stop() begins.
  void pause(std::chrono::milliseconds d) {
    std::unique_lock lock(wait_mu);
    wake.wait_for(lock, d, [this] { return stopping.load(); });
  }

  // The handler with the fault plan laid over it, for one connection.
  ServerResponse serve_one(const ServerRequest& request, tcp::socket& socket) {
    const std::optional<FaultSpec> fault = faults->take(request.method);
    FaultLogEntry entry{request.method, request.target, request.body, fault, false, 0, {}, 0};
    ServerResponse response = apply_fault(request, fault, entry, socket);
    entry.sent_status = response.close_without_response ? 0 : response.status;
    faults->record(std::move(entry));
    return response;
  }

  ServerResponse apply_fault(const ServerRequest& request, const std::optional<FaultSpec>& fault,
                             FaultLogEntry& entry, tcp::socket& socket) {
    ServerResponse dropped;
    dropped.close_without_response = true;
    auto run_handler = [&] {
      ServerResponse r = handler(request);
      entry.handler_ran = true;
      entry.handler_status = r.close_without_response ? 0 : r.status;
      entry.handler_body = r.body;
      return r;
    };
    if (!fault) return run_handler();
    const bool before = fault->phase == FaultPhase::kBefore && fault->kind != FaultKind::kPartialResults;
    ServerResponse response;
    if (before) {
      response.status = fault->before_status;
      response.body = fault->wrong_shape_body;
    } else {
      response = run_handler();
      if (response.close_without_response) return response;  // the handler dropped it itself
    }
    switch (fault->kind) {
      case FaultKind::k429: {
        ServerResponse r = json_message(429, "Too Many Attempts.");
        r.headers.emplace_back("Retry-After", std::to_string(fault->retry_after_seconds));
        return r;
      }
      case FaultKind::k500:
        return json_message(500, "Server Error");
      case FaultKind::kDelay:
        pause(fault->delay);
        return before ? dropped : response;
      case FaultKind::kClose:
        return dropped;
      case FaultKind::kMalformedJson:
        response.body = response.body.substr(0, response.body.size() / 2);
        return response;
      case FaultKind::kTruncatedBody:
        write_truncated(socket, response);
        return dropped;
      case FaultKind::kWrongShape:
        if (response.status < 200 || response.status > 299) response.status = fault->before_status;
        response.body = fault->wrong_shape_body;
        return response;
      case FaultKind::kPartialResults:
        if (response.status >= 200 && response.status <= 299) response.body = drop_half_of_first_array(response.body);
        return response;
    }
    return response;
  }

  // Headers that promise the whole body, then half of it: the connection is
  // closed by the caller before the rest.
  static void write_truncated(tcp::socket& socket, const ServerResponse& r) {
    std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " +
                       std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(r.status))) + "\r\n";
    if (!r.content_type.empty()) head += "Content-Type: " + r.content_type + "\r\n";
    for (const auto& [name, value] : r.headers) head += name + ": " + value + "\r\n";
    head += "Content-Length: " + std::to_string(r.body.size()) + "\r\n\r\n";
    head += r.body.substr(0, r.body.size() / 2);
    boost::system::error_code ec;
    asio::write(socket, asio::buffer(head), ec);
  }

  void serve(Connection& conn) {
    const Handler faulty = [this, &conn](const ServerRequest& r) { return serve_one(r, conn.socket); };
    detail::serve_http_session(conn.socket, faulty, stopping);
    boost::system::error_code ec;
    // Shut down but do not close: stop() may still call shutdown on this fd,
    // and closing here would let the kernel reuse the number meanwhile.
    conn.socket.shutdown(tcp::socket::shutdown_both, ec);
    conn.done = true;
  }
};

LoopbackHttpServer::LoopbackHttpServer(Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  {
    std::lock_guard lock(g_scope_mu);
    impl_->faults = g_scoped_plan;
  }
  if (!impl_->faults) impl_->faults = std::make_shared<FaultPlan>();
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
  impl_->faults->attach(base_url());
}

void LoopbackHttpServer::stop() {
  if (!impl_->running) return;
  {
    std::lock_guard lock(impl_->wait_mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
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

FaultPlan& LoopbackHttpServer::fault_plan() { return *impl_->faults; }

}  // namespace dirsync::testing
