// Compile-time configuration of libhz3. Every variant is a set of -D flags chosen by the
// Makefile (VARIANT=release|check|noprobes|noptag|hardened); the allocator reads no environment, so
// an A/B pair of builds is reproducible. Not a place for runtime tunables.
#pragma once

#include <cstddef>
#include <cstdint>

// HZ3_SMALL_V2_PTAG_ENABLE is the gate of the PTAG A/B comparison (`make bench-ptag`,
// docs/benchmarks/ptag-ab.md). 1: free/realloc/usable_size classify a pointer with a range check
// and one load of the dense page-tag array. 0: the same allocator classifies through the
// out-of-band page header (the span record reached from the page map), so PTAG on vs off can be
// rerun (VARIANT=noptag).
#ifndef HZ3_SMALL_V2_PTAG_ENABLE
#define HZ3_SMALL_V2_PTAG_ENABLE 1
#endif

// USDT probes (docs/probes.md). 0 compiles every probe site out (VARIANT=noprobes).
#ifndef HZ3_PROBES
#define HZ3_PROBES 1
#endif

// VARIANT=check: assertions, double-free and interior-pointer detection, pattern fill.
#ifndef HZ3_CHECK
#define HZ3_CHECK 0
#endif

// Which assertions are compiled in (util.h): 0 none, 1 cheap (HZ3_ASSERT), 2 also internal
// (HZ3_ASSERT_INTERNAL), 3 also expensive (HZ3_ASSERT_EXPENSIVE). Follows the variant: 2 when
// HZ3_CHECK is set (VARIANT=check), 0 otherwise; -DHZ3_ASSERT_LEVEL=N overrides it (the
// fuzzcheck build of libhz3/reliability uses 3).
#ifndef HZ3_ASSERT_LEVEL
#if HZ3_CHECK
#define HZ3_ASSERT_LEVEL 2
#else
#define HZ3_ASSERT_LEVEL 0
#endif
#endif

// VARIANT=hardened: detection at every free instead of speed (docs/hardened.md): double and
// invalid frees of every class, tail canaries, freed-block poisoning, shuffled refills, guard
// pages after large and around huge blocks. Everything it adds sits under `if constexpr
// (HARDENED)`, so the other variants compile to the same code.
#ifndef HZ3_HARDENED
#define HZ3_HARDENED 0
#endif

// Virtual space reserved for the arena. Halved on failure (e.g. under `ulimit -v`) down to
// HZ3_ARENA_MIN_MIB; without any arena every block is served by the mmap fallback.
#ifndef HZ3_ARENA_GIB
#define HZ3_ARENA_GIB 64
#endif
#ifndef HZ3_ARENA_MIN_MIB
#define HZ3_ARENA_MIN_MIB 64
#endif

// Where the arena is placed when that address range is free (arena.h, the fixed layout): 4 TiB,
// above what PIE executables, mmap and the stack use by default on x86-64 (0x55…, 0x7f…), above
// the low 4 GiB that 32-bit-pointer users and compressed-oops heaps want, and below the 8 TiB that
// keeps its page number a 32-bit immediate. Its tag array goes to 1/1024 of it (4 GiB).
// 0: never try, always the dynamic layout (every free through the slow path). Sanitizer builds
// get 0: their shadow memory lies at fixed addresses too (TSan's and ASan's cover 4 TiB), and
// TSan's mmap interceptor drops an address outside its application ranges, which would turn
// MAP_FIXED_NOREPLACE into a mapping at address 0.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HZ3_SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define HZ3_SANITIZER_BUILD 1
#endif
#endif
#ifndef HZ3_FIXED_BASE_GIB
#ifdef HZ3_SANITIZER_BUILD
#define HZ3_FIXED_BASE_GIB 0
#else
#define HZ3_FIXED_BASE_GIB 4096
#endif
#endif

