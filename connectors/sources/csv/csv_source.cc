#include "connectors/sources/csv/csv_source.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unordered_map>
#include <utility>
#include <vector>

#include "connectors/sources/csv/csv_reader.h"
#include "core/diff.h"

namespace dirsync::sources {
namespace {

// Lines named in one duplicate-key message; the rest are counted.
constexpr std::size_t kMaxLinesNamed = 10;

core::Error source_error(std::string message) { return core::Error{core::ErrorKind::kSource, std::move(message)}; }

bool is_whitespace(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; });
}

// What one row says about its key.
struct RowReading {
  std::string key;      // empty unless trusted
  bool trusted = false;
  std::string problem;  // empty: a well-formed row with a usable key
};

class CsvPull final : public core::Pull {
 public:
  explicit CsvPull(config::CsvSourceSettings settings) : settings_(std::move(settings)) {
    settings_.page_size = std::max<std::size_t>(settings_.page_size, 1);
  }

  core::Status open();
  core::Result<core::Page> next() override;

 private:
  std::string at(std::size_t line) const { return settings_.path + ":" + std::to_string(line); }
  core::Status rewind();
  core::Status read_header();
  core::Status find_duplicates();
  core::Error read_error() const;
  core::Error changed_error() const;
  RowReading read_key(const CsvRow& row) const;
  std::string duplicate_message(const std::string& key, std::size_t line) const;

  config::CsvSourceSettings settings_;
  std::ifstream in_;
  std::unique_ptr<CsvReader> reader_;
  CsvRow row_;
  std::vector<std::string> header_;
  std::size_t key_column_ = 0;
  // key_hash of each row's raw key cell mixed with its line, in file order:
  // the yielding pass checks it sees the rows the pre-pass saw.
  std::vector<std::uint64_t> fingerprints_;
  std::size_t row_index_ = 0;
  std::unordered_map<std::string, std::vector<std::size_t>> duplicates_;  // key → lines
  bool done_ = false;
};

std::uint64_t fingerprint(const CsvRow& row, std::size_t key_column) {
  const std::string_view raw = key_column < row.fields.size() ? std::string_view(row.fields[key_column]) : "";
  return core::key_hash(raw) ^ (row.line * 0x9e3779b97f4a7c15ULL);
}

core::Status CsvPull::open() {
  const char d = settings_.delimiter;
  if (d == '"' || d == '\r' || d == '\n' || d == '\0') {
    // Config validates this too; the parser would misread every row.
    return core::Error{core::ErrorKind::kInvalid,
                       "csv source " + settings_.path + ": the delimiter cannot be a quote, a line break or NUL"};
  }
  std::error_code ec;
  if (std::filesystem::is_directory(settings_.path, ec)) {
    return source_error("cannot open " + settings_.path + ": " + std::strerror(EISDIR));
  }
  errno = 0;
  in_.open(settings_.path, std::ios::binary);
  if (!in_.is_open()) {
    const int err = errno != 0 ? errno : ENOENT;
    return source_error("cannot open " + settings_.path + ": " + std::strerror(err));
  }
  if (auto status = rewind(); !status.ok()) return status;
  if (auto status = read_header(); !status.ok()) return status;

  // Pre-pass: 8 bytes per row; candidate duplicates are the hashes seen twice.
  std::vector<std::uint64_t> hashes;
  while (reader_->next(row_)) {
    fingerprints_.push_back(fingerprint(row_, key_column_));
    const RowReading reading = read_key(row_);
    if (reading.trusted) hashes.push_back(core::key_hash(reading.key));
  }
  if (reader_->io_failed()) return read_error();
  std::sort(hashes.begin(), hashes.end());
  std::vector<std::uint64_t> candidates;
  for (std::size_t i = 1; i < hashes.size(); ++i) {
    if (hashes[i] == hashes[i - 1] && (candidates.empty() || candidates.back() != hashes[i])) {
      candidates.push_back(hashes[i]);
    }
  }
  hashes = {};

  if (!candidates.empty()) {
    // Confirm with exact strings: a hash collision must not reject two rows.
    if (auto status = rewind(); !status.ok()) return status;
    if (auto status = read_header(); !status.ok()) return status;
    while (reader_->next(row_)) {
      const RowReading reading = read_key(row_);
      if (reading.trusted && std::binary_search(candidates.begin(), candidates.end(), core::key_hash(reading.key))) {
        duplicates_[reading.key].push_back(row_.line);
      }
    }
    if (reader_->io_failed()) return read_error();
    std::erase_if(duplicates_, [](const auto& entry) { return entry.second.size() < 2; });
  }

  if (auto status = rewind(); !status.ok()) return status;
  return read_header();
}

core::Status CsvPull::rewind() {
  in_.clear();
  in_.seekg(0);
  if (!in_) return source_error("cannot rewind " + settings_.path + " (it must be a regular file)");
  CsvOptions options;
  options.delimiter = settings_.delimiter;
  reader_ = std::make_unique<CsvReader>(in_, options);
  return core::Ok{};
}

core::Error CsvPull::read_error() const {
  const int err = errno != 0 ? errno : EIO;
  return source_error("cannot read " + settings_.path + ": " + std::strerror(err));
}

core::Error CsvPull::changed_error() const {
  return source_error(settings_.path + " changed while it was being read; the pull is incomplete (try again)");
}

