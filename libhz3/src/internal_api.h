// Internal entry points shared by the C API (malloc.cc) and the C++ operators (new.cc), so
// operator new reaches the allocator without another trip through an interposable symbol.
#pragma once

#include <cstddef>

namespace hz3 {
void* alloc(size_t size);
void* alloc_aligned(size_t align, size_t size);
void dealloc(void* p);
}  // namespace hz3
