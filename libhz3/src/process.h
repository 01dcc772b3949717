// Process-wide state of the allocator: the one-time initialisation (global_init), the registry
// of every heap, and fork. It belongs to the heap layer (README.md): heap.cc's slow paths start
// threads from the registry, find heaps by the ids in page tags and trigger the initialisation,
// and fork locks every heap besides the lower units' locks. Not the thread caches and heaps
// themselves (heap.h).
#pragma once

#include <pthread.h>

#include <cstdint>

#include "arena.h"
#include "util.h"

namespace hz3 {

struct Heap;

// Once per process (later calls: one load): hardened secrets, the arena, heap 0, the thread-exit
// key, then the fork handlers. False when heap 0 or the key could not be made (out of memory):
// small allocations then return NULL, large ones still work. Called by a thread's first slow
// path, by the library's constructor, before the first large block and by statistics.
bool global_init();
bool global_init_done();  // global_init has completed

// Registry of every heap ever created; ids are indices and heaps are never freed. Guarded by
// g_reg_lock, except that g_heaps[id] for an id read from a page tag may be read without it (the
// heap exists: its span carries the tag).
extern Mutex g_reg_lock;
extern Heap* g_heaps[MAX_HEAPS];
extern uint32_t g_heap_count;
extern pthread_key_t g_exit_key;  // its destructor is thread_exit (heap.h)

// An orphan if there is one (its spans come along, its inboxes drained), else a new heap;
// nullptr past MAX_HEAPS. The heap is LIVE.
Heap* heap_acquire();
// Lists an ORPHAN heap for adoption by the next thread that starts.
void heap_orphan_push(Heap* h);

// The heap registry at a glance, for tests and statistics: heaps ever created (heap 0
// included), heaps other than heap 0 in state ORPHAN, and heaps on the orphan list (the ones a new
// thread can adopt). Outside fork and thread start/exit, orphaned == listed.
struct HeapCensus {
  uint32_t heaps, orphaned, listed;
};
HeapCensus heap_census();

// Statistics (stats.cc): the registry lock and every heap lock, in id order (as fork_prepare);
// returns the heaps and their number.
Heap* const* stats_lock_heaps(uint32_t* count);
void stats_unlock_heaps();

}  // namespace hz3
