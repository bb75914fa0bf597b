// The loader: YAML text → Config, validated whole. The top level and jobs are
// read here; connector sections come from the tables in schema.cc.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>

#include <yaml-cpp/eventhandler.h>

#include "config/config.h"
#include "config/daemon_config.h"
#include "config/filter_config.h"
#include "config/schema.h"
#include "config/yaml_section.h"

namespace dirsync::config {

std::string Position::str() const { return file + ":" + std::to_string(line) + ":" + std::to_string(column); }

namespace {

std::string join_lines(const std::vector<std::string>& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty()) out += '\n';
    out += e;
  }
  return out;
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> errors)
    : std::runtime_error(join_lines(errors)), errors_(std::move(errors)) {}

namespace detail {
namespace {

using YAML::Node;

const char* const kNameRule = "expected letters, digits, '-', '_' or '.', not starting with '.'";

// --- the top level --------------------------------------------------------------

const std::vector<KeyDoc>& top_docs() {
  static const std::vector<KeyDoc> docs = {
      {"state_dir", "path", "", true,
       "Directory of the LMDB state (snapshots, run history); relative to the config file's directory"},
      {"sources", "map", "{}", false, "Source name → source settings (see sources.<name>)"},
      {"targets", "map", "{}", false, "Target name → target settings (see targets.<name>)"},
      {"jobs", "map", "{}", false, "Job name → job settings (see jobs.<name>)"},
      {"daemon", "map", "(defaults)", false, "Settings of `dirsync daemon` (see 'daemon')"},
      {"lookups", "map", "{}", false,
       "Table name → {source value: result} for the template function map:NAME (see 'lookup tables')"},
  };
  return docs;
}

// --- lookup tables ----------------------------------------------------------------

// One table under `lookups`, in file order (the order is map's priority).
// Always a table, even with errors, so that a template naming it does not
// report one mistake twice.
std::shared_ptr<const core::LookupTable> parse_lookup(Context& ctx, const std::string& name, const Node& node,
                                                     const YAML::Mark& mark) {
  const std::string what = "in lookup table " + in_quotes(name);
  if (!node.IsMap()) {
    ctx.diag.error(node.IsNull() ? mark : node.Mark(),
                   (node.IsNull() ? "missing value for lookup table " : "bad value " + describe_value(node) +
                                                                            " for lookup table ") +
                       in_quotes(name),
                   "expected a map of source value: result");
    return std::make_shared<const core::LookupTable>();
  }
  check_duplicates(ctx, node, what);
  std::vector<core::LookupTable::Entry> entries;
  std::set<std::string> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      ctx.diag.error(kv.first.Mark(), "bad key " + describe_value(kv.first) + " " + what, "expected a source value");
      continue;
    }
    const std::string& key = kv.first.Scalar();
    if (!seen.insert(key).second) continue;  // reported as a duplicate
    const Node& value = kv.second;
    if (!value.IsScalar()) {
      // A null has no useful mark of its own: point at its key.
      ctx.diag.error(value.IsNull() ? kv.first.Mark() : value.Mark(),
                     (value.IsNull() ? "missing value for " : "bad value " + describe_value(value) + " for ") +
                         in_quotes(key) + " " + what,
                     "expected a string, number or boolean");
      continue;
    }
    // Kept as written: the target field's type converts the result.
    entries.push_back({key, value.Scalar()});
  }
  return std::make_shared<const core::LookupTable>(std::move(entries));
}

// --- jobs ---------------------------------------------------------------------

// What a job's readers need besides the job: the names defined under sources and
// targets (including those whose settings have errors, so that one mistake is
// not reported twice), and the lookup tables its templates may name.
struct JobBuild {
  JobConfig job;
  const std::vector<std::string>* sources = nullptr;
  const std::vector<std::string>* targets = nullptr;
  const core::Lookups* lookups = nullptr;
};

