// The arena, its PageTagMap and the page heap.
//
// One range of address space is reserved once; every 4 KiB page in it has
//   - a 32-bit tag in a dense array (the PageTagMap): 0 = "not ours", else the encoded
//     (owner heap, size class) or the large-block marker. free() classifies a pointer with a
//     range check and one load of it;
//   - a Span* in a parallel page map, used by slow paths to find the record of the run a page
//     belongs to (and, in the noptag variant, by free itself: the "page header" route).
// Tags and map entries are written only by this unit: at page lifecycle events, under the
// page-heap lock (a run starts serving a class or a large block: set; it is given back: clear),
// and the TAG_SAMPLED bit through tag_mark_sampled / tag_unmark_sampled (sample.cc).
//
// The page heap hands out runs of pages, coalesces freed runs with free neighbours, and gives
// free memory back to the OS on a bounded schedule (resident-but-free bounded by the recent
// peak in use, at least HZ3_DIRTY_MIN_MIB; none older than HZ3_DIRTY_DECAY_MS). It is not
// the per-thread front end (heap.h).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "config.h"
#include "sizeclass.h"
#include "util.h"

namespace hz3 {

// Tag encoding (docs/probes.md, include/hz3/hz3.h): (owner_field << 16) | bin_field.
inline constexpr uint32_t TAG_BIN_LARGE = 0x7FFF;
inline constexpr uint32_t TAG_OWNER_LARGE = 0xFFFF;
inline constexpr uint32_t TAG_LARGE = (TAG_OWNER_LARGE << 16) | TAG_BIN_LARGE;
inline constexpr uint32_t MAX_HEAPS = 0xFFFE;  // owner_field = heap id + 1 <= 0xFFFE
// Bit 15 of the bin field: the page holds the start of a sampled block (sample.h). Set and
// cleared with atomic RMW when a block is sampled or its sample ends; any other tag write
// (span start or end) happens only when the page holds no live block, so none can clash.
// A tag with it never passes the free fast path's compare (tag ^ key >= NUM_BINS).
inline constexpr uint32_t TAG_SAMPLED = 0x8000;
constexpr uint32_t tag_strip(uint32_t tag) { return tag & ~TAG_SAMPLED; }
// Sets / clears TAG_SAMPLED on page idx (atomic RMW, see above). Slow path: sampled blocks only.
void tag_mark_sampled(size_t idx);
void tag_unmark_sampled(size_t idx);

constexpr uint32_t tag_encode(uint32_t heap_id, uint32_t bin) { return (heap_id + 1) << 16 | bin; }
constexpr uint32_t tag_owner_field(uint32_t tag) { return tag >> 16; }
constexpr uint32_t tag_bin_field(uint32_t tag) { return tag & 0xFFFF; }
// A tag decodes when it is 0 (miss), the large marker, or names a real heap and class.
constexpr bool tag_is_small(uint32_t tag) {
  uint32_t o = tag_owner_field(tag), b = tag_bin_field(tag);
  return o >= 1 && o <= MAX_HEAPS && b >= 1 && b <= NUM_CLASSES;
}
static_assert(tag_encode(0, 1) != 0 && tag_is_small(tag_encode(MAX_HEAPS - 1, NUM_CLASSES)));
static_assert(!tag_is_small(TAG_LARGE) && !tag_is_small(0));

enum class SpanState : uint8_t { FREE_DIRTY, FREE_RELEASED, SMALL, LARGE };

// The record of one run of pages. Small/medium fields are touched only by the owning heap.
struct Span {
  uintptr_t start;
  uint32_t npages;
  uint32_t tag;  // what lookups through the page map see; 0 for free runs
  SpanState state;
  bool zeroed;      // every byte reads as zero (fresh or released pages)
  bool in_partial;  // on its heap's partial list
  uint8_t pad_;
  // Small/medium span. Invariant: used + |free_list| + (bump_end - bump) / size == span_objs.
  uint32_t used;       // objects outside the span: live or in some thread cache
  void* free_list;     // objects given back to the span
  uintptr_t bump;      // next never-handed-out object; pages past it are untouched
  uintptr_t bump_end;  // start + span_objs * size
  Span* next;          // heap partial list, or page-heap bucket list
  Span* prev;
  Span* lru_next;  // dirty free runs, oldest first
  Span* lru_prev;
  uint64_t dirty_since_ms;
  uint64_t* alloc_bits;  // VARIANT=check: one bit per object, set while allocated

