#include <gtest/gtest.h>

#include "core/validate.h"

namespace dirsync::core {
namespace {

using nlohmann::json;
using namespace std::string_literals;

const std::vector<FieldSpec>& specs() {
  static const std::vector<FieldSpec> s = {
      {"name", FieldType::kString, true, false, FieldFormat::kText, 5},
      {"email", FieldType::kString, true, true, FieldFormat::kEmail, 0},
      {"emails", FieldType::kAny, false, false, FieldFormat::kEmail, 0},
      {"age", FieldType::kInt, false, false, FieldFormat::kText, 0},
  };
  return s;
}

// Every message must be safe wherever it goes: one line, valid UTF-8 (a
// strict nlohmann dump would throw on anything else).
void expect_safe(const std::vector<std::string>& messages) {
  for (const auto& m : messages) {
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_NO_THROW((void)json(m).dump()) << m;
  }
}

std::vector<std::string> problems(const json& payload) {
  auto out = validate_payload(payload, specs());
  expect_safe(out);
  return out;
}

// The problems of one string in a field without a spec.
std::vector<std::string> text_problems(const std::string& value) { return problems({{"note", value}}); }

std::vector<std::string> email_problems(const std::string& value) { return problems({{"email", value}}); }

TEST(Printable, LeavesValidTextUnchanged) {
  for (const std::string& text : {"1001"s, "Émile du Châtelet"s, "日本語 🙂"s, "CORP\\jdoe"s, " spaced "s, ""s}) {
    EXPECT_EQ(printable(text), text);
  }
}

TEST(Printable, EscapesEachByteOfInvalidUtf8AndControlCharacters) {
  EXPECT_EQ(printable("Ren\xE9"), "Ren\\xE9");
  EXPECT_EQ(printable("a\tb\nc\x01\x7F"), "a\\x09b\\x0Ac\\x01\\x7F");
  EXPECT_EQ(printable("nul\0x"s), "nul\\x00x");
  EXPECT_EQ(printable("c1 \xC2\x85!"), "c1 \\xC2\\x85!");        // U+0085, a C1 control: its two bytes
  EXPECT_EQ(printable("overlong \xC0\xAF"), "overlong \\xC0\\xAF");  // never decoded as '/'
  EXPECT_EQ(printable("\x1B[31mred"), "\\x1B[31mred");             // no terminal escape gets through
}

TEST(Printable, CutsLongTextWithoutSplittingACharacterOrAnEscape) {
  EXPECT_EQ(printable(std::string(100, 'a')), std::string(80, 'a') + "...");
  EXPECT_EQ(printable(std::string(80, 'a')), std::string(80, 'a'));
  EXPECT_EQ(printable("ab\x01", 4), "ab...");  // the 4-byte escape does not fit after "ab"
  EXPECT_EQ(printable("aé", 2), "a...");       // nor does half of the 2-byte é
  EXPECT_EQ(printable("aé", 3), "aé");
}

TEST(Printable, ZeroMeansNoLimit) {
  const std::string long_text(1000, 'x');
  EXPECT_EQ(printable(long_text, 0), long_text);
}

TEST(ValidateKey, AcceptsOrdinaryKeys) {
  for (const std::string& key : {"1001"s, "E-7"s, "cn=Émile Ďurček,ou=people,dc=example,dc=com"s, "CORP\\jdoe"s,
                                " padded "s, "🙂"s}) {
    EXPECT_EQ(validate_key(key), std::nullopt) << key;
  }
}

TEST(ValidateKey, RejectsAnEmptyKey) { EXPECT_EQ(validate_key(""), "the key is empty"); }

TEST(ValidateKey, RejectsInvalidUtf8QuotingThePrintableKey) {
  EXPECT_EQ(validate_key("E\xFF" "1"), "the key \"E\\xFF1\" is not valid UTF-8 (byte 0xFF at offset 1)");
  EXPECT_EQ(validate_key("\xED\xA0\x80"), "the key \"\\xED\\xA0\\x80\" is not valid UTF-8 (byte 0xED at offset 0)");
}

TEST(ValidateKey, RejectsControlCharacters) {
  EXPECT_EQ(validate_key("E\t1"), "the key \"E\\x091\" contains a control character (U+0009 at offset 1)");
  EXPECT_EQ(validate_key("E1\n"), "the key \"E1\\x0A\" contains a control character (U+000A at offset 2)");
  EXPECT_EQ(validate_key("E\0"s), "the key \"E\\x00\" contains a control character (U+0000 at offset 1)");
  EXPECT_EQ(validate_key("E\x7F"), "the key \"E\\x7F\" contains a control character (U+007F at offset 1)");
  EXPECT_EQ(validate_key("é\xC2\x9F"), "the key \"é\\xC2\\x9F\" contains a control character (U+009F at offset 2)");
}

TEST(ValidatePayload, AcceptsWellFormedUtf8AtEveryLengthBoundary) {
  // The smallest and largest code point of each sequence length, and both
  // sides of the surrogate gap.
  for (const std::string& s : {"~"s, "\xC2\xA0"s, "\xDF\xBF"s, "\xE0\xA0\x80"s, "\xED\x9F\xBF"s, "\xEE\x80\x80"s,
                              "\xEF\xBF\xBF"s, "\xF0\x90\x80\x80"s, "\xF4\x8F\xBF\xBF"s}) {
    EXPECT_TRUE(text_problems(s).empty()) << printable(s);
  }
}

TEST(ValidatePayload, RejectsOverlongsSurrogatesTooLargeCodePointsAndBrokenSequences) {
  const std::vector<std::string> bad = {
      "\xC0\x80"s, "\xC1\xBF"s,                  // overlong 2-byte
      "\xE0\x80\x80"s, "\xE0\x9F\xBF"s,          // overlong 3-byte
      "\xF0\x80\x80\x80"s, "\xF0\x8F\xBF\xBF"s,  // overlong 4-byte
      "\xED\xA0\x80"s, "\xED\xBF\xBF"s,          // UTF-16 surrogates
      "\xF4\x90\x80\x80"s, "\xF5\x80\x80\x80"s,  // above U+10FFFF
      "\xFF"s, "\xFE"s,                          // never in UTF-8
      "\x80"s,                                   // a lone continuation byte
      "\xE2\x82"s,                               // truncated at the end
      "\xE2\x28\xA1"s,                           // a lead byte not followed by continuations
  };
  for (const auto& s : bad) {
    const auto p = text_problems("ok " + s);
    ASSERT_EQ(p.size(), 1u) << printable(s);
    EXPECT_NE(p[0].find("is not valid UTF-8 (byte 0x"), std::string::npos) << p[0];
    EXPECT_NE(p[0].find("at offset 3)"), std::string::npos) << p[0];
  }
  EXPECT_EQ(text_problems("Ren\xE9"), std::vector<std::string>{
                                          "field 'note': \"Ren\\xE9\" is not valid UTF-8 (byte 0xE9 at offset 3)"});
}

TEST(ValidatePayload, RejectsEveryC0AndC1ControlCharacterAndDel) {
  auto check = [](const std::string& s, unsigned cp) {
    const auto p = text_problems("a" + s + "b");
    ASSERT_EQ(p.size(), 1u) << cp;
    char expected[64];
    std::snprintf(expected, sizeof expected, "contains a control character (U+%04X at offset 1)", cp);
    EXPECT_NE(p[0].find(expected), std::string::npos) << p[0];
  };
  for (unsigned c = 0; c < 0x20; ++c) check(std::string(1, static_cast<char>(c)), c);
  check("\x7F", 0x7F);
  for (unsigned c = 0x80; c <= 0x9F; ++c) check(std::string{'\xC2', static_cast<char>(c)}, c);
}

TEST(ValidatePayload, AcceptsSpacesAndTheCharactersAroundTheControlRanges) {
  EXPECT_TRUE(text_problems(" !~ \xC2\xA0 Ä").empty());
}

TEST(ValidatePayload, CountsMaxLengthInCodePointsNotBytes) {
  EXPECT_TRUE(problems({{"name", "ééééé"}}).empty());  // 10 bytes, 5 code points
  EXPECT_TRUE(problems({{"name", "🙂🙂🙂🙂🙂"}}).empty());
  EXPECT_EQ(problems({{"name", "éééééé"}}),
            std::vector<std::string>{"field 'name': \"éééééé\" is 6 characters long; the target takes at most 5"});
}

TEST(ValidatePayload, ZeroMaxLengthMeansNoLimit) {
  const std::string long_address = std::string(60, 'a') + "@" + std::string(60, 'b') + ".example";
  EXPECT_TRUE(problems({{"email", long_address}}).empty());
}

TEST(ValidatePayload, QuotesALongValueCutToOneShortLine) {
  const auto p = problems({{"name", std::string(300, 'x')}});
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], "field 'name': \"" + std::string(80, 'x') +
                      "...\" is 300 characters long; the target takes at most 5");
}

