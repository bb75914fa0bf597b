// The CSV reader (csv_reader.h) and the CSV source (csv_source.h).
//
// Reader: the rows must not depend on how the input is chunked (read once with
// the default 64 KiB chunks, once with 1 to 7 bytes); line numbers ascend;
// a well-formed row, and every field before a row's problem, is valid UTF-8.
// Source: a pull over the same bytes (a memfd, no disk) yields one record or
// issue per data row, never more than page_size per page, records with
// non-empty keys that no other record has.
//
// Input: the body is the CSV file. Header (optional): "delimiter" (its first
// character; default ','), "key" (default: the first header cell), "page_size",
// "chunk" (the small chunk size).
#include <sys/mman.h>
#include <unistd.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "connectors/sources/csv/csv_reader.h"
#include "connectors/sources/csv/csv_source.h"
#include "fuzz/fuzz_input.h"

using namespace dirsync;

namespace {

std::vector<sources::CsvRow> read_all(const std::string& text, sources::CsvOptions options) {
  std::istringstream in(text);
  sources::CsvReader reader(in, options);
  std::vector<sources::CsvRow> rows;
  sources::CsvRow row;
  while (reader.next(row)) rows.push_back(row);
  fuzz::require(!reader.io_failed());
  return rows;
}

bool same(const sources::CsvRow& a, const sources::CsvRow& b) {
  return a.fields == b.fields && a.line == b.line && a.end_line == b.end_line && a.problem.kind == b.problem.kind &&
         a.problem.column == b.problem.column && a.problem.quote_line == b.problem.quote_line;
}

// The file the source reads: one memfd, rewritten for every input.
const std::string& memfd_path() {
  static const std::string path = [] {
    const int fd = memfd_create("csv_fuzz", 0);
    fuzz::require(fd >= 0);
    return "/proc/self/fd/" + std::to_string(fd);
  }();
  return path;
}

void write_file(const std::string& text) {
  const int fd = std::stoi(memfd_path().substr(sizeof("/proc/self/fd/") - 1));
  fuzz::require(ftruncate(fd, 0) == 0);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = pwrite(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
    fuzz::require(n > 0);
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fuzz::Input in = fuzz::split_input(data, size);
  const std::string delimiter = fuzz::str(in.header, "delimiter", ",");
  sources::CsvOptions options;
  options.delimiter = delimiter.empty() ? ',' : delimiter.front();
  // The source (and config) refuse these delimiters: the reader is never given them.
  if (options.delimiter == '"' || options.delimiter == '\r' || options.delimiter == '\n' || options.delimiter == '\0') {
    return 0;
  }

  const std::vector<sources::CsvRow> rows = read_all(in.body, options);
  sources::CsvOptions small = options;
  small.chunk_size = static_cast<std::size_t>(fuzz::integer(in.header, "chunk", 1 + size % 7, 1, 64));
  const std::vector<sources::CsvRow> rows_small = read_all(in.body, small);
  fuzz::require(rows.size() == rows_small.size());
  std::size_t last_line = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const sources::CsvRow& row = rows[i];
    fuzz::require(same(row, rows_small[i]));
    fuzz::require(row.line > last_line && row.end_line >= row.line);
    last_line = row.end_line;
    const std::size_t exact = row.problem.kind == sources::CsvProblemKind::kNone ? row.fields.size()
                                                                                  : row.problem.column;
    for (std::size_t f = 0; f < exact && f < row.fields.size(); ++f) {
      fuzz::require(sources::is_valid_utf8(row.fields[f]));
    }
  }

  // The source, over the same bytes.
  write_file(in.body);
  config::CsvSourceSettings settings;
  settings.path = memfd_path();
  settings.delimiter = options.delimiter;
  settings.page_size = static_cast<std::size_t>(fuzz::integer(in.header, "page_size", 3, 1, 100));
  settings.key = fuzz::str(in.header, "key", rows.empty() || rows[0].fields.empty() ? "id" : rows[0].fields[0]);
  auto source = sources::make_csv_source(settings);
  auto pull = source->start();
  if (!pull.ok()) return 0;
  std::set<std::string> keys;
  std::size_t yielded = 0;
  for (;;) {
    auto page = pull.value()->next();
    if (!page.ok()) return 0;  // an Error is an incomplete pull: nothing more to check
    fuzz::require(page->records.size() + page->issues.size() <= settings.page_size);
    yielded += page->records.size() + page->issues.size();
    for (const core::Record& record : page->records) {
      fuzz::require(!record.key.empty() && keys.insert(record.key).second);
      fuzz::require(record.attributes.size() == rows[0].fields.size());
    }
    fuzz::require(yielded < rows.size());
    if (page->last) break;
  }
  // Every data row (all rows but the header) is a record or an issue.
  fuzz::require(yielded == rows.size() - 1);
  return 0;
}
