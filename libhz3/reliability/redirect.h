// Force-included (-include) into test programs written against the standard names
// (libhz3/unit/unit_test.cc, libhz3/tests/stress_test.cc) when the sanitizer harness builds them
// against the hz3_-prefixed allocator core: every system header they use is read first, with the
// real names, and only then are malloc, free, … renamed to hz3_malloc, hz3_free, … So the
// program's own calls reach hz3 while C++ containers, threads and libc keep the sanitizer's
// allocator, and nothing ever frees a block into the wrong one. Not for new code: the fuzz target
// and rel_san_mt call hz3_* directly.
#pragma once

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hz3_prefixed.h"

#define malloc hz3_malloc
#define free hz3_free
#define calloc hz3_calloc
#define realloc hz3_realloc
#define reallocarray hz3_reallocarray
#define posix_memalign hz3_posix_memalign
#define aligned_alloc hz3_aligned_alloc
#define memalign hz3_memalign
#define valloc hz3_valloc
#define pvalloc hz3_pvalloc
#define malloc_usable_size hz3_malloc_usable_size
#define malloc_trim hz3_malloc_trim
