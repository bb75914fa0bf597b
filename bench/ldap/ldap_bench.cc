// The LDAP pull benchmark (issue 7, item 6): a real slapd holding N users
// (tests/support/slapd_test_server.h), pulled with Simple Paged Results of the
// same page size by three contenders, run alternately:
//   ldapsearch  the OpenLDAP CLI, LDIF to /dev/null: the reference;
//   pull        dirsync's LDAP source in-process, every page drained (the
//               ratio pull / ldapsearch isolates the pull; target ≤ 1.3×);
//   plan        the real binary, `dirsync plan JOB` with that source into a
//               file target on an empty state: pull + map + diff.
// Each contender reads the same entries and attributes as the reader entry,
// whose size limit is the page size: only paging returns the whole directory,
// as with Active Directory's MaxPageSize. Every run's count is checked, so a
// broken pull cannot report a fast time (exit 1), but times are reported,
// never judged: the exit status does not depend on them.
//
//   dirsync_ldap_bench [--entries N] [--page-size N] [--runs N] [--json FILE]
//                      [--dirsync PATH] [--only ldapsearch|pull|plan]
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/measure.h"
#include "connectors/sources/ldap/ldap_source.h"
#include "tests/support/slapd_test_server.h"

namespace dirsync::bench {
namespace {

namespace fs = std::filesystem;
using testing::SlapdServer;

constexpr const char* kFilter = "(objectClass=inetOrgPerson)";
const std::vector<std::string> kAttributes = {"uid", "cn", "sn", "mail"};

struct Options {
  int entries = 100'000;
  int page_size = 1000;
  int runs = 3;
  std::string json_path;
  std::string dirsync = DIRSYNC_BINARY_PATH;
  std::string only;  // empty: all three contenders
};

constexpr const char* kUsage =
    "usage: dirsync_ldap_bench [--entries N] [--page-size N] [--runs N] [--json FILE]\n"
    "                          [--dirsync PATH] [--only ldapsearch|pull|plan]\n"
    "Pulls N entries (default 100000) from a fresh slapd with paging (page size 1000)\n"
    "by ldapsearch, by dirsync's LDAP source in-process, and by `dirsync plan`, each\n"
    "--runs times (default 3) alternately; prints medians and ratios, and writes them\n"
    "as JSON with --json. --only runs one contender (e.g. under perf).\n";

std::optional<Options> parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    auto number = [&](int& out) {
      auto v = value();
      if (!v) return false;
      char* end = nullptr;
      const long n = std::strtol(v->c_str(), &end, 10);
      if (end == v->c_str() || *end != '\0' || n < 1 || n > 10'000'000) return false;
      out = static_cast<int>(n);
      return true;
    };
    bool ok = true;
    if (arg == "--entries") {
      ok = number(o.entries);
    } else if (arg == "--page-size") {
      ok = number(o.page_size);
    } else if (arg == "--runs") {
      ok = number(o.runs);
    } else if (arg == "--json" || arg == "--dirsync" || arg == "--only") {
      auto v = value();
      ok = v.has_value();
      if (ok) (arg == "--json" ? o.json_path : arg == "--dirsync" ? o.dirsync : o.only) = *v;
    } else {
      ok = false;
    }
    if (!ok) {
      std::cerr << "dirsync_ldap_bench: bad argument near '" << arg << "'\n" << kUsage;
      return std::nullopt;
    }
  }
  if (!o.only.empty() && o.only != "ldapsearch" && o.only != "pull" && o.only != "plan") {
    std::cerr << "dirsync_ldap_bench: --only takes ldapsearch, pull or plan\n";
    return std::nullopt;
  }
  return o;
}

// --- timing -------------------------------------------------------------------

struct Sample {
  double wall_s = 0;
  double cpu_s = 0;         // user + system of the process doing the pull
  double server_cpu_s = 0;  // user + system slapd spent meanwhile
};

// User + system time of a running process so far (/proc/PID/stat), in seconds.
double process_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces): state is field 3,
  // utime and stime are fields 14 and 15, in clock ticks.
  std::istringstream fields(stat.substr(stat.rfind(')') + 1));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; }
