#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/sources/csv/csv_reader.h"

namespace dirsync::sources {
namespace {

using ::testing::ElementsAre;

// Every test runs with several chunk sizes, so a quote, a CRLF or the BOM split
// across chunks is covered too.
std::vector<CsvRow> read_all(const std::string& text, std::size_t chunk, char delimiter = ',') {
  std::istringstream in(text);
  CsvOptions options;
  options.chunk_size = chunk;
  options.delimiter = delimiter;
  CsvReader reader(in, options);
  std::vector<CsvRow> rows;
  CsvRow row;
  while (reader.next(row)) rows.push_back(row);
  EXPECT_FALSE(reader.io_failed());
  return rows;
}

class CsvReaderTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  std::vector<CsvRow> read(const std::string& text, char delimiter = ',') { return read_all(text, GetParam(), delimiter); }
};

INSTANTIATE_TEST_SUITE_P(ChunkSizes, CsvReaderTest, ::testing::Values(4, 5, 7, 64 * 1024));

TEST_P(CsvReaderTest, ReadsPlainRowsWithLfOrCrlf) {
  for (const std::string eol : {"\n", "\r\n"}) {
    const auto rows = read("id,name" + eol + "1,Ada" + eol + "2,Bob" + eol);
    ASSERT_EQ(rows.size(), 3u) << "eol " << (eol.size() == 2 ? "CRLF" : "LF");
    EXPECT_THAT(rows[0].fields, ElementsAre("id", "name"));
    EXPECT_THAT(rows[1].fields, ElementsAre("1", "Ada"));
    EXPECT_THAT(rows[2].fields, ElementsAre("2", "Bob"));
    EXPECT_EQ(rows[2].line, 3u);
    EXPECT_EQ(rows[2].problem.kind, CsvProblemKind::kNone);
  }
}

TEST_P(CsvReaderTest, ReadsALastRowWithoutLineEnding) {
  const auto rows = read("a,b\n1,");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_THAT(rows[1].fields, ElementsAre("1", ""));
}

TEST_P(CsvReaderTest, ReadsQuotedFieldsWithDelimitersQuotesAndNewlines) {
  const auto rows = read("id,note\r\n1,\"a, b\"\r\n2,\"say \"\"hi\"\"\"\r\n3,\"two\r\nlines\nhere\"\r\n4,\"\"\r\n5,x\r\n");
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_THAT(rows[1].fields, ElementsAre("1", "a, b"));
  EXPECT_THAT(rows[2].fields, ElementsAre("2", "say \"hi\""));
  EXPECT_THAT(rows[3].fields, ElementsAre("3", "two\r\nlines\nhere")) << "line breaks inside quotes are kept verbatim";
  EXPECT_THAT(rows[4].fields, ElementsAre("4", ""));
  EXPECT_EQ(rows[3].line, 4u);
  EXPECT_EQ(rows[3].end_line, 6u);
  EXPECT_EQ(rows[4].line, 7u) << "rows after an embedded newline keep their physical line numbers";
  EXPECT_EQ(rows[5].line, 8u);
}

TEST_P(CsvReaderTest, StripsTheByteOrderMarkOfTheHeaderOnly) {
  const auto rows = read("\xef\xbb\xbfid,name\n\xef\xbb\xbf,x\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields[0], "id");
  EXPECT_EQ(rows[1].fields[0], "\xef\xbb\xbf") << "a BOM later on is data";
}

TEST_P(CsvReaderTest, SkipsBlankLinesAnywhere) {
  const auto rows = read("id\n\n1\n  \t\n\r\n2\n\n\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].line, 3u);
  EXPECT_EQ(rows[2].line, 6u);
}

TEST_P(CsvReaderTest, KeepsAQuotedEmptyLine) {
  const auto rows = read("id\n\"\"\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_THAT(rows[1].fields, ElementsAre(""));
}

TEST_P(CsvReaderTest, ReadsAnotherDelimiter) {
  const auto rows = read("a;b\n\"x;y\";z,w\n", ';');
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_THAT(rows[1].fields, ElementsAre("x;y", "z,w"));
}

TEST_P(CsvReaderTest, KeepsALoneCarriageReturnAsData) {
  const auto rows = read("a,b\n1\r2,3\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_THAT(rows[1].fields, ElementsAre("1\r2", "3"));
}

TEST_P(CsvReaderTest, ReportsAnUnterminatedQuoteAtEndOfInput) {
  const auto rows = read("id,name\n1,\"Ada\n2,Bob\n");
  ASSERT_EQ(rows.size(), 2u);
  const CsvRow& row = rows[1];
  EXPECT_EQ(row.problem.kind, CsvProblemKind::kUnterminatedQuote);
  EXPECT_EQ(row.problem.column, 1u);
  EXPECT_EQ(row.line, 2u);
  EXPECT_EQ(row.end_line, 3u) << "the final line break ends line 3; it starts no line";
  EXPECT_THAT(row.fields, ElementsAre("1", "Ada\n2,Bob\n"));
  EXPECT_EQ(describe(row.problem, "name"), "unterminated quoted field in column 2 'name' (opened on line 2)");
}

TEST_P(CsvReaderTest, ReportsAQuoteInsideAnUnquotedField) {
  const auto rows = read("id,name\n1,Ada \"Countess\" Lovelace,x\n2,Bob\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].problem.kind, CsvProblemKind::kQuoteInUnquotedField);
  EXPECT_EQ(rows[1].problem.column, 1u);
  EXPECT_THAT(rows[1].fields, ElementsAre("1", "Ada \"Countess\" Lovelace", "x"));
  EXPECT_EQ(describe(rows[1].problem, "name"),
            "quote inside unquoted field in column 2 'name' (quote the whole field and double the quote)");
  EXPECT_EQ(rows[2].problem.kind, CsvProblemKind::kNone) << "the next row is read normally";
}

TEST_P(CsvReaderTest, ReportsTextAfterAClosingQuote) {
  const auto rows = read("id,name\n1,\"Ada\" L,x\n2,Bob\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].problem.kind, CsvProblemKind::kTextAfterClosingQuote);
  EXPECT_EQ(rows[1].problem.column, 1u);
  EXPECT_THAT(rows[1].fields, ElementsAre("1", "Ada L", "x"));
  EXPECT_EQ(describe(rows[1].problem, ""), "text after closing quote in column 2");
  EXPECT_EQ(rows[2].line, 3u);
}

TEST_P(CsvReaderTest, ReportsInvalidUtf8InTheLowestColumn) {
  const auto rows = read("a,b,c\nok,\xff,\"x\"y\n\xc3\xa9,\xe2\x82\xac,\xf0\x9f\x98\x80\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].problem.kind, CsvProblemKind::kInvalidUtf8);
  EXPECT_EQ(rows[1].problem.column, 1u);
  EXPECT_EQ(describe(rows[1].problem, "b"), "invalid UTF-8 in column 2 'b'");
  EXPECT_EQ(rows[2].problem.kind, CsvProblemKind::kNone) << "é € and an emoji are valid";
}

TEST(Utf8, RejectsOverlongsSurrogatesAndTruncatedSequences) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));   // U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // beyond U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\x80"));              // stray continuation
}

TEST(CsvReader, ReportsAnEmptyInputAsNoRows) {
  EXPECT_TRUE(read_all("", 64).empty());
  EXPECT_TRUE(read_all("\xef\xbb\xbf", 64).empty());
  EXPECT_TRUE(read_all("\n\n", 64).empty());
}

}  // namespace
}  // namespace dirsync::sources
