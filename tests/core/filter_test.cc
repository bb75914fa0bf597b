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

TEST(FilterCondition, EqualsLooksAtEveryValueOfAMultiValuedAttribute) {
  const auto c = Condition::equals("memberOf", "cn=staff");
  EXPECT_TRUE(c.matches(person({{"memberOf", {"cn=admins", "cn=staff"}}})));
  EXPECT_FALSE(c.matches(person({{"memberOf", {"cn=admins"}}})));
  EXPECT_FALSE(c.matches(person({})));
}

TEST(FilterCondition, NotEqualsHoldsWhenNoValueIsEqualOrTheAttributeIsAbsent) {
  const auto c = Condition::not_equals("status", "disabled");
  EXPECT_TRUE(c.matches(person({{"status", {"active"}}})));
  EXPECT_TRUE(c.matches(person({})));
  EXPECT_FALSE(c.matches(person({{"status", {"active", "disabled"}}})));
}

TEST(FilterCondition, RegexSearchesAndHonoursAnchors) {
  const auto c = Condition::regex("title", "^Contract");
  EXPECT_TRUE(c.matches(person({{"title", {"Contractor"}}})));
  EXPECT_FALSE(c.matches(person({{"title", {"Senior Contractor"}}})));
  EXPECT_TRUE(Condition::regex("mail", "@example\\.com$").matches(person({{"mail", {"a@example.com"}}})));
  EXPECT_THROW(Condition::regex("x", "("), std::regex_error);
}

TEST(FilterCondition, InMatchesAnyListedValue) {
  const auto c = Condition::in("dept", {"Sales", "Support"});
  EXPECT_TRUE(c.matches(person({{"dept", {"Support"}}})));
  EXPECT_FALSE(c.matches(person({{"dept", {"sales"}}}))) << "values compare exactly";
}

TEST(FilterCondition, PresentNeedsANonEmptyValue) {
  EXPECT_TRUE(Condition::present("mail", true).matches(person({{"mail", {"a@x"}}})));
  EXPECT_FALSE(Condition::present("mail", true).matches(person({{"mail", {""}}})));
  EXPECT_FALSE(Condition::present("mail", true).matches(person({})));
  EXPECT_TRUE(Condition::present("mail", false).matches(person({{"mail", {}}})));
}

TEST(FilterCondition, CombinesWithAllAnyAndNot) {
  const auto c = Condition::all({Condition::equals("dept", "Sales"),
                                 Condition::negate(Condition::any({Condition::regex("title", "^Intern"),
                                                                   Condition::present("terminated", true)}))});
  EXPECT_TRUE(c.matches(person({{"dept", {"Sales"}}, {"title", {"Manager"}}})));
  EXPECT_FALSE(c.matches(person({{"dept", {"Sales"}}, {"title", {"Intern"}}})));
  EXPECT_FALSE(c.matches(person({{"dept", {"Sales"}}, {"terminated", {"2026-01-01"}}})));
  EXPECT_FALSE(c.matches(person({{"dept", {"HR"}}})));
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

}  // namespace
}  // namespace dirsync::core