TEST(ValidatePayload, AcceptsPragmaticEmailAddresses) {
  const std::string local64(64, 'l');
  const std::string long_domain =
      std::string(63, 'd') + "." + std::string(63, 'e') + "." + std::string(63, 'f') + "." + std::string(60, 'g');
  for (const std::string& e : {
           "ada@example.com"s,
           "Ada.Lovelace+tag@sub.example.co.uk"s,
           "o'brien@example.ie"s,
           "x_y-z!#$%&*/=?^`{|}~@a-b.example"s,
           "a@b.c"s,
           "user@xn--bcher-kva.example"s,  // an IDN in its ASCII form
           "jürgen@bücher.de"s,            // and as typed (RFC 6531 local part too)
           "用户@例子.广告"s,
           local64 + "@example.com"s,
           "a@" + long_domain,  // 254 octets in all
       }) {
    EXPECT_TRUE(email_problems(e).empty()) << e << ": " << (email_problems(e).empty() ? "" : email_problems(e)[0]);
  }
  ASSERT_EQ(("a@" + long_domain).size(), 254u);
}

TEST(ValidatePayload, RejectsWhatIsNotAnEmailAddressSayingWhy) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "empty"},
      {"bob@@x.org", "more than one '@'"},
      {"bob@x@y.org", "more than one '@'"},
      {"bob.example.com", "no '@'"},
      {"@example.com", "nothing before the '@'"},
      {"bob@", "nothing after the '@'"},
      {"bob@localhost", "the domain has no dot"},
      {"bob smith@example.com", "a space before the '@'"},
      {"\"bob\"@example.com", "'\"' before the '@'"},
      {"bob(x)@example.com", "'(' before the '@'"},
      {".bob@example.com", "the part before the '@' starts or ends with a dot, or has two in a row"},
      {"bob.@example.com", "the part before the '@' starts or ends with a dot, or has two in a row"},
      {"bo..b@example.com", "the part before the '@' starts or ends with a dot, or has two in a row"},
      {std::string(65, 'l') + "@example.com", "more than 64 octets before the '@'"},
      {"bob@.example.com", "the domain starts or ends with a dot, or has two in a row"},
      {"bob@example.com.", "the domain starts or ends with a dot, or has two in a row"},
      {"bob@example..com", "the domain starts or ends with a dot, or has two in a row"},
      {"bob@-example.com", "a domain label starts or ends with '-'"},
      {"bob@example-.com", "a domain label starts or ends with '-'"},
      {"bob@exa_mple.com", "'_' in the domain"},
      {"bob@exa mple.com", "a space in the domain"},
      {"bob@[192.0.2.1]", "'[' in the domain"},
      {"bob@" + std::string(64, 'd') + ".com", "a domain label is longer than 63 octets"},
      {"a@" + std::string(63, 'd') + "." + std::string(63, 'e') + "." + std::string(63, 'f') + "." + std::string(61, 'g'),
       "longer than 254 octets"},
  };
  for (const auto& [address, why] : bad) {
    EXPECT_EQ(email_problems(address),
              std::vector<std::string>{"field 'email': \"" + printable(address) + "\" is not a valid email address (" +
                                       why + ")"})
        << address;
  }
}

