// Renderings of a HeapReport: the text tables, one JSON object per interval (every site with
// every stack) and folded stacks for flame graphs. Pure string building.
#pragma once

#include <cstddef>
#include <string>

#include "heap_model.h"

namespace hz3top {

// The site table, written here only: the text report prints it per process, the interactive
// view (heap_tui.cc) as one table of every process's sites with `pid`, a PID column first.
// Columns LIVE ± ΔLIVE GROWTH/s OBJECTS AGE ALLOC/s ALLOCATED SAMPLES, then SITE (the site's
// label and source line); docs/heap-profiling.md says what each means.
std::string heap_site_header(bool pid);
std::string heap_site_row(const HeapProc& p, const HeapSite& s, bool pid);
// A process's summary line, the text report's (after its clock) and the interactive view's:
// "pid 42 svc  live ~1.0 MiB ±4% (+0 B since last, 2.0 KiB/s since attach)  allocated ~…".
std::string heap_proc_summary(const HeapProc& p);

// `top`: sites listed per process in each table (0: all).
std::string render_heap_text(const HeapReport& r, size_t top);
std::string render_heap_json(const HeapReport& r, size_t top);
// One line per stack, "comm;root;…;leaf BYTES", root first: live bytes (or allocated bytes with
// `alloc`), rounded, stacks of 0 bytes left out. libhz3's own frames are left out; other
// wrappers (zmalloc, PyMem_Malloc) stay as the leaves.
std::string render_heap_folded(const HeapReport& r, bool alloc);

}  // namespace hz3top
