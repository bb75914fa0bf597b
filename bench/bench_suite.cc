// bench_suite: issue 7's end-to-end benchmarks (scenarios 1–5 and 7) through
// the real `dirsync` binary, against loopback test servers in this process.
//
//   bench_suite [--dirsync PATH] [--users N[,N...]] [--quick] [--json FILE]
//               [--work-dir DIR] [--keep] [--seed S]
//               [--single-user N] [--single-user-delay-ms MS] [--in-flight K[,K...]]
//               [--no-ceiling]
//
// For each N (default 100,000 and 1,000,000; --quick: 10,000), in a fresh
// directory: a seeded CSV of N users (bench/gen_users.h) and a job CSV →
// PERSCOM (batch 1000, rate limits off, max_detach off), then
//   1. initial sync        wall, users/s, CPU, peak RssAnon / RssFile / RSS, requests
//   2. no-change run       wall, peak memory, requests (must be 0)
//   3. 1% churn run        wall, requests, peak memory; the server must equal the source
//   5. snapshot size       data.mdb: size, blocks on disk, pages in use — per user
// and across sizes
//   4. growth              anonymous memory per added user between the smallest and largest N
// plus, once,
//   7. auth_sync_user      N users (default 2,000) against a server taking 50 ms a
//                          request, max_in_flight 1, 8, 32: wall against users × 50 ms / in-flight
//   -  server ceiling      users/s the loopback PERSCOM absorbs from pre-built
//                          batches of 1000 (so that it is known not to be the bottleneck)
//
// Each dirsync run is a child process: /proc/PID/status sampled every 5 ms,
// CPU time and peak RSS from wait4(). Prints a table (figure, value, the
// issue's target, met/missed) and, with --json, writes every figure.
//
// Exit status: 0 when every BEHAVIOUR check passed (everyone created, no
// request on the no-change run, exactly the churn's creates/updates/deletes,
// the server equal to the source); 1 otherwise; 2 on a usage error. Times
// never fail it: benchmarks are not tests.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/gen_users.h"
#include "bench/http_feed.h"
#include "bench/measure.h"
#include "bench/report.h"
#include "tests/support/auth_sync_user_test_server.h"
#include "tests/support/perscom_test_server.h"

namespace dirsync::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kToken = "bench-token";
constexpr const char* kJob = "bench";
constexpr std::size_t kBatch = 1000;
constexpr std::size_t kMillion = 1'000'000;

struct Options {
  std::string dirsync = DIRSYNC_BINARY_PATH;
  std::vector<std::size_t> sizes = {100'000, kMillion};
  std::string json_path;
  std::string work_root;
  bool keep = false;
  std::uint64_t seed = 7;
  std::size_t single_user = 2000;
  int single_user_delay_ms = 50;
  std::vector<std::size_t> in_flight = {1, 8, 32};
  bool ceiling = true;
};

std::vector<std::size_t> parse_list(const std::string& text) {
  std::vector<std::size_t> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoull(item));
  return out;
}

int usage() {
  std::cerr << "usage: bench_suite [--dirsync PATH] [--users N[,N...]] [--quick] [--json FILE] [--work-dir DIR]\n"
               "                   [--keep] [--seed S] [--single-user N] [--single-user-delay-ms MS]\n"
               "                   [--in-flight K[,K...]] [--no-ceiling]\n";
  return 2;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);  // dirsync refuses a config others may edit
}

// Writes the CSV next to its final name and renames it in, as an HR export
// job would (the CSV source reads a replaced file consistently).
std::size_t write_directory(const fs::path& path, const DirectorySpec& spec) {
  const fs::path tmp = path.string() + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  const std::size_t bytes = write_csv(spec, out);
  out.close();
  fs::rename(tmp, path);
  return bytes;
}

// A job config: the CSV source, one target named `target` (its type and
// settings as YAML lines), the job `bench` with `mapping`, then `job_tail`.
std::string job_config(const std::string& target, const std::string& target_settings, const std::string& mapping,
                       const std::string& job_tail) {
  return "state_dir: state\n"
         "sources:\n"
         "  hr:\n"
         "    type: csv\n"
         "    path: users.csv\n"
         "    key: employee_id\n"
         "targets:\n"
         "  " + target + ":\n" + target_settings +
         "jobs:\n"
         "  " + kJob + ":\n"
         "    source: hr\n"
         "    target: " + target + "\n"
         "    mapping:\n" + mapping + job_tail;
}

