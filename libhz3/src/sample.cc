// The sampled-block set, the draws of the sampling countdowns and the pacing (see sample.h).
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

double mean_of(uint32_t shift) {
  return double(HZ3_SAMPLE_MEAN_BYTES) * double(uint64_t{1} << shift);
}

// Exp(mean) bytes.
double draw_bytes(uint64_t& rng, double mean) {
  double u = double(next_random(rng) >> 11) * 0x1.0p-53;  // [0, 1)
  return -log1p(-u) * mean;
}

int64_t draw_interval(uint64_t& rng, double mean) {
  double v = draw_bytes(rng, mean);
  return v < 1.0 ? 1 : int64_t(v);
}

// The pacing (sample.h). The thread's CPU clock is a system call (~0.2 us), read only at a
// judgement: every HZ3_SAMPLE_PACE_EVERY samples, or at a sample PACE_WALL_MS after the last one
// (so a thread that samples rarely is still judged); the coarse clock that says so is a few ns.
constexpr uint64_t PACE_TARGET = HZ3_SAMPLE_MAX_RATE;  // samples per CPU second
constexpr uint64_t PACE_FALL_CPU_US = 250000;  // the shortest window that may lower the mean
constexpr uint64_t PACE_WALL_MS = 250;
static_assert(PACE_TARGET >= 1 && HZ3_SAMPLE_PACE_EVERY >= 1, "pacing needs a target");

uint32_t floor_log2(uint64_t x) { return x ? 63 - uint32_t(__builtin_clzll(x)) : 0; }

bool pace(ThreadCache& tc) {
  uint64_t now = Pal::now_ms();
  uint32_t n = ++tc.pace_samples;
  if (n % HZ3_SAMPLE_PACE_EVERY != 0 && now - tc.pace_judged_ms < PACE_WALL_MS) return false;
  tc.pace_judged_ms = now;
  uint64_t cpu = Pal::thread_cpu_us();
  PaceVerdict v = pace_verdict(n, cpu - tc.pace_cpu_us, tc.sample_shift);
  if (v.closes) {
    tc.pace_samples = 0;
    tc.pace_cpu_us = cpu;
  }
  if (v.delta == 0) return false;
  tc.sample_shift = uint8_t(int(tc.sample_shift) + v.delta);
  return true;
}

void record(void* p, size_t size, double mean) {
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
  double s = double(size);
  [[maybe_unused]] uint64_t weight = uint64_t(s / -expm1(-s / mean) + 0.5);
  // Fired under the lock so a racing free of p cannot report free before alloc.
  HZ3_PROBE_PROVIDER(otel_memory, alloc, (uint64_t)a, (uint64_t)size, weight);
}

}  // namespace

int64_t sample_draw_count(ThreadCache& tc, uint32_t size, uint32_t* shift) {
  *shift = tc.sample_shift;
  double k = ceil(draw_bytes(tc.rng, mean_of(tc.sample_shift)) / double(size));
  return k < 1.0 ? 1 : (k > 0x1.0p62 ? int64_t{1} << 62 : int64_t(k));
}

PaceVerdict pace_verdict(uint64_t samples, uint64_t cpu_us, uint32_t shift) {
  uint64_t us = cpu_us ? cpu_us : 1;
  // rate / target, in 1/1000ths (samples <= 2^32, so no overflow below ~4 * 10^6 s of CPU).
  uint64_t milli = samples * 1000000 * 1000 / (PACE_TARGET * us);
  // At sqrt(2) times the target or more the mean grows by the power of two nearest rate /
  // target: round(log2 x) = floor(log2(x sqrt 2)), so the rate lands within [0.71, 1.41) of it.
  uint64_t x_sqrt2 = milli * 1414 / 1000000;
  if (x_sqrt2 >= 2) {
    int up = int(floor_log2(x_sqrt2));
    int room = int(HZ3_SAMPLE_MAX_SHIFT) - int(shift);
    return {up < room ? up : room, true};
  }
  if (cpu_us < PACE_FALL_CPU_US) return {0, false};
  if (milli < 400 && shift > 0) {
    // Halvings d with rate * 2^d < 0.8 * target: floor(log2(800 / milli)), at least one.
    uint32_t d = milli ? floor_log2(800 / milli) : shift;
    if (d < 1) d = 1;
    return {-int(d < shift ? d : shift), true};
  }
  return {0, true};
}

bool sample_take(ThreadCache& tc, void* p, size_t size, uint32_t shift) {
  if constexpr (!SAMPLING) return false;
  record(p, size, mean_of(shift));
  return pace(tc);
}

bool sample_note_alloc(ThreadCache& tc, void* p, size_t size) {
  if constexpr (!SAMPLING) return false;
  tc.sample_left -= int64_t(size);
  if (tc.sample_left > 0) return false;
  bool changed = sample_take(tc, p, size, tc.sample_left_shift);
  sample_start_bytes(tc);
  return changed;
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

void sample_start_bytes(ThreadCache& tc) {
  tc.sample_left_shift = tc.sample_shift;
  tc.sample_left = draw_interval(tc.rng, mean_of(tc.sample_shift));
}

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
