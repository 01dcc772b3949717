// The thread cache's layout: ThreadCache (one per thread, in initial-exec TLS), its states and
// the key its free fast path compares tags with. Only the layout: heap.h runs the cache (fast
// paths, refills, overflow, thread start and exit; its vocabulary is there), and sample.cc keeps
// its sampling countdown in it, which is why the layout sits below both.
#pragma once

#include <array>
#include <cstdint>

#include "sizeclass.h"

namespace hz3 {

// UNINIT: the thread has not allocated yet (its first slow path runs thread_init). LIVE: the
// cache owns a heap. DEAD: torn down at thread exit, or no heap was to be had (MAX_HEAPS live
// threads); the thread's calls take heap 0's locked slow paths.
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
// A bucket is delivered when it holds this many blocks or bytes (heap.cc, remote_free).
inline constexpr uint32_t REMOTE_BATCH_OBJS = 128;
inline constexpr uint64_t REMOTE_BATCH_BYTES = 32 * 1024;

// Magazines: the medium classes (above MAX_SMALL) are cached in a bounded array of pointers per
// class instead of a list, so a free writes nothing into the block (a cold line for a medium
// block), the bound is an index compare and holds on every free (the array full is the cap), and
// refill and flush move a batch in one slow path. Small classes keep lists: their blocks share
// lines, the list push is the shortest free (bench/fastpath.golden), and their caps are many
// objects. HZ3_MAGAZINES=0 caches every class in a list; HZ3_MAG_MIN_SIZE=1 (the magall variant)
// every class in a magazine.
inline constexpr uint32_t FIRST_MAG_BIN =
    MAGAZINES ? (HZ3_MAG_MIN_SIZE > MAX_MEDIUM ? NUM_BINS : class_of(HZ3_MAG_MIN_SIZE)) : NUM_BINS;
// The kind of classes first … last when they are all of one (1: magazines, 0: lists), else -1:
// the template argument of the pops whose sizes fall in that range (heap.h).
constexpr int classes_kind(uint32_t first, uint32_t last) {
  return last < FIRST_MAG_BIN ? 0 : (first >= FIRST_MAG_BIN ? 1 : -1);
}
constexpr int kind_up_to(size_t size) { return classes_kind(1, class_of(size)); }
inline constexpr bool is_mag_bin(uint32_t bin) { return MAGAZINES && bin >= FIRST_MAG_BIN; }
// Index in ThreadCache::mag_slots of each magazine's first slot; the slot before it is a
// sentinel that stays nullptr, so a pop reads it when the magazine is empty.
inline constexpr std::array<uint64_t, NUM_BINS> MAG_BASE = [] {
  std::array<uint64_t, NUM_BINS> b{};
  uint64_t at = 1;
  for (uint32_t c = FIRST_MAG_BIN; c < NUM_BINS; c++) {
    b[c] = at;
    at += CLASSES[c].cache_cap + 1;
  }
  return b;
}();
inline constexpr std::array<uint64_t, NUM_BINS> MAG_END = [] {
  std::array<uint64_t, NUM_BINS> e{};
  for (uint32_t c = FIRST_MAG_BIN; c < NUM_BINS; c++) e[c] = MAG_BASE[c] + CLASSES[c].cache_cap;
  return e;
}();
inline constexpr uint64_t MAG_SLOTS = FIRST_MAG_BIN < NUM_BINS ? MAG_END[NUM_BINS - 1] : 1;
// Where each magazine is full at thread start: mag_start_cap slots past its base.
inline constexpr std::array<uint64_t, NUM_BINS> MAG_START_END = [] {
  std::array<uint64_t, NUM_BINS> e{};
  for (uint32_t c = FIRST_MAG_BIN; c < NUM_BINS; c++) e[c] = MAG_BASE[c] + mag_start_cap(c);
  return e;
}();
// A magazine's slow paths: it ran empty (a refill) or full (mag_full). ThreadCache::mag_hist
// keeps the last two of each magazine, the last in the low bits.
enum MagEvent : uint8_t { MAG_NONE = 0, MAG_REFILL = 1, MAG_FULL = 2 };
inline constexpr uint8_t mag_hist_push(uint8_t hist, MagEvent e) {
  return uint8_t((hist << 2 | e) & 0xF);
}

// How far a reader follows another thread's list of class cls (statistics, and hz3top through
// the descriptor): a list can peak at cache_cap + check_every blocks between two checks of its
// bound (sizeclass.h), plus one.
constexpr uint64_t cache_list_walk_bound(uint32_t cls) {
  return uint64_t(CLASSES[cls].cache_cap) + CLASSES[cls].check_every + 1;
}

// Blocks a refill takes from the spans for class cls (when its inbox has none): half the cap,
// 1 to REFILL_BATCH_MAX.
inline constexpr uint32_t REFILL_BATCH_MAX = 64;
constexpr uint32_t refill_batch_of(uint32_t cap) {
  uint32_t b = cap / 2;
  return b < 1 ? 1 : (b > REFILL_BATCH_MAX ? REFILL_BATCH_MAX : b);
}
constexpr uint32_t refill_batch(uint32_t cls) { return refill_batch_of(CLASSES[cls].cache_cap); }

// Slow start of a list class: a thread's first refill of the class takes REFILL_FIRST_BATCH
// blocks and each later one twice the last, up to refill_batch(cls); `refills` is how many the
// thread made before (ThreadCache::list_refills). A short-lived thread (per-request threads, a
// pool that recycles them) takes what it uses instead of a full batch per class that it walks
// at its refill and again, unused, at its exit; a long-lived one reaches the full batch after
// a few refills.
#ifndef HZ3_REFILL_FIRST_BATCH
#define HZ3_REFILL_FIRST_BATCH 8
#endif
inline constexpr uint32_t REFILL_FIRST_BATCH = HZ3_REFILL_FIRST_BATCH;
inline constexpr uint8_t LIST_REFILLS_FULL = 8;  // REFILL_FIRST_BATCH << 8 >= REFILL_BATCH_MAX
static_assert(REFILL_FIRST_BATCH >= 1 &&
              (REFILL_FIRST_BATCH << LIST_REFILLS_FULL) >= REFILL_BATCH_MAX);
constexpr uint32_t list_refill_batch(uint32_t cls, uint8_t refills) {
  uint32_t full = refill_batch(cls);
  if (refills >= LIST_REFILLS_FULL) return full;
  uint32_t b = REFILL_FIRST_BATCH << refills;
  return b < full ? b : full;
}

// A class's allocation countdown while the thread samples (heap.cc, "heap sampling"). Between
// two slow paths of the class, the fast path pops at most upper + (chunk - frees_left) blocks,
// and exactly that many minus the blocks cached now (on head[], or in the magazine): so at a
// refill (nothing cached) or after a count of the cache the pops are known, and left counts
// them off.
struct SampleClass {
  int64_t left;     // allocations of the class, from the last count, until the sampled one (>= 1)
  int64_t upper;    // blocks cached at the last count + frees of finished chunks since, + blocks
                    // added and - blocks removed other than by malloc and free
  uint64_t chunk;   // frees_left when it was last set
  uint32_t shift;   // left was drawn with mean HZ3_SAMPLE_MEAN_BYTES << shift
  uint64_t parked;  // blocks on parked[] (at most the class's cache_cap)
};

struct ThreadCache {
  void* head[NUM_BINS] = {};           // hot: malloc pops, free pushes (list classes)
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
  // Adoption (heap.cc, "adopted blocks"): how many more blocks of class c freed from other heaps
  // the thread keeps in its own cache; and such blocks on their way back to their owners (a list
  // through word 0), set aside while a heap lock is held.
  uint32_t adopt[NUM_BINS] = {};
  void* set_aside = nullptr;
  // Heap sampling (sample.h), only while a tracer is attached to otel_memory:alloc; detached,
  // nothing of this is read. The key, the lists and the magazines stay as they are: a class's
  // slow paths bound how many fast-path pops can happen before its next slow path
  // (sample_rebound in heap.cc), so the allocation a countdown picks is always served by a slow
  // path.
  bool sampling = false;
  uint8_t sample_shift = 0;       // current mean: HZ3_SAMPLE_MEAN_BYTES << sample_shift
  uint8_t sample_left_shift = 0;  // the mean sample_left was drawn with
  uint32_t pace_samples = 0;      // samples in the pacing window (sample.cc)
  uint64_t pace_cpu_us = 0;       // the thread's CPU time when the window began
  uint64_t pace_judged_ms = 0;    // coarse clock (Pal::now_ms) at the last judgement
  int64_t sample_left = 0;        // bytes of large blocks until the next sampled one
  uint64_t rng = 0;
  SampleClass samp[NUM_BINS] = {};
  // Blocks of each class cut off head[] or out of the magazine by sample_rebound, linked
  // through word 0.
  void* parked[NUM_BINS] = {};
  // Magazines (medium classes): mag_slots[MAG_BASE[c] .. mag_top[c]) are cached blocks of class
  // c, most recent last; the magazine is full at mag_top[c] == mag_end[c], its current cap
  // (MAG_START_END[c] up to MAG_END[c], the array's end; mag_top[c] <= mag_end[c] always).
  std::array<uint64_t, NUM_BINS> mag_top = MAG_BASE;  // hot
  std::array<uint64_t, NUM_BINS> mag_end = MAG_START_END;
  std::array<uint8_t, NUM_BINS> mag_hist = {};  // the last two MagEvents
  void* mag_slots[MAG_SLOTS] = {};
  // CLASS_OF_DIRECT, in the thread's own TLS (copied from the TLS image at thread creation,
  // never written): malloc's fast path addresses it off the thread pointer it loads for head[]
  // anyway, one instruction fewer than forming the address of the global table.
  std::array<uint8_t, DIRECT_MAX + 1> class_of_direct = CLASS_OF_DIRECT;
  // List classes' refills so far, up to LIST_REFILLS_FULL (list_refill_batch: slow start).
  std::array<uint8_t, NUM_BINS> list_refills = {};
};

// initial-exec TLS, constant-initialised: no TLS wrapper call, no __tls_get_addr.
extern __thread ThreadCache t_cache __attribute__((tls_model("initial-exec")));

}  // namespace hz3
