#include "engine/registry.h"

#include <algorithm>

#include "config/suggest.h"
#include "connectors/targets/auth_sync_user/auth_sync_user_target.h"
#include "connectors/sources/csv/csv_source.h"
#include "connectors/sources/http_json/http_json_source.h"
#include "connectors/sources/ldap/ldap_source.h"
#include "connectors/sources/scim/scim_path.h"
#include "connectors/sources/scim/scim_source.h"
#include "connectors/targets/file/file_target.h"
#include "connectors/targets/healvi/healvi_target.h"
#include "connectors/targets/hesh/hesh_target.h"
#include "connectors/targets/perscom/perscom_target.h"
#include "connectors/targets/royalti/royalti_target.h"

namespace dirsync::engine {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

const core::FieldSpec* find_field(const core::Target& target, const std::string& name) {
  for (const auto& f : target.fields()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

}  // namespace

std::unique_ptr<core::Source> make_source(const config::SourceConfig& source) {
  return std::visit(Overloaded{
                        [](const config::CsvSourceSettings& s) { return sources::make_csv_source(s); },
                        [](const config::LdapSourceSettings& s) { return sources::make_ldap_source(s); },
                        [](const config::ScimSourceSettings& s) { return sources::make_scim_source(s); },
                        [](const config::HttpJsonSourceSettings& s) { return sources::make_http_json_source(s); },
                    },
                    source.settings);
}

std::unique_ptr<core::Target> make_target(const config::TargetConfig& target) {
  return std::visit(Overloaded{
                        [](const config::PerscomTargetSettings& s) -> std::unique_ptr<core::Target> {
                          return targets::make_perscom_target(s);
                        },
                        [](const config::FileTargetSettings& s) -> std::unique_ptr<core::Target> {
                          return targets::make_file_target(s);
                        },
                        [](const config::HeshTargetSettings& s) -> std::unique_ptr<core::Target> {
                          return targets::make_hesh_target(s);
                        },
                        [](const config::RoyaltiTargetSettings& s) -> std::unique_ptr<core::Target> {
                          return targets::make_royalti_target(s);
                        },
                        [](const config::HealviTargetSettings& s) -> std::unique_ptr<core::Target> {
                          return targets::make_healvi_target(s);
                        },
                        [](const config::AuthSyncUserTargetSettings& s) -> std::unique_ptr<core::Target> {
                          return targets::make_auth_sync_user_target(s);
                        },
                    },
                    target.settings);
}

std::vector<std::string> check_job(const config::JobConfig& job, const core::Target& target) {
  std::vector<std::string> errors;
  const auto& caps = target.capabilities();
  const std::string where = job.where.str();
  if (job.on_missing == config::OnMissing::kDetach && !caps.detach) {
    errors.push_back(where + ": job '" + job.name + "' has on_missing: detach, but target '" + job.target +
                     "' cannot detach users; expected on_missing: ignore");
  }
  if (job.on_missing == config::OnMissing::kUpdate) {
    if (!caps.update || caps.full_set) {
      errors.push_back(job.missing_where.str() + ": job '" + job.name + "' has on_missing: update, but target '" +
                       job.target + "' cannot update users; expected on_missing: " +
                       (caps.detach ? "detach or ignore" : "ignore"));
    }
    for (auto it = job.missing_update.begin(); it != job.missing_update.end(); ++it) {
      if (target.fields().empty()) break;
      const core::FieldSpec* spec = find_field(target, it.key());
      if (!spec) {
        std::vector<std::string> names;
        for (const auto& f : target.fields()) names.push_back(f.name);
        errors.push_back(job.missing_where.str() + ": job '" + job.name + "' on_missing.update sets unknown field '" +
                         it.key() + "' of target '" + job.target + "'; " + config::suggestion(it.key(), names));
      } else if (auto c = core::coerce(it.value(), spec->type); !c) {
        errors.push_back(job.missing_where.str() + ": job '" + job.name + "' on_missing.update field '" + it.key() +
                         "': " + c.error().message + "; expected a value of type " + core::to_string(spec->type));
      }
    }
  }
  if (target.fields().empty()) return errors;  // the target takes any fields

  for (const auto& m : job.mapping) {
    const core::FieldSpec* spec = find_field(target, m.field);
    if (!spec) {
      std::string msg = m.where.str() + ": job '" + job.name + "' maps unknown field '" + m.field + "' of target '" +
                        job.target + "'";
      std::vector<std::string> names;
      for (const auto& f : target.fields()) names.push_back(f.name);
      msg += "; " + config::suggestion(m.field, names);
      errors.push_back(msg);
      continue;
    }
    // A constant can be checked now; a template only when it renders.
    core::Record empty;
    if (m.tmpl.attributes().empty()) {
      auto v = m.tmpl.render(empty);
      if (v) {
        auto c = core::coerce(v.value(), spec->type);
        if (!c) {
          errors.push_back(m.where.str() + ": job '" + job.name + "' field '" + m.field + "': " +
                           c.error().message + "; expected a value of type " + core::to_string(spec->type));
        }
      }
    }
  }
  for (const auto& f : target.fields()) {
    if (!f.required) continue;
    const bool mapped = std::any_of(job.mapping.begin(), job.mapping.end(),
                                    [&](const config::MappingConfig& m) { return m.field == f.name; });
    if (!mapped) {
      errors.push_back(job.mapping_where.str() + ": job '" + job.name + "' does not map required field '" +
                       f.name + "' of target '" + job.target + "' (type " + core::to_string(f.type) + ")");
    }
  }
  return errors;
}

core::Mapping make_mapping(const config::JobConfig& job, const core::Target& target) {
  std::vector<core::MappedField> fields;
  for (const auto& m : job.mapping) {
    const core::FieldSpec* spec = find_field(target, m.field);
    fields.push_back({m.field, m.tmpl, spec ? spec->type : core::FieldType::kAny});
  }
  return core::Mapping(std::move(fields));
}

JobParts build_job(const config::Config& config, const config::JobConfig& job) {
  JobParts parts;
  parts.source = make_source(config.sources.at(job.source));
  parts.target = make_target(config.targets.at(job.target));
  parts.mapping = make_mapping(job, *parts.target);
  return parts;
}

namespace {

// SCIM paths are checked in full here (config/ only checks their brackets: the
// path language belongs to the SCIM source).
void check_scim_paths(const config::SourceConfig& source, std::vector<std::string>& errors) {
  const auto* s = std::get_if<config::ScimSourceSettings>(&source.settings);
  if (!s) return;
  auto check = [&](const std::string& what, const std::string& path) {
    std::string why;
    if (!sources::valid_scim_path(path, &why)) {
      errors.push_back(source.where.str() + ": source '" + source.name + "' " + what + ": bad SCIM path '" + path +
                       "': " + why + "; expected e.g. userName, name.givenName or emails[primary eq true].value");
    }
  };
  check("key", s->key);
  for (const auto& a : s->attributes) {
    for (const auto& p : a.paths) check("attribute '" + a.name + "'", p);
  }
}

}  // namespace

std::vector<std::string> check_config(const config::Config& config) {
  std::vector<std::string> errors;
  for (const auto& [name, source] : config.sources) check_scim_paths(source, errors);
  for (const auto& [name, job] : config.jobs) {
    auto target = make_target(config.targets.at(job.target));
    auto job_errors = check_job(job, *target);
    errors.insert(errors.end(), job_errors.begin(), job_errors.end());
  }
  return errors;
}

}  // namespace dirsync::engine
