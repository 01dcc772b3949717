// Internal entry points shared by the C API (malloc.cc, stats.cc) and the C++ operators
// (new.cc), so operator new reaches the allocator without another trip through an interposable
// symbol; and the two macros that name and export the C API.
#pragma once

#include <cstddef>

// Exported with default visibility (everything else in libhz3 is hidden).
#define HZ3_EXPORT_C extern "C" __attribute__((visibility("default")))

// Sanitizer and fuzzing builds compile the allocator with -DHZ3_API_PREFIX: the entry points
// become hz3_malloc, hz3_free, … and interpose nothing, so ASan/TSan/UBSan keep their own
// allocator while checking ours. Production builds define the standard names.
#ifdef HZ3_API_PREFIX
#define HZ3_API(name) hz3_##name
#else
#define HZ3_API(name) name
#endif

namespace hz3 {
void* alloc(size_t size);
void* alloc_aligned(size_t align, size_t size);
void dealloc(void* p) noexcept;  // noexcept: operator delete tail-jumps to it, frameless
}  // namespace hz3
