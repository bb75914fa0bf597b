#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/sources/csv/csv_source.h"

namespace dirsync::sources {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class CsvSourceTest : public ::testing::Test {
 protected:
  CsvSourceTest() {
    std::string tmpl = ::testing::TempDir() + "dirsync-csv-XXXXXX";
    dir_ = ::mkdtemp(tmpl.data());
    path_ = dir_ + "/users.csv";
  }
  ~CsvSourceTest() override { std::filesystem::remove_all(dir_); }

  void write(const std::string& text) { std::ofstream(path_, std::ios::binary) << text; }

  config::CsvSourceSettings settings(std::size_t page_size = 1000) const {
    config::CsvSourceSettings s;
    s.path = path_;
    s.key = "id";
    s.page_size = page_size;
    return s;
  }

  // Pulls everything; fails the test on an Error.
  std::vector<core::Page> pull_all(const config::CsvSourceSettings& s) {
    std::vector<core::Page> pages;
    auto pull = make_csv_source(s)->start();
    if (!pull.ok()) {
      ADD_FAILURE() << pull.error().message;
      return pages;
    }
    for (int guard = 0; guard < 1000; ++guard) {
      auto page = pull.value()->next();
      if (!page.ok()) {
        ADD_FAILURE() << page.error().message;
        return pages;
      }
      pages.push_back(std::move(page).value());
      if (pages.back().last) return pages;
    }
    ADD_FAILURE() << "no last page";
    return pages;
  }

  core::Page pull_one(std::size_t page_size = 1000) {
    auto pages = pull_all(settings(page_size));
    core::Page all;
    for (auto& p : pages) {
      for (auto& r : p.records) all.records.push_back(std::move(r));
      for (auto& i : p.issues) all.issues.push_back(std::move(i));
      all.last = p.last;
    }
    return all;
  }

  // The Error a pull fails with (from start() or a page).
  core::Error pull_error() {
    auto pull = make_csv_source(settings())->start();
    if (!pull.ok()) return pull.error();
    for (;;) {
      auto page = pull.value()->next();
      if (!page.ok()) return page.error();
      if (page.value().last) break;
    }
    ADD_FAILURE() << "the pull succeeded";
    return core::Error{core::ErrorKind::kInvalid, ""};
  }

  std::string at(int line) const { return path_ + ":" + std::to_string(line); }

