#pragma once
// A loopback JSON API for the http_json source's tests: one collection of users
// at GET /api/users, paged in any of the source's styles, answered as common
// APIs do.
//
// Body (records at /data unless `bare_array`, then the body is the array):
//   {"data": [user, ...], "meta": {"next_cursor": "..."}, "links": {"next": "..."}}
// `meta` is sent in the cursor style, `links` in the next_url style.
//
// Styles (ServerOptions::style) and what the server reads and answers:
//   kNone        every user at once.
//   kPage        ?page=N (from first_page) &per_page=M (absent: default_page_size).
//   kOffset      ?offset=N&limit=M (absent: 0 and default_page_size).
//   kCursor      ?cursor=<opaque token from the previous page>; pages of default_page_size;
//                meta.next_cursor on every page that has a successor; on the last page it is
//                null, absent or "" (`end_cursor`).
//   kLinkHeader  `Link: <…?page=N>; rel="next"` on every page that has a successor (pages of
//                default_page_size, numbered from 1). `several_links` adds first/prev/last links to
//                the same header (the loopback server sends one field per name), "next" neither
//                first nor alone, with a quoted title holding a comma and a semicolon.
//   kNextUrl     links.next = the next page's URL (…?page=N), null on the last page.
// `relative_links` makes the Link / next URLs relative ("users?page=2" or "/api/users?..."),
// else they are absolute (http://127.0.0.1:<port>/api/users?page=2). `always_next` keeps
// offering a next page after the last one (an empty page), so a client must stop on it.
// Sizes asked above `max_page_size` are capped, as real APIs do.
//
// Authentication (`auth`): kBearer (Authorization: Bearer <token>), kBasic (Authorization:
// Basic base64(username:password), compared byte for byte), kApiKey (<api_key_header>: <api_key>);
// every `required_headers` entry must be present with that exact value. Anything missing or
// wrong → 401 {"message":"Unauthenticated."} with WWW-Authenticate.
// Other paths → 404; other methods → 405.
//
// Faults, per page index k (the page's first user / page size, from 0; the empty page
// after the last one has the index after it), consumed one per request in FIFO order:
//   k500, k503 (no Retry-After), k401, kDrop (close without answering), kNotJson (200 with
//   an HTML body), kRecordsNotArray (200, "data" is an object), kRepeatCursor (page k >= 1: the page's
//   next cursor is the one that fetched it), kRepeatNextUrl
//   (the next URL / Link is the requested URL itself), kForeignNextUrl (next URL / Link on
//   http://127.0.0.2:<port>).
// Data switches: users are JSON objects the test may replace or edit (a user without "id",
// two users with one id, integer ids, nested and non-ASCII fields).
//
// Every request is logged (method, target, headers, status; 0 when dropped).
// Thread safety: every public member may be called while the server runs; one mutex.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/loopback_http_server.h"

namespace dirsync::testing::http_json {

enum class Style { kNone, kPage, kOffset, kCursor, kLinkHeader, kNextUrl };
enum class Auth { kNone, kBearer, kBasic, kApiKey };
enum class EndCursor { kNull, kAbsent, kEmpty };

enum class Fault {
  k500,
  k503,
  k401,
  kDrop,
  kNotJson,
  kRecordsNotArray,
  kRepeatCursor,
  kRepeatNextUrl,
  kForeignNextUrl,
};

struct ServerOptions {
  Style style = Style::kPage;
  std::size_t default_page_size = 10;
  std::size_t max_page_size = 1000;
  std::int64_t first_page = 1;        // kPage
  EndCursor end_cursor = EndCursor::kNull;
  bool bare_array = false;            // the body is the array (kNone, kPage, kOffset, kLinkHeader)
  bool relative_links = false;
  bool several_links = false;         // kLinkHeader
  bool always_next = false;

  Auth auth = Auth::kNone;
  std::string token = "test-token";
  std::string username = "reader";
  std::string password = "pä55:word";
  std::string api_key_header = "X-API-Key";
  std::string api_key = "test-api-key";
  std::vector<std::pair<std::string, std::string>> required_headers;
};

// The request as received (method, target with its query, headers) and the answer's status.
struct LoggedRequest : ServerRequest {
  int status = 0;  // 0: dropped without an answer
};

inline constexpr const char* kPath = "/api/users";

class HttpJsonTestServer {
 public:
  explicit HttpJsonTestServer(ServerOptions options = {});
  ~HttpJsonTestServer();

  void start(std::uint16_t port = 0);
  void stop();
  std::string base_url() const;   // "http://127.0.0.1:<port>"
  std::string users_url() const;  // base_url() + kPath

  void set_options(ServerOptions options);
  ServerOptions options() const;

  // Users "u1".."un" (appended after any existing ones): {"id", "name": {"given", "family"},
  // "email", "active", "groups": [...]}.
  void add_users(int n);
  void set_users(std::vector<nlohmann::json> users);
  std::vector<nlohmann::json> users() const;
  void edit_user(std::size_t index, const nlohmann::json& patch);  // merge-patch (RFC 7386)

  // The next `times` requests for page `page_index` get `fault` (times < 0: every one).
  void inject(std::size_t page_index, Fault fault, int times = 1);
  void clear_faults();

  std::vector<LoggedRequest> request_log() const;
  std::size_t request_count() const;

  // The handler itself (what the socket side calls); usable without sockets.
  ServerResponse handle(const ServerRequest& request);

 private:
  struct FaultSlot {
    Fault fault;
    int times;
  };
  ServerResponse handle_locked(const ServerRequest& request);
  bool authorized_locked(const ServerRequest& request) const;
  std::optional<Fault> take_fault_locked(std::size_t page_index);
  std::string page_url_locked(const std::string& query) const;

  ServerOptions options_;
  mutable std::mutex mu_;
  std::vector<nlohmann::json> users_;
  std::map<std::size_t, std::deque<FaultSlot>> faults_;
  std::vector<LoggedRequest> log_;
  LoopbackHttpServer http_;
};

}  // namespace dirsync::testing::http_json
