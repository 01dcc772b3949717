// Text renderings of a Report: human-sized numbers for the terminal, the one-line-per-interval
// plain format and the one-object-per-interval JSON format (stable keys, see docs/hz3top.md).
// Pure string building; where the text goes (stdout, ncurses) is the caller's business.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model.h"

namespace hz3top {

// 0, 12, 3.5, 999, 1.23k, 45.6M, 7.89G: at most 5 characters for any count or rate.
std::string fmt_si(double v);
// 512 B, 4.0 KiB, 91.6 MiB, 1.2 GiB.
std::string fmt_bytes(uint64_t bytes);
// A ratio as a percentage with `decimals` digits ("99.95"); "-" when there is none.
std::string fmt_pct(std::optional<double> ratio, int decimals = 1);
// Events per thousand frees, 3 significant digits ("0.125", "42.7"); "-" when there is none.
std::string fmt_per_kfree(std::optional<double> v);
// A bin as people name it: "16 B", "64 KiB", "large", "bin 77" when the size is unknown.
std::string fmt_bin(uint32_t bin, uint32_t size);
// Short column name for a perf event per 1000 frees: "PF/kfree", "CM/kfree", "EV/kfree".
std::string perf_column(const std::string& event);

std::string json_escape(const std::string& s);
// One JSON object (one line, no trailing newline) per report.
std::string render_json(const Report& r);

// The plain format: a header line, then one line per process per interval; with more than one
// process also an "all" line; the final report adds a "# totals" line per process.
std::string plain_header(const std::string& perf_event);
std::string plain_lines(const Report& r);

}  // namespace hz3top
