#pragma once
// One HTTP/1.1 keep-alive session over any Beast stream — plain TCP
// (LoopbackHttpServer) or TLS (HttpsTestServer) — so that both test servers
// read requests and write answers alike: read a request, hand it to the
// handler, write its answer, until the client closes, the handler asks to drop
// the connection, or `stopping` is set. Include only from a Beast translation
// unit (it pulls in Beast through tests/support/asio.h).
#include <atomic>
#include <string>
#include <string_view>

#include "tests/support/asio.h"
#include "tests/support/loopback_http_server.h"

namespace dirsync::testing::detail {

std::string lower_ascii(std::string_view s);

enum class SessionEnd {
  kClientGone,       // read/write error or the client closed
  kDropped,          // the handler asked to close without answering
  kClosedAfterReply  // the answer said "Connection: close" (a TLS stream should send close_notify)
};

template <class Stream>
SessionEnd serve_http_session(Stream& stream, const Handler& handler, const std::atomic<bool>& stopping) {
  namespace beast = boost::beast;
  namespace bhttp = boost::beast::http;
  beast::flat_buffer buffer;
  boost::system::error_code ec;
  while (!stopping) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(64u << 20);
    bhttp::read(stream, buffer, parser, ec);
    if (ec) return SessionEnd::kClientGone;
    const auto& req = parser.get();
    ServerRequest request;
    const auto method = req.method_string();
    const auto target = req.target();
    request.method.assign(method.data(), method.size());
    request.target.assign(target.data(), target.size());
    for (const auto& field : req) {
      const auto name = field.name_string();
      const auto value = field.value();
      request.headers.emplace_back(lower_ascii(std::string_view(name.data(), name.size())),
                                   std::string(value.data(), value.size()));
    }
    request.body = req.body();

    ServerResponse response = handler(request);
    if (response.close_without_response) return SessionEnd::kDropped;

    bhttp::response<bhttp::string_body> res;
    res.version(req.version());
    res.result(static_cast<unsigned>(response.status));
    res.set(bhttp::field::server, "dirsync-test");
    if (!response.content_type.empty()) res.set(bhttp::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) res.set(name, value);
    res.body() = std::move(response.body);
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    bhttp::write(stream, res, ec);
    if (ec) return SessionEnd::kClientGone;
    if (!res.keep_alive()) return SessionEnd::kClosedAfterReply;
  }
  return SessionEnd::kClientGone;
}

}  // namespace dirsync::testing::detail
