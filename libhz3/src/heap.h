// The front end: per-thread caches (TLS, no locks, no atomics) and the heaps they belong to.
//
// Vocabulary
//   ThreadCache  one per thread, in initial-exec TLS: a LIFO free list per size class, and a
//                countdown of local frees per class that bounds the list and doubles as the
//                exact count of tag-map hits (reported in batches through hz3:hits).
//   Heap         the shared half of a thread's allocator: its spans per class and an inbox per
//                class (lock-free stack) where other threads push the blocks they free. Its id
//                is the owner field of every page tag of its spans.
//   Heap states  LIVE: one thread owns it. ORPHAN: its thread exited. Either way its spans are
//                touched only under heap->lock (slow paths only: the fast paths touch the TLS
//                cache alone), so other threads can drain its inboxes when its owner is idle. A
//                thread that exits orphans its heap; a new thread adopts an orphan before creating
//                a heap, so ids are recycled and thread count is unlimited (past MAX_HEAPS live
//                threads, new threads share the locked heap 0, as do calls after a thread's cache
//                is gone).
// Not here: the page heap and tags (arena.h), large blocks (large.h), the C API (malloc.cc).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "arena.h"
#include "sizeclass.h"
#include "util.h"

namespace hz3 {

enum class CacheState : uint32_t { UNINIT = 0, LIVE = 1, DEAD = 2 };

// XOR of a tag with a key never yields a bin < NUM_BINS unless the tag's owner field matches,
// so the free fast path needs one compare for "ours, this thread, small class".
inline constexpr uint64_t KEY_NONE = 0xFFFFu << 16;

// Remote frees not yet handed to their owner: a chain of blocks of one (heap, class), linked
// through word 0 like every free list (see remote_free).
struct RemoteBucket {
  void* head = nullptr;
  void* tail = nullptr;  // the block whose link is set to the inbox's old head at delivery
  uint32_t tag = 0;      // (owner field << 16) | class of every block in the chain; 0 = unused
  uint32_t count = 0;
};
inline constexpr uint32_t REMOTE_BUCKETS = 16;  // a power of two

// A class's allocation countdown while the thread samples (heap.cc, "Heap sampling"). Between
// two slow paths of the class, the fast path pops at most upper + (chunk - frees_left) blocks,
// and exactly that many minus the blocks on head[] now: so at a refill (head empty) or after a
// walk of the list the pops are known, and left counts them off.
struct SampleClass {
  int64_t left;    // allocations of the class, from the last count, until the sampled one (>= 1)
  int64_t upper;   // blocks on head[] at the last count + frees of finished chunks since, + blocks
                   // added and - blocks removed other than by malloc and free
  uint64_t chunk;  // frees_left when it was last set
  uint32_t shift;  // left was drawn with mean HZ3_SAMPLE_MEAN_BYTES << shift
};

struct ThreadCache {
  void* head[NUM_BINS] = {};           // hot: malloc pops, free pushes
  uint64_t frees_left[NUM_BINS] = {};  // hot: local frees until the next bound check (64-bit so
                                       // its index folds into the same addressing mode as head's)
  uint64_t key = KEY_NONE;             // (heap id + 1) << 16 while LIVE, else KEY_NONE
  CacheState state = CacheState::UNINIT;
  struct Heap* heap = nullptr;
  uint64_t credit[NUM_BINS] = {};  // value frees_left was last reset to: hits = credit - frees_left
  uint64_t hits_pending = 0;       // hits not yet reported through hz3:hits
  uint64_t hits_reported_ms = 0;   // when hits were last reported on time (only while traced)
  uint64_t walk_due[NUM_BINS] = {};  // local frees left before the next bound check: frees_left
                                     // counts down chunks of it (shorter while hits are traced)
  // Remote frees waiting for delivery, by destination (heap, class); their bytes, bounded by
  // REMOTE_HOLD_BYTES; slow paths since the last delivery of every bucket.
  RemoteBucket remote[REMOTE_BUCKETS] = {};
  uint64_t remote_bytes = 0;
  uint32_t remote_slow = 0;
  // Heap sampling (sample.h), only while a tracer is attached to otel_memory:alloc; detached,
  // nothing of this is read. The key and the lists stay as they are: a class's slow paths bound
  // how many fast-path pops can happen before its next slow path (sample_rebound in heap.cc), so
  // the allocation a countdown picks is always served by a slow path.
  bool sampling = false;
  uint8_t sample_shift = 0;       // current mean: HZ3_SAMPLE_MEAN_BYTES << sample_shift
  uint8_t sample_left_shift = 0;  // the mean sample_left was drawn with
  uint32_t pace_samples = 0;      // samples in the pacing window that began at pace_start_ms
  uint64_t pace_start_ms = 0;
  int64_t sample_left = 0;  // bytes of large blocks until the next sampled one
  uint64_t rng = 0;
  SampleClass samp[NUM_BINS] = {};
  void* parked[NUM_BINS] = {};  // blocks of each class cut off head[] by sample_rebound
};

// initial-exec TLS, constant-initialised: no TLS wrapper call, no __tls_get_addr.
extern __thread ThreadCache t_cache __attribute__((tls_model("initial-exec")));

struct alignas(64) Heap {
  std::atomic<void*> inbox[NUM_BINS];  // remote frees, per class (MPSC stack)
  // Blocks delivered to each inbox since it was last emptied: approximate (added after the push,
  // reset after the exchange), read only to decide whether a refill can take a whole inbox.
  std::atomic<uint32_t> inbox_objs[NUM_BINS];
  std::atomic<uint32_t> remote_pending;
  std::atomic<CacheState> state;  // LIVE or ORPHAN (DEAD unused here)
  uint32_t id;
  bool orphan;
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
};

// Slow paths, never inlined.
void* malloc_refill(uint32_t cls);             // thread cache empty for cls
void* malloc_refill_size(size_t size);         // the same for cls = class_of(size)
void* hard_refill(uint32_t cls, size_t size);  // hardened: malloc_refill, then hard_hand_out
void cache_overflow(uint32_t bin);             // frees_left hit 0
void free_tagged_slow(void* p, uint32_t tag);  // not a local small block
void free_outside(void* p);                    // outside the arena: NULL, huge, foreign
void free_keyed_slow(void* p, uint64_t x);     // free_tagged_slow of the tag x ^ t_cache.key
void free_unfixed(void* p);  // outside the fixed arena: the dynamic layout's arena, or outside

bool global_init();
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

// Fast paths. Budget: malloc 11 instructions up to 1 KiB, 15 above; free 16 (see
// docs/design.md, measured with callgrind by bench/fastpath).
// One object of class c, nothing written into it (the hardened variant's checks come after).
HZ3_FAST_PATH void* alloc_class(uint32_t c) {
  ThreadCache& tc = t_cache;
  void* p = tc.head[c];
  if (HZ3_LIKELY(p != nullptr)) {
    tc.head[c] = *static_cast<void**>(p);
    if constexpr (CHECK) check_on_alloc(p);
    return p;
  }
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
  ThreadCache& tc = t_cache;
  void* p = tc.head[c];
  if (HZ3_LIKELY(p != nullptr)) {
    tc.head[c] = *static_cast<void**>(p);
    return hard_hand_out(p, c, size);
  }
  return hard_refill(c, size);
}

// One object of class c = class_of(size) for a request of `size` bytes. The refill takes the
// size, which is still in its argument register, and finds the class again.
HZ3_FAST_PATH void* alloc_class_for(uint32_t c, size_t size) {
  ThreadCache& tc = t_cache;
  void* p = tc.head[c];
  if (HZ3_LIKELY(p != nullptr)) {
    tc.head[c] = *static_cast<void**>(p);
    if constexpr (CHECK) check_on_alloc(p);
    return p;
  }
  return malloc_refill_size(size);
}

// operator new's fast path: a block for size <= DIRECT_MAX from the thread cache, or nullptr
// (cache empty, or the hardened variant, whose blocks need their canary: the caller's slow path).
HZ3_FAST_PATH void* alloc_direct_cached(size_t size) {
  if constexpr (HARDENED) return nullptr;
  ThreadCache& tc = t_cache;
  uint32_t c = CLASS_OF_DIRECT[size];
  void* p = tc.head[c];
  if (HZ3_LIKELY(p != nullptr)) {
    tc.head[c] = *static_cast<void**>(p);
    if constexpr (CHECK) check_on_alloc(p);
  }
  return p;
}

// size <= SMALL_LIMIT.
HZ3_FAST_PATH void* alloc_small(size_t size) {
  if constexpr (HARDENED) return hard_alloc(class_of(size + HARD_ROOM), size);
  if (HZ3_LIKELY(size <= DIRECT_MAX)) return alloc_class_for(CLASS_OF_DIRECT[size], size);
  return alloc_class_for(class_of(size), size);
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
  if (HZ3_LIKELY(bin < NUM_BINS)) {  // our thread's heap, a small/medium class
    if constexpr (CHECK) check_on_free(p, uint32_t(tag));
    if constexpr (HARDENED) hard_on_free(p, uint32_t(bin));
    *static_cast<void**>(p) = tc.head[bin];
    tc.head[bin] = p;
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
void* take_inboxes(Heap* h, uint32_t keep, uint32_t* kept_objs);

// Hands every remote free the calling thread still holds to its owner (statistics, trim).
void deliver_remote_frees();

// malloc_trim's part in the heaps: delivers the caller's remote frees, drains every heap's
// inboxes and gives every empty span back to the page heap (live heaps keep one per class
// otherwise); returns the number of spans given back.
size_t trim_heaps();

// Thread-safe object handout for a thread without a LIVE cache (heap 0, locked).
void* shared_alloc(uint32_t cls);

// The heap registry at a glance, for tests and statistics: heaps ever created (heap 0
// included), heaps other than heap 0 marked orphan, and heaps on the orphan list (the ones a new
// thread can adopt). Outside fork and thread start/exit, orphaned == listed.
struct HeapCensus {
  uint32_t heaps, orphaned, listed;
};
HeapCensus heap_census();

// Statistics (stats.cc): the registry lock and every heap lock, in id order (as fork_prepare);
// returns the heaps and their number.
Heap* const* stats_lock_heaps(uint32_t* count);
void stats_unlock_heaps();

// fork
void fork_prepare();
void fork_parent();
void fork_child();

}  // namespace hz3
