// Mapping templates (core/mapping.h): Template::parse either succeeds or
// throws TemplateError with a column inside the text; render() and coerce()
// never throw and never crash, whatever the template and the record hold.
//
// Input: the body is the template text. Header (all optional):
//   "record":  {attribute: value or [values]}   the record rendered (a default one otherwise)
//   "lookups": {table: {source value: result}}  tables for map:NAME
#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "core/mapping.h"
#include "fuzz/fuzz_input.h"

using namespace dirsync;

namespace {

core::Record default_record() {
  core::Record r;
  r.key = "1";
  r.set("givenName", {"Ann"});
  r.set("sn", {" Lee "});
  r.set("mail", {"Ann.Lee@Example.org"});
  r.set("phone", {"030 1234-567"});
  r.set("age", {"42"});
  r.set("active", {"yes"});
  r.set("memberOf", {"cn=staff,dc=example", "cn=sales,dc=example"});
  r.set("empty", {});
  return r;
}

core::Lookups lookups(const fuzz::json& header) {
  core::Lookups out;
  const auto it = header.find("lookups");
  if (it == header.end() || !it->is_object()) {
    out["roles"] = std::make_shared<const core::LookupTable>(
        std::vector<core::LookupTable::Entry>{{"cn=sales,dc=example", "2"}, {"cn=staff,dc=example", "3"}});
    return out;
  }
  for (const auto& [name, table] : it->items()) {
    std::vector<core::LookupTable::Entry> entries;
    if (table.is_object()) {
      for (const auto& [key, value] : table.items()) {
        entries.push_back({key, value.is_string() ? value.get<std::string>() : value.dump()});
      }
    }
    out[name] = std::make_shared<const core::LookupTable>(std::move(entries));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fuzz::Input in = fuzz::split_input(data, size);
  // Templates are written by the operator and short.
  if (in.body.size() > 512) return 0;
  const core::Lookups tables = lookups(in.header);
  core::Record record = fuzz::record(in.header, default_record());
  // replace's regex runs on values of any length; only the time Boost.Regex
  // may take before it gives up is bounded here (fuzz::regex_value_bytes:
  // 4 bytes for a 512-byte template, 1 KiB for one of 32 bytes or less).
  if (in.body.find("replace") != std::string::npos) {
    const std::size_t longest = fuzz::regex_value_bytes(in.body.size());
    for (core::Attribute& a : record.attributes) {
      for (std::string& v : a.values) fuzz::keep_end(v, longest);
    }
  }

  std::optional<core::Template> tmpl;
  try {
    tmpl = core::Template::parse(in.body, &tables);
  } catch (const core::TemplateError& e) {
    fuzz::require(e.column >= 1 && static_cast<std::size_t>(e.column) <= in.body.size() + 1);
    fuzz::require(!e.message.empty());
    return 0;
  }
  fuzz::require(tmpl->text() == in.body);
  (void)tmpl->attributes();
  const auto rendered = tmpl->render(record);
  if (!rendered.ok()) {
    fuzz::require(rendered.error().kind == core::ErrorKind::kInvalid);
    return 0;
  }
  for (core::FieldType type :
       {core::FieldType::kAny, core::FieldType::kString, core::FieldType::kInt, core::FieldType::kBool}) {
    const auto coerced = core::coerce(rendered.value(), type);
    if (!coerced.ok()) continue;
    const fuzz::json& v = coerced.value();
    if (type == core::FieldType::kInt) fuzz::require(v.is_number_integer() || v.is_null());
    if (type == core::FieldType::kBool) fuzz::require(v.is_boolean() || v.is_null());
    if (type == core::FieldType::kString) fuzz::require(v.is_string() || v.is_null());
  }
  const core::Mapping mapping({core::MappedField{"field", *tmpl, core::FieldType::kAny}});
  const auto payload = mapping.apply(record);
  fuzz::require(!payload.ok() || (payload.value().is_object() && payload.value().contains("field")));
  return 0;
}
