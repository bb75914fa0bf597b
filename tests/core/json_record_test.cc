#include "core/json_record.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dirsync::core {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

const Attribute* find(const std::vector<Attribute>& attrs, const std::string& name) {
  for (const auto& a : attrs) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

TEST(FlattenJson, NamesNestedMembersByTheirDottedPath) {
  const auto attrs = flatten_json(json::parse(R"({"userName":"zoe","name":{"givenName":"Zoë","familyName":"Å"}})"));
  ASSERT_EQ(attrs.size(), 3u);
  ASSERT_NE(find(attrs, "userName"), nullptr);
  ASSERT_NE(find(attrs, "name.givenName"), nullptr);
  EXPECT_THAT(find(attrs, "name.givenName")->values, ElementsAre("Zoë"));
  EXPECT_THAT(find(attrs, "name.familyName")->values, ElementsAre("Å"));
}

TEST(FlattenJson, SpreadsArraysOfObjectsIntoMultiValuedAttributes) {
  const auto attrs = flatten_json(json::parse(
      R"({"emails":[{"value":"a@x","primary":false},{"value":"b@x","primary":true}],"groups":["g1","g2"]})"));
  ASSERT_NE(find(attrs, "emails.value"), nullptr);
  EXPECT_THAT(find(attrs, "emails.value")->values, ElementsAre("a@x", "b@x"));
  EXPECT_THAT(find(attrs, "emails.primary")->values, ElementsAre("false", "true"));
  EXPECT_THAT(find(attrs, "groups")->values, ElementsAre("g1", "g2"));
}

TEST(FlattenJson, RendersScalarsAsText) {
  const auto attrs = flatten_json(json::parse(R"({"age":42,"score":1.5,"active":true,"manager":null,"tags":[]})"));
  EXPECT_THAT(find(attrs, "age")->values, ElementsAre("42"));
  EXPECT_THAT(find(attrs, "score")->values, ElementsAre("1.5"));
  EXPECT_THAT(find(attrs, "active")->values, ElementsAre("true"));
  ASSERT_NE(find(attrs, "manager"), nullptr) << "null is present without a value";
  EXPECT_THAT(find(attrs, "manager")->values, IsEmpty());
  ASSERT_NE(find(attrs, "tags"), nullptr);
  EXPECT_THAT(find(attrs, "tags")->values, IsEmpty());
}

TEST(FlattenJson, PutsAPrefixBeforeEveryName) {
  const auto attrs = flatten_json(json::parse(R"({"employeeNumber":"7","manager":{"value":"m1"}})"), "enterprise");
  EXPECT_THAT(find(attrs, "enterprise.employeeNumber")->values, ElementsAre("7"));
  EXPECT_THAT(find(attrs, "enterprise.manager.value")->values, ElementsAre("m1"));
}

TEST(JsonValues, GivesScalarsAndArrayItemsButNotObjects) {
  EXPECT_THAT(json_values(json("x")), ElementsAre("x"));
  EXPECT_THAT(json_values(json::parse(R"([1,[true,"y"],{"a":1},null])")), ElementsAre("1", "true", "y"));
  EXPECT_THAT(json_values(json(nullptr)), IsEmpty());
  EXPECT_THAT(json_values(json::object()), IsEmpty());
}

}  // namespace
}  // namespace dirsync::core