core::Status CsvPull::read_header() {
  if (!reader_->next(row_)) {
    if (reader_->io_failed()) return read_error();
    return source_error(at(1) + ": the file is empty; expected a header row naming the columns");
  }
  const std::string where = at(row_.line);
  if (row_.problem.kind != CsvProblemKind::kNone) {
    return source_error(where + ": header row: " + describe(row_.problem, ""));
  }
  header_ = row_.fields;
  for (std::size_t i = 0; i < header_.size(); ++i) {
    if (is_whitespace(header_[i])) {
      return source_error(where + ": column " + std::to_string(i + 1) + " of the header has no name");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (header_[j] == header_[i]) {
        return source_error(where + ": column " + std::to_string(i + 1) + " of the header repeats the name '" +
                            header_[i] + "' (column " + std::to_string(j + 1) + ")");
      }
    }
  }
  const auto key = std::find(header_.begin(), header_.end(), settings_.key);
  if (key == header_.end()) {
    std::string columns;
    for (const auto& name : header_) columns += (columns.empty() ? "" : ", ") + name;
    return source_error(where + ": the key column '" + settings_.key + "' is not in the header (columns: " + columns +
                        ")");
  }
  key_column_ = static_cast<std::size_t>(key - header_.begin());
  return core::Ok{};
}

RowReading CsvPull::read_key(const CsvRow& row) const {
  RowReading reading;
  const std::size_t k = key_column_;
  const bool syntax_ok = row.problem.kind == CsvProblemKind::kNone;
  const bool count_ok = row.fields.size() == header_.size();
  if (!syntax_ok) {
    const std::string_view name =
        row.problem.column < header_.size() ? std::string_view(header_[row.problem.column]) : std::string_view();
    reading.problem = describe(row.problem, name);
  } else if (!count_ok) {
    reading.problem = "row has " + std::to_string(row.fields.size()) + " fields; the header has " +
                      std::to_string(header_.size());
  }
  const bool multi_line = row.end_line != row.line;
  if (!reading.problem.empty() && multi_line) {
    reading.problem += "; the row spans lines " + std::to_string(row.line) + "-" + std::to_string(row.end_line) +
                       ", so it may hold other rows and its key is not trusted";
  }
  reading.trusted = k < row.fields.size() &&
                    (syntax_ok || (row.problem.kind != CsvProblemKind::kUnterminatedQuote && k < row.problem.column)) &&
                    (count_ok || k == 0) && (reading.problem.empty() || !multi_line);
  if (reading.trusted && is_whitespace(row.fields[k])) {
    reading.trusted = false;
    if (reading.problem.empty()) {
      reading.problem = "key column '" + settings_.key + "' is " +
                        (row.fields[k].empty() ? std::string("empty") : std::string("blank"));
    }
  }
  if (reading.trusted) reading.key = row.fields[k];
  return reading;
}

std::string CsvPull::duplicate_message(const std::string& key, std::size_t line) const {
  const auto& lines = duplicates_.at(key);
  std::string others;
  std::size_t named = 0;
  for (std::size_t other : lines) {
    if (other == line) continue;
    if (named == kMaxLinesNamed) {
      others += " and " + std::to_string(lines.size() - 1 - named) + " more";
      break;
    }
    others += (named++ == 0 ? "" : ", ") + std::to_string(other);
  }
  return "duplicate key '" + key + "' (also on line" + (lines.size() > 2 ? "s " : " ") + others + ")";
}

core::Result<core::Page> CsvPull::next() {
  core::Page page;
  if (done_) {
    page.last = true;
    return page;
  }
  for (std::size_t count = 0; count < settings_.page_size; ++count) {
    if (!reader_->next(row_)) {
      if (reader_->io_failed()) return read_error();
      if (row_index_ != fingerprints_.size()) return changed_error();
      done_ = true;
      page.last = true;
      return page;
    }
    if (row_index_ >= fingerprints_.size() || fingerprints_[row_index_] != fingerprint(row_, key_column_)) {
      return changed_error();
    }
    ++row_index_;

    std::string origin = at(row_.line);
    RowReading reading = read_key(row_);
    if (!reading.problem.empty()) {
      page.issues.push_back(core::RecordIssue{std::move(reading.key), std::move(origin), std::move(reading.problem)});
      continue;
    }
    if (!duplicates_.empty() && duplicates_.count(reading.key) != 0) {
      std::string message = duplicate_message(reading.key, row_.line);
      page.issues.push_back(core::RecordIssue{std::move(reading.key), std::move(origin), std::move(message)});
      continue;
    }
    core::Record record;
    record.key = std::move(reading.key);
    record.origin = std::move(origin);
    record.attributes.reserve(header_.size());
    for (std::size_t i = 0; i < header_.size(); ++i) {
      record.attributes.push_back(core::Attribute{header_[i], {std::move(row_.fields[i])}});
    }
    page.records.push_back(std::move(record));
  }
  return page;
}

class CsvSource final : public core::Source {
 public:
  explicit CsvSource(config::CsvSourceSettings settings) : settings_(std::move(settings)) {}

  core::Result<std::unique_ptr<core::Pull>> start() override {
    auto pull = std::make_unique<CsvPull>(settings_);
    if (auto status = pull->open(); !status.ok()) return status.error();
    return std::unique_ptr<core::Pull>(std::move(pull));
  }

  std::string describe() const override { return "csv " + settings_.path; }

 private:
  config::CsvSourceSettings settings_;
};

}  // namespace

std::unique_ptr<core::Source> make_csv_source(const config::CsvSourceSettings& settings) {
  return std::make_unique<CsvSource>(settings);
}

}  // namespace dirsync::sources