std::string perscom_config(std::uint16_t port) {
  return job_config("perscom",
                    "    type: perscom\n"
                    "    base_url: http://127.0.0.1:" + std::to_string(port) + "\n"
                    "    api_version: v2\n"
                    "    token: " + kToken + "\n"
                    "    batch_size: " + std::to_string(kBatch) + "\n"
                    "    rate_limits: off\n"
                    "    timeout: 300s\n",
                    kPerscomMapping,
                    "    on_missing: detach\n"
                    "    max_detach: off\n");
}

std::string auth_sync_config(std::uint16_t port, std::size_t in_flight) {
  return job_config("auth",
                    "    type: auth_sync_user\n"
                    "    base_url: http://127.0.0.1:" + std::to_string(port) + "\n"
                    "    password_secret: bench-password-secret\n"
                    "    max_in_flight: " + std::to_string(in_flight) + "\n"
                    "    rate_limits: off\n",
                    "      id: \"{employee_id}\"\n"
                    "      email: \"{email | trim | lower}\"\n"
                    "      organization_id: org-1\n"
                    "      role_id: member\n"
                    "      first_name: \"{first_name}\"\n"
                    "      last_name: \"{last_name}\"\n"
                    "      phone_number: \"{phone}\"\n"
                    "      phone_country_code: \"+44\"\n",
                    "    on_missing: ignore\n");
}

// One `dirsync --config DIR/dirsync.yaml sync JOB --json`, measured.
struct SyncRun {
  ChildRun child;
  json report;  // the run report (null when stdout was not JSON)
  std::string stderr_tail;
};

SyncRun run_sync(const Options& o, const fs::path& dir, const std::string& tag) {
  ChildOptions c;
  c.argv = {o.dirsync, "--config", (dir / "dirsync.yaml").string(), "sync", kJob, "--json"};
  c.stdout_path = (dir / (tag + ".out")).string();
  c.stderr_path = (dir / (tag + ".err")).string();
  SyncRun r;
  r.child = run_measured(c);
  std::ifstream out(c.stdout_path);
  std::stringstream text;
  text << out.rdbuf();
  r.report = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (r.report.is_discarded()) r.report = nullptr;
  if (r.report.is_array() && r.report.size() == 1) r.report = r.report[0];  // `sync` may list one report per job
  std::ifstream err(c.stderr_path);
  std::stringstream etext;
  etext << err.rdbuf();
  const std::string e = etext.str();
  r.stderr_tail = e.size() > 600 ? e.substr(e.size() - 600) : e;
  return r;
}

std::size_t count_of(const SyncRun& r, const char* name) {
  if (!r.report.is_object() || !r.report.contains("counts")) return 0;
  return r.report["counts"].value(name, std::size_t{0});
}

std::string run_problem(const SyncRun& r) {
  if (!r.child.started) return r.child.error;
  if (r.child.exit_code == 0) return {};
  return "exit " + std::to_string(r.child.exit_code) + ": " + r.stderr_tail;
}

