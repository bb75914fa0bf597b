#include "core/schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace dirsync::core {
namespace {

using Clock = std::chrono::system_clock;
using std::chrono::milliseconds;

Clock::time_point utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  const std::chrono::sys_days day{std::chrono::year{y} / mo / d};
  return Clock::time_point{day.time_since_epoch() + std::chrono::hours{h} + std::chrono::minutes{mi} +
                           std::chrono::seconds{s}};
}

// "2026-01-05 09:00" in UTC, whatever TZ says.
std::string show(Clock::time_point t) {
  const std::time_t seconds = Clock::to_time_t(t);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M", &parts);
  return buffer;
}

std::string show(std::optional<Clock::time_point> t) { return t ? show(*t) : "never"; }

// The first `count` runs strictly after `from`, each found from the previous.
std::vector<std::string> runs(std::string_view expression, Clock::time_point from, int count,
                              TimeZone zone = TimeZone::kUtc) {
  const auto cron = CronExpression::parse(expression);
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    const auto next = cron.next_after(from, zone);
    if (!next) break;
    out.push_back(show(*next));
    from = *next;
  }
  return out;
}

std::string next_utc(std::string_view expression, Clock::time_point after) {
  return show(CronExpression::parse(expression).next_after(after, TimeZone::kUtc));
}

std::string next_local(std::string_view expression, Clock::time_point after) {
  return show(CronExpression::parse(expression).next_after(after, TimeZone::kLocal));
}

using Runs = std::vector<std::string>;

TEST(CronExpression, MinuteFieldAcceptsEveryForm) {
  const auto from = utc(2025, 12, 31, 23, 59);
  EXPECT_EQ(runs("* * * * *", from, 3), (Runs{"2026-01-01 00:00", "2026-01-01 00:01", "2026-01-01 00:02"}));
  EXPECT_EQ(runs("7 * * * *", from, 2), (Runs{"2026-01-01 00:07", "2026-01-01 01:07"}));
  EXPECT_EQ(runs("10-12 * * * *", from, 4),
            (Runs{"2026-01-01 00:10", "2026-01-01 00:11", "2026-01-01 00:12", "2026-01-01 01:10"}));
  EXPECT_EQ(runs("*/20 * * * *", from, 4),
            (Runs{"2026-01-01 00:00", "2026-01-01 00:20", "2026-01-01 00:40", "2026-01-01 01:00"}));
  EXPECT_EQ(runs("10-30/10 * * * *", from, 4),
            (Runs{"2026-01-01 00:10", "2026-01-01 00:20", "2026-01-01 00:30", "2026-01-01 01:10"}));
  EXPECT_EQ(runs("50/4 * * * *", from, 4),
            (Runs{"2026-01-01 00:50", "2026-01-01 00:54", "2026-01-01 00:58", "2026-01-01 01:50"}))
      << "N/S runs from N to the end of the range";
  EXPECT_EQ(runs("5,1-2,40/15 * * * *", from, 6),
            (Runs{"2026-01-01 00:01", "2026-01-01 00:02", "2026-01-01 00:05", "2026-01-01 00:40", "2026-01-01 00:55",
                  "2026-01-01 01:01"}));
}

TEST(CronExpression, HourDayAndMonthFieldsTakeTheSameForms) {
  const auto from = utc(2025, 12, 31, 23, 59);
  EXPECT_EQ(runs("0 */6 * * *", from, 5), (Runs{"2026-01-01 00:00", "2026-01-01 06:00", "2026-01-01 12:00",
                                                "2026-01-01 18:00", "2026-01-02 00:00"}));
  EXPECT_EQ(runs("15 8-9 * * *", from, 3), (Runs{"2026-01-01 08:15", "2026-01-01 09:15", "2026-01-02 08:15"}));
  EXPECT_EQ(runs("0 0 10-11,20 * *", from, 4),
            (Runs{"2026-01-10 00:00", "2026-01-11 00:00", "2026-01-20 00:00", "2026-02-10 00:00"}));
  EXPECT_EQ(runs("0 0 1 */4 *", from, 4),
            (Runs{"2026-01-01 00:00", "2026-05-01 00:00", "2026-09-01 00:00", "2027-01-01 00:00"}));
  EXPECT_EQ(runs("0 0 * * 2-3", from, 3), (Runs{"2026-01-06 00:00", "2026-01-07 00:00", "2026-01-13 00:00"}))
      << "2026-01-06 is a Tuesday";
}

