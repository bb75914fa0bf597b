#pragma once
// "Did you mean" for configuration messages, shared by the loader and by the
// job checks that run once connectors are built (engine/registry.cc).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dirsync::config {

// Levenshtein distance.
std::size_t edit_distance(std::string_view a, std::string_view b);
// The closest candidate within distance 2, if any (ties: the first in order).
std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& candidates);
// "'text'": how names and values are shown in messages.
std::string in_quotes(std::string_view s);
// "a, b, c"
std::string join(const std::vector<std::string>& items);
// "did you mean 'x'?" or "expected one of: a, b" (or `none` when there are no candidates).
std::string suggestion(std::string_view word, const std::vector<std::string>& candidates,
                       std::string_view none = "expected one of: (none defined)");

}  // namespace dirsync::config
