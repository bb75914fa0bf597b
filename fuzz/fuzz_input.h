#pragma once
// The input format every dirsync fuzzer shares, and its small helpers.
//
// An input is an optional header line and a body:
//   #{"status": 422, "batch": [{"op": "create", "key": "1", "payload": {...}}]}
//   <body bytes: an HTTP body, a YAML file, a CSV file, a template ...>
// The header is a JSON object on the first line, after '#'. A header that is
// absent, or does not parse as an object, counts as {}: each fuzzer then uses
// its defaults, so every byte string is a valid input. The format is text so
// that the seed corpora (fuzz/corpus/) can be read and written by hand.
//
// Reading the header never throws: every helper checks the JSON type and falls
// back to the default on a mismatch (a fuzzer must only crash on real bugs).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "connectors/http/http_client.h"
#include "core/change.h"
#include "core/record.h"

namespace dirsync::fuzz {

using nlohmann::json;

// An invariant of the code under test does not hold: a crash libFuzzer records.
inline void require(bool condition) {
  if (!condition) __builtin_trap();
}

struct Input {
  json header = json::object();
  std::string body;
};

inline Input split_input(const std::uint8_t* data, std::size_t size) {
  Input in;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (text.starts_with('#')) {
    const std::size_t eol = text.find('\n');
    const std::string_view line = text.substr(1, eol == std::string_view::npos ? std::string_view::npos : eol - 1);
    json header = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (header.is_object()) in.header = std::move(header);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
  }
  in.body = std::string(text);
  return in;
}

// `header[name]` when it has the wanted type, else `fallback`.
inline std::string str(const json& header, const char* name, std::string fallback = {}) {
  const auto it = header.find(name);
  return it != header.end() && it->is_string() ? it->get<std::string>() : fallback;
}
inline std::int64_t integer(const json& header, const char* name, std::int64_t fallback, std::int64_t lo,
                            std::int64_t hi) {
  const auto it = header.find(name);
  if (it == header.end() || !it->is_number_integer()) return fallback;
  return std::clamp<std::int64_t>(it->get<std::int64_t>(), lo, hi);
}
inline bool boolean(const json& header, const char* name, bool fallback = false) {
  const auto it = header.find(name);
  return it != header.end() && it->is_boolean() ? it->get<bool>() : fallback;
}
// The strings of an array (other elements skipped); empty for a non-array.
inline std::vector<std::string> strings(const json& array) {
  std::vector<std::string> out;
  if (!array.is_array()) return out;
  for (const json& v : array) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}
inline std::vector<std::string> strings(const json& header, const char* name) {
  const auto it = header.find(name);
  return it == header.end() ? std::vector<std::string>() : strings(*it);
}
// Header "attributes" {name: [paths]} as config's AttributePath list; `fallback` when absent.
template <typename AttributePath>
std::vector<AttributePath> attribute_paths(const json& header, std::vector<AttributePath> fallback) {
  const auto it = header.find("attributes");
  if (it == header.end() || !it->is_object()) return fallback;
  std::vector<AttributePath> out;
  for (const auto& [name, paths] : it->items()) out.push_back({name, strings(paths)});
  return out;
}

// The longest value worth matching against an operator's regex of at most
// `pattern_bytes`. Boost.Regex (core/regex.h) gives up on a match after about
// max(N·S², min(N², 10^8)) steps (N the value's length, S the pattern's size):
// never forever, but up to seconds under ASan, which libFuzzer reports as a
// timeout and which slows it down long before that. This keeps both terms
// within 2^20 steps (a few tenths of a second under ASan).
inline std::size_t regex_value_bytes(std::size_t pattern_bytes) {
  const std::size_t s = std::max<std::size_t>(pattern_bytes, 1);
  return std::clamp<std::size_t>((std::size_t{1} << 20) / (s * s), 1, 1024);
}

// `value` cut to its last `bytes` bytes: the end of "aaa...ab" is what makes
// nested repeats give up.
inline void keep_end(std::string& value, std::size_t bytes) {
  if (value.size() > bytes) value.erase(0, value.size() - bytes);
}

// Splits `body` at lines that are exactly "---" (several pages of one pull).
inline std::vector<std::string> pages(const std::string& body) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = body.find("\n---\n", start);
    if (at == std::string::npos) break;
    out.push_back(body.substr(start, at - start));
    start = at + 5;
  }
  out.push_back(body.substr(start));
  return out;
}

