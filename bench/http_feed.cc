#include "bench/http_feed.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <strings.h>

namespace dirsync::bench {

std::string raw_request(const std::string& method, const std::string& path, const std::string& token,
                        const std::string& body) {
  return method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token +
         "\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

namespace {

class Connection {
 public:
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  std::string open(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return std::string("socket: ") + std::strerror(errno);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return std::string("connect: ") + std::strerror(errno);
    }
    return {};
  }

  std::string send_all(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::string("send: ") + std::strerror(errno);
      done += static_cast<std::size_t>(n);
    }
    return {};
  }

  // Reads one answer; `status` and its total size out.
  std::string read_answer(int& status, std::uint64_t& size) {
    std::size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (auto e = fill(); !e.empty()) return e;
    }
    status = std::atoi(buffer_.c_str() + buffer_.find(' ') + 1);
    std::size_t length = 0;
    for (std::size_t line = buffer_.find("\r\n") + 2; line < header_end;) {
      const std::size_t eol = buffer_.find("\r\n", line);
      if (::strncasecmp(buffer_.c_str() + line, "content-length:", 15) == 0) {
        length = std::strtoull(buffer_.c_str() + line + 15, nullptr, 10);
      }
      line = eol + 2;
    }
    const std::size_t total = header_end + 4 + length;
    while (buffer_.size() < total) {
      if (auto e = fill(); !e.empty()) return e;
    }
    size = total;
    buffer_.erase(0, total);
    return {};
  }

 private:
  std::string fill() {
    char chunk[1 << 16];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) return {};
    if (n <= 0) return n == 0 ? "the server closed the connection" : std::string("recv: ") + std::strerror(errno);
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return {};
  }

  int fd_ = -1;
  std::string buffer_;
};

}  // namespace

FeedResult feed(std::uint16_t port, const std::vector<std::string>& requests) {
  FeedResult r;
  Connection conn;
  if (r.error = conn.open(port); !r.error.empty()) return r;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& request : requests) {
    if (r.error = conn.send_all(request); !r.error.empty()) return r;
    r.bytes_sent += request.size();
    int status = 0;
    std::uint64_t size = 0;
    if (r.error = conn.read_answer(status, size); !r.error.empty()) return r;
    r.bytes_received += size;
    if (status != 200) {
      r.error = "HTTP " + std::to_string(status);
      return r;
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace dirsync::bench
