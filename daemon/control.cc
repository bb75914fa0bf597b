#include "daemon/control.h"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

namespace dirsync::daemon {
namespace {

namespace asio = boost::asio;
using Socket = asio::local::stream_protocol::socket;

constexpr std::size_t kMaxRequest = 64 * 1024;

// Whether `uid` may use the socket: root, the daemon's own user, or a member of `gid`.
bool allowed(uid_t uid, std::optional<gid_t> gid) {
  if (uid == 0 || uid == ::geteuid()) return true;
  if (!gid) return false;
  const passwd* pw = ::getpwuid(uid);
  if (!pw) return false;
  if (pw->pw_gid == *gid) return true;
  int n = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  if (::getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<std::size_t>(n));
    if (::getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &n) < 0) return false;
  }
  groups.resize(static_cast<std::size_t>(n));
  return std::find(groups.begin(), groups.end(), *gid) != groups.end();
}

class Session : public ControlSession, public std::enable_shared_from_this<Session> {
 public:
  Session(Socket socket, uid_t uid) : socket_(std::move(socket)), uid_(uid) {}

  void read(ControlServer::Handler handler) {
    auto self = shared_from_this();
    asio::async_read_until(socket_, buffer_, '\n',
                           [self, handler](const boost::system::error_code& ec, std::size_t n) {
                             if (ec) return;  // the client went away before asking
                             std::string line(asio::buffers_begin(self->buffer_.data()),
                                              asio::buffers_begin(self->buffer_.data()) + static_cast<long>(n));
                             auto request = nlohmann::json::parse(line, nullptr, false);
                             if (request.is_discarded() || !request.is_object()) {
                               self->finish({{"exit_code", 2}, {"error", "the request is not a JSON object"}});
                               return;
                             }
                             handler(request, self);
                           });
  }

  void send(const nlohmann::json& line) override { queue(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", false); }
  void finish(const nlohmann::json& line) override { queue(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", true); }
  uid_t peer_uid() const override { return uid_; }

 private:
  void queue(std::string text, bool last) {
    if (closing_) return;
    closing_ = last;
    out_.push_back(std::move(text));
    if (out_.size() == 1) write_next();
  }
  void write_next() {
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(out_.front()), [self](const boost::system::error_code& ec, std::size_t) {
      self->out_.pop_front();
      if (ec) {
        self->out_.clear();  // the client left; later sends are dropped
        self->closing_ = true;
        return;
      }
      if (!self->out_.empty()) {
        self->write_next();
      } else if (self->closing_) {
        boost::system::error_code ignored;
        self->socket_.shutdown(Socket::shutdown_both, ignored);
        self->socket_.close(ignored);
      }
    });
  }

  Socket socket_;
  uid_t uid_;
  asio::streambuf buffer_{kMaxRequest};
  std::deque<std::string> out_;
  bool closing_ = false;
};

}  // namespace

std::string control_socket_path(const config::Config& config) {
  if (!config.daemon.control_socket.empty()) return config.daemon.control_socket;
  struct stat st {};
  if (::stat("/run/dirsync", &st) == 0 && S_ISDIR(st.st_mode)) return "/run/dirsync/control.sock";
  return config.state_dir + "/control.sock";
}

struct ControlServer::Impl : std::enable_shared_from_this<ControlServer::Impl> {
  Impl(asio::io_context& io, std::string p, std::optional<gid_t> g, Handler h)
      : acceptor(io), path(std::move(p)), gid(g), handler(std::move(h)) {}

  void accept() {
    auto self = shared_from_this();
    acceptor.async_accept([self](const boost::system::error_code& ec, Socket socket) {
      if (ec) {
        if (ec != asio::error::operation_aborted) spdlog::warn("control socket: accept failed: {}", ec.message());
        if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
        self->accept();
        return;
      }
      ucred cred{};
      socklen_t len = sizeof cred;
      if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        spdlog::warn("control socket: cannot read the peer's credentials: {}", std::strerror(errno));
      } else if (!allowed(cred.uid, self->gid)) {
        spdlog::warn("control socket: uid {} (pid {}) is not allowed; refused", cred.uid, cred.pid);
        auto refused = std::make_shared<Session>(std::move(socket), cred.uid);
        refused->finish({{"exit_code", 2}, {"error", "permission denied: ask to be added to the daemon's group"}});
      } else {
        std::make_shared<Session>(std::move(socket), cred.uid)->read(self->handler);
      }
      self->accept();
    });
  }

  asio::local::stream_protocol::acceptor acceptor;
  std::string path;
  std::optional<gid_t> gid;
  Handler handler;
};

ControlServer::ControlServer(asio::io_context& io, std::string path, std::optional<gid_t> allowed_gid,
                             Handler handler)
    : impl_(std::make_shared<Impl>(io, std::move(path), allowed_gid, std::move(handler))) {}

ControlServer::~ControlServer() { stop(); }

void ControlServer::start() {
  Impl& s = *impl_;
  // A socket file left by a daemon that died: nobody answers on it, so it is replaced.
  ::unlink(s.path.c_str());
  boost::system::error_code ec;
  asio::local::stream_protocol::endpoint endpoint(s.path);
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on control socket " + s.path + ": " + ec.message());
  if (::chmod(s.path.c_str(), 0660) != 0) {
    throw std::runtime_error("cannot set the mode of control socket " + s.path + ": " + std::strerror(errno));
  }
  if (s.gid && ::chown(s.path.c_str(), static_cast<uid_t>(-1), *s.gid) != 0) {
    throw std::runtime_error("cannot give control socket " + s.path + " to group " + std::to_string(*s.gid) + ": " +
                             std::strerror(errno));
  }
  s.accept();
}

void ControlServer::stop() {
  if (!impl_ || !impl_->acceptor.is_open()) return;
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
  ::unlink(impl_->path.c_str());
}

const std::string& ControlServer::path() const { return impl_->path; }

ControlCall call_daemon(const std::string& path, const nlohmann::json& request,
                        const std::function<void(const std::string&)>& on_progress,
                        const std::function<void(const nlohmann::json&)>& on_final) {
  ControlCall call;
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    call.message = "control socket path too long: " + path;
    return call;
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    call.message = std::strerror(errno);
    return call;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EACCES || err == EPERM) {
      call.result = ControlCall::Result::kRefused;
      call.message = "a daemon is running, but its control socket " + path +
                     " is not open to you (permission denied): ask to be added to its group, or use sudo";
    }
    return call;  // ENOENT, ECONNREFUSED: no daemon
  }
  const std::string line = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    ::close(fd);
    call.result = ControlCall::Result::kRefused;
    call.message = "the daemon at " + path + " closed the connection";
    return call;
  }
  std::string buffer;
  char chunk[4096];
  bool done = false;
  while (!done) {
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<std::size_t>(n));
    for (std::size_t nl; !done && (nl = buffer.find('\n')) != std::string::npos;) {
      auto j = nlohmann::json::parse(buffer.substr(0, nl), nullptr, false);
      buffer.erase(0, nl + 1);
      if (!j.is_object()) continue;
      if (j.contains("progress")) {
        on_progress(j["progress"].get<std::string>());
      } else if (j.contains("exit_code")) {
        call.result = ControlCall::Result::kDone;
        call.exit_code = j["exit_code"].get<int>();
        on_final(j);
        done = true;
      }
    }
  }
  ::close(fd);
  if (!done) {
    call.result = ControlCall::Result::kRefused;
    call.message = "the daemon at " + path + " closed the connection without an answer (is it stopping?)";
  }
  return call;
}

}  // namespace dirsync::daemon
