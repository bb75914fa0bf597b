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
// - Every server has a FaultPlan (below): scripted failures laid over
//   whatever its handler does, so that every test server built on this one
//   can fail the same ways without code of its own.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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

// ---------------------------------------------------------------- faults
// What a fault does to one request. Each applies either BEFORE the handler
// runs (the handler never sees the request: it had no effect) or AFTER it ran
// (its effects happened; the answer is lost, late, or garbled). A client
// cannot tell the two apart, which is the point: both must end well.
enum class FaultKind {
  k429,             // 429 {"message":"Too Many Attempts."} with Retry-After: <retry_after_seconds>
  k500,             // 500 {"message":"Server Error"}
  kDelay,           // wait `delay` (meant to exceed the client's timeout). Before: then drop the
                    // connection unanswered (a gateway that gave up); after: then send the answer
  kClose,           // close the connection without answering
  kMalformedJson,   // a complete answer whose JSON body is cut in half (so it does not parse)
  kTruncatedBody,   // the headers promise the whole body; half of it is sent, then the connection closes
  kWrongShape,      // a 2xx whose body is valid JSON of the wrong shape (`wrong_shape_body`)
  kPartialResults,  // AFTER only: the handler's 2xx answer with the second half of its first JSON
                    // array dropped (the body itself, or the first array member of an object)
};
enum class FaultPhase { kBefore, kAfter };
const char* to_string(FaultKind kind);
const char* to_string(FaultPhase phase);

struct FaultSpec {
  FaultKind kind = FaultKind::k500;
  FaultPhase phase = FaultPhase::kBefore;
  int retry_after_seconds = 1;                  // k429
  std::chrono::milliseconds delay{0};           // kDelay
  // Only requests with this method get the fault (empty: any), e.g. "POST" so
  // that a full-set API's GET of the current set is spared.
  std::string method;
  // kWrongShape, and the body garbled by kMalformedJson / kTruncatedBody when
  // the handler did not run (phase kBefore, sent with `before_status`).
  std::string wrong_shape_body = R"({"unexpected":{"shape":true},"items":"none"})";
  int before_status = 200;
};

// One request as the fault layer saw it.
struct FaultLogEntry {
  std::string method;
  std::string target;
  std::string request_body;
  std::optional<FaultSpec> fault;  // the fault it got, if any
  bool handler_ran = false;        // the handler processed it: its effects happened
  int handler_status = 0;          // the handler's answer before any fault (0: it did not run)
  std::string handler_body;
  int sent_status = 0;             // the status line the client was sent (0: none)
};

// A script of faults, consumed by the requests that match them. Thread safe:
// the test changes it while connection threads consume it.
class FaultPlan {
 public:
  // The next `count` requests matching `fault` get it (queued behind faults
  // already planned; a request takes the first queued fault that matches it).
  void add(const FaultSpec& fault, int count = 1);
  // Intermittent: when no queued fault matches, every `period`-th request
  // matching `fault`, starting with the first (the 1st, period+1-th, …,
  // counted from this call), gets it. 0 turns it off.
  void every(std::size_t period, const FaultSpec& fault);
  // No more faults, queued or intermittent. The log stays.
  void clear();
  std::size_t queued() const;
  // Every request served, logged once it is answered (or dropped), so a
  // request still inside a kDelay is not there yet.
  std::vector<FaultLogEntry> log() const;
  // Faults handed out so far (counted when a request takes one).
  std::size_t faults_applied() const;
  // Base URLs of the servers using this plan (set when they start).
  std::vector<std::string> server_urls() const;

  // For LoopbackHttpServer: the fault for the next request, if any; and its record.
  std::optional<FaultSpec> take(const std::string& method);
  void record(FaultLogEntry entry);
  void attach(const std::string& base_url);

 private:
  mutable std::mutex mu_;
  std::vector<FaultSpec> queue_;
  std::optional<FaultSpec> intermittent_;
  std::size_t period_ = 0;
  std::size_t seen_ = 0;  // requests matching `intermittent_` since every()
  std::size_t taken_ = 0;
  std::vector<FaultLogEntry> log_;
  std::vector<std::string> urls_;
};

// While one is alive, every LoopbackHttpServer constructed (on any thread)
// uses `plan` instead of a plan of its own: a test reaches the faults of a
// server built deep inside a fixture it cannot otherwise get at. Scopes nest.
class FaultPlanScope {
 public:
  explicit FaultPlanScope(std::shared_ptr<FaultPlan> plan);
  ~FaultPlanScope();
  FaultPlanScope(const FaultPlanScope&) = delete;
  FaultPlanScope& operator=(const FaultPlanScope&) = delete;

 private:
  std::shared_ptr<FaultPlan> previous_;
};

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
  // The faults laid over the handler (none until the test plans some).
  FaultPlan& fault_plan();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dirsync::testing
