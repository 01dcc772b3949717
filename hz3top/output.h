// The output primitives every hz3top view shares (the counting view, `hz3top heap`,
// --openmetrics): numbers, bytes and clock times for people, JSON documents, and the wording of
// errors that more than one place prints. Pure string building, no I/O; unit-tested in
// hz3top/tests/unit.cc so that every view rounds the same way.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace hz3top {

// ---- numbers for people ----

// 0, 12, 3.5, 999, 1.23k, 45.6M, 7.89G: at most 5 characters for any count or rate; "-" for
// NaN and infinity.
std::string fmt_si(double v);
// Bytes in binary units: "512 B", "4.0 KiB", "91.6 MiB", "200 MiB", "1.2 GiB". One decimal below
// 100 of a unit, none above; a value that would print as 1024.0 of a unit moves up one. Whole
// bytes below 1 KiB (a fractional rate such as 0.4 B/s rounds to "0 B"). Negative values keep
// their sign; NaN and infinity print "-".
std::string fmt_bytes(double bytes);
// A change in bytes, signed: "+1.5 KiB", "-200 MiB", "+0 B" (fmt_bytes with a sign always
// shown; a change that rounds to 0 B is "+0 B"); "-" for NaN and infinity.
std::string fmt_bytes_delta(double bytes);
// A ratio as a percentage with `decimals` digits ("99.95"); "-" when there is none.
std::string fmt_pct(std::optional<double> ratio, int decimals = 1);
// A unix time as local HH:MM:SS; with `tenths`, HH:MM:SS.t (tells sub-second intervals apart).
std::string fmt_clock(double unix_seconds, bool tenths = false);
// A duration: "12.3s" below a minute, "45m" below an hour, "1.5h" above (as each rounds: 59.97 s
// is "1m", not "60.0s"); "-" for a negative, NaN or infinite one.
std::string fmt_duration(double seconds);

// A table cell: `s` padded with blanks to `width` columns, on the right (`left`) or on the left;
// a left-aligned cell is also cut to `width` columns. Columns are UTF-8 code points (every byte
// but continuation bytes), so "±" and "ΔLIVE" line up with ASCII cells.
std::string pad_cell(const std::string& s, int width, bool left);

// ---- JSON ----

// Objects keep the order in which keys are inserted: the order docs/hz3top.md documents.
using Json = nlohmann::ordered_json;
// A measured number: rounded to 6 significant digits (the digits that mean something; nlohmann
// then prints the shortest form, "0.333333" rather than "0.33333333333333331"); null when NaN or
// infinite.
Json json_number(double v);
// An optional measurement: null when absent.
Json json_number(std::optional<double> v);
// A unix time with millisecond resolution.
Json json_time(double unix_seconds);
// The document on one line, no trailing newline. Strings that are not valid UTF-8 (a process
// name is whatever bytes the program put in its comm) have each bad byte replaced by U+FFFD,
// so the output always parses.
std::string json_dump(const Json& j);
// `s` as the inside of a JSON string literal (no quotes), with the same UTF-8 replacement.
std::string json_escape(const std::string& s);
// `s` with the same UTF-8 replacement and nothing else changed: for the other outputs that must
// be UTF-8 (OpenMetrics label values).
std::string valid_utf8(const std::string& s);

// ---- error wording ----

// What hz3top needs to load BPF programs and open perf events.
constexpr const char* PRIVILEGES_NEEDED = "needs root or CAP_BPF+CAP_PERFMON";
// What `hz3top heap` needs besides: its probes attach through perf events (proc.h).
constexpr const char* HEAP_PRIVILEGES_NEEDED = "needs root or CAP_SYS_ADMIN";
// The one-line usage error "PROG: WHAT (see PROG --help)" on stderr; returns 2, the exit status
// of a usage error.
int usage_error(const char* prog, const std::string& what);

}  // namespace hz3top