TEST(CronExpression, NamesAreCaseInsensitiveAndMeanTheirNumbers) {
  const auto from = utc(2026, 1, 1);
  EXPECT_EQ(runs("0 0 1 JAN,Jul *", from, 3), runs("0 0 1 1,7 *", from, 3));
  EXPECT_EQ(runs("0 0 1 feb-apr/2 *", from, 3), runs("0 0 1 2,4 *", from, 3));
  EXPECT_EQ(runs("0 0 * * Mon-FRI", from, 10), runs("0 0 * * 1-5", from, 10));
  EXPECT_EQ(runs("0 0 * * fri-sun", from, 6), runs("0 0 * * 0,5,6", from, 6)) << "a range may end at sun";
}

TEST(CronExpression, DayOfWeekSevenIsSunday) {
  const auto from = utc(2026, 1, 1);  // a Thursday
  EXPECT_EQ(runs("0 0 * * 7", from, 3), (Runs{"2026-01-04 00:00", "2026-01-11 00:00", "2026-01-18 00:00"}));
  EXPECT_EQ(runs("0 0 * * 0", from, 3), runs("0 0 * * 7", from, 3));
  EXPECT_EQ(runs("0 0 * * sun", from, 3), runs("0 0 * * 7", from, 3));
  EXPECT_EQ(runs("0 0 * * 5-7", from, 6), runs("0 0 * * 0,5,6", from, 6));
}

TEST(CronExpression, RestrictedDayOfMonthAndDayOfWeekMatchEitherDay) {
  // Vixie rule: the 13th OR any Friday.
  EXPECT_EQ(runs("0 0 13 * 5", utc(2026, 1, 1), 5),
            (Runs{"2026-01-02 00:00", "2026-01-09 00:00", "2026-01-13 00:00", "2026-01-16 00:00", "2026-01-23 00:00"}));
}

TEST(CronExpression, AStarDayFieldCombinesWithTheOtherByAnd) {
  const auto from = utc(2026, 1, 1);
  EXPECT_EQ(runs("0 0 * * 5", from, 2), (Runs{"2026-01-02 00:00", "2026-01-09 00:00"}));
  EXPECT_EQ(runs("0 0 13 * *", from, 2), (Runs{"2026-01-13 00:00", "2026-02-13 00:00"}));
  // "*/2" starts with '*', so it is not restricted: odd days that are Fridays.
  EXPECT_EQ(runs("0 0 */2 * 5", from, 4),
            (Runs{"2026-01-09 00:00", "2026-01-23 00:00", "2026-02-13 00:00", "2026-02-27 00:00"}));
}

TEST(CronExpression, MacrosExpandToTheirFiveFields) {
  const auto from = utc(2026, 1, 7, 10, 30);
  EXPECT_EQ(runs("@hourly", from, 3), runs("0 * * * *", from, 3));
  EXPECT_EQ(runs("@daily", from, 3), runs("0 0 * * *", from, 3));
  EXPECT_EQ(runs("@midnight", from, 3), runs("0 0 * * *", from, 3));
  EXPECT_EQ(runs("@weekly", from, 3), runs("0 0 * * 0", from, 3));
  EXPECT_EQ(runs("@monthly", from, 3), runs("0 0 1 * *", from, 3));
  EXPECT_EQ(runs("@yearly", from, 2), (Runs{"2027-01-01 00:00", "2028-01-01 00:00"}));
  EXPECT_EQ(runs("@annually", from, 2), runs("@yearly", from, 2));
  EXPECT_EQ(runs(" @Daily ", from, 1), runs("@daily", from, 1));
  EXPECT_EQ(CronExpression::parse("@daily").text(), "@daily");
  EXPECT_EQ(CronExpression::parse("0  9 * * 1-5").text(), "0  9 * * 1-5");
}

