#include "connectors/http/rounds.h"

#include <algorithm>
#include <deque>

namespace dirsync::http {

core::Result<std::vector<core::Outcome>> run_rounds(std::span<const core::Change> batch,
                                                    std::vector<std::optional<core::Outcome>> outcomes,
                                                    std::vector<std::vector<std::size_t>> groups,
                                                    const SendRound& send, const std::string& name) {
  std::deque<std::vector<std::size_t>> work;
  for (auto& g : groups) {
    if (!g.empty()) work.push_back(std::move(g));
  }
  while (!work.empty()) {
    std::vector<std::size_t> group = std::move(work.front());
    work.pop_front();
    std::vector<core::Change> sub;
    sub.reserve(group.size());
    for (std::size_t i : group) sub.push_back(batch[i]);

    RoundDecision d = send(sub);
    if (d.error) {
      const bool any_applied = std::any_of(outcomes.begin(), outcomes.end(), [](const auto& o) {
        return o && o->kind == core::OutcomeKind::kApplied;
      });
      if (!any_applied) return *d.error;
      for (auto& o : outcomes) {
        if (!o) o = core::Outcome::retry(d.error->message);
      }
      break;
    }
    if (d.bisect && group.size() > 1) {
      const auto mid = group.begin() + static_cast<std::ptrdiff_t>(group.size() / 2);
      work.emplace_front(mid, group.end());
      work.emplace_front(group.begin(), mid);
      continue;
    }
    std::vector<std::size_t> rest;
    for (std::size_t j = 0; j < group.size(); ++j) {
      if (j < d.outcomes.size() && d.outcomes[j]) {
        outcomes[group[j]] = std::move(*d.outcomes[j]);
      } else {
        rest.push_back(group[j]);
      }
    }
    if (rest.size() == group.size()) {
      for (std::size_t i : rest) outcomes[i] = core::Outcome::unknown(name + "'s answer decided nothing for this user");
      continue;
    }
    if (!rest.empty()) work.push_front(std::move(rest));
  }

  std::vector<core::Outcome> out;
  out.reserve(outcomes.size());
  for (auto& o : outcomes) out.push_back(o ? std::move(*o) : core::Outcome::unknown("not sent"));
  return out;
}

}  // namespace dirsync::http
