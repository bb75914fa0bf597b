#pragma once
// How run reports and plans are shown: a readable form for operators and a JSON
// form for machines. Both contain payloads and keys, never secrets (mapped
// payloads are built from source attributes only).
#include <string>

#include <nlohmann/json.hpp>

#include "engine/sync_engine.h"

namespace dirsync::engine {

// The human summary printed after a run: counts, then problems (at most
// `max_problems`, with a line saying how many more).
std::string format_summary(const RunReport& report, std::size_t max_problems = 50);
// A dry run's changes, one line each, then the summary counts.
std::string format_plan(const RunReport& report, std::size_t max_changes = 1000);
nlohmann::json report_to_json(const RunReport& report, bool with_plan);
// `dirsync plan JOB --explain KEY`: the source record, the filter decision, the
// mapped payload, the snapshot entry and what the next sync would do and why.
// Empty / null when the report has no explanation.
std::string format_explanation(const RunReport& report);
nlohmann::json explanation_to_json(const RunReport& report);

}  // namespace dirsync::engine
