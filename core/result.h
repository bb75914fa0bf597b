#pragma once
// Result<T>: the return type of runtime I/O (source pulls, target pushes, state
// writes). Configuration and start-up errors throw instead (see config/).
#include <string>
#include <utility>
#include <variant>

namespace dirsync::core {

// What the caller should do about a failure, in the spirit of abseil's codes.
enum class ErrorKind {
  kSource,     // the source pull failed (I/O, parse, remote error): the pull is incomplete
  kTarget,     // the target failed in a way that stops the job (e.g. unreachable after retries)
  kAuth,       // 401/403: credentials are wrong; stop the job, fix the config
  kState,      // the state store failed (disk full, corrupt, version mismatch)
  kBusy,       // another process runs the job
  kGuard,      // a safety guard refused the run (empty pull over a populated snapshot, ...)
  kInvalid,    // bad input to a pure function
};

const char* to_string(ErrorKind kind);

struct Error {
  ErrorKind kind;
  std::string message;  // complete, operator-readable; never contains secret values
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}      // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void> equivalent.
struct Ok {};
using Status = Result<Ok>;

}  // namespace dirsync::core
