// libhz3top_heap_lib.so: the part of hz3top's heap test workload (heap_sites.cc) that lives in a
// shared library built without frame pointers.
#pragma once

#include <cstddef>

// Calls heap_lib_leak(size), which mallocs and returns the block.
extern "C" void* heap_lib_outer(size_t size);
extern "C" void* heap_lib_leak(size_t size);
