#include "bench/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace dirsync::bench {
namespace {

std::string number(double v) {
  char buf[64];
  if (v != 0 && std::fabs(v) < 10 && v != std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.3f", v);
  } else if (std::fabs(v) < 1000) {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  } else {
    return with_commas(static_cast<unsigned long long>(std::llround(std::fabs(v))));
  }
  return buf;
}

std::string target_text(const Figure& f) {
  if (f.goal == Goal::kNone) return f.note.empty() ? "-" : f.note;
  std::string t = (f.goal == Goal::kAtMost ? "<= " : ">= ") + number(f.target) + " " + f.unit;
  if (!f.note.empty()) t += " (" + f.note + ")";
  return t;
}

}  // namespace

std::string with_commas(unsigned long long n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::optional<bool> Figure::met() const {
  switch (goal) {
    case Goal::kAtMost: return value <= target;
    case Goal::kAtLeast: return value >= target;
    case Goal::kNone: break;
  }
  return std::nullopt;
}

void Report::add(Figure figure) { figures_.push_back(std::move(figure)); }

void Report::check(const std::string& name, bool ok, const std::string& detail) {
  checks_.push_back({name, ok, detail});
}

bool Report::all_checks_ok() const {
  return std::all_of(checks_.begin(), checks_.end(), [](const Check& c) { return c.ok; });
}

std::optional<double> Report::value(const std::string& name) const {
  for (const auto& f : figures_) {
    if (f.name == name) return f.value;
  }
  return std::nullopt;
}

void Report::print(std::ostream& out) const {
  std::size_t w_label = 6, w_value = 5, w_target = 6;
  std::vector<std::string> values;
  for (const auto& f : figures_) {
    values.push_back(number(f.value) + " " + f.unit);
    w_label = std::max(w_label, f.label.size());
    w_value = std::max(w_value, values.back().size());
    w_target = std::max(w_target, target_text(f).size());
  }
  auto pad = [](const std::string& s, std::size_t w) { return s + std::string(w > s.size() ? w - s.size() : 0, ' '); };
  auto rule = [&] {
    out << std::string(w_label + w_value + w_target + 16, '-') << "\n";
  };
  out << pad("figure", w_label) << "  " << pad("value", w_value) << "  " << pad("target", w_target) << "  result\n";
  rule();
  for (std::size_t i = 0; i < figures_.size(); ++i) {
    const auto& f = figures_[i];
    const auto met = f.met();
    out << pad(f.label, w_label) << "  " << pad(values[i], w_value) << "  " << pad(target_text(f), w_target) << "  "
        << (met ? (*met ? "met" : "MISSED") : "") << "\n";
  }
  rule();
  out << "behaviour checks:\n";
  for (const auto& c : checks_) {
    out << "  [" << (c.ok ? "ok" : "FAILED") << "] " << c.name << (c.detail.empty() ? "" : ": " + c.detail) << "\n";
  }
}

std::string Report::to_json(const std::vector<std::pair<std::string, std::string>>& context) const {
  nlohmann::json j;
  auto& ctx = j["context"] = nlohmann::json::object();
  for (const auto& [k, v] : context) ctx[k] = v;
  auto& figures = j["figures"] = nlohmann::json::array();
  for (const auto& f : figures_) {
    nlohmann::json x = {{"name", f.name}, {"label", f.label}, {"value", f.value}, {"unit", f.unit}};
    if (f.goal != Goal::kNone) {
      x["target"] = {{"op", f.goal == Goal::kAtMost ? "<=" : ">="}, {"value", f.target}};
      x["met"] = *f.met();
    } else {
      x["target"] = nullptr;
    }
    if (!f.note.empty()) x["note"] = f.note;
    figures.push_back(std::move(x));
  }
  auto& checks = j["checks"] = nlohmann::json::array();
  for (const auto& c : checks_) checks.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}});
  j["all_checks_ok"] = all_checks_ok();
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace dirsync::bench