TEST(CronNextAfter, EveryFifteenMinutesIsStrictlyAfterAndTruncatesSeconds) {
  EXPECT_EQ(next_utc("*/15 * * * *", utc(2026, 1, 5, 10, 7, 30)), "2026-01-05 10:15");
  EXPECT_EQ(next_utc("*/15 * * * *", utc(2026, 1, 5, 10, 15)), "2026-01-05 10:30")
      << "exactly on a matching minute gives the next one";
  EXPECT_EQ(next_utc("*/15 * * * *", utc(2026, 1, 5, 10, 15) + milliseconds{999}), "2026-01-05 10:30");
  EXPECT_EQ(next_utc("*/15 * * * *", utc(2026, 1, 5, 10, 15, 59) + milliseconds{999}), "2026-01-05 10:30");
  EXPECT_EQ(next_utc("*/15 * * * *", utc(2026, 1, 5, 10, 14, 59) + milliseconds{999}), "2026-01-05 10:15");
  EXPECT_EQ(next_utc("*/15 * * * *", utc(2026, 12, 31, 23, 50)), "2027-01-01 00:00");
  EXPECT_EQ(next_utc("0 0 * * *", utc(1969, 12, 31, 23, 59, 30)), "1970-01-01 00:00") << "before the epoch";
}

TEST(CronNextAfter, WeekdaysAtNineSkipTheWeekend) {
  EXPECT_EQ(next_utc("0 9 * * 1-5", utc(2026, 1, 9, 9)), "2026-01-12 09:00") << "Friday 09:00 -> Monday";
  EXPECT_EQ(next_utc("0 9 * * 1-5", utc(2026, 1, 10, 12)), "2026-01-12 09:00") << "from Saturday";
  EXPECT_EQ(next_utc("0 9 * * 1-5", utc(2026, 1, 9, 8, 59, 59)), "2026-01-09 09:00");
}

TEST(CronNextAfter, MonthlyCrossesMonthsAndYears) {
  EXPECT_EQ(runs("0 0 1 * *", utc(2026, 11, 15), 3), (Runs{"2026-12-01 00:00", "2027-01-01 00:00", "2027-02-01 00:00"}));
  EXPECT_EQ(runs("0 0 31 * *", utc(2026, 1, 31, 0, 0), 3),
            (Runs{"2026-03-31 00:00", "2026-05-31 00:00", "2026-07-31 00:00"}))
      << "months without a 31st are skipped";
}

TEST(CronNextAfter, LeapDayWaitsForTheNextLeapYear) {
  EXPECT_EQ(next_utc("0 0 29 2 *", utc(2026, 3, 1)), "2028-02-29 00:00");
  EXPECT_EQ(next_utc("0 0 29 2 *", utc(2028, 2, 28, 12)), "2028-02-29 00:00");
  EXPECT_EQ(next_utc("0 0 29 2 *", utc(2096, 3, 1)), "2104-02-29 00:00") << "2100 is not a leap year";
}

TEST(CronNextAfter, ADayThatNeverExistsGivesNothing) {
  EXPECT_EQ(CronExpression::parse("0 0 30 2 *").next_after(utc(2026, 1, 1), TimeZone::kUtc), std::nullopt);
  EXPECT_EQ(CronExpression::parse("0 0 31 4,6,9,11 *").next_after(utc(2026, 1, 1), TimeZone::kLocal), std::nullopt);
}

