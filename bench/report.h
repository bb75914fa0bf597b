#pragma once
// The benchmark's results: figures (a measured value, its unit, and the
// issue's target when there is one) and behaviour checks (what the smoke test
// asserts). Printed as a table and written as JSON. Times never fail a run;
// only checks do.
//
// Thread safety: none; one Report per driver, filled from its main thread.
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace dirsync::bench {

enum class Goal { kNone, kAtMost, kAtLeast };

struct Figure {
  Figure(std::string name_in, std::string label_in, double value_in, std::string unit_in, Goal goal_in = Goal::kNone,
         double target_in = 0, std::string note_in = {})
      : name(std::move(name_in)), label(std::move(label_in)), value(value_in), unit(std::move(unit_in)),
        goal(goal_in), target(target_in), note(std::move(note_in)) {}

  std::string name;   // stable, machine-readable: "n1000000.initial_sync.users_per_s"
  std::string label;  // for the table: "initial sync 1,000,000: users/s"
  double value = 0;
  std::string unit;
  Goal goal = Goal::kNone;
  double target = 0;  // with goal
  std::string note;   // shown after the target: where the target comes from, caveats
  std::optional<bool> met() const;
};

struct Check {
  std::string name;
  bool ok = false;
  std::string detail;
};

class Report {
 public:
  void add(Figure figure);
  void check(const std::string& name, bool ok, const std::string& detail = {});
  bool all_checks_ok() const;
  const std::vector<Figure>& figures() const { return figures_; }
  const std::vector<Check>& checks() const { return checks_; }
  std::optional<double> value(const std::string& name) const;

  void print(std::ostream& out) const;
  // Every figure and check, plus `context` (machine, binary, sizes) as given.
  std::string to_json(const std::vector<std::pair<std::string, std::string>>& context) const;

 private:
  std::vector<Figure> figures_;
  std::vector<Check> checks_;
};

// "1,000,000"
std::string with_commas(unsigned long long n);

}  // namespace dirsync::bench
