#pragma once
// Job schedules: 5-field cron expressions, and the arithmetic of "every N with
// jitter". Pure functions; a CronExpression is immutable and thread safe.
//
// Cron syntax (as crontab(5), Vixie cron): "minute hour day-of-month month day-of-week"
//   minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or jan-dec, day-of-week
//   0-7 or sun-sat (0 and 7 are Sunday). Each field: `*`, `N`, `N-M`, `*/S`,
//   `N-M/S`, `N/S` (N to the end), and comma lists of those. Names are
//   case-insensitive. When both day-of-month and day-of-week are restricted
//   (neither starts with `*`), a day matches if EITHER matches (Vixie rule).
//   Macros: @hourly, @daily (= @midnight), @weekly, @monthly, @yearly (= @annually).
//
// Time zones: a schedule runs in UTC or in the process's local time zone (the
// TZ environment variable, else /etc/localtime: under systemd, the machine's).
// DST in local time:
//   - a wall-clock time skipped by a spring-forward gap (02:30 on the night the
//     clocks jump from 02:00 to 03:00) runs once, at the first minute after the
//     gap (03:00);
//   - a wall-clock time that occurs twice when the clocks fall back runs once,
//     at its first occurrence.
// So "*/30 * * * *" on the fall-back night in Europe/Berlin runs at 02:00 and
// 02:30 CEST, not at 02:00 and 02:30 CET, then at 03:00 CET: the repeated hour's
// minutes do not run twice. On the spring-forward night every skipped time
// (02:00, 02:15, ...) is folded into the one run at 03:00. Asked from a moment
// inside the repeated hour's second pass, the next run is the first wall time
// after it that has not occurred yet.
//
// Details that follow Vixie cron: a day-of-month or day-of-week field counts as
// restricted unless its text starts with `*` ("*/2" is not restricted, so it
// combines with the other day field by AND). A day-of-week range may end at
// `sun` ("fri-sun" is Friday to Sunday).
//
// Thread safety: parse and the UTC arithmetic are pure. Local-time arithmetic
// reads the process's time zone through localtime_r, so it must not race with
// code that changes TZ (setenv + tzset), which no library function can guard.
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

namespace dirsync::core {

// Thrown by CronExpression::parse. `column` is 1-based in the expression text.
struct CronError : std::exception {
  CronError(std::string msg, int col) : message(std::move(msg)), column(col) {}
  const char* what() const noexcept override { return message.c_str(); }
  std::string message;
  int column;
};

enum class TimeZone { kUtc, kLocal };

class CronExpression {
 public:
  // Throws CronError naming the field and what is wrong ("hour 24 is out of range 0-23").
  static CronExpression parse(std::string_view text);

  // The first whole minute strictly after `after` that matches, in `zone`.
  // nullopt when none exists within 8 years (e.g. "0 0 30 2 *").
  std::optional<std::chrono::system_clock::time_point> next_after(std::chrono::system_clock::time_point after,
                                                                  TimeZone zone) const;

  // The expression as given to parse (macros are not expanded).
  const std::string& text() const { return text_; }

 private:
  struct WallTime;  // a civil date and time to the minute; defined in schedule.cc

  bool day_matches(int year, int month, int day) const;
  // Moves `t` to the first matching wall time at or after it (out-of-range
  // fields such as minute 60 roll over); false when that lies after `limit`.
  bool advance(WallTime& t, const WallTime& limit) const;

  std::string text_;
  std::uint64_t minutes_ = 0;  // bit i: minute i matches
  std::uint32_t hours_ = 0;
  std::uint32_t days_ = 0;     // bit d (1..31)
  std::uint16_t months_ = 0;   // bit m (1..12)
  std::uint8_t weekdays_ = 0;  // bit w (0..6, Sunday = 0)
  bool day_restricted_ = false;
  bool weekday_restricted_ = false;
};

// The start after `previous` for "every `interval` with `jitter`": previous +
// interval + jitter * u, u in [0, 1] (clamped; NaN counts as 0), rounded to
// the millisecond. The caller draws u, so the function stays deterministic. Spreads jobs that share an
// interval so they do not hit a source at the same second.
std::chrono::system_clock::time_point next_every(std::chrono::system_clock::time_point previous,
                                                 std::chrono::milliseconds interval, std::chrono::milliseconds jitter,
                                                 double u);

}  // namespace dirsync::core
