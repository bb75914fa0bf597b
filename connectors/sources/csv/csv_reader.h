#pragma once
// A streaming RFC 4180 reader: pure, no I/O of its own beyond the istream it is
// given, which it reads in chunks (memory holds one chunk plus one row).
//
// What it accepts:
// - fields separated by `delimiter`; rows ended by LF or CRLF (a lone CR is data);
// - quoted fields ("...") holding delimiters, doubled quotes ("") and line
//   breaks (kept verbatim, CRLF included);
// - a UTF-8 byte order mark at the very start (dropped);
// - a last row with or without a line ending.
// Blank lines (empty, or only spaces and tabs) are skipped wherever they are,
// when `skip_blank_lines` is set: a spreadsheet's trailing empty lines are not rows.
//
// Problems are data, never exceptions: a row carries the first problem found
// (the one in the lowest column), and its fields hold a best-effort reading:
// - kUnterminatedQuote: a quoted field still open at the end of input; the row
//   swallowed everything after the quote.
// - kQuoteInUnquotedField: `ab"c` — the quote is kept as data.
// - kTextAfterClosingQuote: `"ab"c` — the text is kept as data.
// - kInvalidUtf8: a field that is not valid UTF-8 (overlong forms and
//   surrogates included).
// Fields before the problem's column are always exact.
//
// Line numbers are 1-based physical lines: a row's `line` is where it starts,
// `end_line` where it ends (they differ when a quoted field holds line breaks).
// I/O errors (the stream went bad) end the rows; `io_failed()` tells them apart
// from the end of input.
#include <cstddef>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

namespace dirsync::sources {

enum class CsvProblemKind { kNone, kUnterminatedQuote, kQuoteInUnquotedField, kTextAfterClosingQuote, kInvalidUtf8 };

struct CsvProblem {
  CsvProblemKind kind = CsvProblemKind::kNone;
  std::size_t column = 0;      // 0-based field index
  std::size_t quote_line = 0;  // kUnterminatedQuote: the line where the quote opened
};

// "unterminated quoted field in column 3 'email' (opened on line 5)"; the name
// is left out when empty.
std::string describe(const CsvProblem& problem, std::string_view column_name);

struct CsvRow {
  std::vector<std::string> fields;
  std::size_t line = 0;      // where the row starts
  std::size_t end_line = 0;  // where it ends
  CsvProblem problem;        // kind kNone: well-formed
};

struct CsvOptions {
  char delimiter = ',';
  bool skip_blank_lines = true;
  std::size_t chunk_size = 64 * 1024;
};

class CsvReader {
 public:
  explicit CsvReader(std::istream& in, CsvOptions options = {});

  // Reads the next row into `row` (its previous contents are replaced).
  // Returns false at the end of input or after an I/O error.
  bool next(CsvRow& row);

  bool io_failed() const { return io_failed_; }

 private:
  static constexpr int kEof = -1;

  int get();
  int peek();
  bool fill();
  bool read_row(CsvRow& row);

  std::istream& in_;
  CsvOptions options_;
  std::vector<char> buffer_;
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
  bool eof_ = false;
  bool io_failed_ = false;
  bool started_ = false;
  bool row_quoted_ = false;  // the row just read had a quoted field
  std::size_t line_ = 1;
};

// True when `text` is valid UTF-8.
bool is_valid_utf8(std::string_view text);

}  // namespace dirsync::sources
