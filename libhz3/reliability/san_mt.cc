// rel_san_mt: a multi-threaded random workload on the hz3_-prefixed allocator core, for the
// ThreadSanitizer and UBSan builds. Threads trade blocks through shared atomic slots, so any block
// may be freed, reallocated or measured by a thread other than the one that allocated it, while
// another thread trims the heap, starts short-lived threads (heap orphaning and adoption) and
// allocates huge blocks. Every block carries its size and seed in its first 16 bytes and a
// pattern after them, checked whenever a thread takes it. Not the stress test of libhz3/tests
// (which runs here too): this one mixes every entry point at once, which is what TSan needs.
// Usage: san_mt GROUP [OPS_PER_THREAD | --canary]   prints PASS/FAIL: GROUP/mt_random
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <thread>
#include <vector>

#include "hz3_prefixed.h"

namespace {

constexpr int SLOTS = 512;
constexpr int THREADS = 4;
std::atomic<void*> g_slots[SLOTS];
std::atomic<long> g_errors{0};
char g_first[256];

void error(const char* what, const void* p, size_t n) {
  if (g_errors.fetch_add(1) == 0) snprintf(g_first, sizeof g_first, "%s: %p (%zu B)", what, p, n);
}

uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

struct Rng {
  uint64_t s;
  uint64_t next() { return mix64(s += 0x9E3779B97F4A7C15ull); }
};

// Mostly small, some medium, a few large and (rarely) huge (>= 1 GiB is mmap'ed; its pattern
// covers only the first 64 KiB, so it costs a few page faults).
size_t pick_size(Rng& r) {
  uint64_t x = r.next();
  switch (x & 15) {
    case 0:
      return 2049 + x % 63000;
    case 1:
      return (x >> 8) % 64 == 0 ? 65537 + x % (3 << 20) : 16 + x % 200;
    case 2:
      return (x >> 8) % 4096 == 0 ? (size_t{1} << 30) + 4096 : 16 + x % 2033;
    default:
      return 16 + x % 2033;
  }
}

size_t checked_len(size_t n) { return n < 65536 ? n : 65536; }

// Header (size, seed) then a seed-derived pattern over the first checked_len(n) bytes.
void fill(void* p, size_t n, uint64_t seed) {
  uint64_t* w = static_cast<uint64_t*>(p);
  w[0] = n;
  w[1] = seed;
  unsigned char* b = static_cast<unsigned char*>(p);
  for (size_t i = 16; i < checked_len(n); i++) b[i] = static_cast<unsigned char>(mix64(seed + i));
}

bool intact(const void* p, size_t* n_out, uint64_t* seed_out) {
  const uint64_t* w = static_cast<const uint64_t*>(p);
  size_t n = w[0];
  uint64_t seed = w[1];
  *n_out = n;
  *seed_out = seed;
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 16; i < checked_len(n); i++)
    if (b[i] != static_cast<unsigned char>(mix64(seed + i))) return false;
  return true;
}

void* make(Rng& r, size_t n) {
  void* p = nullptr;
  switch (r.next() % 6) {
    case 0:
      p = hz3_calloc(1, n);
      break;
    case 1:
      if (hz3_posix_memalign(&p, size_t{16} << (r.next() % 9), n) != 0) p = nullptr;
      break;
    case 2:
      p = hz3_aligned_alloc(64, n);
      break;
    default:
      p = hz3_malloc(n);
      break;
  }
  if (!p) {
    error("allocation failed", p, n);
    return nullptr;
  }
  if (hz3_malloc_usable_size(p) < n) error("usable size below request", p, n);
  fill(p, n, r.next());
  return p;
}

// Puts a block into a slot; whatever was there is checked and freed by this thread.
void put(int s, void* p) {
  void* old = g_slots[s].exchange(p, std::memory_order_acq_rel);
  if (old) {
    size_t n;
    uint64_t seed;
    if (!intact(old, &n, &seed)) error("corrupted block", old, n);
    hz3_free(old);
  }
}

void work(int id, long ops) {
  Rng r{uint64_t(id) * 7919 + 1};
  for (long i = 0; i < ops; i++) {
    int s = int(r.next() % SLOTS);
    void* p = g_slots[s].exchange(nullptr, std::memory_order_acq_rel);
    if (!p) {
      put(s, make(r, pick_size(r)));
      continue;
    }
    size_t n;
    uint64_t seed;
    if (!intact(p, &n, &seed)) {
      error("corrupted block", p, n);
      continue;  // leak it: its header cannot be trusted
    }
    switch (r.next() % 4) {
      case 0:
        hz3_free(p);
        break;
      case 1: {  // realloc: the checked prefix survives, then the block gets a new pattern
        size_t m = pick_size(r);
        void* q = hz3_realloc(p, m);
        if (!q) {
          error("realloc failed", p, m);
          hz3_free(p);
          break;
        }
        const unsigned char* b = static_cast<const unsigned char*>(q);
        size_t keep = checked_len(n < m ? n : m);
        for (size_t k = 16; k < keep; k++)
          if (b[k] != static_cast<unsigned char>(mix64(seed + k))) {
            error("realloc lost data", q, m);
            break;
          }
        fill(q, m, r.next());
        put(s, q);
        break;
      }
      case 2:
        if (hz3_malloc_usable_size(p) < n) error("usable size shrank", p, n);
        put(s, p);
        break;
      default:
        put(s, p);
        break;
    }
  }
}

// Thread churn and maintenance beside the workers: short-lived threads that leave blocks in the
// slots (their heaps become orphans), and malloc_trim while others allocate.
void churn(long rounds) {
  Rng r{42};
  for (long i = 0; i < rounds; i++) {
    std::thread t([seed = r.next()] {
      Rng q{seed};
      for (int k = 0; k < 50; k++) put(int(q.next() % SLOTS), make(q, pick_size(q)));
    });
    t.join();
    if (i % 8 == 0) hz3_malloc_trim(0);
  }
}

// --canary: a data race and a signed overflow on purpose, outside the allocator. The scripts
// run it first: a sanitizer build that does not report these would pass everything else too.
// Thread a writes, then raises a relaxed flag (no happens-before for TSan); thread b waits for
// the flag and writes: the two writes race in every run, in a fixed order, so TSan's shadow of
// a's write is always there when b writes.
volatile int g_racy;
std::atomic<int> g_written;
int canary() {
  std::thread a([] {
    g_racy = 1;
    g_written.store(1, std::memory_order_relaxed);
  });
  std::thread b([] {
    while (g_written.load(std::memory_order_relaxed) == 0) {
    }
    g_racy = g_racy + 100000;
  });
  a.join();
  b.join();
  volatile int big = 0x7FFFFFFF;
  int over = big + g_racy;  // UB: signed overflow
  printf("canary %d\n", over);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* group = argc > 1 ? argv[1] : "san";
  if (argc > 2 && strcmp(argv[2], "--canary") == 0) return canary();
  long ops = argc > 2 ? atol(argv[2]) : 40000;
  std::vector<std::thread> ts;
  for (int i = 0; i < THREADS; i++) ts.emplace_back(work, i, ops);
  churn(ops / 400);
  for (auto& t : ts) t.join();
  for (int s = 0; s < SLOTS; s++) put(s, nullptr);
  if (g_errors.load() == 0) {
    printf("PASS: %s/mt_random\n", group);
    return 0;
  }
  printf("FAIL: %s/mt_random: %ld errors, first: %s\n", group, g_errors.load(), g_first);
  return 1;
}