double cpu_seconds(const rusage& ru) { return seconds(ru.ru_utime) + seconds(ru.ru_stime); }

// Runs argv[0] (a path; it inherits this process's environment) with stdout
// to `out_path` and stderr to `err_path`, through the end-to-end suite's
// run_measured (bench/measure.h): wall time, and CPU time from wait4. Throws
// when it cannot run or exits with a status other than 0.
Sample run_child(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path) {
  // Polled this often for its exit: the wall time's resolution.
  const ChildRun run = run_measured({args, out_path, err_path, std::chrono::milliseconds(1)});
  if (!run.started) throw std::runtime_error(run.error);
  if (run.exit_code != 0) {
    std::ifstream err(err_path);
    const std::string text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
    throw std::runtime_error(args[0] + " failed (exit " + std::to_string(run.exit_code) + "): " + text.substr(0, 2000));
  }
  return {run.wall_s, run.user_s + run.sys_s};
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// --- the contenders ---------------------------------------------------------------

class Bench {
 public:
  Bench(Options options, const SlapdServer& server, fs::path dir)
      : options_(std::move(options)), server_(server), dir_(std::move(dir)) {}

  // ldapsearch with the same page size, filter and attributes, LDIF to /dev/null.
  Sample ldapsearch() const {
    return run_child(ldapsearch_args(), "/dev/null", (dir_ / "ldapsearch.err").string());
  }

  // Counts the entries ldapsearch returns (an untimed run that also warms slapd's cache).
  int ldapsearch_count() const {
    const std::string out = (dir_ / "ldapsearch.ldif").string();
    run_child(ldapsearch_args(), out, (dir_ / "ldapsearch.err").string());
    std::ifstream in(out);
    int count = 0;
    for (std::string line; std::getline(in, line);) count += line.rfind("dn: ", 0) == 0;
    fs::remove(out);
    return count;
  }

  // dirsync's LDAP source in this process, every page drained. Throws when the
  // pull fails or does not yield exactly the expected records.
  Sample pull() const {
    auto source = sources::make_ldap_source(source_settings());
    rusage before{};
    ::getrusage(RUSAGE_SELF, &before);
    const auto start = std::chrono::steady_clock::now();
    auto pull = source->start();
    if (!pull.ok()) throw std::runtime_error(pull.error().message);
    std::size_t records = 0;
    std::size_t issues = 0;
    for (;;) {
      auto page = pull.value()->next();
      if (!page.ok()) throw std::runtime_error(page.error().message);
      records += page->records.size();
      issues += page->issues.size();
      if (page->last) break;
    }
    const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - start;
    rusage after{};
    ::getrusage(RUSAGE_SELF, &after);
    if (records != static_cast<std::size_t>(options_.entries) || issues != 0) {
      throw std::runtime_error("the pull yielded " + std::to_string(records) + " records and " +
                               std::to_string(issues) + " issues, expected " + std::to_string(options_.entries) +
                               " records");
    }
    return {wall.count(), cpu_seconds(after) - cpu_seconds(before)};
  }

  // `dirsync plan j` through the real binary, on an empty state each time.
  Sample plan() const {
    const fs::path config = write_config();
    fs::remove_all(dir_ / "state");
    const std::string out = (dir_ / "plan.out").string();
    const Sample s =
        run_child({options_.dirsync, "--config", config.string(), "plan", "j"}, out, (dir_ / "plan.err").string());
    // The plan must be the N creates, or its time means nothing.
    std::ifstream in(out);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    fs::remove(out);
    const std::string expected = "  to create  " + std::to_string(options_.entries) + "\n";
    if (text.find(expected) == std::string::npos) {
      throw std::runtime_error("`dirsync plan` did not plan " + std::to_string(options_.entries) +
                               " creates:\n" + text.substr(0, 2000));
    }
    return s;
  }

 private:
  std::vector<std::string> ldapsearch_args() const {
    std::vector<std::string> args = {"/usr/bin/ldapsearch",
                                     "-x",
                                     "-LLL",
                                     "-H",
                                     server_.ldap_url(),
                                     "-D",
                                     SlapdServer::kReaderDn,
                                     "-w",
                                     SlapdServer::kReaderPassword,
                                     "-b",
                                     SlapdServer::kPeopleDn,
                                     "-s",
                                     "sub",
                                     "-E",
                                     "pr=" + std::to_string(options_.page_size) + "/noprompt",
                                     kFilter};
    args.insert(args.end(), kAttributes.begin(), kAttributes.end());
    return args;
  }

  sources::LdapSourceSettings source_settings() const {
    sources::LdapSourceSettings s;
    s.url = server_.ldap_url();
    s.start_tls = false;  // ldapsearch -x without -Z: plain LDAP for both
    s.bind_dn = SlapdServer::kReaderDn;
    s.bind_password = core::Secret(SlapdServer::kReaderPassword, "${env:LDAP_PASSWORD}");
    s.base_dn = SlapdServer::kPeopleDn;
    s.filter = kFilter;
    s.attributes = kAttributes;
    s.key = "uid";
    s.page_size = options_.page_size;
    return s;
  }

  fs::path write_config() const {
    const fs::path path = dir_ / "dirsync.yaml";
    std::ofstream(path) << "state_dir: state\n"
                           "sources:\n  ldap:\n    type: ldap\n    url: "
                        << server_.ldap_url() << "\n    start_tls: false\n    bind_dn: " << SlapdServer::kReaderDn
                        << "\n    bind_password: ${env:LDAP_PASSWORD}\n    base_dn: " << SlapdServer::kPeopleDn
                        << "\n    filter: \"" << kFilter << "\"\n    attributes: [uid, cn, sn, mail]\n"
                        << "    key: uid\n    page_size: " << options_.page_size
                        << "\ntargets:\n  out: {type: file, path: changes.jsonl}\n"
                           "jobs:\n  j:\n    source: ldap\n    target: out\n    mapping:\n"
                           "      name: \"{cn}\"\n      email: \"{mail | first | lower}\"\n"
                           "      approved: true\n";
    return path;
  }

  Options options_;
  const SlapdServer& server_;
  fs::path dir_;
};

// --- report -----------------------------------------------------------------------

struct Figure {
  std::string name;
  double value = 0;
  std::string unit;
  std::string target;           // empty: informative, no target in the issue
  std::vector<double> samples;  // per run, when measured more than once
};

void print_table(const std::vector<Figure>& figures) {
  std::printf("\n%-40s %14s  %-10s %s\n", "figure", "value", "unit", "target");
  for (const auto& f : figures) {
    std::printf("%-40s %14.3f  %-10s %s\n", f.name.c_str(), f.value, f.unit.c_str(), f.target.c_str());
  }
}

nlohmann::json to_json(const Options& o, double load, const std::vector<Figure>& figures) {
  nlohmann::json out = {{"benchmark", "ldap_pull"},
                        {"entries", o.entries},
                        {"page_size", o.page_size},
                        {"runs", o.runs},
                        {"load_average_1min", load},
                        {"figures", nlohmann::json::array()}};
  for (const auto& f : figures) {
    nlohmann::json j = {{"name", f.name}, {"value", f.value}, {"unit", f.unit}};
    j["target"] = f.target.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.target);
    if (!f.samples.empty()) j["samples"] = f.samples;
    out["figures"].push_back(std::move(j));
  }
  return out;
}