void read_reference(Section& sec, const Node& v, std::string_view key, const std::vector<std::string>& defined,
                    std::string& out) {
  auto name = read_string(sec, key, v);
  if (!name) return;
  out = *name;
  if (std::find(defined.begin(), defined.end(), *name) != defined.end()) return;
  std::vector<std::string> sorted = defined;
  std::sort(sorted.begin(), sorted.end());
  sec.ctx().diag.error(v.Mark(), "unknown " + std::string(key) + " " + in_quotes(*name) + " " + sec.what(),
                       suggestion(*name, sorted, "expected a " + std::string(key) + " defined under '" +
                                                     std::string(key) + "s'"));
}

// The keys of max_detach and max_update: one shape; `noun` ("detaches",
// "updates") is what the guard counts.
std::vector<KeyRule<DetachGuard>> guard_rules(const std::string& noun) {
  std::string capital = noun;
  capital[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(capital[0])));
  return {
      {{"count", "integer", "500", false, "Most " + noun + " a run may apply"},
       [](Section& sec, const Node& v, DetachGuard& g) {
         if (auto n = read_int(sec, "count", v, 0, 1'000'000'000, "expected an integer from 0 to 1000000000")) {
           g.max_count = static_cast<std::size_t>(*n);
         }
       }},
      {{"percent", "number", "10", false,
        "Most " + noun + " a run may apply, as a percentage of the snapshot (0..100)"},
       [](Section& sec, const Node& v, DetachGuard& g) {
         if (auto n = read_number(sec, "percent", v, 0, 100, "expected a number from 0 to 100")) g.max_percent = *n;
       }},
      {{"floor", "integer", "5", false, capital + " always allowed, so that small directories are guarded too"},
       [](Section& sec, const Node& v, DetachGuard& g) {
         if (auto n = read_int(sec, "floor", v, 0, 1'000'000'000, "expected an integer from 0 to 1000000000")) {
           g.floor = static_cast<std::size_t>(*n);
         }
       }},
      {{"enabled", "boolean", "true", false, "false turns the guard off"},
       [](Section& sec, const Node& v, DetachGuard& g) {
         if (auto b = read_bool(sec, "enabled", v)) g.enabled = *b;
       }},
  };
}

const std::vector<KeyRule<DetachGuard>>& max_detach_rules() {
  static const std::vector<KeyRule<DetachGuard>> rules = guard_rules("detaches");
  return rules;
}

const std::vector<KeyRule<DetachGuard>>& max_update_rules() {
  static const std::vector<KeyRule<DetachGuard>> rules = guard_rules("updates");
  return rules;
}

// `max_detach` / `max_update`: a map (which turns the guard on unless it says
// enabled: false), or on / off.
void read_guard(Section& sec, const Node& v, const std::string& key, const JobBuild& b,
                const std::vector<KeyRule<DetachGuard>>& rules, DetachGuard& guard) {
  const std::string expected = "expected a map (count, percent, floor, enabled) or off";
  if (v.IsScalar()) {
    // "max_detach: off" reads better than a map with enabled: false.
    const std::string& s = v.Scalar();
    if (s == "off" || parse_bool(s) == false) {
      guard.enabled = false;
      return;
    }
    if (s == "on" || parse_bool(s) == true) {
      guard.enabled = true;
      return;
    }
  }
  if (!v.IsMap()) {
    report_bad_value(sec, key, v, expected);
    return;
  }
  guard.enabled = true;
  Section section(sec.ctx(), v, "in " + key + " of job '" + b.job.name + "'", sec.key_mark(key).value_or(v.Mark()));
  section.check_keys(docs_of(rules));
  run_rules(section, rules, guard);
}

// Every `attribute:` of a protect condition must name what the target holds:
// `key`, a field in `held`, or a member of one ("address.city"). A misspelt
// field would otherwise protect nobody, silently. False after an error.
bool check_protect_attributes(Section& sec, const Node& node, const std::vector<std::string>& held) {
  bool ok = true;
  if (node.IsSequence()) {
    for (const auto& item : node) ok = check_protect_attributes(sec, item, held) && ok;
    return ok;
  }
  if (!node.IsMap()) return true;
  for (const char* combinator : {"all", "any", "not"}) {
    if (const Node part = node[combinator]) ok = check_protect_attributes(sec, part, held) && ok;
  }
  const Node attribute = node["attribute"];
  if (!attribute || !attribute.IsScalar()) return ok;
  const std::string& name = attribute.Scalar();
  auto lower = [](std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  };
  const std::string wanted = lower(name);
  for (const auto& field : held) {
    // Names compare as a record's attributes do: ignoring ASCII case.
    const std::string f = lower(field);
    if (wanted == f || wanted.starts_with(f + ".")) return ok;
  }
  sec.ctx().diag.error(attribute.Mark(),
                       "protect condition on " + in_quotes(name) + " " + sec.what() +
                           ", which is neither 'key' nor a field of the job's mapping",
                       suggestion(name, held));
  return false;
}

// `protect`: one condition in the grammar of the filter's include/exclude. It
// is read by the filter's own reader, as the `include` of a filter, so that its
// mistakes are worded and placed exactly as a filter's.
void read_protect(Section& sec, const Node& v, JobBuild& b) {
  if (!v.IsMap() || v.size() == 0) {
    report_bad_value(sec, "protect", v,
                     "expected a filter condition, e.g. {attribute: key, in: [admin]} or {any: [...]}");
    return;
  }
  Node as_filter(YAML::NodeType::Map);
  as_filter["include"] = v;  // the same node: its marks stay those of the file
  auto protect = read_filter(sec, as_filter);
  if (!protect) return;
  // What the snapshot holds for a user: the mapped fields (and what on_missing
  // sets), read from the file so that a mapping with mistakes still counts.
  std::vector<std::string> held = {"key"};
  auto add_keys = [&held](const std::optional<Node>& map) {
    if (!map || !map->IsMap()) return;
    for (const auto& kv : *map) {
      if (kv.first.IsScalar()) held.push_back(kv.first.Scalar());
    }
  };
  add_keys(sec.find("mapping"));
  if (const auto on_missing = sec.find("on_missing"); on_missing && on_missing->IsMap()) {
    const Node& om = *on_missing;
    if (const Node update = om["update"]) add_keys(update);
  }
  if (check_protect_attributes(sec, v, held)) b.job.protect = std::move(*protect);
}

std::optional<core::Template> read_mapping_value(Section& sec, const std::string& field, const Node& value,
                                                 const core::Lookups* lookups) {
  if (value.IsMap()) {
    // The most likely mistake of all: `name: {first_name}` is a YAML flow map.
    report_bad_value(sec, field, value, "expected a template string (quote it: an unquoted {...} is a YAML map)");
    return std::nullopt;
  }
  if (!value.IsScalar()) {
    report_bad_value(sec, field, value, "expected a template string or a constant");
    return std::nullopt;
  }
  const std::string& text = value.Scalar();
  const std::string& tag = value.Tag();
  // Plain scalars ("?") follow YAML 1.2's core schema: 5 is an integer, true a
  // boolean; quoted ones ("!") are always templates, so "5" stays a string.
  if (tag == "?" || tag == "tag:yaml.org,2002:int") {
    if (auto n = parse_int(text)) return core::Template::constant(*n);
  }
  if (tag == "?" || tag == "tag:yaml.org,2002:bool") {
    if (auto b = parse_bool(text)) return core::Template::constant(*b);
  }
  if (tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:bool") {
    report_bad_value(sec, field, value, tag.ends_with("int") ? "expected an integer" : "expected true or false");
    return std::nullopt;
  }
  try {
    return core::Template::parse(text, lookups);
  } catch (const core::TemplateError& e) {
    const std::size_t offset = static_cast<std::size_t>(std::max(e.column, 1) - 1);
    const auto [line, column] = caret_in_scalar(sec.ctx(), value, offset);
    // An unknown function or table: the closest name says more than the whole list.
    std::string message = e.message;
    if (auto near = e.unknown_name.empty() ? std::nullopt : closest(e.unknown_name, e.known_names)) {
      message = e.unknown_what + "; did you mean " + in_quotes(*near) + "?";
    }
    const bool has_expected = message.find("; ") != std::string::npos;
    sec.ctx().diag.error_at(line, column, "bad template for " + in_quotes(field) + ": " + message,
                            has_expected ? "" : "expected a template such as \"{first_name} {last_name}\"");
    return std::nullopt;
  }
}

void read_mapping(Section& sec, const Node& v, JobBuild& b) {
  Context& ctx = sec.ctx();
  const std::string expected = "expected a map of target field: template";
  if (!v.IsMap()) {
    report_bad_value(sec, "mapping", v, expected);
    return;
  }
  const std::string what = "in the mapping of job '" + b.job.name + "'";
  if (v.size() == 0) {
    ctx.diag.error(v.Mark(), "empty mapping " + std::string("of job '") + b.job.name + "'",
                   "expected at least one target field: template");
    return;
  }
  check_duplicates(ctx, v, what);
  Section fields(ctx, v, what, v.Mark());
  std::set<std::string> seen;
  for (const auto& kv : v) {
    if (!kv.first.IsScalar() || kv.first.Scalar().empty()) {
      ctx.diag.error(kv.first.Mark(), "bad field name " + describe_value(kv.first) + " " + what,
                     "expected a target field name");
      continue;
    }
    const std::string& field = kv.first.Scalar();
    if (!seen.insert(field).second) continue;  // reported as a duplicate
    if (auto tmpl = read_mapping_value(fields, field, kv.second, b.lookups)) {
      b.job.mapping.push_back(MappingConfig{field, std::move(*tmpl), ctx.diag.position(kv.second.Mark())});
    }
  }
}

void read_on_missing(Section& sec, const Node& v, JobBuild& b) {
  const char* expected = "expected detach, ignore, or {update: {field: value, ...}}";
  b.job.missing_where = sec.ctx().diag.position(v.Mark());
  if (v.IsScalar() && (v.Scalar() == "detach" || v.Scalar() == "ignore")) {
    b.job.on_missing = v.Scalar() == "detach" ? OnMissing::kDetach : OnMissing::kIgnore;
    return;
  }
  if (!v.IsMap() || v.size() != 1 || !v["update"] || !v["update"].IsMap() || v["update"].size() == 0) {
    report_bad_value(sec, "on_missing", v, expected);
    return;
  }
  nlohmann::json fields = nlohmann::json::object();
  for (const auto& kv : v["update"]) {
    const Node& value = kv.second;
    if (!kv.first.IsScalar() || !value.IsScalar()) {
      sec.ctx().diag.error(kv.first.Mark(), "bad field in on_missing.update",
                           "expected field: value with a plain value (string, number or boolean)");
      continue;
    }
    // Plain scalars keep their YAML type; quoted ones are strings.
    const std::string& text = value.Scalar();
    if (value.Tag() == "!") {
      fields[kv.first.Scalar()] = text;
    } else if (text == "true" || text == "false") {
      fields[kv.first.Scalar()] = text == "true";
    } else if (long long n = 0; !text.empty() &&
                                std::from_chars(text.data(), text.data() + text.size(), n).ptr ==
                                    text.data() + text.size()) {
      fields[kv.first.Scalar()] = n;
    } else if (text == "null" || text == "~") {
      fields[kv.first.Scalar()] = nullptr;
    } else {
      fields[kv.first.Scalar()] = text;
    }
  }
  b.job.on_missing = OnMissing::kUpdate;
  b.job.missing_update = std::move(fields);
}

const std::vector<KeyRule<JobBuild>>& job_rules() {
  static const std::vector<KeyRule<JobBuild>> rules = {
      {{"source", "string", "", true, "Name of a source under 'sources'"},
       [](Section& sec, const Node& v, JobBuild& b) { read_reference(sec, v, "source", *b.sources, b.job.source); }},
      {{"target", "string", "", true, "Name of a target under 'targets'"},
       [](Section& sec, const Node& v, JobBuild& b) { read_reference(sec, v, "target", *b.targets, b.job.target); }},
      {{"mapping", "map of target field: template", "", true,
        "Target field → template over source attributes, e.g. \"{first_name} {last_name}\"; plain 5 or true are "
        "constants"},
       [](Section& sec, const Node& v, JobBuild& b) {
         if (auto m = sec.key_mark("mapping")) b.job.mapping_where = sec.ctx().diag.position(*m);
         read_mapping(sec, v, b);
       }},
      {{"on_missing", "detach, ignore, or {update: {field: value}}", "detach", false,
        "What happens to users gone from the source: detach them from the target, leave them, or set fields "
        "on them (e.g. {update: {approved: false}} to suspend rather than delete)"},
       read_on_missing},
      {{"max_detach", "map or off", "count 500, percent 10, floor 5", false,
        "Blocks every detach of a run that would detach more than max(floor, min(count, percent of the snapshot)); "
        "off disables it"},
       [](Section& sec, const Node& v, JobBuild& b) {
         read_guard(sec, v, "max_detach", b, max_detach_rules(), b.job.max_detach);
       }},
      {{"max_update", "map or off", "off", false,
        "Blocks every update of a run that would update more than max(floor, min(count, percent of the snapshot)) "
        "users — a broken mapping after a config edit; a map turns it on (count 500, percent 10, floor 5 unless "
        "given)"},
       [](Section& sec, const Node& v, JobBuild& b) {
         read_guard(sec, v, "max_update", b, max_update_rules(), b.job.max_update);
       }},
      {{"protect", "filter condition", "(nobody)", false,
        "Users the job never updates or detaches, whatever the source says (admins, break-glass accounts): a "
        "condition as in 'filter conditions', on what the target holds — its fields, plus `key`, the source key"},
       read_protect},
      {{"detach_after", "integer", "1", false,
        "Consecutive complete pulls a user must be absent from before it is detached (or updated by on_missing), "
        "1..1000; more than 1 guards against sources whose paging can skip records"},
       [](Section& sec, const Node& v, JobBuild& b) {
         if (auto n = read_int(sec, "detach_after", v, 1, 1000, "expected an integer from 1 to 1000")) {
           b.job.detach_after = static_cast<std::uint32_t>(*n);
         }
       }},
      {{"quarantine_after", "integer or off", "3", false,
        "A record the target rejects this many runs in a row with the same payload is quarantined: not sent "
        "again until its source record changes or 'dirsync release' frees it (1..1000; off: never)"},
       [](Section& sec, const Node& v, JobBuild& b) {
         if (v.IsScalar() && v.Scalar() == "off") {
           b.job.quarantine_after = 0;
         } else if (auto n = read_int(sec, "quarantine_after", v, 1, 1000, "expected an integer from 1 to 1000 or off")) {
           b.job.quarantine_after = static_cast<std::uint32_t>(*n);
         }
       }},
      {{"schedule", "manual, {every: D, jitter: D} or {cron: \"...\", timezone: local|UTC}", "manual", false,
        "When `dirsync daemon` runs the job (see 'jobs.<name>.schedule'); manual: only when asked"},
       [](Section& sec, const Node& v, JobBuild& b) {
         if (auto s = read_schedule(sec, v)) b.job.schedule = std::move(*s);
       }},
      {{"run_at_start", "bool", "true", false, "`dirsync daemon` runs the job once when it starts"},
       [](Section& sec, const Node& v, JobBuild& b) {
         if (auto r = read_bool(sec, "run_at_start", v)) b.job.run_at_start = *r;
       }},
      {{"filter", "map: include / exclude conditions", "(every record)", false,
        "Which source records the job manages; the others count as gone from the source (see 'filter "
        "conditions')"},
       [](Section& sec, const Node& v, JobBuild& b) {
         if (auto f = read_filter(sec, v)) b.job.filter = std::move(*f);
       }},
  };
  return rules;
}

std::optional<JobConfig> parse_job(Context& ctx, const std::string& name, const Node& node, const YAML::Mark& mark,
                                   const std::vector<std::string>& sources, const std::vector<std::string>& targets,
                                   const core::Lookups& lookups) {
  if (!node.IsMap()) {
    ctx.diag.error(node.IsNull() ? mark : node.Mark(),
                   (node.IsNull() ? "missing value for job " : "bad value " + describe_value(node) + " for job ") +
                       in_quotes(name),
                   "expected a map with source, target and mapping");
    return std::nullopt;
  }
  JobBuild b;
  b.job.name = name;
  b.job.where = ctx.diag.position(mark);
  b.sources = &sources;
  b.targets = &targets;
  b.lookups = &lookups;
  Section sec(ctx, node, "in job " + in_quotes(name), mark);
  sec.check_keys(docs_of(job_rules()));
  run_rules(sec, job_rules(), b);
  return std::move(b.job);
}

// Reads one of the name → section maps (sources, targets, jobs). `parse` gets
// the name, the section and the name key's mark.
template <class Parse>
std::vector<std::string> read_named(Section& top, std::string_view key, std::string_view singular, Parse parse) {
  std::vector<std::string> names;
  const auto node = top.find(key);
  if (!node || node->IsNull()) return names;  // "sources:" with every entry commented out
  Context& ctx = top.ctx();
  if (!node->IsMap()) {
    report_bad_value(top, key, *node, "expected a map of " + std::string(singular) + " name: settings");
    return names;
  }
  check_duplicates(ctx, *node, "in " + std::string(key));
  for (const auto& kv : *node) {
    if (!kv.first.IsScalar()) {
      ctx.diag.error(kv.first.Mark(), "bad " + std::string(singular) + " name " + describe_value(kv.first), kNameRule);
      continue;
    }
    const std::string& name = kv.first.Scalar();
    if (std::find(names.begin(), names.end(), name) != names.end()) continue;  // reported as a duplicate
    if (!valid_name(name)) {
      ctx.diag.error(kv.first.Mark(), "bad " + std::string(singular) + " name " + in_quotes(name), kNameRule);
    }
    names.push_back(name);
    parse(name, kv.second, kv.first.Mark());
  }
  return names;
}

Config parse_document(Context& ctx, const Node& root) {
  Config cfg;
  cfg.file = ctx.diag.file();
  const std::string expected = "expected a map with state_dir, sources, targets and jobs";
  if (root.IsNull()) {
    ctx.diag.error_at(1, 1, "the configuration is empty", expected);
    return cfg;
  }
  if (!root.IsMap()) {
    ctx.diag.error(root.Mark(), "bad document " + describe_value(root), expected);
    return cfg;
  }
  Section top(ctx, root, "at the top level", root.Mark());
  top.check_keys(top_docs());
  if (auto v = top.find("state_dir")) {
    if (auto p = read_path(top, "state_dir", *v)) cfg.state_dir = *p;
  }
  if (auto v = top.find("daemon")) {
    if (auto d = read_daemon(top, *v)) cfg.daemon = *d;
  }
  // The audit log is on unless turned off, next to the state by default.
  if (cfg.daemon.audit_log == "off") cfg.daemon.audit_log.clear();
  else if (cfg.daemon.audit_log.empty() && !cfg.state_dir.empty()) cfg.daemon.audit_log = cfg.state_dir + "/audit.jsonl";
  const auto sources = read_named(top, "sources", "source", [&](const std::string& name, const Node& n, YAML::Mark m) {
    if (auto s = parse_source(ctx, name, n, m)) cfg.sources.emplace(name, std::move(*s));
  });
  const auto targets = read_named(top, "targets", "target", [&](const std::string& name, const Node& n, YAML::Mark m) {
    if (auto t = parse_target(ctx, name, n, m)) cfg.targets.emplace(name, std::move(*t));
  });
  // Before the jobs, wherever they are in the file: job templates refer to them.
  read_named(top, "lookups", "lookup table", [&](const std::string& name, const Node& n, YAML::Mark m) {
    cfg.lookups.emplace(name, parse_lookup(ctx, name, n, m));
  });
  read_named(top, "jobs", "job", [&](const std::string& name, const Node& n, YAML::Mark m) {
    if (auto j = parse_job(ctx, name, n, m, sources, targets, cfg.lookups)) cfg.jobs.emplace(name, std::move(*j));
  });
  return cfg;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// yaml-cpp 0.7's LoadAll never returns on a token that cannot start a node,
// such as a ',' outside brackets (jbeder/yaml-cpp#1040, fixed upstream after
// 0.8.0): each turn yields one more empty document at the same place until
// memory runs out. Walking the documents without building nodes finds it: a
// document that starts where the previous one did. Throws what LoadAll would.
class DocumentStarts final : public YAML::EventHandler {
 public:
  YAML::Mark last;
  void OnDocumentStart(const YAML::Mark& mark) override { last = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

std::optional<YAML::Mark> stuck_document(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts starts;
  std::optional<int> previous;
  while (parser.HandleNextDocument(starts)) {
    if (previous == starts.last.pos) return starts.last;
    previous = starts.last.pos;
  }
  return std::nullopt;
}

Config load(std::string_view yaml, const std::string& file_name, const std::filesystem::path& base_dir) {
  Context ctx{Diagnostics(file_name), base_dir, split_lines(yaml)};
  std::vector<Node> docs;
  try {
    const std::string text(yaml);
    if (const auto stuck = stuck_document(text)) {
      const char c = stuck->pos >= 0 && static_cast<std::size_t>(stuck->pos) < text.size() ? text[stuck->pos] : ' ';
      ctx.diag.error(*stuck, std::string("malformed YAML: unexpected '") + c + "'",
                     "expected well-formed YAML (check indentation and quoting)");
      throw ConfigError(ctx.diag.messages());
    }
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    ctx.diag.error(e.mark, "malformed YAML: " + e.msg, "expected well-formed YAML (check indentation and quoting)");
    throw ConfigError(ctx.diag.messages());
  }
  if (docs.size() > 1) {
    ctx.diag.error(docs[1].Mark(), "a second YAML document", "expected one document per file");
  }
  Config cfg = parse_document(ctx, docs.empty() ? Node() : docs.front());
  if (!ctx.diag.empty()) throw ConfigError(ctx.diag.messages());
  return cfg;
}

}  // namespace

std::vector<SectionDoc> loader_docs() {
  std::vector<SectionDoc> out = {
      {"top level", top_docs()},
      {"jobs.<name>", docs_of(job_rules())},
      {"jobs.<name>.max_detach", docs_of(max_detach_rules())},
      {"jobs.<name>.max_update", docs_of(max_update_rules())},
  };
  auto filters = filter_docs();
  out.insert(out.end(), filters.begin(), filters.end());
  auto daemon = daemon_docs();
  out.insert(out.end(), daemon.begin(), daemon.end());
  return out;
}

}  // namespace detail

Config load_string(std::string_view yaml, const std::string& file_name) {
  std::error_code ec;
  std::filesystem::path cwd = std::filesystem::current_path(ec);
  return detail::load(yaml, file_name, cwd);
}

Config load_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  auto fail = [&](int err) {
    return ConfigError({path + ": cannot read the file: " + std::generic_category().message(err) +
                        "; expected a readable YAML file"});
  };
  if (f == nullptr) throw fail(errno);
  // As sshd's StrictModes: the file decides what runs with dirsync's rights and
  // where its secrets go, so nobody else may be able to change it. fstat on the
  // open file, so the file checked is the file read.
  struct stat st {};
  if (::fstat(::fileno(f), &st) == 0) {
    std::string problem;
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      problem = path + ": the configuration file is writable by group/others (mode " + mode +
                "), so another user could change what dirsync does; fix with chmod go-w " + path;
    } else if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
      problem = path + ": the configuration file is owned by uid " + std::to_string(st.st_uid) +
                ", neither root nor the user dirsync runs as (uid " + std::to_string(::geteuid()) +
                "), so that user could change what dirsync does; fix with chown root " + path;
    }
    if (!problem.empty()) {
      std::fclose(f);
      throw ConfigError({problem});
    }
  }
  std::string text;
  char buf[65536];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) throw fail(err);

  std::error_code ec;
  std::filesystem::path dir = std::filesystem::absolute(path, ec).parent_path();
  return detail::load(text, path, dir);
}

}  // namespace dirsync::config
