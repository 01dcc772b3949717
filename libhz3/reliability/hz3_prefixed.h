// The allocator's C entry points as they are named when libhz3/src is compiled with
// -DHZ3_API_PREFIX: hz3_malloc, hz3_free, … They interpose nothing, so a process can run a
// sanitizer's allocator (ASan, TSan) and hz3 side by side while the sanitizer checks hz3's own
// code. Used by the fuzz target and the sanitizer harness only; libhz3.so exports the standard
// names and has no such header. Signatures mirror libhz3/src/malloc.cc.
#pragma once

#include <stddef.h>

extern "C" {
void* hz3_malloc(size_t size);
void hz3_free(void* p);
void* hz3_calloc(size_t n, size_t size);
void* hz3_realloc(void* p, size_t size);
void* hz3_reallocarray(void* p, size_t n, size_t size);
int hz3_posix_memalign(void** out, size_t align, size_t size);
void* hz3_aligned_alloc(size_t align, size_t size);
void* hz3_memalign(size_t align, size_t size);
void* hz3_valloc(size_t size);
void* hz3_pvalloc(size_t size);
size_t hz3_malloc_usable_size(void* p);
int hz3_malloc_trim(size_t pad);
}
