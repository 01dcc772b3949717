// Process-wide state (see process.h): one-time initialisation, the heap registry, fork.
#include "process.h"

#include <pthread.h>
#include <unistd.h>

#include <cstddef>
#include <new>

#include "arena.h"
#include "heap.h"
#include "hz3/hz3.h"
#include "large.h"
#include "outside.h"
#include "pal.h"
#include "sample.h"

namespace hz3 {

Mutex g_reg_lock;
Heap* g_heaps[MAX_HEAPS];
uint32_t g_heap_count;
pthread_key_t g_exit_key;

namespace {

Heap* g_orphans;  // the heaps a starting thread adopts, linked through next_orphan
char* g_heap_mem_cur;
char* g_heap_mem_end;

std::atomic<int> g_global_state{0};  // 0 none, 1 done
Mutex g_global_lock;
std::atomic<bool> g_atfork_done{false};

// ---- heap registry ----

Heap* heap_create_locked() {
  if (g_heap_count >= MAX_HEAPS) return nullptr;
  if (size_t(g_heap_mem_end - g_heap_mem_cur) < sizeof(Heap)) {
    size_t chunk = 64 * sizeof(Heap);
    char* c = static_cast<char*>(Pal::map(chunk));
    if (!c) return nullptr;
    g_heap_mem_cur = c;
    g_heap_mem_end = c + chunk;
  }
  Heap* h = new (g_heap_mem_cur) Heap();
  g_heap_mem_cur += sizeof(Heap);
  h->id = g_heap_count;
  g_heaps[g_heap_count] = h;
  // Tracers read the count through the descriptor without the lock: the pointer first.
  __atomic_store_n(&g_heap_count, g_heap_count + 1, __ATOMIC_RELEASE);
  return h;
}

// ---- descriptor version 4: the thread caches' layout, for tracers (docs/probes.md) ----

hz3_class_cache g_class_cache[NUM_BINS];

void publish_cache_layout() {
  for (uint32_t c = 1; c < NUM_BINS; c++) {
    const ClassInfo& k = CLASSES[c];
    // hz3top walks other threads' lists with the bound stats.cc uses.
    g_class_cache[c] =
        is_mag_bin(c) ? hz3_class_cache{HZ3_CACHE_MAGAZINE, uint32_t(MAG_BASE[c]), k.cache_cap, 0}
                      : hz3_class_cache{HZ3_CACHE_LIST, 0, uint32_t(cache_list_walk_bound(c)), 0};
  }
  static_assert(sizeof(void*) == 8 && sizeof(ThreadCache::mag_top[0]) == 8 &&
                    sizeof(ThreadCache::state) == 4 && sizeof(RemoteBucket::tag) == 4 &&
                    sizeof(RemoteBucket::count) == 4 && sizeof(Heap::inbox_objs[0]) == 4,
                "the widths docs/probes.md gives the cache layout's fields");
  hz3_cache_layout& L = hz3_arena_desc.cache;
  L.size = uint32_t(sizeof(ThreadCache));
  L.off_state = uint32_t(offsetof(ThreadCache, state));
  L.off_heap = uint32_t(offsetof(ThreadCache, heap));
  L.off_head = uint32_t(offsetof(ThreadCache, head));
  L.off_parked = uint32_t(offsetof(ThreadCache, parked));
  L.off_mag_top = uint32_t(offsetof(ThreadCache, mag_top));
  L.off_mag_slots = uint32_t(offsetof(ThreadCache, mag_slots));
  L.off_remote = uint32_t(offsetof(ThreadCache, remote));
  L.remote_buckets = REMOTE_BUCKETS;
  L.remote_size = uint32_t(sizeof(RemoteBucket));
  L.off_rb_head = uint32_t(offsetof(RemoteBucket, head));
  L.off_rb_tag = uint32_t(offsetof(RemoteBucket, tag));
  L.off_rb_count = uint32_t(offsetof(RemoteBucket, count));
  L.off_owner_cache = uint32_t(offsetof(Heap, owner_cache));
  L.off_inbox = uint32_t(offsetof(Heap, inbox));
  L.off_inbox_objs = uint32_t(offsetof(Heap, inbox_objs));
  hz3_arena_desc.class_cache = uintptr_t(g_class_cache);
}

// ---- fork ----

void fork_prepare() {
  g_global_lock.lock();
  g_reg_lock.lock();
  for (uint32_t i = 0; i < g_heap_count; i++) g_heaps[i]->lock.lock();
  large_lock_for_fork();
  outside_lock_for_fork();
  page_heap::lock_for_fork();
  sample_lock_for_fork();
}

void fork_parent() {
  sample_unlock_after_fork(false);
  page_heap::unlock_after_fork(false);
  outside_unlock_after_fork(false);
  large_unlock_after_fork(false);
  for (uint32_t i = g_heap_count; i-- > 0;) g_heaps[i]->lock.unlock();
  g_reg_lock.unlock();
  g_global_lock.unlock();
}

// Only the forking thread lives on in the child. Every span update happens under its heap's
// lock, which fork_prepare held, so the other threads' heaps are consistent: they become
// orphans that new threads adopt and remote frees drain. Only the blocks sitting in those
// threads' caches (bounded by the cache caps) are lost to the child.
//
// The orphan list is rebuilt from scratch rather than patched: a heap can be caught between
// two locked steps of a thread in the parent — orphaned by an exiting thread that had not yet
// pushed it to the list, or taken off the list by a starting thread that had not yet marked it
// live — and either way it is on no list. In the child every heap but heap 0 (shared, never
// listed) and the forking thread's is an orphan, and all of them are listed.
void fork_child() {
  sample_unlock_after_fork(true);
  page_heap::unlock_after_fork(true);
  outside_unlock_after_fork(true);
  large_unlock_after_fork(true);
  Heap* mine = t_cache.state == CacheState::LIVE ? t_cache.heap : nullptr;
  if (mine) mine->owner_tid = int32_t(gettid());  // the child's thread id
  g_orphans = nullptr;
  for (uint32_t i = g_heap_count; i-- > 0;) {
    Heap* h = g_heaps[i];
    h->lock.reset_after_fork();
    if (i == 0 || h == mine) continue;
    h->owner_cache.store(nullptr, std::memory_order_relaxed);  // that thread's TLS is gone
    h->state.store(HeapState::ORPHAN, std::memory_order_relaxed);
    h->next_orphan = g_orphans;
    g_orphans = h;
  }
  g_reg_lock.reset_after_fork();
  g_global_lock.reset_after_fork();
}

}  // namespace

// An orphan if there is one (its spans come along), else a new heap; nullptr past MAX_HEAPS.
Heap* heap_acquire() {
  Heap* h;
  {
    LockGuard g(g_reg_lock);
    h = g_orphans;
    if (h) {
      g_orphans = h->next_orphan;
    } else {
      h = heap_create_locked();
      if (h) h->state.store(HeapState::LIVE, std::memory_order_relaxed);
      return h;
    }
  }
  LockGuard g(h->lock);
  h->state.store(HeapState::LIVE, std::memory_order_release);
  drain_inboxes(h);
  return h;
}

// Pushes under the registry lock: an exiting thread's heap becomes adoptable.
void heap_orphan_push(Heap* h) {
  LockGuard g(g_reg_lock);
  h->next_orphan = g_orphans;
  g_orphans = h;
}

// ---- initialisation ----

bool global_init() {
  if (HZ3_LIKELY(g_global_state.load(std::memory_order_acquire) == 1)) return true;
  {
    LockGuard g(g_global_lock);
    if (g_global_state.load(std::memory_order_relaxed) == 0) {
      if constexpr (HARDENED) hard_init_secrets();  // before any block exists
      arena_init();  // without an arena everything still works through the mmap fallback
      if constexpr (HARDENED) {
        g_hard.base = g_arena.base;
        g_hard.granules = g_arena.size >> 4;  // 0 without an arena: no block to check
      }
      {
        LockGuard r(g_reg_lock);
        // Heap 0: shared, ORPHAN from its creation on (never acquired), always locked.
        if (!heap_create_locked()) return false;
      }
      // Descriptor versions 3 and 4: the registry, for tracers naming heaps by thread, and the
      // layout of the thread caches and inboxes, for tracers that split the objects outside
      // spans (docs/probes.md). Published together, with heap 0.
      static_assert(sizeof(Heap) <= 0xFFFF, "the descriptor holds Heap's size in 16 bits");
      hz3_arena_desc.heap = {uint16_t(sizeof(Heap)), uint16_t(offsetof(Heap, id)),
                             uint16_t(offsetof(Heap, owner_tid)), uint16_t(offsetof(Heap, state))};
      hz3_arena_desc.heap_count = uintptr_t(&g_heap_count);
      publish_cache_layout();
      __atomic_store_n(&hz3_arena_desc.heaps, uintptr_t(g_heaps), __ATOMIC_RELEASE);
      if (pthread_key_create(&g_exit_key, thread_exit) != 0) return false;
      g_global_state.store(1, std::memory_order_release);
    }
  }
  // Outside the lock: registering may allocate, which re-enters malloc.
  if (!g_atfork_done.exchange(true)) pthread_atfork(fork_prepare, fork_parent, fork_child);
  return true;
}

bool global_init_done() { return g_global_state.load(std::memory_order_acquire) == 1; }

HeapCensus heap_census() {
  LockGuard g(g_reg_lock);
  HeapCensus c{g_heap_count, 0, 0};
  for (uint32_t i = 1; i < g_heap_count; i++)
    if (g_heaps[i]->state.load(std::memory_order_relaxed) == HeapState::ORPHAN) c.orphaned++;
  for (Heap* h = g_orphans; h && c.listed <= g_heap_count; h = h->next_orphan) c.listed++;
  return c;
}

// ---- statistics ----

Heap* const* stats_lock_heaps(uint32_t* count) {
  g_reg_lock.lock();
  for (uint32_t i = 0; i < g_heap_count; i++) g_heaps[i]->lock.lock();
  *count = g_heap_count;
  return g_heaps;
}

void stats_unlock_heaps() {
  for (uint32_t i = g_heap_count; i-- > 0;) g_heaps[i]->lock.unlock();
  g_reg_lock.unlock();
}

}  // namespace hz3