// What the server holds, in expected_perscom_fields()'s form, as sorted hashes.
std::vector<std::size_t> server_fingerprints(const testing::PerscomTestServer& server) {
  std::vector<std::size_t> out;
  out.reserve(server.user_count());
  server.for_each_user([&](const json& u) {
    std::string fields;
    for (const char* name : {"name", "email", "phone_number", "notes", "rank_id", "unit_id", "approved"}) {
      const auto it = u.find(name);
      if (std::string_view(name) != "name") fields += '\x1f';
      fields += it == u.end() ? "(absent)" : it->is_string() ? it->get<std::string>() : it->dump();
    }
    out.push_back(std::hash<std::string>{}(fields));
  });
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::size_t> source_fingerprints(const DirectorySpec& spec) {
  std::vector<std::size_t> out;
  for_each_user(spec, [&](const UserRow& r) { out.push_back(std::hash<std::string>{}(expected_perscom_fields(r))); });
  std::sort(out.begin(), out.end());
  return out;
}

// Empty when the server holds exactly the source's users with the mapped fields.
std::string compare_server_to_source(const testing::PerscomTestServer& server, const DirectorySpec& spec) {
  const auto have = server_fingerprints(server);
  const auto want = source_fingerprints(spec);
  std::vector<std::size_t> missing, extra;
  std::set_difference(want.begin(), want.end(), have.begin(), have.end(), std::back_inserter(missing));
  std::set_difference(have.begin(), have.end(), want.begin(), want.end(), std::back_inserter(extra));
  if (missing.empty() && extra.empty()) return {};
  return std::to_string(missing.size()) + " source users missing or different on the server, " +
         std::to_string(extra.size()) + " server users not in the source (server " + std::to_string(have.size()) +
         ", source " + std::to_string(want.size()) + ")";
}

double mb(std::uint64_t kb) { return static_cast<double>(kb) / 1024.0; }

struct SizeFigures {
  std::size_t users = 0;
  ChildRun initial, no_change, churn;
};

// The targets are stated at 1,000,000 users; other sizes are shown without one.
Figure at_million(std::size_t n, Figure f) {
  if (n != kMillion) {
    f.goal = Goal::kNone;
    f.note.clear();
  }
  return f;
}

void add_run_figures(Report& report, std::size_t n, const std::string& scenario, const std::string& label,
                     const ChildRun& run) {
  const std::string p = "n" + std::to_string(n) + "." + scenario + ".";
  const std::string l = label + " " + with_commas(n) + ": ";
  report.add({p + "cpu_s", l + "CPU user+sys", run.user_s + run.sys_s, "s"});
  report.add(at_million(n, {p + "peak_anon_mb", l + "peak RssAnon", mb(run.peak_anon_kb), "MB",
                            Goal::kAtMost, 100, ""}));
  report.add({p + "peak_file_mb", l + "peak RssFile", mb(run.peak_file_kb), "MB"});
  report.add({p + "peak_rss_mb", l + "peak RSS (VmHWM)", mb(run.peak_hwm_kb), "MB"});
}

void run_size(const Options& o, const fs::path& root, std::size_t n, Report& report, std::vector<SizeFigures>& sizes) {
  const fs::path dir = root / ("perscom-" + std::to_string(n));
  fs::create_directories(dir);
  testing::PerscomTestServer server(testing::PerscomServerOptions{kToken, testing::ErrorStyle::kPerscom, std::nullopt});
  server.set_request_log(false);
  server.start();
  write_file(dir / "dirsync.yaml", perscom_config(server.port()));
  const DirectorySpec base{o.seed, n, false};
  const std::size_t csv_bytes = write_directory(dir / "users.csv", base);
  const std::string p = "n" + std::to_string(n) + ".";
  const std::string users = with_commas(n);
  SizeFigures sf;
  sf.users = n;
  std::cerr << "[" << users << " users] CSV " << with_commas(csv_bytes) << " bytes; initial sync..." << std::flush;

  // 1. Initial sync.
  server.clear_log();
  const SyncRun initial = run_sync(o, dir, "initial");
  auto c = server.counters();
  std::cerr << " " << initial.child.wall_s << " s" << std::endl;
  report.check(users + ": initial sync succeeds", run_problem(initial).empty(), run_problem(initial));
  report.check(users + ": initial sync creates every user", c.created == n && server.user_count() == n,
               "server created " + std::to_string(c.created) + ", holds " + std::to_string(server.user_count()) +
                   ", dirsync counted " + std::to_string(count_of(initial, "created")));
  const std::string initial_diff = compare_server_to_source(server, base);
  report.check(users + ": after the initial sync the server equals the source", initial_diff.empty(), initial_diff);
  const std::string l1 = "initial sync " + users + ": ";
  report.add({p + "initial_sync.wall_s", l1 + "wall", initial.child.wall_s, "s"});
  report.add(at_million(n, {p + "initial_sync.users_per_s", l1 + "users/s", n / initial.child.wall_s, "users/s",
                            Goal::kAtLeast, 50'000, ""}));
  add_run_figures(report, n, "initial_sync", "initial sync", initial.child);
  report.add({p + "initial_sync.requests", l1 + "requests", static_cast<double>(c.requests), ""});
  report.add({p + "initial_sync.request_mb", l1 + "request bodies", c.body_bytes / 1e6, "MB"});
  // One batch in flight: the server's time adds to the wall time. Without it, the rate is dirsync's own.
  report.add({p + "initial_sync.server_s", l1 + "time in the server's handler", c.handler_seconds, "s"});
  report.add({p + "initial_sync.users_per_s_without_server", l1 + "users/s, server time taken out",
              n / std::max(1e-9, initial.child.wall_s - c.handler_seconds), "users/s"});
  sf.initial = initial.child;

  // 5. Snapshot size, as the initial sync left it.
  const LmdbUsage usage = lmdb_usage((dir / "state").string());
  report.check(users + ": the snapshot can be read", usage.error.empty(), usage.error);
  if (usage.error.empty()) {
    const std::string ls = "snapshot " + users + ": ";
    const double per = static_cast<double>(n);
    report.add({p + "snapshot.file_bytes_per_user", ls + "data.mdb size / user", usage.file_bytes / per, "B"});
    report.add({p + "snapshot.disk_bytes_per_user", ls + "blocks on disk / user", usage.allocated_bytes / per, "B",
                Goal::kAtMost, 300, ""});
    report.add({p + "snapshot.used_bytes_per_user", ls + "pages in use x page size / user",
                static_cast<double>(usage.used_pages() * usage.page_size) / per, "B", Goal::kAtMost, 300, ""});
    std::string dbs;
    for (const auto& [name, pages] : usage.db_pages) dbs += (dbs.empty() ? "" : ", ") + name + " " + std::to_string(pages);
    std::cerr << "  snapshot: page " << usage.page_size << " B, high water " << usage.high_water_pages
              << " pages, free " << usage.free_pages << "; pages per database: " << dbs << std::endl;
  }

  // 2. No-change run.
  std::cerr << "[" << users << " users] no-change run..." << std::flush;
  server.clear_log();
  const SyncRun same = run_sync(o, dir, "no-change");
  c = server.counters();
  std::cerr << " " << same.child.wall_s << " s" << std::endl;
  report.check(users + ": no-change run succeeds", run_problem(same).empty(), run_problem(same));
  report.check(users + ": no-change run sends no request", c.requests == 0,
               std::to_string(c.requests) + " requests");
  const std::string l2 = "no-change run " + users + ": ";
  report.add(at_million(n, {p + "no_change.wall_s", l2 + "wall", same.child.wall_s, "s", Goal::kAtMost, 2, ""}));
  report.add({p + "no_change.requests", l2 + "requests", static_cast<double>(c.requests), "", Goal::kAtMost, 0, ""});
  add_run_figures(report, n, "no_change", "no-change run", same.child);
  sf.no_change = same.child;

  // 3. 1% churn.
  const DirectorySpec churned{o.seed, n, true};
  const ChurnCounts churn = churn_counts(n);
  write_directory(dir / "users.csv", churned);
  std::cerr << "[" << users << " users] churn run (" << churn.updated << " updates, " << churn.added << " additions, "
            << churn.removed << " removals)..." << std::flush;
  server.clear_log();
  const SyncRun changed = run_sync(o, dir, "churn");
  c = server.counters();
  std::cerr << " " << changed.child.wall_s << " s" << std::endl;
  report.check(users + ": churn run succeeds", run_problem(changed).empty(), run_problem(changed));
  report.check(users + ": churn run sends exactly the churn",
               c.created == churn.added && c.updated == churn.updated && c.deleted == churn.removed,
               "server saw " + std::to_string(c.created) + " creates, " + std::to_string(c.updated) + " updates, " +
                   std::to_string(c.deleted) + " deletes; expected " + std::to_string(churn.added) + ", " +
                   std::to_string(churn.updated) + ", " + std::to_string(churn.removed));
  const std::string churn_diff = compare_server_to_source(server, churned);
  report.check(users + ": after the churn run the server equals the source", churn_diff.empty(), churn_diff);
  const std::string l3 = "1% churn run " + users + ": ";
  report.add(at_million(n, {p + "churn.wall_s", l3 + "wall", changed.child.wall_s, "s", Goal::kAtMost, 3, ""}));
  report.add({p + "churn.requests", l3 + "requests", static_cast<double>(c.requests), ""});
  report.add({p + "churn.request_mb", l3 + "request bodies", c.body_bytes / 1e6, "MB"});
  report.add({p + "churn.server_s", l3 + "time in the server's handler", c.handler_seconds, "s"});
  add_run_figures(report, n, "churn", "1% churn run", changed.child);
  sf.churn = changed.child;

  server.stop();
  sizes.push_back(sf);
}

// 4. Growth between the smallest and the largest size.
void add_growth(Report& report, const std::vector<SizeFigures>& sizes) {
  if (sizes.size() < 2) return;
  // Not a structured binding: clang 14 cannot capture one in the lambda below.
  const auto range = std::minmax_element(sizes.begin(), sizes.end(),
                                         [](const SizeFigures& a, const SizeFigures& b) { return a.users < b.users; });
  const auto lo = range.first;
  const auto hi = range.second;
  if (lo->users == hi->users) return;
  const double added = static_cast<double>(hi->users - lo->users);
  const std::string span = with_commas(lo->users) + " -> " + with_commas(hi->users);
  const std::string p = "growth_" + std::to_string(lo->users) + "_" + std::to_string(hi->users) + ".";
  auto add = [&](const char* key, const char* label, const ChildRun& a, const ChildRun& b) {
    const double per_user = (static_cast<double>(b.peak_anon_kb) - static_cast<double>(a.peak_anon_kb)) * 1024.0 / added;
    report.add({p + key + ".anon_bytes_per_user", std::string(label) + " " + span + ": RssAnon growth / added user",
                per_user, "B", Goal::kAtMost, 32, ""});
    report.add({p + key + ".wall_ratio", std::string(label) + " " + span + ": wall ratio", b.wall_s / a.wall_s, "x",
                Goal::kNone, 0, "users ratio " + std::to_string(static_cast<int>(hi->users / lo->users)) + "x"});
  };
  add("initial_sync", "initial sync", lo->initial, hi->initial);
  add("no_change", "no-change run", lo->no_change, hi->no_change);
  add("churn", "1% churn run", lo->churn, hi->churn);
}

// The loopback PERSCOM's own ceiling: a fresh server fed `n` users in pre-built
// POST batches of 1000 (the payload dirsync sends) over one keep-alive connection.
void measure_ceiling(const Options& o, std::size_t n, Report& report) {
  std::vector<std::string> requests;
  std::string body;
  std::size_t in_batch = 0;
  auto flush = [&] {
    body += "]}";
    requests.push_back(raw_request("POST", "/v2/users/batch", kToken, body));
    body.clear();
    in_batch = 0;
  };
  for_each_user({o.seed, n, false}, [&](const UserRow& r) {
    body += in_batch == 0 ? "{\"resources\":[" : ",";
    body += json{{"name", r.first_name + " " + r.last_name},
                 {"email", r.email},
                 {"phone_number", r.phone},
                 {"notes", r.title + ", " + r.department + " (" + r.location + ")"},
                 {"rank_id", r.rank_id},
                 {"unit_id", r.unit_id},
                 {"approved", true}}
                .dump();
    if (++in_batch == kBatch) flush();
  });
  if (in_batch > 0) flush();

  testing::PerscomTestServer server(testing::PerscomServerOptions{kToken, testing::ErrorStyle::kPerscom, std::nullopt});
  server.set_request_log(false);
  server.start();
  std::cerr << "[server ceiling] " << with_commas(n) << " users in " << requests.size() << " batches..." << std::flush;
  const FeedResult fed = feed(server.port(), requests);
  std::cerr << " " << fed.seconds << " s" << std::endl;
  report.check("server ceiling: every batch accepted", fed.error.empty() && server.user_count() == n,
               fed.error.empty() ? "server holds " + std::to_string(server.user_count()) : fed.error);
  const std::string l = "loopback PERSCOM ceiling (" + with_commas(n) + " users, batch 1000): ";
  report.add({"server.ceiling_users_per_s", l + "users/s", fed.error.empty() ? n / fed.seconds : 0, "users/s",
              Goal::kNone, 0, "the server alone; must be well above dirsync's rate"});
  report.add({"server.ceiling_mb_per_s", l + "request+answer MB/s",
              fed.error.empty() ? (fed.bytes_sent + fed.bytes_received) / 1e6 / fed.seconds : 0, "MB/s"});
  server.stop();
}

// 7. Single-user API with a slow server: does concurrency buy what it should?
void run_single_user(const Options& o, const fs::path& root, Report& report) {
  const std::size_t n = o.single_user;
  for (const std::size_t k : o.in_flight) {
    const fs::path dir = root / ("auth-sync-user-" + std::to_string(k));
    fs::create_directories(dir);
    testing::AuthSyncServerOptions so;
    so.delay = std::chrono::milliseconds(o.single_user_delay_ms);
    testing::AuthSyncUserTestServer server(so);
    server.start();
    write_file(dir / "dirsync.yaml", auth_sync_config(server.port(), k));
    write_directory(dir / "users.csv", {o.seed, n, false});
    std::cerr << "[auth_sync_user] " << with_commas(n) << " users, " << o.single_user_delay_ms
              << " ms per request, max_in_flight " << k << "..." << std::flush;
    const SyncRun run = run_sync(o, dir, "sync");
    std::cerr << " " << run.child.wall_s << " s" << std::endl;
    const std::string name = "single user, max_in_flight " + std::to_string(k);
    report.check(name + ": run succeeds", run_problem(run).empty(), run_problem(run));
    report.check(name + ": every user stored", server.user_count() == n,
                 "server holds " + std::to_string(server.user_count()) + " of " + std::to_string(n));
    const double ideal = static_cast<double>(n) * o.single_user_delay_ms / 1000.0 / static_cast<double>(k);
    const std::string p = "single_user.in_flight_" + std::to_string(k) + ".";
    const std::string l = "auth_sync_user " + with_commas(n) + " x " + std::to_string(o.single_user_delay_ms) +
                          " ms, in flight " + std::to_string(k) + ": ";
    report.add({p + "wall_s", l + "wall", run.child.wall_s, "s"});
    report.add({p + "ideal_s", l + "ideal (users x delay / in flight)", ideal, "s"});
    report.add({p + "ratio", l + "wall / ideal", run.child.wall_s / ideal, "x", k >= 8 ? Goal::kAtMost : Goal::kNone,
                1.25, ""});
    report.add({p + "max_concurrent", l + "requests in flight at once (server)",
                static_cast<double>(server.max_concurrent()), ""});
    server.stop();
  }
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

int run(const Options& o) {
  if (::access(o.dirsync.c_str(), X_OK) != 0) {
    std::cerr << "bench_suite: no dirsync binary at " << o.dirsync << " (use --dirsync PATH)\n";
    return 2;
  }
  std::string root_template =
      (fs::path(o.work_root.empty() ? fs::temp_directory_path() : fs::path(o.work_root)) / "dirsync-bench-XXXXXX")
          .string();
  if (!::mkdtemp(root_template.data())) {
    std::cerr << "bench_suite: cannot create a directory from " << root_template << "\n";
    return 2;
  }
  const fs::path root = root_template;
  std::cerr << "bench_suite: working in " << root.string() << " with " << o.dirsync << std::endl;

  Report report;
  std::vector<SizeFigures> sizes;
  if (o.ceiling && !o.sizes.empty()) measure_ceiling(o, *std::max_element(o.sizes.begin(), o.sizes.end()), report);
  for (const std::size_t n : o.sizes) run_size(o, root, n, report, sizes);
  add_growth(report, sizes);
  if (o.single_user > 0) run_single_user(o, root, report);

  std::cout << "\n";
  report.print(std::cout);
  if (!o.json_path.empty()) {
    std::string sizes_text;
    for (const auto n : o.sizes) sizes_text += (sizes_text.empty() ? "" : ",") + std::to_string(n);
    std::ofstream out(o.json_path, std::ios::trunc);
    out << report.to_json({{"dirsync", o.dirsync},
                           {"users", sizes_text},
                           {"seed", std::to_string(o.seed)},
                           {"cpu", cpu_model()},
                           {"cpus", std::to_string(::sysconf(_SC_NPROCESSORS_ONLN))},
                           {"build", DIRSYNC_BENCH_BUILD}});
    std::cout << "\nJSON: " << o.json_path << "\n";
  }
  if (o.keep) {
    std::cout << "kept: " << root.string() << "\n";
  } else {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  return report.all_checks_ok() ? 0 : 1;
}

}  // namespace
}  // namespace dirsync::bench

int main(int argc, char** argv) {
  using dirsync::bench::Options;
  Options o;
  bool sizes_given = false, single_given = false;
  bool quick = false;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--dirsync") {
        o.dirsync = value();
      } else if (arg == "--users") {
        o.sizes = dirsync::bench::parse_list(value());
        sizes_given = true;
      } else if (arg == "--quick") {
        quick = true;
      } else if (arg == "--json") {
        o.json_path = value();
      } else if (arg == "--work-dir") {
        o.work_root = value();
      } else if (arg == "--keep") {
        o.keep = true;
      } else if (arg == "--seed") {
        o.seed = std::stoull(value());
      } else if (arg == "--single-user") {
        o.single_user = std::stoull(value());
        single_given = true;
      } else if (arg == "--single-user-delay-ms") {
        o.single_user_delay_ms = std::stoi(value());
      } else if (arg == "--in-flight") {
        o.in_flight = dirsync::bench::parse_list(value());
      } else if (arg == "--no-ceiling") {
        o.ceiling = false;
      } else {
        return dirsync::bench::usage();
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_suite: " << e.what() << "\n";
    return dirsync::bench::usage();
  }
  if (quick && !sizes_given) o.sizes = {10'000};
  if (quick && !single_given) o.single_user = 200;
  for (const auto k : o.in_flight) {
    if (k == 0) return dirsync::bench::usage();
  }
  return dirsync::bench::run(o);
}
