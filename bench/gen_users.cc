#include "bench/gen_users.h"

#include <array>
#include <cctype>
#include <cstdio>
#include <numeric>

namespace dirsync::bench {
namespace {

// splitmix64's finaliser: a good 64-bit mix, cheap, and the same everywhere.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A value for (seed, user, field, revision): every field of every user independent.
std::uint64_t draw(std::uint64_t seed, std::uint64_t user, std::uint64_t field, std::uint64_t revision = 0) {
  return mix(mix(mix(mix(seed) ^ user) ^ field) ^ revision);
}

constexpr std::array kFirst = {"Ada",   "Grace", "Alan",   "Emilie", "Hedy",   "Linus",  "Margaret", "Dennis",
                               "Barbara", "Ken", "Frances", "John",  "Radia",  "Edsger", "Katherine", "Tim",
                               "Sophie", "Niklaus", "Joan", "Donald", "Mary",  "Claude", "Annie",    "Bjarne"};
constexpr std::array kLast = {"Lovelace", "Hopper",  "Turing",   "Chatelet", "Lamarr",  "Torvalds", "Hamilton",
                              "Ritchie",  "Liskov",  "Thompson", "Allen",    "Backus",  "Perlman",  "Dijkstra",
                              "Johnson",  "Berners-Lee", "Wilson", "Wirth",  "Clarke",  "Knuth",    "Keller",
                              "Shannon",  "Easley",  "Stroustrup"};
constexpr std::array kDepartment = {"Engineering", "Research", "Sales",   "Support",    "Finance",
                                    "Legal",       "Marketing", "Operations", "People", "Facilities"};
constexpr std::array kTitle = {"Software Engineer", "Senior Analyst", "Account Manager", "Team Lead",
                               "Support Specialist", "Controller",   "Counsel",         "Designer",
                               "Operations Manager", "Recruiter",    "Technician",      "Director"};
constexpr std::array kLocation = {"London, UK", "Berlin, DE", "Paris, FR",     "Madrid, ES",
                                  "Austin, US", "Toronto, CA", "Sydney, AU",   "Singapore, SG"};
constexpr std::array kDomain = {"Example.com", "example.org", "CORP.example.net"};

enum Field : std::uint64_t { kFirstName = 1, kLastName, kDomainF, kPhone, kDept, kTitleF, kLoc, kRank, kUnit, kHire };

constexpr std::uint64_t kFirstEmployeeId = 1'000'000;

template <class A>
const char* pick(const A& values, std::uint64_t x) {
  return values[x % values.size()];
}

UserRow make_row(std::uint64_t seed, std::uint64_t user, std::uint64_t revision) {
  UserRow r;
  const std::uint64_t id = kFirstEmployeeId + user;
  r.employee_id = std::to_string(id);
  r.first_name = pick(kFirst, draw(seed, user, kFirstName));
  r.last_name = pick(kLast, draw(seed, user, kLastName));
  r.email = r.first_name + "." + r.last_name + "." + r.employee_id + "@" + pick(kDomain, draw(seed, user, kDomainF));
  char phone[32];
  std::snprintf(phone, sizeof phone, "+44 20 %04u %04u", static_cast<unsigned>(draw(seed, user, kPhone) % 10000),
                static_cast<unsigned>(draw(seed, user, kPhone, 1) % 10000));
  r.phone = phone;
  // What churn changes: the revision takes part in the draw.
  r.department = pick(kDepartment, draw(seed, user, kDept, revision));
  r.title = pick(kTitle, draw(seed, user, kTitleF, revision));
  r.rank_id = 1 + static_cast<int>(draw(seed, user, kRank, revision) % 30);
  if (revision > 0 && r.department == std::string(pick(kDepartment, draw(seed, user, kDept))) &&
      r.title == std::string(pick(kTitle, draw(seed, user, kTitleF))) &&
      r.rank_id == 1 + static_cast<int>(draw(seed, user, kRank) % 30)) {
    r.rank_id = r.rank_id % 30 + 1;  // an update must change something
  }
  r.location = pick(kLocation, draw(seed, user, kLoc));
  r.unit_id = 100 + static_cast<int>(draw(seed, user, kUnit) % 400);
  const std::uint64_t h = draw(seed, user, kHire);
  char date[16];
  std::snprintf(date, sizeof date, "%04u-%02u-%02u", static_cast<unsigned>(1990 + h % 35),
                static_cast<unsigned>(1 + (h >> 8) % 12), static_cast<unsigned>(1 + (h >> 16) % 28));
  r.hire_date = date;
  return r;
}

void append_field(std::string& out, const std::string& value) {
  if (value.find_first_of(",\"\r\n") == std::string::npos) {
    out += value;
    return;
  }
  out += '"';
  for (const char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

ChurnCounts churn_counts(std::size_t users) { return {users / 100, users / 400, users / 400}; }

void for_each_user(const DirectorySpec& spec, const std::function<void(const UserRow&)>& row) {
  // 0: unchanged, 1: updated, 2: removed. Chosen by a seeded partial
  // Fisher-Yates shuffle, so updates and removals are spread over the file.
  std::vector<std::uint8_t> fate;
  ChurnCounts churn;
  if (spec.churned) {
    churn = churn_counts(spec.users);
    fate.assign(spec.users, 0);
    std::vector<std::uint32_t> order(spec.users);
    std::iota(order.begin(), order.end(), 0u);
    const std::size_t picked = churn.updated + churn.removed;
    for (std::size_t k = 0; k < picked && k < spec.users; ++k) {
      const std::size_t j = k + draw(spec.seed, k, 0xC0FFEE) % (spec.users - k);
      std::swap(order[k], order[j]);
      fate[order[k]] = k < churn.updated ? 1 : 2;
    }
  }
  for (std::size_t i = 0; i < spec.users; ++i) {
    const std::uint8_t f = fate.empty() ? 0 : fate[i];
    if (f == 2) continue;
    row(make_row(spec.seed, i, f));
  }
  for (std::size_t i = 0; i < churn.added; ++i) row(make_row(spec.seed, spec.users + i, 0));
}

const std::string& csv_header() {
  static const std::string h =
      "employee_id,first_name,last_name,email,phone,department,title,location,rank_id,unit_id,hire_date";
  return h;
}

void append_csv_row(std::string& out, const UserRow& r) {
  for (const std::string* s : {&r.employee_id, &r.first_name, &r.last_name, &r.email, &r.phone, &r.department,
                               &r.title, &r.location}) {
    append_field(out, *s);
    out += ',';
  }
  out += std::to_string(r.rank_id);
  out += ',';
  out += std::to_string(r.unit_id);
  out += ',';
  out += r.hire_date;
}

std::size_t write_csv(const DirectorySpec& spec, std::ostream& out) {
  std::string buffer = csv_header() + "\n";
  std::size_t written = 0;
  for_each_user(spec, [&](const UserRow& r) {
    append_csv_row(buffer, r);
    buffer += '\n';
    if (buffer.size() > (1u << 20)) {
      out.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      written += buffer.size();
      buffer.clear();
    }
  });
  out.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
  return written + buffer.size();
}

const char* const kPerscomMapping =
    "      name: \"{first_name} {last_name}\"\n"
    "      email: \"{email | trim | lower}\"\n"
    "      phone_number: \"{phone}\"\n"
    "      notes: \"{title}, {department} ({location})\"\n"
    "      rank_id: \"{rank_id}\"\n"
    "      unit_id: \"{unit_id}\"\n"
    "      approved: true\n";

std::string expected_perscom_fields(const UserRow& r) {
  const char sep = '\x1f';
  return r.first_name + " " + r.last_name + sep + lower(r.email) + sep + r.phone + sep + r.title + ", " +
         r.department + " (" + r.location + ")" + sep + std::to_string(r.rank_id) + sep + std::to_string(r.unit_id) +
         sep + "true";
}

}  // namespace dirsync::bench
