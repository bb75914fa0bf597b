#include <gtest/gtest.h>

#include "core/mapping.h"

namespace dirsync::core {
namespace {

using nlohmann::json;

Record user() {
  Record r;
  r.key = "1001";
  r.set("first_name", {"Ada"});
  r.set("last_name", {"Lovelace"});
  r.set("email", {"  Ada.Lovelace@Example.COM "});
  r.set("phone", {""});
  r.set("age", {" 36 "});
  r.set("active", {"yes"});
  r.set("groups", {"admins", "staff"});
  return r;
}

json render(const std::string& text, const Record& r = user()) {
  auto v = Template::parse(text).render(r);
  EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.error().message);
  return v.ok() ? v.value() : json();
}

std::string render_error(const std::string& text, const Record& r = user()) {
  auto v = Template::parse(text).render(r);
  EXPECT_FALSE(v.ok());
  return v.ok() ? "" : v.error().message;
}

std::string parse_error(const std::string& text, int* column = nullptr) {
  try {
    Template::parse(text);
  } catch (const TemplateError& e) {
    if (column) *column = e.column;
    return e.message;
  }
  ADD_FAILURE() << "no error for " << text;
  return "";
}

TEST(Template, SubstitutesAttributesIntoText) { EXPECT_EQ(render("{first_name} {last_name}"), "Ada Lovelace"); }

TEST(Template, AppliesPipesLeftToRight) {
  EXPECT_EQ(render("{email | trim | lower}"), "ada.lovelace@example.com");
  EXPECT_EQ(render("{email | lower | trim}"), "ada.lovelace@example.com");
  EXPECT_EQ(render("{last_name|upper}"), "LOVELACE");
}

TEST(Template, DefaultReplacesMissingOrEmptyValues) {
  EXPECT_EQ(render("{phone | default:'n/a'}"), "n/a");
  EXPECT_EQ(render("{nickname | default:\"none\"}"), "none");
  EXPECT_EQ(render("{first_name | default:'x'}"), "Ada");
}

TEST(Template, SingleExpressionKeepsItsType) {
  EXPECT_EQ(render("{age | int}"), json(36));
  EXPECT_EQ(render("{active | bool}"), json(true));
  EXPECT_EQ(render("age {age | int}"), json("age 36"));
}

TEST(Template, MultiValuedAttributesNeedFirstOrJoin) {
  EXPECT_EQ(render("{groups | first}"), "admins");
  EXPECT_EQ(render("{groups | join:';'}"), "admins;staff");
  EXPECT_EQ(render("{groups | join}"), "admins, staff");
  EXPECT_EQ(render_error("{groups}"), "attribute 'groups' has 2 values; pick one with '| first' or '| join'");
}

TEST(Template, LiteralBracesAreDoubled) { EXPECT_EQ(render("{{{first_name}}}"), "{Ada}"); }

TEST(Template, MissingAttributeIsAPerRecordError) {
  EXPECT_EQ(render_error("{mail}"), "attribute 'mail' is missing");
  EXPECT_EQ(render_error("{age | upper} {title}"), "attribute 'title' is missing");
}

TEST(Template, BadIntegerIsAPerRecordError) {
  EXPECT_EQ(render_error("{first_name | int}"), "attribute 'first_name': 'Ada' is not an integer");
}

TEST(Template, ReportsSyntaxErrorsWithColumn) {
  int col = 0;
  EXPECT_EQ(parse_error("{first_name | lowr}", &col),
            "unknown function 'lowr'; known functions: lower, upper, trim, default, int, bool, first, join");
  EXPECT_EQ(col, 15);
  EXPECT_EQ(parse_error("Hi {first_name", &col), "'{' is never closed; expected '}'");
  EXPECT_EQ(col, 4);
  EXPECT_EQ(parse_error("a } b", &col), "unmatched '}'; write '}}' for a literal brace");
  EXPECT_EQ(col, 3);
  EXPECT_EQ(parse_error("{ | lower}", &col), "expected an attribute name");
  EXPECT_EQ(parse_error("{x | default}", &col), "function 'default' takes 1 argument, got 0");
  EXPECT_EQ(parse_error("{x | lower:'a'}", &col), "function 'lower' takes 0 arguments, got 1");
  EXPECT_EQ(parse_error("{x | default:'a}", &col), "unterminated quoted argument");
  EXPECT_EQ(parse_error("{x |}", &col), "expected a function name after '|'");
}

TEST(Template, ListsTheAttributesItReads) {
  EXPECT_EQ(Template::parse("{a} {b|lower} {a}").attributes(), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(Template::constant(json(5)).attributes().empty());
}

TEST(Template, ConstantsRenderAsThemselves) {
  EXPECT_EQ(Template::constant(json(7)).render(user()).value(), json(7));
  EXPECT_EQ(Template::constant(json(true)).render(user()).value(), json(true));
}

TEST(Coerce, ConvertsToTheTargetFieldType) {
  EXPECT_EQ(coerce(json("42"), FieldType::kInt).value(), json(42));
  EXPECT_EQ(coerce(json(""), FieldType::kInt).value(), json());
  EXPECT_EQ(coerce(json("No"), FieldType::kBool).value(), json(false));
  EXPECT_EQ(coerce(json(5), FieldType::kString).value(), json("5"));
  EXPECT_EQ(coerce(json("4x"), FieldType::kInt).error().message, "'4x' is not an integer");
  EXPECT_EQ(coerce(json("maybe"), FieldType::kBool).error().message,
            "'maybe' is not a boolean (true/false, yes/no, 1/0)");
}

TEST(Mapping, BuildsThePayloadAndNamesTheFailingField) {
  Mapping m({{"name", Template::parse("{first_name} {last_name}"), FieldType::kString},
             {"email", Template::parse("{email | trim | lower}"), FieldType::kString},
             {"rank_id", Template::parse("{age}"), FieldType::kInt},
             {"approved", Template::constant(json(true)), FieldType::kBool}});
  auto payload = m.apply(user());
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(payload.value(),
            json({{"name", "Ada Lovelace"}, {"email", "ada.lovelace@example.com"}, {"rank_id", 36}, {"approved", true}}));

  Mapping bad({{"email", Template::parse("{mail}"), FieldType::kString}});
  EXPECT_EQ(bad.apply(user()).error().message, "field 'email': attribute 'mail' is missing");
  Mapping bad_type({{"rank_id", Template::parse("{first_name}"), FieldType::kInt}});
  EXPECT_EQ(bad_type.apply(user()).error().message, "field 'rank_id': 'Ada' is not an integer");
}

}  // namespace
}  // namespace dirsync::core
