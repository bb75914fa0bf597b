// The grammar of the scalar readers and the "did you mean" helper.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/yaml_section.h"

namespace dirsync::config::detail {
namespace {

using namespace std::chrono_literals;

TEST(ParseDuration, AcceptsUnitsAndPlainSeconds) {
  EXPECT_EQ(parse_duration("10s"), 10s);
  EXPECT_EQ(parse_duration("500ms"), 500ms);
  EXPECT_EQ(parse_duration("2m"), 2min);
  EXPECT_EQ(parse_duration("1h"), 1h);
  EXPECT_EQ(parse_duration("30"), 30s);
}

TEST(ParseDuration, RejectsZeroNegativeUnknownUnitsAndOverflow) {
  for (const char* bad : {"", "0", "0s", "-1s", "10 s", "10sec", "1.5s", "s", "99999999999999999999h", "9223372036854775807s"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

TEST(ParseInt, AcceptsDecimalIntegersOnly) {
  EXPECT_EQ(parse_int("42"), 42);
  EXPECT_EQ(parse_int("-3"), -3);
  EXPECT_EQ(parse_int("+7"), 7);
  for (const char* bad : {"", "+", "1.0", "0x10", "12a", " 1"}) EXPECT_FALSE(parse_int(bad).has_value()) << bad;
}

TEST(ParseBool, FollowsTheYaml12CoreSchema) {
  EXPECT_EQ(parse_bool("true"), true);
  EXPECT_EQ(parse_bool("FALSE"), false);
  // "no" is Norway, not false.
  for (const char* s : {"yes", "no", "on", "off", "y", "1"}) EXPECT_FALSE(parse_bool(s).has_value()) << s;
}

TEST(Suggestion, OffersTheClosestKeyWithinTwoEdits) {
  EXPECT_EQ(edit_distance("pth", "path"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(suggestion("tokn", {"base_url", "token"}), "did you mean 'token'?");
  EXPECT_EQ(suggestion("xyz", {"base_url", "token"}), "expected one of: base_url, token");
  EXPECT_EQ(suggestion("xyz", {}, "none here"), "none here");
}

}  // namespace
}  // namespace dirsync::config::detail
