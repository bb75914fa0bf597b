#include "core/schedule.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cmath>
#include <ctime>
#include <span>
#include <utility>
#include <vector>

namespace dirsync::core {

struct CronExpression::WallTime {
  int year = 0;
  int month = 1;  // 1-12
  int day = 1;    // 1-31
  int hour = 0;
  int minute = 0;
  auto operator<=>(const WallTime&) const = default;
};

namespace {

constexpr std::string_view kFieldCountMessage = "expected 5 fields: minute hour day-of-month month day-of-week";

constexpr std::array<std::string_view, 12> kMonthNames = {"jan", "feb", "mar", "apr", "may", "jun",
                                                          "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> kWeekdayNames = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct FieldSpec {
  std::string_view name;
  int lo;
  int hi;
  std::span<const std::string_view> names;  // names[i] stands for lo + i; empty: numbers only
  std::string_view name_range;              // "jan-dec", for messages
};

constexpr FieldSpec kMinute{"minute", 0, 59, {}, {}};
constexpr FieldSpec kHour{"hour", 0, 23, {}, {}};
constexpr FieldSpec kDayOfMonth{"day-of-month", 1, 31, {}, {}};
constexpr FieldSpec kMonth{"month", 1, 12, kMonthNames, "jan-dec"};
constexpr FieldSpec kDayOfWeek{"day-of-week", 0, 7, kWeekdayNames, "sun-sat"};

struct Macro {
  std::string_view name;
  std::string_view expansion;
};
constexpr std::array<Macro, 7> kMacros = {{{"@yearly", "0 0 1 1 *"},
                                           {"@annually", "0 0 1 1 *"},
                                           {"@monthly", "0 0 1 * *"},
                                           {"@weekly", "0 0 * * 0"},
                                           {"@daily", "0 0 * * *"},
                                           {"@midnight", "0 0 * * *"},
                                           {"@hourly", "0 * * * *"}}};

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// Parses one whitespace-free field. Positions are indexes into the whole
// expression so that every error can carry its column.
class FieldParser {
 public:
  FieldParser(const FieldSpec& spec, std::string_view text, std::size_t begin, std::size_t end)
      : spec_(spec), text_(text), begin_(begin), end_(end) {}

  // Bit v set: value v matches (day-of-week 7 already folded onto 0 by the caller).
  std::uint64_t parse() {
    std::uint64_t bits = 0;
    std::size_t pos = begin_;
    while (true) {
      const std::size_t item_end = std::min(text_.find(',', pos), end_);
      bits |= parse_item(pos, item_end);
      if (item_end == end_) return bits;
      pos = item_end + 1;
    }
  }

 private:
  [[noreturn]] void fail(std::size_t pos, std::string message) const {
    throw CronError(std::move(message), static_cast<int>(pos) + 1);
  }

  std::string expected() const {
    std::string out = "expected " + std::to_string(spec_.lo) + "-" + std::to_string(spec_.hi);
    if (!spec_.names.empty()) out += " or " + std::string(spec_.name_range);
    return out;
  }

  std::uint64_t parse_item(std::size_t pos, std::size_t item_end) {
    const std::size_t item_begin = pos;
    item_begin_ = pos;
    if (pos == item_end) {
      fail(pos, std::string(spec_.name) + " has an empty list item; expected a value, a range or '*'");
    }
    int lo = spec_.lo;
    int hi = spec_.hi;
    bool single = false;
    if (text_[pos] == '*') {
      ++pos;
    } else {
      lo = parse_value(pos, item_end, false, 0);
      hi = lo;
      single = true;
      if (pos < item_end && text_[pos] == '-') {
        ++pos;
        hi = parse_value(pos, item_end, true, lo);
        single = false;
        if (hi < lo) {
          fail(item_begin, std::string(spec_.name) + " range " + quoted(text_.substr(item_begin, pos - item_begin)) +
                               " is reversed; expected the smaller value first");
        }
      }
    }
    int step = 1;
    if (pos < item_end && text_[pos] == '/') {
      ++pos;
      step = parse_step(pos, item_end);
      if (single) hi = spec_.hi;  // "N/S" means N to the end of the range, as in Vixie cron
    }
    if (pos != item_end) {
      fail(pos, std::string(spec_.name) + " has unexpected text " + quoted(text_.substr(pos, item_end - pos)) +
                    " after " + quoted(text_.substr(item_begin, pos - item_begin)));
    }
    std::uint64_t bits = 0;
    for (int v = lo; v <= hi; v += step) bits |= std::uint64_t{1} << v;
    return bits;
  }