  std::string dir_;
  std::string path_;
};

std::vector<std::string> keys_of(const core::Page& page) {
  std::vector<std::string> keys;
  for (const auto& r : page.records) keys.push_back(r.key);
  return keys;
}

TEST_F(CsvSourceTest, YieldsOneRecordPerRowWithEveryColumn) {
  write("id,first_name,email\n1001,Ada,ada@example.com\n1002,Bob,\n");
  const core::Page page = pull_one();
  EXPECT_TRUE(page.last);
  EXPECT_THAT(page.issues, IsEmpty());
  ASSERT_EQ(page.records.size(), 2u);
  const core::Record& ada = page.records[0];
  EXPECT_EQ(ada.key, "1001");
  EXPECT_EQ(ada.origin, at(2));
  ASSERT_EQ(ada.attributes.size(), 3u);
  EXPECT_EQ(ada.attributes[0].name, "id");
  EXPECT_THAT(ada.find("first_name")->values, ElementsAre("Ada"));
  EXPECT_THAT(ada.find("email")->values, ElementsAre("ada@example.com"));
  EXPECT_THAT(page.records[1].find("email")->values, ElementsAre("")) << "an empty cell is the value \"\"";
  EXPECT_EQ(make_csv_source(settings())->describe(), "csv " + path_);
}

TEST_F(CsvSourceTest, KeepsKeysExactlyAsWritten) {
  write("id,name\n\" 1001 \",Ada\n");
  const core::Page page = pull_one();
  EXPECT_THAT(keys_of(page), ElementsAre(" 1001 "));
}

TEST_F(CsvSourceTest, PagesByPageSizeAndMarksTheLastPage) {
  std::string text = "id\n";
  for (int i = 0; i < 7; ++i) text += std::to_string(i) + "\n";
  write(text);
  const auto pages = pull_all(settings(3));
  ASSERT_EQ(pages.size(), 3u);
  EXPECT_THAT(keys_of(pages[0]), ElementsAre("0", "1", "2"));
  EXPECT_FALSE(pages[0].last);
  EXPECT_THAT(keys_of(pages[1]), ElementsAre("3", "4", "5"));
  EXPECT_FALSE(pages[1].last);
  EXPECT_THAT(keys_of(pages[2]), ElementsAre("6"));
  EXPECT_TRUE(pages[2].last);
}

TEST_F(CsvSourceTest, AFileOfExactlyFullPagesEndsWithAnEmptyLastPage) {
  write("id\n1\n2\n");
  const auto pages = pull_all(settings(2));
  ASSERT_EQ(pages.size(), 2u);
  EXPECT_THAT(keys_of(pages[0]), ElementsAre("1", "2"));
  EXPECT_TRUE(pages[1].records.empty());
  EXPECT_TRUE(pages[1].last);
}

TEST_F(CsvSourceTest, ReadsBomCrlfAndEmbeddedNewlinesWithCorrectLines) {
  write("\xef\xbb\xbfid,note\r\n1,\"first\r\nsecond\"\r\n2,plain\r\n\r\n3,\"x\"\r\n\r\n\r\n");
  const core::Page page = pull_one();
  EXPECT_THAT(page.issues, IsEmpty());
  ASSERT_EQ(page.records.size(), 3u);
  EXPECT_EQ(page.records[0].find("id")->values[0], "1") << "the BOM is not part of the first column's name";
  EXPECT_EQ(page.records[0].find("note")->values[0], "first\r\nsecond");
  EXPECT_EQ(page.records[0].origin, at(2));
  EXPECT_EQ(page.records[1].origin, at(4));
  EXPECT_EQ(page.records[2].origin, at(6)) << "a blank line in the middle is skipped but counted";
}

TEST_F(CsvSourceTest, ReadsAnotherDelimiter) {
  write("id;name\n1;Lovelace, Ada\n");
  auto s = settings();
  s.delimiter = ';';
  const auto pages = pull_all(s);
  ASSERT_EQ(pages.size(), 1u);
  ASSERT_EQ(pages[0].records.size(), 1u);
  EXPECT_EQ(pages[0].records[0].find("name")->values[0], "Lovelace, Ada");
}

TEST_F(CsvSourceTest, RejectsEveryRowOfADuplicateKeyAndProtectsIt) {
  write("id,name\n1,Ada\n2,Bob\n1,Ada again\n3,Cy\n1,Ada thrice\n2,Bob again\n");
  const core::Page page = pull_one();
  EXPECT_THAT(keys_of(page), ElementsAre("3")) << "no row of a duplicated key wins";
  ASSERT_EQ(page.issues.size(), 5u);
  EXPECT_EQ(page.issues[0].key, "1");
  EXPECT_EQ(page.issues[0].origin, at(2));
  EXPECT_EQ(page.issues[0].message, "duplicate key '1' (also on lines 4, 6)");
  EXPECT_EQ(page.issues[1].key, "2");
  EXPECT_EQ(page.issues[1].message, "duplicate key '2' (also on line 7)");
  EXPECT_EQ(page.issues[2].message, "duplicate key '1' (also on lines 2, 6)");
  EXPECT_EQ(page.issues[3].message, "duplicate key '1' (also on lines 2, 4)");
  EXPECT_EQ(page.issues[4].key, "2");
  EXPECT_EQ(page.issues[4].origin, at(7));
  EXPECT_EQ(page.issues[4].message, "duplicate key '2' (also on line 3)");
}

TEST_F(CsvSourceTest, NamesAtMostTenOtherLinesOfADuplicate) {
  std::string text = "id\n";
  for (int i = 0; i < 13; ++i) text += "7\n";
  write(text);
  const core::Page page = pull_one();
  ASSERT_EQ(page.issues.size(), 13u);
  EXPECT_EQ(page.issues[0].message, "duplicate key '7' (also on lines 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 and 2 more)");
}

TEST_F(CsvSourceTest, AWrongFieldCountProtectsAKeyInTheFirstColumn) {
  write("id,name,email\n1,Ada\n2,Bob,b@x,extra\n3,Cy,c@x\n");
  const core::Page page = pull_one();
  EXPECT_THAT(keys_of(page), ElementsAre("3"));
  ASSERT_EQ(page.issues.size(), 2u);
  EXPECT_EQ(page.issues[0].key, "1");
  EXPECT_EQ(page.issues[0].origin, at(2));
  EXPECT_EQ(page.issues[0].message, "row has 2 fields; the header has 3");
  EXPECT_EQ(page.issues[1].key, "2");
  EXPECT_EQ(page.issues[1].message, "row has 4 fields; the header has 3");
}

TEST_F(CsvSourceTest, AWrongFieldCountLeavesALaterKeyUnreadable) {
  // "Lovelace, Ada" unquoted: the id column holds " Ada", not the real key.
  write("name,id\nLovelace, Ada,1001\n");
  const core::Page page = pull_one();
  EXPECT_TRUE(page.records.empty());
  ASSERT_EQ(page.issues.size(), 1u);
  EXPECT_EQ(page.issues[0].key, "") << "an empty key makes the pull incomplete";
  EXPECT_EQ(page.issues[0].message, "row has 3 fields; the header has 2");
}

TEST_F(CsvSourceTest, AnEmptyOrBlankKeyIsUnreadable) {
  write("id,name\n,Ada\n  ,Bob\n");
  const core::Page page = pull_one();
  EXPECT_TRUE(page.records.empty());
  ASSERT_EQ(page.issues.size(), 2u);
  EXPECT_EQ(page.issues[0].key, "");
  EXPECT_EQ(page.issues[0].origin, at(2));
  EXPECT_EQ(page.issues[0].message, "key column 'id' is empty");
  EXPECT_EQ(page.issues[1].key, "");
  EXPECT_EQ(page.issues[1].message, "key column 'id' is blank");
}

TEST_F(CsvSourceTest, ASyntaxProblemAfterTheKeyProtectsIt) {
  write("id,name,email\n1,Ada \"the\" first,a@x\n2,\"Bob\" B,b@x\n");
  const core::Page page = pull_one();
  EXPECT_TRUE(page.records.empty());
  ASSERT_EQ(page.issues.size(), 2u);
  EXPECT_EQ(page.issues[0].key, "1");
  EXPECT_EQ(page.issues[0].message,
            "quote inside unquoted field in column 2 'name' (quote the whole field and double the quote)");
  EXPECT_EQ(page.issues[1].key, "2");
  EXPECT_EQ(page.issues[1].message, "text after closing quote in column 2 'name'");
}

TEST_F(CsvSourceTest, ASyntaxProblemInTheKeyMakesItUnreadable) {
  write("name,id\nAda,1\"0\nBob,\xff\n");
  const core::Page page = pull_one();
  ASSERT_EQ(page.issues.size(), 2u);
  EXPECT_EQ(page.issues[0].key, "");
  EXPECT_EQ(page.issues[0].message,
            "quote inside unquoted field in column 2 'id' (quote the whole field and double the quote)");
  EXPECT_EQ(page.issues[1].key, "");
  EXPECT_EQ(page.issues[1].origin, at(3));
  EXPECT_EQ(page.issues[1].message, "invalid UTF-8 in column 2 'id'");
}

TEST_F(CsvSourceTest, AnUnterminatedQuoteMakesThePullIncomplete) {
  write("id,name\n1,Ada\n2,\"Bob\n3,Cy\n4,Di\n");
  const core::Page page = pull_one();
  EXPECT_THAT(keys_of(page), ElementsAre("1"));
  ASSERT_EQ(page.issues.size(), 1u);
  EXPECT_EQ(page.issues[0].key, "") << "rows 3 and 4 were swallowed: nothing may be detached";
  EXPECT_EQ(page.issues[0].origin, at(3));
  EXPECT_EQ(page.issues[0].message,
            "unterminated quoted field in column 2 'name' (opened on line 3); the row spans lines 3-5, so it may "
            "hold other rows and its key is not trusted");
  EXPECT_TRUE(page.last);
}

TEST_F(CsvSourceTest, AMalformedRowSpanningLinesLeavesItsKeyUnreadable) {
  // The quote opened on line 2 closes on line 3, swallowing the row of key 2.
  write("id,name,email\n1,\"Ada,a@x\n2,\"Bob\",b@x\n3,Cy,c@x\n");
  const core::Page page = pull_one();
  EXPECT_THAT(keys_of(page), ElementsAre("3"));
  ASSERT_EQ(page.issues.size(), 1u);
  EXPECT_EQ(page.issues[0].key, "");
  EXPECT_EQ(page.issues[0].origin, at(2));
  EXPECT_EQ(page.issues[0].message,
            "text after closing quote in column 2 'name'; the row spans lines 2-3, so it may hold other rows and its "
            "key is not trusted");
}

TEST_F(CsvSourceTest, AFileThatCannotBeOpenedFailsThePull) {
  const core::Error error = pull_error();
  EXPECT_EQ(error.kind, core::ErrorKind::kSource);
  EXPECT_EQ(error.message, "cannot open " + path_ + ": No such file or directory");
}

TEST_F(CsvSourceTest, ADirectoryFailsThePull) {
  std::filesystem::create_directory(path_);
  EXPECT_EQ(pull_error().message, "cannot open " + path_ + ": Is a directory");
}

TEST_F(CsvSourceTest, RefusesADelimiterThatCannotWork) {
  write("id\n1\n");
  auto s = settings();
  s.delimiter = '"';
  auto pull = make_csv_source(s)->start();
  ASSERT_FALSE(pull.ok());
  EXPECT_EQ(pull.error().kind, core::ErrorKind::kInvalid);
  EXPECT_EQ(pull.error().message, "csv source " + path_ + ": the delimiter cannot be a quote, a line break or NUL");
}

TEST_F(CsvSourceTest, AnEmptyFileFailsThePull) {
  write("");
  EXPECT_EQ(pull_error().message, at(1) + ": the file is empty; expected a header row naming the columns");
}

TEST_F(CsvSourceTest, AHeaderWithoutTheKeyColumnFailsThePull) {
  write("employee_id,name\n1,Ada\n");
  const core::Error error = pull_error();
  EXPECT_EQ(error.kind, core::ErrorKind::kSource);
  EXPECT_EQ(error.message, at(1) + ": the key column 'id' is not in the header (columns: employee_id, name)");
}

TEST_F(CsvSourceTest, ADuplicateHeaderNameFailsThePull) {
  write("id,email,name,email\n1,a,b,c\n");
  EXPECT_EQ(pull_error().message, at(1) + ": column 4 of the header repeats the name 'email' (column 2)");
}

TEST_F(CsvSourceTest, AnEmptyHeaderNameFailsThePull) {
  write("id,,name\n1,a,b\n");
  EXPECT_EQ(pull_error().message, at(1) + ": column 2 of the header has no name");
}

TEST_F(CsvSourceTest, AMalformedHeaderFailsThePull) {
  write("id,\"name\n");
  EXPECT_EQ(pull_error().message, at(1) + ": header row: unterminated quoted field in column 2 (opened on line 1)");
}

TEST_F(CsvSourceTest, AHeaderOnlyFileYieldsNothing) {
  write("id,name\n\n");
  const core::Page page = pull_one();
  EXPECT_TRUE(page.records.empty());
  EXPECT_TRUE(page.issues.empty());
  EXPECT_TRUE(page.last);
}

TEST_F(CsvSourceTest, AFileRewrittenDuringThePullFailsIt) {
  // Larger than the reader's 64 KiB chunk, so the rewrite lands in a chunk not read yet.
  std::string text = "id\n";
  for (int i = 0; i < 20000; ++i) text += std::to_string(100000 + i) + "\n";
  write(text);
  auto pull = make_csv_source(settings(1))->start();
  ASSERT_TRUE(pull.ok());
  ASSERT_TRUE(pull.value()->next().ok());
  // Rewritten in place (same inode, same length) after the pre-pass: one key changes.
  text.replace(text.size() - 7, 6, "999999");
  { std::ofstream(path_, std::ios::binary | std::ios::in | std::ios::out) << text; }
  core::Result<core::Page> page = pull.value()->next();
  while (page.ok() && !page.value().last) page = pull.value()->next();
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.error().kind, core::ErrorKind::kSource);
  EXPECT_EQ(page.error().message, path_ + " changed while it was being read; the pull is incomplete (try again)");
}

TEST_F(CsvSourceTest, AFileReplacedByRenameIsReadConsistently) {
  write("id\n1\n2\n");
  auto pull = make_csv_source(settings(1))->start();
  ASSERT_TRUE(pull.ok());
  const std::string next = dir_ + "/next.csv";
  std::ofstream(next) << "id\n5\n";
  std::filesystem::rename(next, path_);
  std::vector<std::string> keys;
  for (;;) {
    auto page = pull.value()->next();
    ASSERT_TRUE(page.ok()) << page.error().message;
    for (const auto& r : page.value().records) keys.push_back(r.key);
    if (page.value().last) break;
  }
  EXPECT_THAT(keys, ElementsAre("1", "2"));
}

TEST_F(CsvSourceTest, StartsEachPullAfresh) {
  write("id\n1\n");
  auto source = make_csv_source(settings());
  for (int i = 0; i < 2; ++i) {
    auto pull = source->start();
    ASSERT_TRUE(pull.ok());
    auto page = pull.value()->next();
    ASSERT_TRUE(page.ok());
    EXPECT_THAT(keys_of(page.value()), ElementsAre("1"));
  }
}

}  // namespace
}  // namespace dirsync::sources