TEST(CronNextAfter, SearchesEightYearsAhead) {
  // February 1st on a Monday ("*/31" is day 1 only, ANDed with Monday): 2027, then 2038.
  EXPECT_EQ(next_utc("0 0 */31 2 mon", utc(2021, 2, 2)), "2027-02-01 00:00") << "six years ahead";
  EXPECT_EQ(next_utc("0 0 */31 2 mon", utc(2030, 6, 1)), "2038-02-01 00:00") << "7.7 years ahead";
  EXPECT_EQ(next_utc("0 0 */31 2 mon", utc(2029, 6, 1)), "never") << "8.7 years ahead";
}

// Local-time tests run in Europe/Berlin (CET/CEST), set here and restored
// afterwards, so they do not depend on the machine's zone.
class CronInBerlin : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists("/usr/share/zoneinfo/Europe/Berlin"))
        << "the tzdata package provides /usr/share/zoneinfo";
    if (const char* tz = std::getenv("TZ")) saved_ = tz;
    use_zone("Europe/Berlin");
  }
  void TearDown() override {
    if (saved_) {
      setenv("TZ", saved_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }
  static void use_zone(const char* zone) {
    setenv("TZ", zone, 1);
    tzset();
  }

 private:
  std::optional<std::string> saved_;
};

TEST_F(CronInBerlin, LocalTimeFollowsTheZonesOffsetInWinterAndSummer) {
  EXPECT_EQ(next_local("0 9 * * *", utc(2026, 1, 15)), "2026-01-15 08:00") << "CET is UTC+1";
  EXPECT_EQ(next_local("0 9 * * *", utc(2026, 7, 15)), "2026-07-15 07:00") << "CEST is UTC+2";
  EXPECT_EQ(next_local("0 0 * * *", utc(2026, 1, 14, 23, 30)), "2026-01-15 23:00") << "day boundaries are local";
}

TEST_F(CronInBerlin, UtcSchedulesIgnoreTheLocalZone) {
  const auto cron = CronExpression::parse("0 9 * * *");
  EXPECT_EQ(show(cron.next_after(utc(2026, 3, 29), TimeZone::kUtc)), "2026-03-29 09:00");
  use_zone("America/New_York");
  EXPECT_EQ(show(cron.next_after(utc(2026, 3, 29), TimeZone::kUtc)), "2026-03-29 09:00");
  EXPECT_EQ(show(cron.next_after(utc(2026, 3, 29), TimeZone::kLocal)), "2026-03-29 13:00") << "EDT is UTC-4";
}

// 2026-03-29: at 02:00 CET (01:00 UTC) the clocks jump to 03:00 CEST.
TEST_F(CronInBerlin, SpringForwardRunsASkippedTimeAtTheEndOfTheGap) {
  EXPECT_EQ(runs("30 2 * * *", utc(2026, 3, 28), 3, TimeZone::kLocal),
            (Runs{"2026-03-28 01:30", "2026-03-29 01:00", "2026-03-30 00:30"}))
      << "02:30 CET, then 03:00 CEST on the night of the gap, then 02:30 CEST";
  EXPECT_EQ(next_local("0 2 * * *", utc(2026, 3, 28, 12)), "2026-03-29 01:00");
  EXPECT_EQ(next_local("0 3 * * *", utc(2026, 3, 28, 12)), "2026-03-29 01:00");
  EXPECT_EQ(next_local("30 1 * * *", utc(2026, 3, 28, 12)), "2026-03-29 00:30") << "before the gap: unchanged";
}

TEST_F(CronInBerlin, SpringForwardFoldsEverySkippedMinuteIntoOneRun) {
  EXPECT_EQ(runs("*/30 * * * *", utc(2026, 3, 28, 23, 50), 5, TimeZone::kLocal),
            (Runs{"2026-03-29 00:00", "2026-03-29 00:30", "2026-03-29 01:00", "2026-03-29 01:30", "2026-03-29 02:00"}))
      << "01:00 and 01:30 CET, then 02:00 and 02:30 (skipped) together at 03:00 CEST, then 03:30 and 04:00 CEST";
}

// 2026-10-25: at 03:00 CEST (01:00 UTC) the clocks fall back to 02:00 CET.
TEST_F(CronInBerlin, FallBackRunsARepeatedTimeOnceAtItsFirstOccurrence) {
  EXPECT_EQ(runs("30 2 * * *", utc(2026, 10, 24, 12), 3, TimeZone::kLocal),
            (Runs{"2026-10-25 00:30", "2026-10-26 01:30", "2026-10-27 01:30"}))
      << "02:30 CEST only, not 02:30 CET; then 02:30 CET on the following days";
}

TEST_F(CronInBerlin, FallBackDoesNotRepeatTheRepeatedHoursMinutes) {
  EXPECT_EQ(runs("*/30 * * * *", utc(2026, 10, 24, 23, 20), 5, TimeZone::kLocal),
            (Runs{"2026-10-24 23:30", "2026-10-25 00:00", "2026-10-25 00:30", "2026-10-25 02:00", "2026-10-25 02:30"}))
      << "01:30, 02:00, 02:30 CEST, then nothing in the repeated hour, then 03:00 and 03:30 CET";
}

TEST_F(CronInBerlin, FromInsideTheRepeatedHourTheNextRunIsAfterIt) {
  EXPECT_EQ(next_local("*/30 * * * *", utc(2026, 10, 25, 1, 0)), "2026-10-25 02:00") << "from 02:00 CET";
  EXPECT_EQ(next_local("*/30 * * * *", utc(2026, 10, 25, 1, 10)), "2026-10-25 02:00") << "from 02:10 CET";
  EXPECT_EQ(next_local("*/30 * * * *", utc(2026, 10, 25, 0, 59)), "2026-10-25 02:00") << "from 02:59 CEST";
  EXPECT_EQ(next_local("*/30 * * * *", utc(2026, 10, 25, 0, 10)), "2026-10-25 00:30") << "from 02:10 CEST";
}

struct ErrorCase {
  std::string text;
  std::string message;
  int column;
};

void expect_errors(const std::vector<ErrorCase>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE("expression '" + c.text + "'");
    try {
      CronExpression::parse(c.text);
      ADD_FAILURE() << "parsed without an error";
    } catch (const CronError& e) {
      EXPECT_EQ(e.message, c.message);
      EXPECT_STREQ(e.what(), c.message.c_str());
      EXPECT_EQ(e.column, c.column);
    }
  }
}

