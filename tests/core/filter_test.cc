#include "core/filter.h"

#include <gtest/gtest.h>

namespace dirsync::core {
namespace {

Record person(std::vector<std::pair<std::string, std::vector<std::string>>> attrs) {
  Record r;
  r.key = "k";
  for (auto& [name, values] : attrs) r.set(name, values);
  return r;
}

// The condition's answer for a record it must be able to decide.
bool holds(const Condition& c, const Record& r) {
  auto v = c.evaluate(r);
  EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.error().message);
  return v.ok() && v.value();
}

TEST(FilterCondition, EqualsLooksAtEveryValueOfAMultiValuedAttribute) {
  const auto c = Condition::equals("memberOf", "cn=staff");
  EXPECT_TRUE(holds(c, person({{"memberOf", {"cn=admins", "cn=staff"}}})));
  EXPECT_FALSE(holds(c, person({{"memberOf", {"cn=admins"}}})));
  EXPECT_FALSE(holds(c, person({})));
}

TEST(FilterCondition, NotEqualsHoldsWhenNoValueIsEqualOrTheAttributeIsAbsent) {
  const auto c = Condition::not_equals("status", "disabled");
  EXPECT_TRUE(holds(c, person({{"status", {"active"}}})));
  EXPECT_TRUE(holds(c, person({})));
  EXPECT_FALSE(holds(c, person({{"status", {"active", "disabled"}}})));
}

TEST(FilterCondition, RegexSearchesAndHonoursAnchors) {
  const auto c = Condition::regex("title", "^Contract");
  EXPECT_TRUE(holds(c, person({{"title", {"Contractor"}}})));
  EXPECT_FALSE(holds(c, person({{"title", {"Senior Contractor"}}})));
  EXPECT_TRUE(holds(Condition::regex("mail", "@example\\.com$"), person({{"mail", {"a@example.com"}}})));
  EXPECT_THROW(Condition::regex("x", "("), RegexError);
}

// ECMAScript's reading of ^ $ and '.', over the bytes of the value (UTF-8 is not decoded).
TEST(FilterCondition, RegexAnchorsAtTheWholeValueAndReadsBytes) {
  EXPECT_FALSE(holds(Condition::regex("title", "^Contract"), person({{"title", {"Senior\nContractor"}}})));
  EXPECT_FALSE(holds(Condition::regex("title", "tor$"), person({{"title", {"Contractor\nLead"}}})));
  EXPECT_FALSE(holds(Condition::regex("title", "tor$"), person({{"title", {"Contractor\n"}}})));
  EXPECT_FALSE(holds(Condition::regex("title", "a.b"), person({{"title", {"a\nb"}}})));
  EXPECT_TRUE(holds(Condition::regex("name", "^..$"), person({{"name", {"\xC3\xA9"}}}))) << "é is two bytes";
  EXPECT_FALSE(holds(Condition::regex("name", "\\w"), person({{"name", {"\xC3\xA9"}}}))) << "\\w is ASCII";
}

// std::regex recursed per character: this overflowed the stack (found by the fuzzers).
TEST(FilterCondition, RegexDecidesOnA100KilobyteValue) {
  const std::string local(100'000, 'a');
  const auto r = person({{"mail", {local + "@example.com"}}});
  EXPECT_TRUE(holds(Condition::regex("mail", "@example\\.com$"), r));
  EXPECT_TRUE(holds(Condition::regex("mail", "^(\\w+\\.)*\\w+@example\\.com$"), r));
  EXPECT_FALSE(holds(Condition::regex("mail", "^b"), r));
  EXPECT_FALSE(holds(Condition::regex("mail", "a{1000}b"), r));
}

// Nested repeats backtrack exponentially: std::regex never finished; Boost gives up.
TEST(FilterCondition, ARegexThatGivesUpIsAnErrorNamingTheConditionNotAnAnswer) {
  const auto r = person({{"title", {"Engineer", std::string(40, 'a') + "b"}}});
  const auto result = Condition::regex("title", "(a+)+$").evaluate(r);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(result.error().message,
            "filter condition on 'title' cannot be decided: regex /(a+)+$/ gave up on a value of 41 bytes: too much "
            "backtracking; a pattern without nested or overlapping repeats (such as (a+)+ or (a|ab)*) avoids this");
  // A part evaluated after the one that decides is never reached, as with && and ||.
  const auto nested = Condition::any({Condition::equals("dept", "Sales"), Condition::regex("title", "(a+)+$")});
  EXPECT_TRUE(holds(nested, person({{"dept", {"Sales"}}, {"title", {std::string(40, 'a') + "b"}}})));
  EXPECT_FALSE(Condition::negate(nested).evaluate(person({{"title", {std::string(40, 'a') + "b"}}})).ok());
}

// Counts above 1000 are refused: Boost matches x{99999999} in N² steps on a long value.
TEST(FilterCondition, RegexRefusesHugeRepeatCountsAndBadPatterns) {
  auto problem = [](const std::string& pattern) {
    try {
      (void)Condition::regex("x", pattern);
    } catch (const RegexError& e) {
      return e.problem;
    }
    return std::string("compiled");
  };
  const std::pair<std::string, std::string> cases[] = {
      {"a{99999999}", "a repeat count above 1000"},
      {"a{1,99999999999999999999}", "a repeat count above 1000"},
      {"(ab){2,1001}", "a repeat count above 1000"},
      {"(a)\\44444444444444444444", "a back reference to a group that does not exist"},
      {"a{2,1}", "a bad {m,n} count"},
      {"(a", "unbalanced ( )"},
      {"[a", "unbalanced [ ]"},
      {"+a", "a repeat (* + ? {n}) with nothing to repeat"},
      // A count of 1000, escaped braces, braces in a class or quoted are fine.
      {"a{1000}", "compiled"},
      {"\\{99999}", "compiled"},
      {"[{]99999}", "compiled"},
      {"[[:digit:]{]99999}", "compiled"},
      {"\\Q{99999}\\E", "compiled"},
  };
  for (const auto& [pattern, expected] : cases) EXPECT_EQ(problem(pattern), expected) << pattern;
  // A '{' that starts no count is text.
  EXPECT_TRUE(holds(Condition::regex("x", "^a{x}$"), person({{"x", {"a{x}"}}})));
}

TEST(FilterCondition, InMatchesAnyListedValue) {
  const auto c = Condition::in("dept", {"Sales", "Support"});
  EXPECT_TRUE(holds(c, person({{"dept", {"Support"}}})));
  EXPECT_FALSE(holds(c, person({{"dept", {"sales"}}}))) << "values compare exactly";
}

TEST(FilterCondition, PresentNeedsANonEmptyValue) {
  EXPECT_TRUE(holds(Condition::present("mail", true), person({{"mail", {"a@x"}}})));
  EXPECT_FALSE(holds(Condition::present("mail", true), person({{"mail", {""}}})));
  EXPECT_FALSE(holds(Condition::present("mail", true), person({})));
  EXPECT_TRUE(holds(Condition::present("mail", false), person({{"mail", {}}})));
}

TEST(FilterCondition, CombinesWithAllAnyAndNot) {
  const auto c = Condition::all({Condition::equals("dept", "Sales"),
                                 Condition::negate(Condition::any({Condition::regex("title", "^Intern"),
                                                                   Condition::present("terminated", true)}))});
  EXPECT_TRUE(holds(c, person({{"dept", {"Sales"}}, {"title", {"Manager"}}})));
  EXPECT_FALSE(holds(c, person({{"dept", {"Sales"}}, {"title", {"Intern"}}})));
  EXPECT_FALSE(holds(c, person({{"dept", {"Sales"}}, {"terminated", {"2026-01-01"}}})));
  EXPECT_FALSE(holds(c, person({{"dept", {"HR"}}})));
}

TEST(FilterCondition, ExplainsWhichPartDecided) {
  const auto c = Condition::all({Condition::equals("dept", "Sales"), Condition::present("mail", true)});
  EXPECT_EQ(c.explain(person({{"dept", {"Sales"}}})), "not mail is present");
  EXPECT_EQ(c.describe(), "all(dept equals 'Sales', mail is present)");
  const auto any = Condition::any({Condition::equals("dept", "HR"), Condition::in("dept", {"Sales", "IT"})});
  EXPECT_EQ(any.explain(person({{"dept", {"IT"}}})), "dept in ['Sales', 'IT']");
}

TEST(Filter, KeepsEverythingWhenEmpty) {
  const Filter f;
  EXPECT_TRUE(f.empty());
  EXPECT_TRUE(f.keeps(person({})));
  EXPECT_EQ(f.decide(person({})).reason, "no filter");
}

TEST(Filter, KeepsWhatIsIncludedAndNotExcluded) {
  const Filter f(Condition::equals("objectClass", "person"), Condition::regex("title", "^Contractor"));
  EXPECT_TRUE(f.keeps(person({{"objectClass", {"top", "person"}}, {"title", {"Engineer"}}})));
  const auto excluded = f.decide(person({{"objectClass", {"person"}}, {"title", {"Contractor"}}}));
  EXPECT_FALSE(excluded.keep);
  EXPECT_EQ(excluded.reason, "excluded: title matches /^Contractor/");
  const auto not_included = f.decide(person({{"objectClass", {"device"}}}));
  EXPECT_FALSE(not_included.keep);
  EXPECT_EQ(not_included.reason, "not included: not objectClass equals 'person'");
}

// Neither kept (it may be someone the filter leaves out) nor dropped (that
// would detach the user): the caller reports the record.
TEST(Filter, ARecordARegexGivesUpOnIsUndecided) {
  const auto title = person({{"objectClass", {"person"}}, {"title", {std::string(40, 'a') + "b"}}});
  const std::string why =
      "undecided: filter condition on 'title' cannot be decided: regex /(a+)+$/ gave up on a value of 41 bytes: "
      "too much backtracking; a pattern without nested or overlapping repeats (such as (a+)+ or (a|ab)*) avoids this";
  for (const Filter& f : {Filter(Condition::regex("title", "(a+)+$"), std::nullopt),
                          Filter(Condition::equals("objectClass", "person"), Condition::regex("title", "(a+)+$"))}) {
    const auto d = f.decide(title);
    EXPECT_FALSE(d.decided);
    EXPECT_TRUE(d.keep) << "a caller that reads keep alone must not detach the user";
    EXPECT_EQ(d.reason, why);
    EXPECT_TRUE(f.keeps(title));
  }
  // Not included by the part before it: the regex is never needed.
  const Filter f(Condition::equals("objectClass", "person"), Condition::regex("title", "(a+)+$"));
  const auto device = f.decide(person({{"objectClass", {"device"}}, {"title", {std::string(40, 'a') + "b"}}}));
  EXPECT_TRUE(device.decided);
  EXPECT_FALSE(device.keep);
  // Decided records say so.
  EXPECT_TRUE(f.decide(person({{"objectClass", {"person"}}, {"title", {"Engineer"}}})).decided);
  EXPECT_TRUE(Filter().decide(title).decided);
}

}  // namespace
}  // namespace dirsync::core
