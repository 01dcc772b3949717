// The front end: per-thread caches (TLS, no locks, no atomics) and the heaps they belong to.
//
// Vocabulary
//   ThreadCache  one per thread, in initial-exec TLS: a LIFO free list per small class, a
//                magazine (bounded array of pointers) per medium class, and a countdown of local
//                frees per class that bounds the lists and is the exact count of tag-map hits
//                (reported in batches through hz3:hits).
//   Heap         the shared half of a thread's allocator: its spans per class and an inbox per
//                class (lock-free stack) where other threads push the blocks they free. Its id
//                is the owner field of every page tag of its spans.
//   Heap states  (HeapState) LIVE: one thread owns it. ORPHAN: none does (its thread exited;
//                heap 0 always). Either way its spans are touched only under heap->lock (slow
//                paths only: the fast paths touch the TLS cache alone), so other threads can
//                drain its inboxes when its owner is idle. A
//                thread that exits orphans its heap; a new thread adopts an orphan before creating
//                a heap, so ids are recycled and thread count is unlimited (past MAX_HEAPS live
//                threads, new threads share the locked heap 0, as do calls after a thread's cache
//                is gone).
// Not here: the page heap and tags (arena.h), large blocks (large.h), the heap registry,
// global_init and fork (process.h), the C API (malloc.cc).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "arena.h"
#include "cache.h"
#include "sizeclass.h"
#include "util.h"