  uintptr_t end() const { return start + uintptr_t(npages) * PAGE_SIZE; }
};

// Read on every free; written once at initialisation. size == 0 until then, so every lookup
// misses and reaches the slow path, which initialises: no pthread_once on the hot path.
struct ArenaGlobals {
  uintptr_t base;
  uintptr_t size;
  uint32_t* tags;  // tags[(p - base) >> PAGE_SHIFT]; read with relaxed atomic loads
  Span** map;      // map[(p - base) >> PAGE_SHIFT]
  // Pages of the arena when it sits at FIXED_BASE with its tags at FIXED_TAGS (the free fast
  // path's range), else 0: then every free takes the slow path, which classifies through the
  // fields above (free_arena_slow).
  uintptr_t fixed_pages;
};
// Hidden: the free fast path compares with fixed_pages in place (rip-relative), not through the
// GOT.
extern ArenaGlobals g_arena __attribute__((visibility("hidden")));

// The fixed layout. The arena is reserved at FIXED_BASE when the address space there is free
// (MAP_FIXED_NOREPLACE), and its tag array then at FIXED_TAGS = FIXED_BASE / 1024, which puts the
// tag of page number n (address >> PAGE_SHIFT) at address 4 * n. So free computes n with one
// shift, checks n - FIXED_BASE_PAGE against fixed_pages, and loads the tag at a constant
// displacement: no load of the base or of the tag array's address. A page in that range but past
// what was reserved is never looked up (fixed_pages is the reserved size); when either placement
// is refused (another hz3 in the process, a program that mapped there first), fixed_pages stays 0
// and the arena is placed where the kernel chooses, as a dynamic layout.
inline constexpr uintptr_t FIXED_BASE = uintptr_t{HZ3_FIXED_BASE_GIB} << 30;
inline constexpr uintptr_t FIXED_BASE_PAGE = FIXED_BASE >> PAGE_SHIFT;
inline constexpr uintptr_t FIXED_TAGS = FIXED_BASE_PAGE * sizeof(uint32_t);
inline constexpr size_t ARENA_MAX_BYTES = size_t{HZ3_ARENA_GIB} << 30;
static_assert(FIXED_BASE_PAGE < (uintptr_t{1} << 31), "the base page number is a 32-bit immediate");
static_assert(FIXED_BASE == 0 ||
                  FIXED_TAGS + (ARENA_MAX_BYTES >> PAGE_SHIFT) * sizeof(uint32_t) <= FIXED_BASE,
              "the tag array lies below the arena");
static_assert(FIXED_BASE + ARENA_MAX_BYTES <= (uintptr_t{1} << 47), "inside user space");

// The fast path's lookup of p: whether p is in the fixed arena, and then its tag.
HZ3_FAST_PATH bool fixed_lookup(const void* p, uint32_t* tag) {
  uintptr_t n = uintptr_t(p) >> PAGE_SHIFT;
  if (HZ3_UNLIKELY(n - FIXED_BASE_PAGE >= g_arena.fixed_pages)) return false;
  if constexpr (PTAG) {
    *tag =
        __atomic_load_n(reinterpret_cast<const uint32_t*>(n * sizeof(uint32_t)), __ATOMIC_RELAXED);
  } else {
    Span* s = __atomic_load_n(&g_arena.map[n - FIXED_BASE_PAGE], __ATOMIC_RELAXED);
    *tag = s ? s->tag : 0;
  }
  return true;
}

HZ3_FAST_PATH uint32_t tag_load(size_t idx) {
  return __atomic_load_n(&g_arena.tags[idx], __ATOMIC_RELAXED);
}
HZ3_FAST_PATH Span* map_load(size_t idx) {
  return __atomic_load_n(&g_arena.map[idx], __ATOMIC_RELAXED);
}
HZ3_FAST_PATH bool in_arena(const void* p) { return uintptr_t(p) - g_arena.base < g_arena.size; }
HZ3_FAST_PATH size_t page_index(const void* p) {
  return (uintptr_t(p) - g_arena.base) >> PAGE_SHIFT;
}

// The tag the lookups of this build use: the dense array (PTAG) or the page header (noptag).
HZ3_FAST_PATH uint32_t lookup_tag(size_t idx) {
  if constexpr (PTAG) {
    return tag_load(idx);
  } else {
    Span* s = map_load(idx);
    return s ? s->tag : 0;
  }
}

// Hardened variant: the requested size of every live small/medium block, out of the block.
// Class c's blocks are all aligned to 2^shift = CLASSES[c].align (16 B ... 4 KiB), and one
// table per alignment holds a uint16 per 2^shift-byte granule of the arena: size + 1 where a
// live block of such a class starts, else 0. So a 64 KiB span of 80-byte blocks uses 8 KiB of
// its table and one of 8 KiB blocks 32 bytes. The tables are reserved with the arena (a quarter
// of its size in all, sparse); the pages of a released run are released with it.
struct HardBin {
  uintptr_t live;  // table of the class's alignment, minus (arena base >> shift) entries
  uint64_t shift;  // log2 of the class's alignment
  uint64_t mask;   // alignment - 1
  uint64_t pad_;
};
inline constexpr uint32_t HARD_SHIFT_MIN = 4, HARD_SHIFT_MAX = PAGE_SHIFT;
extern HardBin g_hard_bins[NUM_BINS];

// Hardened variant: the secrets every check compares with (heap.h's block markers, canaries and
// poison; large.cc's freed-block marker).
struct HardSecrets {
  uint64_t mark;    // marker of a free block: mark ^ address
  uint64_t poison;  // word pattern of a free block's poisoned bytes
  uint64_t canary;  // one non-zero byte, repeated
  // Copies of the arena's base and size / 16, next to the secrets: one base address for all
  // of malloc's checks. (link - base) rotated right by 4 is below `granules` iff the link is a
  // 16-byte aligned arena address.
  uintptr_t base;
  uintptr_t granules;
};
extern HardSecrets g_hard;  // random, set by global_init before the first block exists

// Hardened variant: every large run ends with a PROT_NONE guard page, part of its span (npages
// counts it) but not of the block. It is made read-write again before the run goes back.
inline constexpr size_t LARGE_GUARD_PAGES = HARDENED ? 1 : 0;

// Reserves the arena and its maps. Idempotent; false only when no arena at all could be had
// (then every allocation uses the mmap fallback).
bool arena_init();

namespace page_heap {

// Allocates npages (aligned to align_pages) and makes them a SMALL span with `tag` on every page
// or a LARGE run tagged at its head. nullptr when the arena is exhausted.
Span* alloc_small(uint32_t npages, uint32_t tag, uint32_t obj_size, uint32_t nobjs);
// A large run of npages for the block (+ LARGE_GUARD_PAGES).
Span* alloc_large(size_t npages, size_t align_pages);
// Gives a span's pages back: tags and map entries cleared, run coalesced, release scheduled.
void free_span(Span* s);
// Large blocks in place: grow into a free right neighbour, or give the tail back (new_npages
// counts the block's pages, without the guard).
bool grow_large(Span* s, size_t new_npages);
void shrink_large(Span* s, size_t new_npages);
// Hardened: p (tag 0) is the start of a freed large block whose word 1 still holds `mark`
// (written by large_free). Never touches a guard page or uncommitted memory.
bool freed_large_marked(const void* p, uint64_t mark);
// Starts the scavenger thread when pages are dirty and none runs yet (see arena.cc). Call only
// from an allocation slow path that holds no allocator lock; one load when it runs already.
void scavenger_poll();
// Releases every dirty free run now (malloc_trim). Returns bytes released.
size_t release_all();

// fork(): the page-heap lock is held across it.
void lock_for_fork();
void unlock_after_fork(bool child);

struct Stats {
  size_t hwm_pages, committed_pages, dirty_pages, released_pages, free_runs;
};
Stats stats();

// Statistics: calls fn for every run of pages below the high-water mark (spans, large blocks,
// free runs), in address order, under the page-heap lock, then returns stats() and the bytes of
// span records and bitmaps mapped. The caller holds every heap lock (stats_lock_heaps), so small
// spans' object counts hold still too. fn must not allocate.
Stats for_each_run(void (*fn)(const Span& s, void* ctx), void* ctx, size_t* meta_bytes);

}  // namespace page_heap
}  // namespace hz3
