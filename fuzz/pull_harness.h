#pragma once
// What the HTTP source fuzzers share: a Transport that answers from the
// input, and a loop that runs a pull to its end checking what every pull owes.
#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "connectors/http/http_client.h"
#include "core/source.h"
#include "fuzz/fuzz_input.h"

namespace dirsync::fuzz {

// The i-th request gets the i-th response; past the end, 404 with an empty
// body (a final answer: never retried, so a pull always ends).
class FakeTransport final : public http::Transport {
 public:
  explicit FakeTransport(std::vector<http::Response> responses) : responses_(std::move(responses)) {}
  http::Response send(const http::Request&) override {
    if (next_ < responses_.size()) return responses_[next_++];
    http::Response gone;
    gone.status = 404;
    return gone;
  }

 private:
  std::vector<http::Response> responses_;
  std::size_t next_ = 0;
};

// The answers of a pull: one per page of `body` (see pages()), with header
// "statuses" ([status of page 1, ...]; default 200) and "links" ([Link header
// value of page 1, ...]; default none).
inline std::vector<http::Response> page_responses(const json& header, const std::string& body) {
  const auto list = [&](const char* name) {
    const auto it = header.find(name);
    return it != header.end() && it->is_array() ? *it : json::array();
  };
  const json statuses = list("statuses");
  const json links = list("links");
  std::vector<http::Response> out;
  for (std::string& text : pages(body)) {
    const std::size_t i = out.size();
    http::Response r;
    r.status = i < statuses.size() && statuses[i].is_number_integer() ? std::clamp(statuses[i].get<int>(), 100, 599)
                                                                       : 200;
    if (i < links.size() && links[i].is_string()) r.headers.push_back({"link", links[i].get<std::string>()});
    r.body = std::move(text);
    out.push_back(std::move(r));
  }
  return out;
}

// Runs `pull` until a last page or an Error. One request per next() call, so
// a pull that needs more than `responses` + 1 calls loops. Records must have
// non-empty keys that no earlier record of the pull had.
inline void drain(core::Pull& pull, std::size_t responses) {
  std::set<std::string> keys;
  for (std::size_t call = 0;; ++call) {
    require(call <= responses);
    auto page = pull.next();
    if (!page.ok()) return;
    for (const core::Record& record : page->records) require(!record.key.empty() && keys.insert(record.key).second);
    if (page->last) return;
  }
}

// One pull of the source `make(connect)` builds, `connect` making transports
// that answer with the pages of `body` (see page_responses), run by drain().
template <typename Make>
void pull_pages(const json& header, const std::string& body, Make make) {
  const std::vector<http::Response> responses = page_responses(header, body);
  auto source = make([&responses] { return std::make_unique<FakeTransport>(responses); });
  auto pull = source->start();
  if (pull.ok()) drain(*pull.value(), responses.size());
}

}  // namespace dirsync::fuzz
