#pragma once
// The simplest HTTP/1.1 client there is, to measure a loopback server's own
// ceiling: one keep-alive TCP connection to 127.0.0.1, requests sent as
// pre-built bytes, each answer read whole (Content-Length) before the next.
// No parsing beyond the status line and Content-Length, so the client costs
// next to nothing next to the server.
//
// Thread safety: none needed (one call, one connection).
#include <cstdint>
#include <string>
#include <vector>

namespace dirsync::bench {

struct FeedResult {
  std::string error;            // non-empty: a request failed (connection, or a status other than 200)
  double seconds = 0;           // first byte sent to last byte received
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
};

// "POST <path> HTTP/1.1" with JSON `body` and a bearer token, ready to send.
std::string raw_request(const std::string& method, const std::string& path, const std::string& token,
                        const std::string& body);

FeedResult feed(std::uint16_t port, const std::vector<std::string>& requests);

}  // namespace dirsync::bench
