// The sampled-block set and the sampling countdown (see sample.h).
#include "sample.h"

#include <math.h>

#include <atomic>

#include "addr_map.h"
#include "arena.h"
#include "cache.h"
#include "pal.h"
#include "probes.h"

#if HZ3_PROBES
extern "C" {
__attribute__((section(".probes"), used)) volatile unsigned short otel_memory_alloc_semaphore = 0;
__attribute__((section(".probes"), used)) volatile unsigned short otel_memory_free_semaphore = 0;
}
#endif

namespace hz3 {

namespace {

// Two tables under one lock: sampled blocks (ptr -> start page) and, per page, how many sampled
// blocks start there (the TAG_SAMPLED bit stays while that count is non-zero). Sampled blocks
// are rare (one per HZ3_SAMPLE_MEAN_BYTES allocated), so one lock is enough.
Mutex g_lock;
AddrMap<uint64_t> g_blocks;  // ptr -> page index + 1 (0: outside the arena)
AddrMap<uint64_t> g_pages;   // page index + 2 -> sampled blocks starting there
std::atomic<uint64_t> g_outside{0};

uint64_t next_random(uint64_t& s) {  // xorshift64*
  if (s == 0) s = 0x9E3779B97F4A7C15ull ^ uintptr_t(&s);
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s * 0x2545F4914F6CDD1Dull;
}

int64_t draw_interval(uint64_t& rng) {
  double u = double(next_random(rng) >> 11) * 0x1.0p-53;  // [0, 1)
  double v = -log(1.0 - u) * double(HZ3_SAMPLE_MEAN_BYTES);
  return v < 1.0 ? 1 : int64_t(v);
}

void record(void* p, size_t size) {
  uintptr_t a = uintptr_t(p);
  bool inside = in_arena(p);
  size_t idx = inside ? page_index(p) : 0;
  LockGuard g(g_lock);
  if (!g_blocks.insert(a, inside ? idx + 1 : 0)) return;  // out of metadata: not sampled
  if (inside) {
    auto* c = g_pages.find(idx + 2);
    if (c) {
      c->value++;
    } else {
      if (!g_pages.insert(idx + 2, 1)) {  // cannot count the page: do not sample
        g_blocks.erase(g_blocks.find(a));
        return;
      }
      tag_mark_sampled(idx);
    }
  } else {
    g_outside.fetch_add(1, std::memory_order_relaxed);
  }
  double mean = double(HZ3_SAMPLE_MEAN_BYTES), s = double(size);
  [[maybe_unused]] uint64_t weight = uint64_t(s / (1.0 - exp(-s / mean)) + 0.5);
  // Fired under the lock so a racing free of p cannot report free before alloc.
  HZ3_PROBE_PROVIDER(otel_memory, alloc, (uint64_t)a, (uint64_t)size, weight);
}

}  // namespace

bool sampling_wanted() {
#if HZ3_PROBES
  // The kernel writes the semaphore when a tracer attaches or leaves, at any instant: an atomic
  // load says so (and is still one plain load).
  return SAMPLING && __atomic_load_n(&otel_memory_alloc_semaphore, __ATOMIC_RELAXED) != 0;
#else
  return false;
#endif
}

void sample_note_alloc(ThreadCache& tc, void* p, size_t size) {
  if constexpr (!SAMPLING) return;
  tc.sample_left -= int64_t(size);
  if (tc.sample_left > 0) return;
  record(p, size);
  tc.sample_left = draw_interval(tc.rng);
}

void sample_on_free(void* p) {
  if constexpr (!SAMPLING) return;
  uintptr_t a = uintptr_t(p);
  LockGuard g(g_lock);
  auto* b = g_blocks.find(a);
  if (!b) return;  // a neighbour of a sampled block on the same page
  uint64_t page = b->value;
  g_blocks.erase(b);
  if (page == 0) {
    g_outside.fetch_sub(1, std::memory_order_relaxed);
  } else {
    auto* c = g_pages.find(page + 1);
    if (c && --c->value == 0) {
      g_pages.erase(c);
      tag_unmark_sampled(page - 1);
    }
  }
  HZ3_PROBE_PROVIDER(otel_memory, free, (uint64_t)a);
}

int64_t sample_first_interval(ThreadCache& tc) { return draw_interval(tc.rng); }

bool sampled_outside_any() { return SAMPLING && g_outside.load(std::memory_order_relaxed) != 0; }

// Taken last by fork_prepare: record() and sample_on_free() hold it without any other
// allocator lock, so nothing waits on another lock while holding it.
void sample_lock_for_fork() { g_lock.lock(); }
void sample_unlock_after_fork(bool child) {
  if (child)
    g_lock.reset_after_fork();
  else
    g_lock.unlock();
}

}  // namespace hz3
