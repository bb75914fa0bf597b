#pragma once
// Secret: a credential resolved from ${env:NAME}, ${file:PATH} or ${cred:NAME}.
// It has no stream operator and no implicit conversion, so it cannot end up in a
// log line or an error by accident; `describe()` names where it came from
// ("${env:PERSCOM_TOKEN}") and is what messages should print.
#include <string>
#include <utility>

namespace dirsync::core {

class Secret {
 public:
  Secret() = default;
  Secret(std::string value, std::string origin) : value_(std::move(value)), origin_(std::move(origin)) {}

  // The value, for the one place that needs it (an HTTP header, a bind call).
  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  // Where the value came from, safe to print. "(literal)" for an inline value.
  const std::string& describe() const { return origin_; }

 private:
  std::string value_;
  std::string origin_;
};

}  // namespace dirsync::core