int run(const Options& options) {
  std::fprintf(stderr, "loading %d entries into slapd...\n", options.entries);
  testing::SlapdOptions slapd_options;
  slapd_options.ldif = testing::users_ldif(options.entries);
  slapd_options.size_limit = options.page_size;  // a plain search stops here; a paged one gets everything
  const auto setup_start = std::chrono::steady_clock::now();
  SlapdServer server(std::move(slapd_options));
  server.start();
  const std::chrono::duration<double> setup = std::chrono::steady_clock::now() - setup_start;

  std::string tmpl = (fs::temp_directory_path() / "dirsync-ldap-bench-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("cannot create a temp directory");
  const fs::path dir = tmpl;
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } cleanup{dir};

  // `dirsync plan` reads the bind password as ${env:LDAP_PASSWORD}, as an operator's config would.
  ::setenv("LDAP_PASSWORD", SlapdServer::kReaderPassword, 1);
  Bench bench(options, server, dir);
  const bool all = options.only.empty();
  // Untimed: ldapsearch sees every entry (and slapd's cache is warm for everyone).
  const int counted = bench.ldapsearch_count();
  if (counted != options.entries) {
    throw std::runtime_error("ldapsearch returned " + std::to_string(counted) + " entries, expected " +
                             std::to_string(options.entries));
  }

  // slapd's own CPU time around each contender: what the server spent
  // answering it, beside what the client spent (slapd writes its pid file).
  pid_t slapd_pid = 0;
  std::ifstream(server.dir() + "/slapd.pid") >> slapd_pid;
  auto measure = [&](const std::function<Sample()>& contender) {
    const double before = slapd_pid > 0 ? process_cpu_seconds(slapd_pid) : 0;
    Sample s = contender();
    s.server_cpu_s = slapd_pid > 0 ? process_cpu_seconds(slapd_pid) - before : 0;
    return s;
  };
  std::vector<Sample> ldapsearch, pull, plan;
  for (int r = 0; r < options.runs; ++r) {
    if (all || options.only == "ldapsearch") ldapsearch.push_back(measure([&] { return bench.ldapsearch(); }));
    if (all || options.only == "pull") pull.push_back(measure([&] { return bench.pull(); }));
    if (all || options.only == "plan") plan.push_back(measure([&] { return bench.plan(); }));
    std::fprintf(stderr, "run %d/%d done\n", r + 1, options.runs);
  }

  std::vector<Figure> figures;
  figures.push_back({"slapd setup (slapadd + start)", setup.count(), "s", "", {}});
  auto add = [&](const std::string& name, const std::vector<Sample>& samples) -> std::optional<double> {
    if (samples.empty()) return std::nullopt;
    std::vector<double> wall, cpu, server_cpu;
    for (const auto& s : samples) {
      wall.push_back(s.wall_s);
      cpu.push_back(s.cpu_s);
      server_cpu.push_back(s.server_cpu_s);
    }
    const double m = median(wall);
    figures.push_back({name + " wall (median)", m, "s", "", wall});
    figures.push_back({name + " CPU (median)", median(cpu), "s", "", cpu});
    figures.push_back({name + " slapd CPU (median)", median(server_cpu), "s", "", server_cpu});
    figures.push_back({name + " entries/s", options.entries / m, "entries/s", "", {}});
    return m;
  };
  const auto ls = add("ldapsearch", ldapsearch);
  const auto pl = add("dirsync pull", pull);
  const auto pn = add("dirsync plan", plan);
  if (ls && pl) figures.push_back({"pull / ldapsearch", *pl / *ls, "ratio", "<= 1.3", {}});
  if (ls && pn) figures.push_back({"plan / ldapsearch", *pn / *ls, "ratio", "", {}});

  // The machine may be shared (builds, other benchmarks): the load says how much.
  double load = 0;
  ::getloadavg(&load, 1);
  std::printf("LDAP pull: %d entries, page size %d, %d run(s) each, alternating; load average %.2f\n",
              options.entries, options.page_size, options.runs, load);
  print_table(figures);
  if (!options.json_path.empty()) {
    std::ofstream out(options.json_path);
    out << to_json(options, load, figures).dump(2) << "\n";
    if (!out) throw std::runtime_error("cannot write " + options.json_path);
    std::printf("\nJSON: %s\n", options.json_path.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace dirsync::bench

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(dirsync::bench::kUsage, stdout);
      return 0;
    }
  }
  const auto options = dirsync::bench::parse_options(argc, argv);
  if (!options) return 2;
  try {
    return dirsync::bench::run(*options);
  } catch (const std::exception& e) {
    std::cerr << "dirsync_ldap_bench: " << e.what() << "\n";
    return 1;
  }
}