// A batch from header "batch": [{op, key, payload, previous, target_id,
// changed_fields, resync}], at most 64 changes; `fallback` when absent.
inline std::vector<core::Change> batch(const json& header, std::vector<core::Change> fallback) {
  const auto it = header.find("batch");
  if (it == header.end() || !it->is_array()) return fallback;
  std::vector<core::Change> out;
  for (const json& c : *it) {
    if (out.size() == 64) break;
    if (!c.is_object()) continue;
    core::Change change;
    const std::string op = str(c, "op", "create");
    change.op = op == "update" ? core::Op::kUpdate : op == "detach" ? core::Op::kDetach : core::Op::kCreate;
    change.key = str(c, "key", std::to_string(out.size() + 1));
    if (const auto p = c.find("payload"); p != c.end()) change.payload = *p;
    if (const auto p = c.find("previous"); p != c.end()) change.previous = *p;
    change.target_id = str(c, "target_id");
    change.changed_fields = strings(c, "changed_fields");
    change.resync = boolean(c, "resync");
    out.push_back(std::move(change));
  }
  return out;
}

// What a batch target sends in its first request: the changes that pass
// `precheck` (which returns the outcome of one that cannot be sent), then the
// first group `groups(changes, positions)` makes of them.
template <typename Precheck, typename Groups>
std::vector<core::Change> first_request(const std::vector<core::Change>& all, Precheck precheck, Groups groups) {
  std::vector<core::Change> valid;
  for (const core::Change& c : all) {
    if (!precheck(c)) valid.push_back(c);
  }
  if (valid.empty()) return valid;
  std::vector<std::size_t> positions(valid.size());
  for (std::size_t i = 0; i < positions.size(); ++i) positions[i] = i;
  const std::vector<std::vector<std::size_t>> grouped = groups(std::span<const core::Change>(valid), positions);
  require(!grouped.empty());
  std::vector<core::Change> out;
  for (std::size_t i : grouped.front()) out.push_back(valid.at(i));
  return out;
}

inline core::Change create(std::string key, json payload) {
  core::Change c;
  c.op = core::Op::kCreate;
  c.key = std::move(key);
  c.payload = std::move(payload);
  return c;
}

// The response: header "status" (default 200), "headers" {name: value} (names
// lower-cased, as http::Response holds them), "failure" ("nothing_sent" or
// "after_send": a transport failure, status 0), "tls" (a TLS problem).
inline http::Response response(const json& header, std::string body) {
  http::Response r;
  r.body = std::move(body);
  r.status = static_cast<int>(integer(header, "status", 200, 0, 999));
  if (const auto h = header.find("headers"); h != header.end() && h->is_object()) {
    for (const auto& [name, value] : h->items()) {
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); });
      if (value.is_string()) r.headers.push_back({std::move(lower), value.get<std::string>()});
    }
  }
  const std::string failure = str(header, "failure");
  if (failure == "nothing_sent" || failure == "after_send") {
    r.failure = failure == "nothing_sent" ? http::TransportFailure::kNothingSent : http::TransportFailure::kAfterSend;
    r.status = 0;
    r.error = "fuzzed transport failure";
    r.tls_problem = boolean(header, "tls");
  }
  return r;
}

// A record from header "record": {name: value or [values]} (values scalars,
// as text), or `fallback` when absent.
inline core::Record record(const json& header, core::Record fallback) {
  const auto it = header.find("record");
  if (it == header.end() || !it->is_object()) return fallback;
  core::Record out;
  out.key = str(header, "key", "fuzz");
  for (const auto& [name, value] : it->items()) {
    std::vector<std::string> values;
    for (const json& v : value.is_array() ? value : json::array({value})) {
      if (v.is_string()) values.push_back(v.get<std::string>());
      else if (!v.is_structured()) values.push_back(v.dump());
    }
    out.set(name, std::move(values));
  }
  return out;
}

}  // namespace dirsync::fuzz
