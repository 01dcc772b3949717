// Allocator statistics: one ledger of every byte the allocator holds, computed on demand by
// walking its own structures under their locks (nothing is counted on the malloc/free fast
// paths). Behind mallinfo, mallinfo2, malloc_stats and malloc_info; docs/stats.md defines each
// line. The ledger is a plain C struct of fixed-width fields so it can later be published to
// tracers next to the arena descriptor (include/hz3/hz3.h) without changing shape.
#pragma once

#include <stdint.h>

#define HZ3_STATS_VERSION 1u

// Bytes unless a name says otherwise. Two sums hold exactly:
//   app_small + app_large + thread_caches + inboxes + span_free + span_waste
//     + pageheap_dirty + pageheap_released + unaccounted          = arena
//   arena + huge + outside + metadata                             = mapped
// unaccounted is 0 unless the walk found a page in no run (a bug).
struct hz3_stats {
  uint32_t version;     // HZ3_STATS_VERSION
  uint32_t heaps;       // heaps ever created (ids 0 … heaps-1); heap 0 is the shared one
  uint32_t heaps_live;  // heaps owned by a running thread
  uint32_t reserved_;
  uint64_t app_small;          // small/medium objects handed out of spans, minus those in caches
                               // and inboxes: held by the application
  uint64_t app_large;          // large blocks, whole pages
  uint64_t thread_caches;      // objects in thread caches (other threads': a racy snapshot)
  uint64_t inboxes;            // objects freed by other threads, waiting for their heap
  uint64_t span_free;          // objects inside small/medium spans not handed out
  uint64_t span_waste;         // the tail of each span no object fits into
  uint64_t pageheap_dirty;     // free runs of the page heap, resident
  uint64_t pageheap_released;  // free runs given back to the OS (MADV_DONTNEED): not resident
  uint64_t unaccounted;
  uint64_t arena;      // arena pages handed out (high-water mark)
  uint64_t huge;       // huge blocks, mmap'ed outside the arena
  uint64_t metadata;   // span records, bitmaps, heaps, tag and page maps, huge table
  uint64_t mapped;     // arena + huge + outside + metadata
  uint64_t app_total;  // app_small + app_large + huge + outside_used: what the
                       // application holds
  uint64_t cached_objs, inbox_objs, free_objs;  // objects in the lines above
  uint64_t small_spans, large_blocks, huge_blocks, free_runs;
  uint64_t arena_reserved;   // address space reserved for the arena
  uint64_t arena_committed;  // of it, made read-write (pages not touched cost nothing)
  uint64_t outside;          // chunks serving small/medium classes outside a full arena
  uint64_t outside_used;     // of them, objects held by the application
  uint64_t outside_chunks;
};

namespace hz3 {
// Fills *out; false only when the snapshot could not get memory for its scratch space.
bool stats_snapshot(hz3_stats* out);
}  // namespace hz3