const std::string kFieldCount = "expected 5 fields: minute hour day-of-month month day-of-week";

TEST(CronParseError, NamesAWrongFieldCountAtTheMissingOrExtraField) {
  expect_errors({{"", kFieldCount, 1},
                 {"   ", kFieldCount, 1},
                 {"* * * *", kFieldCount, 8},
                 {"* * * * * *", kFieldCount, 11},
                 {"0 9 * * 1-5 /usr/bin/true", kFieldCount, 13}});
}

TEST(CronParseError, NamesAValueOutOfRangeAndItsField) {
  expect_errors({{"60 * * * *", "minute 60 is out of range 0-59", 1},
                 {"0 24 * * *", "hour 24 is out of range 0-23", 3},
                 {"  0 24 * * *", "hour 24 is out of range 0-23", 5},
                 {"0\t0\t0 * *", "day-of-month 0 is out of range 1-31", 5},
                 {"0 0 * 13 *", "month 13 is out of range 1-12", 7},
                 {"0 0 * * 8", "day-of-week 8 is out of range 0-7", 9},
                 {"1-99999999999 * * * *", "minute 99999999999 is out of range 0-59", 3},
                 {"0 0 1,32 * *", "day-of-month 32 is out of range 1-31", 7}});
}

TEST(CronParseError, RejectsAZeroOrMissingStep) {
  expect_errors({{"*/0 * * * *", "minute step 0 is invalid; expected a number of 1 or more", 3},
                 {"*/ * * * *", "minute step is missing after '/'; expected a number of 1 or more", 3},
                 {"0 1-5/ * * *", "hour step is missing after '/'; expected a number of 1 or more", 7},
                 {"0 */x * * *", "hour step 'x' is not a number; expected a number of 1 or more", 5}});
}

