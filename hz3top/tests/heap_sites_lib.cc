// A shared library without frame pointers for hz3top's heap test (heap_sites_lib.h). Both
// functions use rbp as an ordinary register where the compiler wants, and heap_lib_outer does
// work after the call, so it is neither inlined nor a tail call: a frame-pointer walk from
// malloc cannot name heap_lib_outer and its caller; DWARF CFI can.
#include "heap_sites_lib.h"

#include <cstdlib>

volatile size_t g_heap_lib_calls;

extern "C" __attribute__((noinline)) void* heap_lib_leak(size_t size) {
  void* p = malloc(size);
  if (!p) abort();
  static_cast<char*>(p)[0] = 2;
  return p;
}

extern "C" __attribute__((noinline)) void* heap_lib_outer(size_t size) {
  void* p = heap_lib_leak(size);
  g_heap_lib_calls = g_heap_lib_calls + 1;
  return p;
}
