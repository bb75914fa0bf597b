#include "connectors/sources/csv/csv_reader.h"

#include <algorithm>

namespace dirsync::sources {

namespace {

std::string column_text(std::size_t column, std::string_view name) {
  std::string text = "column " + std::to_string(column + 1);
  if (!name.empty()) text += " '" + std::string(name) + "'";
  return text;
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == ' ' || c == '\t'; });
}

}  // namespace

std::string describe(const CsvProblem& problem, std::string_view column_name) {
  const std::string column = column_text(problem.column, column_name);
  switch (problem.kind) {
    case CsvProblemKind::kNone:
      return "";
    case CsvProblemKind::kUnterminatedQuote:
      return "unterminated quoted field in " + column + " (opened on line " + std::to_string(problem.quote_line) +
             ")";
    case CsvProblemKind::kQuoteInUnquotedField:
      return "quote inside unquoted field in " + column + " (quote the whole field and double the quote)";
    case CsvProblemKind::kTextAfterClosingQuote:
      return "text after closing quote in " + column;
    case CsvProblemKind::kInvalidUtf8:
      return "invalid UTF-8 in " + column;
  }
  return "";
}

bool is_valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t extra = 0;
    unsigned char lo = 0x80;  // bounds of the second byte (rules out overlongs, surrogates, > U+10FFFF)
    unsigned char hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      extra = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      extra = 2;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      extra = 3;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) <= extra) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (std::size_t i = 2; i <= extra; ++i) {
      if (p[i] < 0x80 || p[i] > 0xbf) return false;
    }
    p += extra + 1;
  }
  return true;
}

CsvReader::CsvReader(std::istream& in, CsvOptions options)
    : in_(in), options_(options), buffer_(std::max<std::size_t>(options.chunk_size, 4)) {}

bool CsvReader::fill() {
  if (eof_) return false;
  in_.read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
  const auto n = in_.gcount();
  if (in_.bad()) {
    io_failed_ = true;
    eof_ = true;
    return false;
  }
  pos_ = 0;
  end_ = static_cast<std::size_t>(n);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  return true;
}

int CsvReader::peek() {
  if (pos_ == end_ && !fill()) return kEof;
  return static_cast<unsigned char>(buffer_[pos_]);
}

int CsvReader::get() {
  const int c = peek();
  if (c != kEof) ++pos_;
  return c;
}

bool CsvReader::next(CsvRow& row) {
  if (!started_) {
    started_ = true;
    // istream::read fills the whole chunk unless the input is shorter, so the
    // first chunk holds the BOM if there is one.
    if (peek() != kEof && end_ - pos_ >= 3 && buffer_[pos_] == '\xef' && buffer_[pos_ + 1] == '\xbb' &&
        buffer_[pos_ + 2] == '\xbf') {
      pos_ += 3;
    }
  }
  for (;;) {
    if (!read_row(row)) return false;
    if (io_failed_) return false;  // a row cut short by an I/O error is not a row
    if (options_.skip_blank_lines && !row_quoted_ && row.fields.size() == 1 &&
        row.problem.kind == CsvProblemKind::kNone && is_blank(row.fields[0])) {
      continue;
    }
    return true;
  }
}

bool CsvReader::read_row(CsvRow& row) {
  row.fields.clear();
  row.problem = CsvProblem{};
  row.line = line_;
  if (peek() == kEof) return false;

  enum class State { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted };
  State state = State::kFieldStart;
  std::string field;
  bool quoted = false;  // a quoted field makes a line not blank, even `""`
  std::size_t quote_line = 0;
  const char delimiter = options_.delimiter;
  const auto note = [&](CsvProblemKind kind) {
    if (row.problem.kind != CsvProblemKind::kNone) return;
    const std::size_t opened = kind == CsvProblemKind::kUnterminatedQuote ? quote_line : 0;
    row.problem = CsvProblem{kind, row.fields.size(), opened};
  };
  const auto end_field = [&] {
    row.fields.push_back(std::move(field));
    field.clear();
  };

  for (int last = kEof;; ) {
    const int c = get();
    if (c == kEof) {
      if (state == State::kQuoted) note(CsvProblemKind::kUnterminatedQuote);
      end_field();
      // A line break swallowed by an open quote ends its line; it starts none.
      row.end_line = (last == '\n' && line_ > row.line) ? line_ - 1 : line_;
      break;
    }
    if (state != State::kQuoted) {
      const bool crlf = c == '\r' && peek() == '\n';
      if (c == '\n' || crlf) {
        if (crlf) get();
        end_field();
        row.end_line = line_++;
        break;
      }
    }
    last = c;
    const char ch = static_cast<char>(c);
    switch (state) {
      case State::kFieldStart:
        if (ch == '"') {
          state = State::kQuoted;
          quoted = true;
          quote_line = line_;
        } else if (ch == delimiter) {
          end_field();
        } else {
          field.push_back(ch);
          state = State::kUnquoted;
        }
        break;
      case State::kUnquoted:
        if (ch == delimiter) {
          end_field();
          state = State::kFieldStart;
        } else {
          if (ch == '"') note(CsvProblemKind::kQuoteInUnquotedField);
          field.push_back(ch);
        }
        break;
      case State::kQuoted:
        if (ch == '"') {
          state = State::kQuoteInQuoted;
        } else {
          if (ch == '\n') ++line_;
          field.push_back(ch);
        }
        break;
      case State::kQuoteInQuoted:
        if (ch == '"') {
          field.push_back('"');
          state = State::kQuoted;
        } else if (ch == delimiter) {
          end_field();
          state = State::kFieldStart;
        } else {
          note(CsvProblemKind::kTextAfterClosingQuote);
          field.push_back(ch);
          state = State::kUnquoted;
        }
        break;
    }
  }

  // The problem in the lowest column is the one reported (fields before it are exact).
  const std::size_t limit = row.problem.kind == CsvProblemKind::kNone ? row.fields.size() : row.problem.column;
  for (std::size_t i = 0; i < limit; ++i) {
    if (!is_valid_utf8(row.fields[i])) {
      row.problem = CsvProblem{CsvProblemKind::kInvalidUtf8, i, 0};
      break;
    }
  }
  row_quoted_ = quoted;
  return true;
}

}  // namespace dirsync::sources