TEST(CronParseError, RejectsAReversedRange) {
  expect_errors({{"0 17-9 * * *", "hour range '17-9' is reversed; expected the smaller value first", 3},
                 {"0 0 * * fri-mon", "day-of-week range 'fri-mon' is reversed; expected the smaller value first", 9},
                 {"0 0 * dec-jan *", "month range 'dec-jan' is reversed; expected the smaller value first", 7}});
}

TEST(CronParseError, RejectsUnknownNamesAndNamesWhereNumbersBelong) {
  expect_errors({{"0 0 * foo *", "month name 'foo' is unknown; expected 1-12 or jan-dec", 7},
                 {"0 0 * * monday", "day-of-week name 'monday' is unknown; expected 0-7 or sun-sat", 9},
                 {"0 0 * * mon-xyz", "day-of-week name 'xyz' is unknown; expected 0-7 or sun-sat", 13},
                 {"x * * * *", "minute 'x' is not a number; expected 0-59", 1},
                 {"0 0 jan * *", "day-of-month 'jan' is not a number; expected 1-31", 5}});
}

TEST(CronParseError, RejectsAnEmptyListItem) {
  const std::string message = " has an empty list item; expected a value, a range or '*'";
  expect_errors({{"1,,2 * * * *", "minute" + message, 3},
                 {"0 ,1 * * *", "hour" + message, 3},
                 {"0 1, * * *", "hour" + message, 5}});
}

TEST(CronParseError, RejectsTrailingGarbage) {
  expect_errors({{"5x * * * *", "minute has unexpected text 'x' after '5'", 2},
                 {"1-5-7 * * * *", "minute has unexpected text '-7' after '1-5'", 4},
                 {"*/5/2 * * * *", "minute has unexpected text '/2' after '*/5'", 4},
                 {"*5 * * * *", "minute has unexpected text '5' after '*'", 2},
                 {"0 0 * * mon,wed-fri!", "day-of-week has unexpected text '!' after 'wed-fri'", 20},
                 {"0 5- * * *", "hour is missing a value after '5-'; expected 0-23", 5},
                 {"0 0 -1 * *", "day-of-month has unexpected text '-1'; expected 1-31, a range or '*'", 5}});
}

TEST(CronParseError, RejectsUnknownMacrosAndTextAfterAMacro) {
  const std::string expected = "; expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly";
  expect_errors({{"@fortnightly", "unknown macro '@fortnightly'" + expected, 1},
                 {"@reboot", "unknown macro '@reboot'" + expected, 1},
                 {"  @daily now", "unexpected 'now' after @daily; a macro stands alone", 10}});
}

TEST(NextEvery, AddsTheIntervalAndAShareOfTheJitter) {
  const auto previous = utc(2026, 1, 1, 12);
  const milliseconds interval{60'000};
  const milliseconds jitter{10'000};
  EXPECT_EQ(next_every(previous, interval, jitter, 0.0), previous + interval);
  EXPECT_EQ(next_every(previous, interval, jitter, 1.0), previous + interval + jitter);
  EXPECT_EQ(next_every(previous, interval, jitter, 0.25), previous + interval + milliseconds{2'500});
  EXPECT_EQ(next_every(previous, interval, milliseconds{0}, 0.7), previous + interval);
}

TEST(NextEvery, ClampsTheShareToZeroToOne) {
  const auto previous = utc(2026, 1, 1, 12);
  const milliseconds interval{60'000};
  const milliseconds jitter{10'000};
  EXPECT_EQ(next_every(previous, interval, jitter, -0.5), previous + interval);
  EXPECT_EQ(next_every(previous, interval, jitter, 3.0), previous + interval + jitter);
  EXPECT_EQ(next_every(previous, interval, jitter, std::numeric_limits<double>::quiet_NaN()), previous + interval);
  EXPECT_EQ(next_every(previous, interval, jitter, std::numeric_limits<double>::infinity()),
            previous + interval + jitter);
}

}  // namespace
}  // namespace dirsync::core