// Free pages kept dirty (resident) for reuse before they are given back with madvise. The bound
// follows the program: the most pages in use during the last two HZ3_PEAK_WINDOW_MS windows,
// shifted right by HZ3_DIRTY_PEAK_SHIFT (0: the peak itself), and never less than
// HZ3_DIRTY_MIN_MIB, so a program that churns 300 MiB of large blocks reuses freed runs instead
// of faulting them in again, while a small one keeps at most 16 MiB. No dirty run waits longer
// than HZ3_DIRTY_DECAY_MS: runs older than that are released at every page-heap visit and by
// the scavenger thread, which needs no allocator call (an idle process comes down too).
#ifndef HZ3_DIRTY_MIN_MIB
#define HZ3_DIRTY_MIN_MIB 16
#endif
#ifndef HZ3_DIRTY_PEAK_SHIFT
#define HZ3_DIRTY_PEAK_SHIFT 0
#endif
#ifndef HZ3_PEAK_WINDOW_MS
#define HZ3_PEAK_WINDOW_MS 2000
#endif
#ifndef HZ3_DIRTY_DECAY_MS
#define HZ3_DIRTY_DECAY_MS 1000
#endif

// Bytes a thread cache may hold per size class before it returns objects to their spans.
#ifndef HZ3_CACHE_BIN_BYTES
#define HZ3_CACHE_BIN_BYTES (64 * 1024)
#endif

// ... and at most this many objects, whatever their size: each cached object can keep its
// whole span resident.
#ifndef HZ3_CACHE_MAX_OBJS
#define HZ3_CACHE_MAX_OBJS 1024
#endif

// 1: the medium classes are cached in per-thread arrays of pointers (magazines, heap.h), bounded
// on every free; 0: every class in a list, bounded every check_every frees.
#ifndef HZ3_MAGAZINES
#define HZ3_MAGAZINES 1
#endif
// With magazines on, the classes of this size and above are magazines, the smaller ones lists
// (2049: the medium classes; 1: every class).
#ifndef HZ3_MAG_MIN_SIZE
#define HZ3_MAG_MIN_SIZE 2049
#endif

// A magazine's cap starts at HZ3_MAG_BIN_BYTES per class (HZ3_MAG_MIN_OBJS objects at least,
// whatever their size) and doubles, up to HZ3_MAG_MAX_BYTES (HZ3_MAG_MAX_MIN_OBJS at least),
// each time the magazine runs full right after a refill: a class whose fill swings across the
// whole magazine between two slow paths. The magazine is bounded on every free by its current
// cap, so that is what an idle thread keeps per class; a scavenge (a mass free) and the thread's
// exit put the caps back at their start.
#ifndef HZ3_MAG_BIN_BYTES
#define HZ3_MAG_BIN_BYTES (128 * 1024)
#endif
#ifndef HZ3_MAG_MIN_OBJS
#define HZ3_MAG_MIN_OBJS 16
#endif
#ifndef HZ3_MAG_MAX_BYTES
#define HZ3_MAG_MAX_BYTES (512 * 1024)
#endif
#ifndef HZ3_MAG_MAX_MIN_OBJS
#define HZ3_MAG_MAX_MIN_OBJS 64
#endif

// Local frees between two checks of a cache list's bound, at least (see sizeclass.h).
#ifndef HZ3_CHECK_EVERY_MIN
#define HZ3_CHECK_EVERY_MIN 64
#endif

// Pages per span of the small classes (<= 2 KiB). Medium spans are sized to hold >= 8 objects.
#ifndef HZ3_SMALL_SPAN_PAGES
#define HZ3_SMALL_SPAN_PAGES 16
#endif

// Hits are reported through the hz3:hits probe once a thread has this many pending.
#ifndef HZ3_HIT_BATCH
#define HZ3_HIT_BATCH 8192
#endif

// Requests at or above this go straight to mmap, outside the arena (and outside the tag map).
#ifndef HZ3_HUGE_MIB
#define HZ3_HUGE_MIB 1024
#endif

// Test only: a fixed delay of this many empty loop iterations on every free, so bench triage can
// prove it detects a slowdown (the slowfree library of bench/bench.mk). 0 in every real build.
#ifndef HZ3_TEST_SLOW_FREE_SPINS
#define HZ3_TEST_SLOW_FREE_SPINS 0
#endif

namespace hz3 {

inline constexpr size_t PAGE_SHIFT = 12;
inline constexpr size_t PAGE_SIZE = size_t{1} << PAGE_SHIFT;
inline constexpr size_t HUGE_THRESHOLD = size_t{HZ3_HUGE_MIB} << 20;
inline constexpr bool PTAG = HZ3_SMALL_V2_PTAG_ENABLE != 0;
inline constexpr bool CHECK = HZ3_CHECK != 0;
inline constexpr bool HARDENED = HZ3_HARDENED != 0;
inline constexpr bool MAGAZINES = HZ3_MAGAZINES != 0;

}  // namespace hz3