TEST(ValidatePayload, ChecksTheAddressFormatOnlyInEmailFields) {
  EXPECT_TRUE(problems({{"name", "x@@"}}).empty());
  EXPECT_TRUE(problems({{"note", "not an address"}}).empty());
}

TEST(ValidatePayload, ReportsAControlCharacterInAnAddressOnce) {
  EXPECT_EQ(email_problems("bob@example.com\r"),
            std::vector<std::string>{
                "field 'email': \"bob@example.com\\x0D\" contains a control character (U+000D at offset 15)"});
}

TEST(ValidatePayload, ReportsInvalidUtf8InALimitedFieldOnlyAsInvalidUtf8) {
  EXPECT_EQ(problems({{"name", "\xFF\xFF\xFF\xFF\xFF\xFF\xFF"}}),
            std::vector<std::string>{"field 'name': \"\\xFF\\xFF\\xFF\\xFF\\xFF\\xFF\\xFF\" is not valid UTF-8 (byte "
                                     "0xFF at offset 0)"});
}

TEST(ValidatePayload, LetsNumbersBooleansAndNullPass) {
  EXPECT_TRUE(problems({{"email", nullptr}, {"name", 1234567}, {"age", 36}, {"approved", true}}).empty());
}

TEST(ValidatePayload, ChecksStringsInsideArraysAndObjectsNamingTheirPath) {
  EXPECT_EQ(problems({{"emails", {"ok@example.org", "bob@@x.org"}}}),
            std::vector<std::string>{"field 'emails[1]': \"bob@@x.org\" is not a valid email address (more than one '@')"});
  EXPECT_EQ(problems({{"address", {{"city", {"Paris", "Lyon\x01"}}}}}),
            std::vector<std::string>{
                "field 'address.city[1]': \"Lyon\\x01\" contains a control character (U+0001 at offset 4)"});
  EXPECT_EQ(problems({{"address", {{"ci\xFFty", "Paris"}}}}),
            std::vector<std::string>{"field 'address.ci\\xFFty': the name is not valid UTF-8 (byte 0xFF at offset 2)"});
  EXPECT_TRUE(problems({{"emails", json::array()}, {"address", {{"city", "Paris"}}}}).empty());
}

