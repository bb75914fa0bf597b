#include "config/filter_config.h"

namespace dirsync::config::detail {
namespace {

using YAML::Node;

const char* const kConditionExpected =
    "expected {attribute: NAME, equals|not_equals|regex|in|present: ...}, or one of all: [...], any: [...], "
    "not: {...}";

const std::vector<std::string> kTests = {"equals", "not_equals", "regex", "in", "present"};
const std::vector<std::string> kCombinators = {"all", "any", "not"};

std::optional<core::Condition> read_condition(Context& ctx, const Node& node, const YAML::Mark& mark, int depth);

std::optional<std::vector<core::Condition>> read_parts(Context& ctx, const Node& list, const std::string& key,
                                                       int depth) {
  if (!list.IsSequence() || list.size() == 0) {
    ctx.diag.error(list.IsNull() ? YAML::Mark() : list.Mark(), "bad value for '" + key + "' in filter",
                   "expected a non-empty list of conditions");
    return std::nullopt;
  }
  std::vector<core::Condition> parts;
  bool ok = true;
  for (const auto& item : list) {
    auto c = read_condition(ctx, item, item.Mark(), depth + 1);
    if (c) parts.push_back(std::move(*c));
    else ok = false;
  }
  if (!ok) return std::nullopt;
  return parts;
}

std::optional<std::string> scalar(Context& ctx, const Node& v, const std::string& key) {
  if (v.IsScalar()) return v.Scalar();
  ctx.diag.error(v.IsNull() ? YAML::Mark() : v.Mark(), "bad value for '" + key + "' in filter", "expected a string");
  return std::nullopt;
}

std::optional<core::Condition> read_condition(Context& ctx, const Node& node, const YAML::Mark& mark, int depth) {
  if (depth > 32) {
    ctx.diag.error(mark, "filter nested too deeply", "expected at most 32 levels");
    return std::nullopt;
  }
  if (!node.IsMap() || node.size() == 0) {
    ctx.diag.error(node.IsNull() ? mark : node.Mark(), "bad filter condition " + describe_value(node),
                   kConditionExpected);
    return std::nullopt;
  }
  check_duplicates(ctx, node, "in filter condition");
  // A combinator is the only key of its map.
  for (const auto& name : kCombinators) {
    const Node v = node[name];
    if (!v) continue;
    if (node.size() != 1) {
      ctx.diag.error(node.Mark(), "'" + name + "' must be the only key of its condition", kConditionExpected);
      return std::nullopt;
    }
    if (name == "not") {
      auto inner = read_condition(ctx, v, node.Mark(), depth + 1);
      if (!inner) return std::nullopt;
      return core::Condition::negate(std::move(*inner));
    }
    auto parts = read_parts(ctx, v, name, depth);
    if (!parts) return std::nullopt;
    return name == "all" ? core::Condition::all(std::move(*parts)) : core::Condition::any(std::move(*parts));
  }
  // A test: attribute plus exactly one test key.
  std::string test;
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    if (key == "attribute") continue;
    if (std::find(kTests.begin(), kTests.end(), key) == kTests.end()) {
      std::vector<std::string> known = kTests;
      known.insert(known.end(), kCombinators.begin(), kCombinators.end());
      known.push_back("attribute");
      ctx.diag.error(kv.first.Mark(), "unknown key '" + key + "' in filter condition", suggestion(key, known));
      return std::nullopt;
    }
    if (!test.empty()) {
      ctx.diag.error(kv.first.Mark(), "two tests ('" + test + "' and '" + key + "') in one filter condition",
                     "expected one test per condition; combine them with all: [...]");
      return std::nullopt;
    }
    test = key;
  }
  const Node attr = node["attribute"];
  if (!attr || !attr.IsScalar() || attr.Scalar().empty()) {
    ctx.diag.error(attr ? attr.Mark() : node.Mark(), "filter condition without 'attribute'", kConditionExpected);
    return std::nullopt;
  }
  if (test.empty()) {
    ctx.diag.error(node.Mark(), "filter condition on '" + attr.Scalar() + "' has no test",
                   "expected one of: equals, not_equals, regex, in, present");
    return std::nullopt;
  }
  const Node v = node[test];
  const std::string a = attr.Scalar();
  if (test == "in") {
    if (!v.IsSequence() || v.size() == 0) {
      ctx.diag.error(v.IsNull() ? node.Mark() : v.Mark(), "bad value for 'in' in filter", "expected a non-empty list of values");
      return std::nullopt;
    }
    std::vector<std::string> values;
    for (const auto& item : v) {
      auto s = scalar(ctx, item, "in");
      if (!s) return std::nullopt;
      values.push_back(*s);
    }
    return core::Condition::in(a, std::move(values));
  }
  if (test == "present") {
    auto b = v.IsScalar() ? parse_bool(v.Scalar()) : std::nullopt;
    if (!b) {
      ctx.diag.error(v.IsNull() ? node.Mark() : v.Mark(), "bad value for 'present' in filter", "expected true or false");
      return std::nullopt;
    }
    return core::Condition::present(a, *b);
  }
  auto text = scalar(ctx, v, test);
  if (!text) return std::nullopt;
  if (test == "equals") return core::Condition::equals(a, *text);
  if (test == "not_equals") return core::Condition::not_equals(a, *text);
  try {
    return core::Condition::regex(a, *text);
  } catch (const core::RegexError& e) {
    ctx.diag.error(v.Mark(), "bad regex in filter on '" + a + "': " + e.problem + " in '" + *text + "'",
                   "expected an ECMAScript regular expression");
    return std::nullopt;
  }
}

}  // namespace

std::optional<core::Filter> read_filter(Section& job, const Node& value) {
  Context& ctx = job.ctx();
  if (!value.IsMap() || value.size() == 0) {
    report_bad_value(job, "filter", value, "expected a map with include and/or exclude");
    return std::nullopt;
  }
  Section sec(ctx, value, "in filter " + job.what(), value.Mark());
  sec.check_keys(filter_docs().front().keys);
  std::optional<core::Condition> include, exclude;
  bool ok = true;
  if (auto v = sec.find("include")) {
    include = read_condition(ctx, *v, sec.key_mark("include").value_or(value.Mark()), 0);
    ok = ok && include.has_value();
  }
  if (auto v = sec.find("exclude")) {
    exclude = read_condition(ctx, *v, sec.key_mark("exclude").value_or(value.Mark()), 0);
    ok = ok && exclude.has_value();
  }
  if (!ok) return std::nullopt;
  return core::Filter(std::move(include), std::move(exclude));
}

std::vector<SectionDoc> filter_docs() {
  return {
      {"jobs.<name>.filter",
       {{"include", "condition", "(every record)", false, "Records the job manages; the others count as gone"},
        {"exclude", "condition", "(none)", false, "Records the job leaves out even when included"}}},
      {"filter conditions",
       {{"attribute", "string", "", false, "The attribute a test looks at (every value of a multi-valued one)"},
        {"equals", "string", "", false, "Some value is exactly this"},
        {"not_equals", "string", "", false, "No value is this (an absent attribute qualifies)"},
        {"regex", "ECMAScript regex", "", false, "Some value contains a match (anchor with ^...$)"},
        {"in", "list of strings", "", false, "Some value is one of these"},
        {"present", "bool", "", false, "true: some non-empty value; false: none"},
        {"all", "list of conditions", "", false, "Every condition holds"},
        {"any", "list of conditions", "", false, "At least one condition holds"},
        {"not", "condition", "", false, "The condition does not hold"}}},
  };
}

}  // namespace dirsync::config::detail
