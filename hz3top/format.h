// Text renderings of a Report: the process table that the plain format and the interactive view
// share, the one-line-per-interval plain format and the one-object-per-interval JSON format
// (stable keys, see docs/hz3top.md). Pure string building; where the text goes (stdout, ncurses)
// is the caller's business. The number, byte and clock formatters are output.h's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model.h"
#include "output.h"

namespace hz3top {

// Events per thousand frees, 3 significant digits ("0.125", "42.7"); "-" when there is none.
std::string fmt_per_kfree(std::optional<double> v);
// A bin as people name it: "16 B", "64 KiB", "large", "bin 77" when the size is unknown.
std::string fmt_bin(uint32_t bin, uint32_t size);
// Short column name for a perf event per 1000 frees: "PF/kfree", "CM/kfree", "EV/kfree".
std::string perf_column(const std::string& event);

// The process table: PID, COMM, HIT/s … ALLOC%, one row per process and one for "all". The
// header and the rows are written here only; the plain format prefixes a TIME column, the
// interactive view draws them as they are.
std::string proc_table_header(const std::string& perf_event);
// `name` goes in the COMM column (cut to its 15 columns); the "all" row (pid 0) has no pid.
std::string proc_table_row(const ProcView& v, const std::string& name);
// The COMM column of a process: its comm, with " (exited)" once it has exited.
std::string proc_name(const ProcView& v);

// One JSON object per report, in the key order of docs/hz3top.md.
Json report_json(const Report& r);
// report_json on one line, no trailing newline.
std::string render_json(const Report& r);

// The plain format: a header line, then one line per process per interval; with more than one
// process also an "all" line; the final report adds a "# totals" line per process and, where the
// allocator's ledger was read, its "# ledger" line (ledger_view.h).
std::string plain_header(const std::string& perf_event);
std::string plain_lines(const Report& r);

}  // namespace hz3top
