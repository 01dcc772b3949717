// Renderings of a HeapReport: the text tables, one JSON object per interval (every site with
// every stack) and folded stacks for flame graphs. Pure string building.
#pragma once

#include <cstddef>
#include <string>

#include "heap_model.h"

namespace hz3top {

// `top`: sites listed per process in each table (0: all).
std::string render_heap_text(const HeapReport& r, size_t top);
std::string render_heap_json(const HeapReport& r, size_t top);
// One line per stack, "comm;root;…;leaf BYTES", root first: live bytes (or allocated bytes with
// `alloc`), rounded, stacks of 0 bytes left out. libhz3's own frames are left out; other
// wrappers (zmalloc, PyMem_Malloc) stay as the leaves.
std::string render_heap_folded(const HeapReport& r, bool alloc);

}  // namespace hz3top