  // Reads digits at `pos`, saturating so that absurd numbers still reach the range check.
  int read_number(std::size_t& pos, std::size_t item_end) const {
    long value = 0;
    while (pos < item_end && is_digit(text_[pos])) {
      value = std::min(value * 10 + (text_[pos] - '0'), 1'000'000L);
      ++pos;
    }
    return static_cast<int>(value);
  }

  int parse_value(std::size_t& pos, std::size_t item_end, bool range_end, int range_start) {
    const std::size_t start = pos;
    if (pos < item_end && is_digit(text_[pos])) {
      const int value = read_number(pos, item_end);
      if (value < spec_.lo || value > spec_.hi) {
        fail(start, std::string(spec_.name) + " " + std::string(text_.substr(start, pos - start)) +
                        " is out of range " + std::to_string(spec_.lo) + "-" + std::to_string(spec_.hi));
      }
      return value;
    }
    if (pos < item_end && is_alpha(text_[pos])) {
      while (pos < item_end && is_alpha(text_[pos])) ++pos;
      const std::string_view word = text_.substr(start, pos - start);
      if (spec_.names.empty()) {
        fail(start, std::string(spec_.name) + " " + quoted(word) + " is not a number; " + expected());
      }
      for (std::size_t i = 0; i < spec_.names.size(); ++i) {
        if (!iequals(word, spec_.names[i])) continue;
        const int value = spec_.lo + static_cast<int>(i);
        // "fri-sun": Sunday as a range end is 7, so the range is not reversed.
        if (range_end && value == 0 && range_start > 0) return 7;
        return value;
      }
      fail(start, std::string(spec_.name) + " name " + quoted(word) + " is unknown; " + expected());
    }
    if (pos == item_end) {
      fail(pos, std::string(spec_.name) + " is missing a value after " +
                    quoted(text_.substr(item_begin_, pos - item_begin_)) + "; " + expected());
    }
    fail(pos, std::string(spec_.name) + " has unexpected text " + quoted(text_.substr(pos, item_end - pos)) + "; " +
                  expected() + ", a range or '*'");
  }

  int parse_step(std::size_t& pos, std::size_t item_end) {
    const std::size_t start = pos;
    if (pos == item_end) {
      fail(pos, std::string(spec_.name) + " step is missing after '/'; expected a number of 1 or more");
    }
    if (!is_digit(text_[pos])) {
      std::size_t word_end = pos;
      while (word_end < item_end && text_[word_end] != '/') ++word_end;
      fail(pos, std::string(spec_.name) + " step " + quoted(text_.substr(pos, word_end - pos)) +
                    " is not a number; expected a number of 1 or more");
    }
    const int step = read_number(pos, item_end);
    if (step == 0) {
      fail(start, std::string(spec_.name) + " step 0 is invalid; expected a number of 1 or more");
    }
    return step;
  }

