#pragma once
// The CSV source (`type: csv`): one UTF-8 file with a header row.
//
// Contract (see core/source.h for what issues and errors mean to the engine):
// - The header names the attributes. An empty or duplicate name, a problem in
//   the header row, or a header without the `key` column fails the pull with an
//   Error (kind kSource) naming file:line. So does a file that cannot be opened
//   or read, and a file that changes while it is being read.
// - Every data row yields either a Record (key = the key column's value, exact,
//   not trimmed; one single-valued attribute per column, an empty cell being
//   ""; origin "path:line") or a RecordIssue (origin "path:line"). Never dropped.
// - A row is an issue when it is malformed (see csv_reader.h), has the wrong
//   number of fields, has an empty or whitespace-only key, or shares its key
//   with another row. The issue carries the key only when that key can be
//   trusted, which protects it from detach; otherwise its key is empty, which
//   makes the pull incomplete (nothing is detached at all). A key is trusted
//   when its cell lies before any syntax problem in the row, the row has the
//   header's field count (or the key is the first column: a missing or extra
//   delimiter elsewhere cannot shift it), and the malformed row does not span
//   several lines (an unbalanced quote may have swallowed other rows).
// - Duplicate keys: every row with a key that occurs more than once is an
//   issue ("duplicate key 'K' (also on lines 3, 7)"); none of them wins.
// - Blank lines (empty, or spaces and tabs only) are skipped, at the end and in
//   the middle alike: they carry no data and spreadsheets leave them behind.
// - Pages hold up to `page_size` rows (records and issues together); the last
//   page has `last = true` and may be empty.
//
// Cost: the file is read two or three times (a pre-pass finds duplicate keys
// keeping 8 bytes per row; a second, only when the pre-pass found candidates,
// confirms them with exact strings; then the pass that yields pages). Memory
// holds one page, not the file. The file stays open across passes, so a file
// replaced by rename is read consistently; one rewritten in place is detected
// and fails the pull.
#include <memory>

#include "config/config.h"
#include "core/source.h"

namespace dirsync::sources {

std::unique_ptr<core::Source> make_csv_source(const config::CsvSourceSettings& settings);

}  // namespace dirsync::sources