TEST(ValidatePayload, ChecksFieldsWithoutASpecForUtf8AndControlCharactersOnly) {
  const std::vector<FieldSpec> none;
  EXPECT_TRUE(validate_payload({{"email", "not an address"}, {"name", std::string(500, 'n')}}, none).empty());
  EXPECT_EQ(validate_payload({{"email", "a\x1F"}}, none),
            std::vector<std::string>{"field 'email': \"a\\x1F\" contains a control character (U+001F at offset 1)"});
}

TEST(ValidatePayload, ListsEveryProblemOfTheRecord) {
  const auto p = problems({{"name", "Name too long"}, {"email", "bob@@x.org"}, {"note", "tab\there"}});
  ASSERT_EQ(p.size(), 3u);
  EXPECT_NE(p[0].find("field 'email'"), std::string::npos);
  EXPECT_NE(p[1].find("field 'name'"), std::string::npos);
  EXPECT_NE(p[2].find("field 'note'"), std::string::npos);
}

TEST(ValidatePayload, ReportsAFieldBothTooLongAndNotAnAddressTwice) {
  const std::vector<FieldSpec> s = {{"email", FieldType::kString, true, false, FieldFormat::kEmail, 3}};
  EXPECT_EQ(validate_payload({{"email", "bob"}}, s), std::vector<std::string>{
                                                          "field 'email': \"bob\" is not a valid email address (no '@')"});
  EXPECT_EQ(validate_payload({{"email", "bob@x"}}, s),
            (std::vector<std::string>{"field 'email': \"bob@x\" is 5 characters long; the target takes at most 3",
                                      "field 'email': \"bob@x\" is not a valid email address (the domain has no dot)"}));
}

TEST(ValidatePayload, ChecksAPayloadThatIsNotAnObjectAsAValue) {
  EXPECT_EQ(validate_payload(json("a\x02"), specs()),
            std::vector<std::string>{"the payload: \"a\\x02\" contains a control character (U+0002 at offset 1)"});
  EXPECT_TRUE(validate_payload(json(), specs()).empty());
}

TEST(ValidatePayload, AcceptsAGoodRecord) {
  EXPECT_TRUE(problems({{"name", "Ada"},
                        {"email", "ada@example.com"},
                        {"emails", {"a@example.com", "b@example.com"}},
                        {"age", 36},
                        {"note", "Émilie — 日本"}})
                  .empty());
}

}  // namespace
}  // namespace dirsync::core