  const FieldSpec& spec_;
  std::string_view text_;
  std::size_t begin_;
  std::size_t end_;
  std::size_t item_begin_ = 0;
};

// First set bit at or above `from`, or -1.
int next_bit(std::uint64_t bits, int from) {
  if (from >= 64) return -1;
  const std::uint64_t rest = bits >> from;
  return rest == 0 ? -1 : from + std::countr_zero(rest);
}

int days_in_month(int year, int month) {
  const std::chrono::year_month_day_last last{std::chrono::year{year},
                                              std::chrono::month_day_last{std::chrono::month(static_cast<unsigned>(month))}};
  return static_cast<int>(static_cast<unsigned>(last.day()));
}

int weekday_of(int year, int month, int day) {
  using namespace std::chrono;
  const year_month_day date{std::chrono::year{year}, std::chrono::month(static_cast<unsigned>(month)),
                            std::chrono::day(static_cast<unsigned>(day))};
  return static_cast<int>(weekday{sys_days{date}}.c_encoding());
}

std::tm to_tm(int year, int month, int day, int hour, int minute) {
  std::tm t{};
  t.tm_year = year - 1900;
  t.tm_mon = month - 1;
  t.tm_mday = day;
  t.tm_hour = hour;
  t.tm_min = minute;
  return t;
}

std::time_t floor_seconds(std::chrono::system_clock::time_point t) {
  return static_cast<std::time_t>(
      std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count());
}

std::chrono::system_clock::time_point from_seconds(std::time_t t) {
  return std::chrono::system_clock::time_point{std::chrono::seconds{t}};
}

long utc_offset_at(std::time_t t) {
  std::tm local{};
  localtime_r(&t, &local);
  return local.tm_gmtoff;
}

}  // namespace

CronExpression CronExpression::parse(std::string_view text) {
  std::vector<std::pair<std::size_t, std::size_t>> fields;  // [begin, end) of each field
  for (std::size_t i = 0; i < text.size();) {
    if (is_space(text[i])) {
      ++i;
      continue;
    }
    const std::size_t begin = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    fields.emplace_back(begin, i);
  }

  if (!fields.empty() && text[fields[0].first] == '@') {
    const std::string_view name = text.substr(fields[0].first, fields[0].second - fields[0].first);
    const auto macro = std::find_if(kMacros.begin(), kMacros.end(), [&](const Macro& m) { return iequals(m.name, name); });
    if (macro == kMacros.end()) {
      throw CronError("unknown macro " + quoted(name) +
                          "; expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly",
                      static_cast<int>(fields[0].first) + 1);
    }
    if (fields.size() > 1) {
      throw CronError("unexpected " + quoted(text.substr(fields[1].first, fields[1].second - fields[1].first)) +
                          " after " + std::string(name) + "; a macro stands alone",
                      static_cast<int>(fields[1].first) + 1);
    }
    CronExpression expanded = parse(macro->expansion);
    expanded.text_ = std::string(text);
    return expanded;
  }

  if (fields.size() != 5) {
    const std::size_t at = fields.size() > 5 ? fields[5].first : (fields.empty() ? 0 : fields.back().second);
    throw CronError(std::string(kFieldCountMessage), static_cast<int>(at) + 1);
  }

  auto field = [&](const FieldSpec& spec, std::size_t i) {
    return FieldParser(spec, text, fields[i].first, fields[i].second).parse();
  };
  CronExpression e;
  e.text_ = std::string(text);
  e.minutes_ = field(kMinute, 0);
  e.hours_ = static_cast<std::uint32_t>(field(kHour, 1));
  e.days_ = static_cast<std::uint32_t>(field(kDayOfMonth, 2));
  e.months_ = static_cast<std::uint16_t>(field(kMonth, 3));
  std::uint64_t weekdays = field(kDayOfWeek, 4);
  if (weekdays & (std::uint64_t{1} << 7)) weekdays |= 1;  // 7 is Sunday too
  e.weekdays_ = static_cast<std::uint8_t>(weekdays & 0x7f);
  e.day_restricted_ = text[fields[2].first] != '*';
  e.weekday_restricted_ = text[fields[4].first] != '*';
  return e;
}

bool CronExpression::day_matches(int year, int month, int day) const {
  const bool by_day = (days_ >> day) & 1;
  const bool by_weekday = (weekdays_ >> weekday_of(year, month, day)) & 1;
  // Vixie rule: two restricted day fields widen the schedule; an unrestricted
  // one has every bit set (or, for "*/N", narrows it by AND as Vixie does).
  if (day_restricted_ && weekday_restricted_) return by_day || by_weekday;
  return by_day && by_weekday;
}

bool CronExpression::advance(WallTime& t, const WallTime& limit) const {
  // Each step jumps to the next candidate month, day, hour or minute, so a
  // search over years costs at most a few thousand steps, not millions.
  while (t <= limit) {
    const int month = next_bit(months_, t.month);
    if (month < 0 || month > 12) {
      t = WallTime{t.year + 1, 1, 1, 0, 0};
      continue;
    }
    if (month != t.month) {
      t = WallTime{t.year, month, 1, 0, 0};
      continue;
    }
    if (t.day > days_in_month(t.year, t.month)) {
      t = WallTime{t.year, t.month + 1, 1, 0, 0};
      continue;
    }
    if (!day_matches(t.year, t.month, t.day)) {
      t = WallTime{t.year, t.month, t.day + 1, 0, 0};
      continue;
    }
    const int hour = next_bit(hours_, t.hour);
    if (hour < 0) {
      t = WallTime{t.year, t.month, t.day + 1, 0, 0};
      continue;
    }
    if (hour != t.hour) t = WallTime{t.year, t.month, t.day, hour, 0};
    const int minute = next_bit(minutes_, t.minute);
    if (minute < 0) {
      t = WallTime{t.year, t.month, t.day, t.hour + 1, 0};
      continue;
    }
    t.minute = minute;
    return t <= limit;
  }
  return false;
}

std::optional<std::chrono::system_clock::time_point> CronExpression::next_after(
    std::chrono::system_clock::time_point after, TimeZone zone) const {
  const std::time_t after_seconds = floor_seconds(after);
  std::tm now{};
  if (zone == TimeZone::kUtc) {
    gmtime_r(&after_seconds, &now);
  } else {
    localtime_r(&after_seconds, &now);
  }
  // Seconds are dropped and one minute added: "strictly after" at minute
  // resolution. advance() rolls minute 60 over.
  WallTime t{now.tm_year + 1900, now.tm_mon + 1, now.tm_mday, now.tm_hour, now.tm_min + 1};
  const WallTime limit{t.year + 8, t.month, t.day, t.hour, t.minute};

  for (; advance(t, limit); ++t.minute) {
    std::tm wall = to_tm(t.year, t.month, t.day, t.hour, t.minute);
    const std::time_t naive = timegm(&wall);  // the wall time read as UTC
    if (zone == TimeZone::kUtc) return from_seconds(naive);

    // A local wall time W happens at naive - offset for each offset in force at
    // that instant. The offsets a day either side bracket every candidate
    // (offsets lie within -12 h..+14 h), assuming at most one transition in
    // those two days, which holds for every zone in tzdata in practice.
    // (mktime with tm_isdst = -1 does not say which instant it chose for a
    // repeated time, nor how it moved a skipped one, so it is not used.)
    const long before = utc_offset_at(naive - 86400);
    const long later = utc_offset_at(naive + 86400);
    std::optional<std::time_t> first;
    for (const long offset : {before, later}) {
      const std::time_t candidate = naive - offset;
      if (utc_offset_at(candidate) == offset && (!first || candidate < *first)) first = candidate;
    }
    if (first) {
      // A repeated wall time runs only at its first occurrence; if that is not
      // after `after` we are in the second pass, and it must not run again.
      if (*first > after_seconds) return from_seconds(*first);
      continue;
    }
    // W lies in a spring-forward gap: run at the transition, the first instant
    // whose wall time is past the gap. Before it the earlier offset holds.
    if (later <= before) continue;  // not a gap after all (two transitions in two days)
    std::time_t lo = naive - later;  // earlier offset in force: wall time < W
    std::time_t hi = naive - before;  // later offset in force: wall time > W
    while (hi - lo > 1) {
      const std::time_t mid = lo + (hi - lo) / 2;
      (utc_offset_at(mid) == before ? lo : hi) = mid;
    }
    std::time_t transition = hi / 60 * 60;  // to the whole minute at or after hi
    if (transition < hi) transition += 60;
    if (transition > after_seconds) return from_seconds(transition);
  }
  return std::nullopt;
}

std::chrono::system_clock::time_point next_every(std::chrono::system_clock::time_point previous,
                                                 std::chrono::milliseconds interval, std::chrono::milliseconds jitter,
                                                 double u) {
  const double share = std::isnan(u) ? 0.0 : std::clamp(u, 0.0, 1.0);
  const auto extra = std::chrono::milliseconds{std::llround(static_cast<double>(jitter.count()) * share)};
  return previous + interval + extra;
}

}  // namespace dirsync::core
