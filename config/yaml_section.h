#pragma once
// Internal to config/: the pieces every section parser shares — an error
// collector that keeps positions, typed readers for scalar values, and the
// table-driven key check (unknown keys, duplicates, required keys).
//
// Readers never throw: they record an error and return nullopt, so that one
// load reports every problem in the file, not only the first.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/suggest.h"

#include "config/config.h"
#include "config/schema.h"
#include "core/secret.h"

namespace dirsync::config::detail {

// Collects "<file>:<line>:<col>: <what>; <expected>" messages, in document order.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  // `mark` is yaml-cpp's (0-based); a mark of -1 (a null node) reads as 1:1.
  void error(const YAML::Mark& mark, std::string_view what, std::string_view expected);
  // For positions already converted (template carets).
  void error_at(int line, int column, std::string_view what, std::string_view expected);

  Position position(const YAML::Mark& mark) const;
  const std::string& file() const { return file_; }
  bool empty() const { return entries_.empty(); }
  // Sorted by position (stable, so errors at one spot keep their order).
  std::vector<std::string> messages() const;

 private:
  struct Entry {
    int line;
    int column;
    std::string text;
  };
  std::string file_;
  std::vector<Entry> entries_;
};

// State shared by every reader during one load.
struct Context {
  Diagnostics diag;
  std::filesystem::path base_dir;        // relative paths are resolved against it
  std::vector<std::string_view> lines;   // the source text, for template carets
};

// The text helpers of config/suggest.h, as this module's own.
using config::closest;
using config::edit_distance;
using config::in_quotes;
using config::join;
using config::suggestion;

// How a node reads in a message: "'text'" for scalars, "(a map)", "(a list)", "(empty)".
std::string describe_value(const YAML::Node& node);

// A YAML map being read against a table of keys. `what` names it in messages
// ("source 'hr'"); `mark` is where the section starts (the name key's mark), used
// for "missing required key" errors.
class Section {
 public:
  Section(Context& ctx, YAML::Node node, std::string what, YAML::Mark mark);

  // Reports unknown keys (with did-you-mean), duplicate keys and missing
  // required ones. `known` lists every key the section accepts.
  void check_keys(const std::vector<KeyDoc>& known);

  // The value of `key` (the first, if duplicated), or nullopt when absent.
  std::optional<YAML::Node> find(std::string_view key) const;
  // The mark of `key` itself, for errors about a value that yaml-cpp marks badly (nulls).
  std::optional<YAML::Mark> key_mark(std::string_view key) const;

  Context& ctx() { return ctx_; }
  const std::string& what() const { return what_; }
  const YAML::Mark& mark() const { return mark_; }
  bool valid() const { return node_.IsMap(); }

 private:
  Context& ctx_;
  YAML::Node node_;
  std::string what_;
  YAML::Mark mark_;
};

// Records "bad value 'x' for 'key'; <expected>" (or "missing value ..." for a
// null), at the value or, for a null, at the key. For checks beyond the readers.
void report_bad_value(Section& sec, std::string_view key, const YAML::Node& value, std::string_view expected);
// "1500ms", "10s", "2m": how a duration reads in a message.
std::string format_duration(std::chrono::milliseconds d);

// Typed readers. `key` names the value in messages; `sec` supplies the context
// and the key's own mark (for values yaml-cpp cannot place, such as nulls).
std::optional<std::string> read_string(Section& sec, std::string_view key, const YAML::Node& value);
std::optional<std::int64_t> read_int(Section& sec, std::string_view key, const YAML::Node& value,
                                     std::int64_t min, std::int64_t max, std::string_view expected);
std::optional<double> read_number(Section& sec, std::string_view key, const YAML::Node& value, double min,
                                  double max, std::string_view expected);
std::optional<bool> read_bool(Section& sec, std::string_view key, const YAML::Node& value);
std::optional<std::string> read_enum(Section& sec, std::string_view key, const YAML::Node& value,
                                     const std::vector<std::string>& allowed);
// A path; relative ones are resolved against the config file's directory.
std::optional<std::string> read_path(Section& sec, std::string_view key, const YAML::Node& value);
// "10s", "500ms", "2m", "1h" or a plain integer (seconds); must be > 0.
std::optional<std::chrono::milliseconds> read_duration(Section& sec, std::string_view key, const YAML::Node& value);
// A secret reference, resolved now. Never echoes the value in a message.
std::optional<core::Secret> read_secret(Section& sec, std::string_view key, const YAML::Node& value);

// Pure helpers, exposed for tests of the readers' grammar.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
std::optional<std::int64_t> parse_int(std::string_view text);
// YAML 1.2 core schema booleans only (true/True/TRUE/false/...), so "no" stays a string.
std::optional<bool> parse_bool(std::string_view text);

// resolve_secret, with relative ${file:} paths taken against `base_dir`.
// Throws SecretError.
struct SecretError {
  std::string reference;  // "${env:NAME}"; empty when the text is not a known kind of reference
  std::string what;       // names the reference, never a value
  std::string expected;
};
core::Secret resolve_secret_in(const std::string& text, const std::filesystem::path& base_dir);

// The 1-based line/column of byte `offset` (0-based) of a scalar's cooked value,
// mapped back to the source text. Handles plain, single- and double-quoted
// scalars on one line; anything else (block scalars, folded lines) falls back to
// the scalar's own position.
std::pair<int, int> caret_in_scalar(const Context& ctx, const YAML::Node& scalar, std::size_t offset);

}  // namespace dirsync::config::detail

namespace dirsync::config::detail {

// One row of a section's table: the documentation and the reader in one place,
// so that the two cannot drift apart.
template <class S>
struct KeyRule {
  KeyDoc doc;
  void (*read)(Section& sec, const YAML::Node& value, S& out);
};

template <class S>
std::vector<KeyDoc> docs_of(const std::vector<KeyRule<S>>& rules) {
  std::vector<KeyDoc> out;
  out.reserve(rules.size());
  for (const auto& r : rules) out.push_back(r.doc);
  return out;
}

// Runs the reader of every key present in the section (key checks are the caller's).
template <class S>
void run_rules(Section& sec, const std::vector<KeyRule<S>>& rules, S& out) {
  for (const auto& r : rules) {
    if (auto value = sec.find(r.doc.key)) r.read(sec, *value, out);
  }
}

// Reports duplicate keys of any map (also the name maps: sources, jobs, a mapping).
void check_duplicates(Context& ctx, const YAML::Node& map, std::string_view what);

// Whether `name` is usable as a source/target/job name (it ends up in state keys
// and lock file names): letters, digits, '-', '_', '.'; not starting with '.'.
bool valid_name(std::string_view name);

// The tables and parsers of the connector sections (schema.cc).
std::optional<SourceConfig> parse_source(Context& ctx, const std::string& name, const YAML::Node& node,
                                         const YAML::Mark& mark);
std::optional<TargetConfig> parse_target(Context& ctx, const std::string& name, const YAML::Node& node,
                                         const YAML::Mark& mark);
std::vector<SectionDoc> connector_docs();
// The tables of the top level and of jobs (loader.cc).
std::vector<SectionDoc> loader_docs();

}  // namespace dirsync::config::detail