namespace hz3 {

// LIVE: one thread's cache owns the heap. ORPHAN: none does (heap 0 always; a heap whose thread
// exited; in a forked child every heap but the forking thread's), so nobody refills from its
// inboxes and remote frees go straight back to its spans.
enum class HeapState : uint32_t { ORPHAN = 0, LIVE = 1 };

struct alignas(64) Heap {
  std::atomic<void*> inbox[NUM_BINS];  // remote frees, per class (MPSC stack)
  // Blocks delivered to each inbox since it was last emptied: approximate (added after the push,
  // reset after the exchange), read only to decide whether a refill can take a whole inbox.
  std::atomic<uint32_t> inbox_objs[NUM_BINS];
  // Bit b set: inbox[b] may hold blocks (the protocol is at drain_inboxes in heap.cc).
  std::atomic<uint64_t> remote_pending;
  static_assert(NUM_BINS <= 64, "remote_pending has a bit per class");
  // Written under lock (heap_acquire, cache_teardown, fork_child); remote_deliver reads it
  // without the lock first, then again under it. Zero (ORPHAN) until heap_acquire hands it out.
  std::atomic<HeapState> state;
  uint32_t id;
  Mutex lock;  // held by whoever touches the spans of an ORPHAN heap
  struct BinSpans {
    Span* partial;     // spans with objects to hand out
    uint32_t empties;  // partial spans with used == 0 (at most one is kept)
  } bins[NUM_BINS];
  uint32_t spans_released;            // spans given back since the owner last scavenged its cache
  std::atomic<uint32_t> owner_epoch;  // bumped by each refill of the owner: "not idle"
  // Idle detection by the threads that deliver remote frees here (remote_deliver): the
  // owner_epoch seen at the last delivery (high half) and how many deliveries in a row saw it.
  std::atomic<uint64_t> idle_probe;
  Heap* next_orphan;
  // The owner's cache while LIVE (set at thread start, cleared under lock at thread exit), so
  // statistics can walk its lists; nothing on the allocation paths reads it.
  std::atomic<ThreadCache*> owner_cache;
  // Thread id of the thread that took the heap last (at its start; the forking thread's in a
  // fork child); 0 for heap 0. Only tracers read it (hz3_arena_desc.heaps, docs/probes.md).
  int32_t owner_tid;
};

// Slow paths, never inlined.
void* malloc_refill(uint32_t cls);             // thread cache empty for cls
void* malloc_refill_size(size_t size);         // the same for cls = class_of(size)
void* hard_refill(uint32_t cls, size_t size);  // hardened: malloc_refill, then hard_hand_out
void cache_overflow(uint32_t bin);             // frees_left hit 0
void mag_full(void* p, uint32_t bin);          // a local free of p finds bin's magazine full
void free_tagged_slow(void* p, uint32_t tag);  // not a local small block
void free_outside(void* p);                    // outside the arena: NULL, huge, foreign
void free_keyed_slow(void* p, uint64_t x);     // free_tagged_slow of the tag x ^ t_cache.key
void free_unfixed(void* p);  // outside the fixed arena: the dynamic layout's arena, or outside

// The thread-exit key's destructor (process.cc creates the key): a LIVE cache is torn down.
void thread_exit(void*);
// Hardened variant: the secrets of g_hard (arena.h) and the seed of the refill shuffle; run by
// global_init before any block exists.
void hard_init_secrets();
// Heap sampling hooks of the API layer (no-ops unless a tracer samples, see sample.h).
void note_large_alloc(void* p, size_t size);
void note_realloc(void* p, void* q, size_t size, bool was_sampled);
void flush_hits_at_exit();

// Check variant: allocation bitmaps and pattern fill (no-ops otherwise).
void check_on_alloc(void* p);
void check_on_free(void* p, uint32_t tag);
void check_live(void* p, uint32_t tag, const char* fn);  // p is the start of a live block

// ---- hardened variant (docs/hardened.md) ----
// A free block (in a cache, an inbox or a span's free list) holds its list link in word 0, the
// marker secret ^ address in word 1, and a poison pattern in the HARD_POISON bytes after them. A
// live block holds, right after the requested bytes, HARD_ROOM canary bytes; its requested size
// is out of the block, in the size tables (arena.h), which also say which addresses are live
// block starts (HardBin). So the class is chosen for size + HARD_ROOM, and malloc_usable_size
// reports the requested size.
inline constexpr size_t HARD_ROOM = HARDENED ? 8 : 0;  // canary bytes, always all of them
inline constexpr size_t HARD_POISON = 16;  // poisoned bytes after the link and marker words
// Requests up to this are small/medium blocks; above it, large.
inline constexpr size_t SMALL_LIMIT = MAX_MEDIUM - HARD_ROOM;
static_assert(!HARDENED || SMALL_LIMIT < 0xFFFF, "size + 1 of a live block is a uint16");

HZ3_FAST_PATH uint64_t load8(const char* p) {
  uint64_t v;
  __builtin_memcpy(&v, p, 8);
  return v;
}
HZ3_FAST_PATH void store8(char* p, uint64_t v) { __builtin_memcpy(p, &v, 8); }

// The size entry of block start p (in the arena) of class bin.
HZ3_FAST_PATH uint16_t* hard_live_entry(const void* p, uint32_t bin) {
  const HardBin& b = g_hard_bins[bin];
  return reinterpret_cast<uint16_t*>(b.live + (uintptr_t(p) >> b.shift) * 2);
}

// Makes p (a block start of class bin, in the arena) live with `n` requested bytes: canary and
// size entry.
HZ3_FAST_PATH void hard_set_live(void* p, uint32_t bin, size_t n) {
  store8(static_cast<char*>(p) + n, g_hard.canary);
  *hard_live_entry(p, bin) = uint16_t(n + 1);
}

// p (in a page of class bin) failed hard_check_live: says why ("invalid pointer", `freed` for a
// second free or a use after free, "heap overflow") and aborts.
[[noreturn]] HZ3_SLOW_PATH void hard_bad_live(void* p, uint32_t bin, const char* fn,
                                              const char* freed);

// The requested size of live block p (class bin), after checking that p is one and that its
// canary is intact. *entry is its size entry.
HZ3_FAST_PATH size_t hard_check_live(void* p, uint32_t bin, const char* fn, const char* freed,
                                     uint16_t** entry = nullptr) {
  uint16_t* e = hard_live_entry(p, bin);
  uint32_t v = *e;  // size + 1, or 0
  if (HZ3_UNLIKELY((uintptr_t(p) & g_hard_bins[bin].mask) != 0 || v == 0 ||
                   load8(static_cast<char*>(p) + v - 1) != g_hard.canary))
    hard_bad_live(p, bin, fn, freed);
  if (entry) *entry = e;
  return v - 1;
}

// Marks a block free: marker word and poisoned prefix (the 16-byte class has no room for
// poison).
HZ3_FAST_PATH void hard_mark_free(void* p, uint32_t bin) {
  uint64_t* w = static_cast<uint64_t*>(p);
  w[0] = 0;  // the link word of a block no list links (a magazine's): a valid null link
  w[1] = g_hard.mark ^ uintptr_t(p);
  static_assert(HARD_POISON == 16 && CLASSES[1].size == 16 && CLASSES[2].size >= 16 + HARD_POISON);
  if (bin != 1) w[2] = w[3] = g_hard.poison;
}

// Every free of a small/medium block (class bin), local or remote, before the block is linked
// anywhere.
HZ3_FAST_PATH void hard_on_free(void* p, uint32_t bin) {
  uint16_t* e;
  hard_check_live(p, bin, "free()", "double free", &e);
  *e = 0;
  hard_mark_free(p, bin);
}

// A free block about to be handed out: marker and poison intact, link NULL or a 16-byte-aligned
// arena address.
HZ3_FAST_PATH void hard_check_free_block(void* p, uint32_t bin) {
  uint64_t* w = static_cast<uint64_t*>(p);
  uintptr_t next = w[0];
  uint64_t bad = w[1] ^ g_hard.mark ^ uintptr_t(p);
  if (bin != 1) bad |= (w[2] ^ g_hard.poison) | (w[3] ^ g_hard.poison);
  uintptr_t x = next - g_hard.base;
  bool link_ok = ((x >> 4) | (x << 60)) < g_hard.granules || next == 0;
  if (HZ3_UNLIKELY(bad != 0 || !link_ok)) fatal_pointer("malloc()", "write after free", p);
}

// Fast paths. Budget: malloc 10 instructions up to 1 KiB, 15 above; free 16 (see
// docs/design.md, measured with callgrind by bench/fastpath).
// The one pop of every allocation fast path: a cached block of class c, nothing written into
// it, or nullptr when the cache has none. MAG: c is a magazine class (else a list class), known
// at the call site when the size is; cache_pop dispatches on c.
template <bool MAG>
HZ3_FAST_PATH void* cache_pop_kind(ThreadCache& tc, uint32_t c) {
  void* p;
  if constexpr (MAG) {
    uint64_t top = tc.mag_top[c];
    p = tc.mag_slots[top - 1];  // the sentinel (nullptr) when empty
    if (HZ3_LIKELY(p != nullptr)) tc.mag_top[c] = top - 1;
  } else {
    p = tc.head[c];
    if (HZ3_LIKELY(p != nullptr)) tc.head[c] = *static_cast<void**>(p);
  }
  if constexpr (CHECK)
    if (p) check_on_alloc(p);
  return p;
}

HZ3_FAST_PATH void* cache_pop(ThreadCache& tc, uint32_t c) {
  if (is_mag_bin(c)) return cache_pop_kind<true>(tc, c);
  return cache_pop_kind<false>(tc, c);
}

// cache_pop for a class of kind KIND (classes_kind: 1 magazine, 0 list, -1 found from c).
template <int KIND>
HZ3_FAST_PATH void* cache_pop_as(ThreadCache& tc, uint32_t c) {
  if constexpr (KIND < 0)
    return cache_pop(tc, c);
  else
    return cache_pop_kind<(KIND > 0)>(tc, c);
}

// One object of class c (the hardened variant's checks come after).
HZ3_FAST_PATH void* alloc_class(uint32_t c) {
  if (void* p = cache_pop(t_cache, c); HZ3_LIKELY(p != nullptr)) return p;
  return malloc_refill(c);
}

// Hardened: free block p of class c becomes live with `size` requested bytes.
HZ3_FAST_PATH void* hard_hand_out(void* p, uint32_t c, size_t size) {
  hard_check_free_block(p, c);
  static_cast<uint64_t*>(p)[1] = 0;  // the marker is a secret: not left in a live block
  hard_set_live(p, c, size);
  return p;
}

// Hardened: a block of class c for a request of `size` bytes (size + HARD_ROOM <= class size).
// The refill is a tail call, so the fast path needs no stack frame.
HZ3_FAST_PATH void* hard_alloc(uint32_t c, size_t size) {
  if (void* p = cache_pop(t_cache, c); HZ3_LIKELY(p != nullptr)) return hard_hand_out(p, c, size);
  return hard_refill(c, size);
}

// One object of class c = class_of(size) for a request of `size` bytes. The refill takes the
// size, which is still in its argument register, and finds the class again. KIND as for
// cache_pop_as.
template <int KIND = -1>
HZ3_FAST_PATH void* alloc_class_for(uint32_t c, size_t size) {
  void* p = cache_pop_as<KIND>(t_cache, c);
  if (HZ3_LIKELY(p != nullptr)) return p;
  return malloc_refill_size(size);
}

// operator new's fast path: a block for size <= DIRECT_MAX from the thread cache, or nullptr
// (cache empty, or the hardened variant, whose blocks need their canary: the caller's slow path).
HZ3_FAST_PATH void* alloc_direct_cached(size_t size) {
  if constexpr (HARDENED) return nullptr;
  return cache_pop_as<kind_up_to(DIRECT_MAX)>(t_cache, t_cache.class_of_direct[size]);
}

// size <= SMALL_LIMIT.
HZ3_FAST_PATH void* alloc_small(size_t size) {
  if constexpr (HARDENED) return hard_alloc(class_of(size + HARD_ROOM), size);
  if (HZ3_LIKELY(size <= DIRECT_MAX))
    return alloc_class_for<kind_up_to(DIRECT_MAX)>(t_cache.class_of_direct[size], size);
  if (size <= MAX_SMALL) return alloc_class_for<kind_up_to(MAX_SMALL)>(class_of(size), size);
  return alloc_class_for<classes_kind(class_of(MAX_SMALL) + 1, NUM_CLASSES)>(class_of(size), size);
}

// --tc.frees_left[bin] == 0, for tc = t_cache. GCC 12 addresses an initial-exec TLS array that
// does not start the TLS block as %fs:8(off, bin + 44, 8), with a lea to form bin + 44; the asm
// is the one instruction it could have emitted (the offset of t_cache from the thread pointer is
// the value GCC loads from the GOT anyway, so it stays one load). Clang emits that instruction
// itself.
HZ3_FAST_PATH bool frees_left_dec(ThreadCache& tc, uint64_t bin) {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
  uintptr_t off = uintptr_t(&tc) - uintptr_t(__builtin_thread_pointer());
  bool zero;
  asm("subq $1, %%fs:%c[fl](%[off],%[bin],8)"
      : "=@ccz"(zero)
      : [off] "r"(off), [bin] "r"(bin), [fl] "i"(__builtin_offsetof(ThreadCache, frees_left))
      : "memory");
  return zero;
#else
  return --tc.frees_left[bin] == 0;
#endif
}

// p's page has `tag` (looked up in the arena).
HZ3_FAST_PATH void free_tagged(void* p, uint32_t tag32) {
  uint64_t tag = tag32;
  ThreadCache& tc = t_cache;
  uint64_t bin = tag ^ tc.key;
  if (FIRST_MAG_BIN > 1 && HZ3_LIKELY(bin < FIRST_MAG_BIN)) {  // our thread's heap, a list class
    if constexpr (CHECK) check_on_free(p, uint32_t(tag));
    if constexpr (HARDENED) hard_on_free(p, uint32_t(bin));
    *static_cast<void**>(p) = tc.head[bin];
    tc.head[bin] = p;
    if (HZ3_UNLIKELY(frees_left_dec(tc, bin))) cache_overflow(uint32_t(bin));
    return;
  }
  if (HZ3_LIKELY(bin < NUM_BINS)) {  // our thread's heap, a magazine class
    if constexpr (CHECK) check_on_free(p, uint32_t(tag));
    if constexpr (HARDENED) hard_on_free(p, uint32_t(bin));
    uint64_t top = tc.mag_top[bin];
    if (HZ3_UNLIKELY(top == tc.mag_end[bin])) return mag_full(p, uint32_t(bin));
    tc.mag_slots[top] = p;
    tc.mag_top[bin] = top + 1;
    if (HZ3_UNLIKELY(frees_left_dec(tc, bin))) cache_overflow(uint32_t(bin));
    return;
  }
  // tag ^ key, not tag: the tag need not stay in a register of its own across the xor.
  return free_keyed_slow(p, bin);
}

HZ3_FAST_PATH void free_fast(void* p) {
#if HZ3_TEST_SLOW_FREE_SPINS
  for (int i = 0; i < HZ3_TEST_SLOW_FREE_SPINS; ++i) asm volatile("");
#endif
  uint32_t tag;
  if (HZ3_LIKELY(fixed_lookup(p, &tag))) return free_tagged(p, tag);
  free_unfixed(p);
}

// Moves the blocks other threads pushed to h's inboxes back into its spans. Caller holds
// h->lock.
void drain_inboxes(Heap* h);
// Takes class bin's inbox as a list (nullptr when empty); *objs: its approximate length.
// Caller holds h->lock.
void* take_inbox(Heap* h, uint32_t bin, uint32_t* objs);

// Hands every remote free the calling thread still holds to its owner (statistics, trim).
void deliver_remote_frees();

// malloc_trim's part in the heaps: delivers the caller's remote frees, drains every heap's
// inboxes and gives every empty span back to the page heap (live heaps keep one per class
// otherwise); returns the number of spans given back.
size_t trim_heaps();

// Thread-safe object handout for a thread without a LIVE cache (heap 0, locked).
void* shared_alloc(uint32_t cls);

}  // namespace hz3
