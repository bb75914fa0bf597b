// The YAML configuration loader: any text either loads into a valid Config or
// throws ConfigError (config/config.h); any other exception, a crash or a
// ConfigError without messages is a bug. A loaded config's mappings and
// filters are then applied to one record, as a run would.
#include <cstdlib>
#include <exception>

#include "config/config.h"
#include "fuzz/fuzz_input.h"

using namespace dirsync;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The example configs read these; set, so that their seeds load and the
  // fuzzer explores past secret resolution. ${cred:} stays unresolvable.
  for (const char* name : {"PERSCOM_TOKEN", "AD_BIND_PASSWORD", "HESH_API_KEY", "HESH_TENANT_ID", "HRIS_API_KEY",
                           "ROYALTI_TOKEN", "SCIM_TOKEN", "HEALVI_TOKEN", "AUTH_SYNC_SECRET"}) {
    setenv(name, "40dd0c53-2fa7-4193-82ae-14d4e62c20fb", 0);
  }
  unsetenv("CREDENTIALS_DIRECTORY");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  config::Config cfg;
  try {
    cfg = config::load_string(yaml, "fuzz.yaml");
  } catch (const config::ConfigError& e) {
    fuzz::require(!e.errors().empty());
    return 0;
  }
  for (const auto& [name, job] : cfg.jobs) {
    fuzz::require(cfg.sources.contains(job.source) && cfg.targets.contains(job.target));
  }
  // Filter and replace regexes are the config's and may be as long as the
  // file: the record's values are cut to what Boost.Regex can give up on
  // quickly (fuzz::regex_value_bytes). mapping_fuzz covers templates against
  // longer values.
  const std::size_t longest = fuzz::regex_value_bytes(yaml.size());
  auto cut = [&](std::string v) {
    fuzz::keep_end(v, longest);
    return v;
  };
  core::Record record;
  record.key = "1";
  record.set("mail", {cut("Ann.Lee@Example.org")});
  record.set("givenName", {cut("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab")});
  record.set("memberOf", {"1", ","});
  for (const auto& [name, job] : cfg.jobs) {
    // An undecided record (a regex gave up) is never dropped (core/filter.h).
    const auto decision = job.filter.decide(record);
    fuzz::require(decision.decided || decision.keep);
    for (const config::MappingConfig& m : job.mapping) (void)m.tmpl.render(record);
  }
  return 0;
}
