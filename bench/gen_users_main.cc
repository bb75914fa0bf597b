// gen_users: writes a benchmark directory as CSV (see bench/gen_users.h).
//
//   gen_users --users N [--seed S] [--churned] [--out FILE]
//
// Without --out the CSV goes to stdout. --churned writes the same directory
// after 1% churn (1% updated, 0.25% removed, 0.25% added).
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "bench/gen_users.h"

int main(int argc, char** argv) {
  dirsync::bench::DirectorySpec spec;
  std::string out_path;
  bool have_users = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "gen_users: " << arg << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--users") {
      spec.users = std::stoull(value());
      have_users = true;
    } else if (arg == "--seed") {
      spec.seed = std::stoull(value());
    } else if (arg == "--churned") {
      spec.churned = true;
    } else if (arg == "--out") {
      out_path = value();
    } else {
      std::cerr << "usage: gen_users --users N [--seed S] [--churned] [--out FILE]\n";
      return 2;
    }
  }
  if (!have_users) {
    std::cerr << "gen_users: --users N is required\n";
    return 2;
  }
  if (out_path.empty()) {
    dirsync::bench::write_csv(spec, std::cout);
    return std::cout ? 0 : 1;
  }
  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  dirsync::bench::write_csv(spec, out);
  out.close();
  if (!out) {
    std::cerr << "gen_users: cannot write " << out_path << "\n";
    return 1;
  }
  return 0;
}
