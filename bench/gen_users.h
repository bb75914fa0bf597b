#pragma once
// Deterministic HR directories for the benchmarks: N users as a CSV export,
// and the same export after 1% churn. The same (seed, users, churn) always
// gives the same bytes, on any machine: the values come from a counter-based
// hash (splitmix64), not from <random>'s distributions, whose output the
// standard leaves to each library.
//
// Columns: employee_id,first_name,last_name,email,phone,department,title,location,rank_id,unit_id,hire_date
// (~140 bytes a row; `location` holds a comma, so it is quoted). Emails are
// unique (they carry the employee id) and mixed-case, so the mapping's
// `lower` has work to do.
//
// Churn (`churned = true`), proportional to N: 1% of the users updated (title,
// department and rank: the mapped `notes` and `rank_id` change), 0.25% removed,
// 0.25% added — at 1,000,000 users 10,000 / 2,500 / 2,500. Which users is
// decided by the seed.
//
// Thread safety: pure functions of their arguments.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace dirsync::bench {

struct UserRow {
  std::string employee_id;
  std::string first_name;
  std::string last_name;
  std::string email;
  std::string phone;
  std::string department;
  std::string title;
  std::string location;
  int rank_id = 0;
  int unit_id = 0;
  std::string hire_date;
};

struct DirectorySpec {
  std::uint64_t seed = 7;
  std::size_t users = 0;  // before churn
  bool churned = false;
};

// How many users churn changes, for `users` users.
struct ChurnCounts {
  std::size_t updated = 0;
  std::size_t removed = 0;
  std::size_t added = 0;
};
ChurnCounts churn_counts(std::size_t users);

// Calls `row` for every row of the directory, in file order.
void for_each_user(const DirectorySpec& spec, const std::function<void(const UserRow&)>& row);

// The header line (no newline) and one row as CSV (RFC 4180 quoting, no newline).
const std::string& csv_header();
void append_csv_row(std::string& out, const UserRow& row);

// Writes the whole CSV (header included) to `out`; returns the bytes written.
std::size_t write_csv(const DirectorySpec& spec, std::ostream& out);

// The PERSCOM fields the benchmark job's mapping makes of a row, in a fixed
// text form ("name\x1femail\x1f...") — what the server must end up holding.
// The mapping it assumes is kPerscomMapping below.
std::string expected_perscom_fields(const UserRow& row);

// The job mapping (YAML, indented for a job's `mapping:` block) that
// expected_perscom_fields() mirrors.
extern const char* const kPerscomMapping;

}  // namespace dirsync::bench
