// bench_xthread_random — random sizes, frees by any thread: T threads share one array of
// T x --slots slots. Each of a thread's --iters steps allocates a block of a random size in
// [--min, --max] (8 B – 16 KiB by default, the thread's own seeded LCG), writes a header and its
// last byte, swaps it into a random slot with an atomic exchange and frees whatever came out —
// with T threads, (T-1)/T of those blocks were allocated by another thread. Every freed block's
// header (its size, the allocating thread and a hash of its address) and last byte are verified
// first; a mismatch means two live blocks overlapped (`corrupt=`, exit 3). `foreign_pct` is the
// measured share of frees of another thread's block. Operations: every malloc and every free in
// the timed loop (the blocks left in the slots are freed, and checked, after it). It is the mixed
// pattern of a work-stealing runtime or a shared cache: local and remote frees interleaved at
// random, across the small and medium classes; bench_xfree keeps sizes small and the remote share
// fixed, bench_xthread_small isolates one class.
#include <atomic>
#include <thread>

#include "common.h"

using namespace hz3::bench;

static const char USAGE[] =
    "usage: bench_xthread_random [--threads T] [--iters N per thread] [--slots N per thread]\n"
    "                            [--min B] [--max B]\n"
    "  defaults: 2 threads, 2000000 steps each, 1000 slots per thread, sizes 8..16384\n";

namespace {

inline uint32_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return uint32_t(x ^ (x >> 33));
}

// Header: size in bits 0..23, allocating thread in 24..31, hash of (address, size, thread) above.
inline uint64_t header(const void* p, uint64_t size, uint64_t tid) {
  return size | (tid & 0xff) << 24 | uint64_t(mix(uintptr_t(p) ^ size << 40 ^ tid << 32)) << 32;
}
inline uint8_t last_byte(uint64_t size) { return uint8_t(size ^ 0x5a); }

struct alignas(64) Tally {
  uint64_t ops = 0, frees = 0, foreign = 0, corrupt = 0, check = 0;
};

// Verifies and frees a block taken out of a slot.
inline void retire(void* p, unsigned me, Tally& t) {
  auto* b = static_cast<uint8_t*>(p);
  uint64_t h;
  std::memcpy(&h, b, 8);
  uint64_t size = h & 0xffffff, tid = h >> 24 & 0xff;
  bool ok = size >= 8 && header(p, size, tid) == h && (size == 8 || b[size - 1] == last_byte(size));
  t.corrupt += !ok;
  t.foreign += tid != (me & 0xff);
  t.check += size;
  t.frees++;
  free(p);
}

}  // namespace

int main(int argc, char** argv) {
  Options o(argc, argv, USAGE);
  unsigned threads = unsigned(o.get_int("threads", 2, 1, 255));
  long long iters = o.get_int("iters", 2000000, 1, 1ll << 40);
  long long per = o.get_int("slots", 1000, 1, 1 << 20);
  long long lo = o.get_int("min", 8, 8, 1 << 24);
  long long hi = o.get_int("max", 16384, lo, (1 << 24) - 1);
  Common c(o);
  o.finish();

  const size_t nslots = size_t(per) * threads;
  std::vector<std::atomic<void*>> slots(nslots);
  for (auto& s : slots) s.store(nullptr, std::memory_order_relaxed);
  std::vector<Tally> tally(threads + 1);  // the last one: main's final sweep
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  const uint32_t span = uint32_t(hi - lo + 1);

  auto body = [&](unsigned t) {
    Tally& me = tally[t];
    Lcg lcg(c.seed + 104729u * (t + 1));
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    for (long long i = 0; i < iters; i++) {
      uint32_t r1 = lcg.next(), r2 = lcg.next();
      uint64_t size = uint64_t(lo) + (r2 >> 8) % span;
      auto* p = static_cast<uint8_t*>(malloc(size));
      if (!p) die("malloc failed", nullptr);
      uint64_t h = header(p, size, t);
      std::memcpy(p, &h, 8);
      if (size > 8) p[size - 1] = last_byte(size);
      me.ops++;
      void* old = slots[(r1 >> 8) % nslots].exchange(p, std::memory_order_acq_rel);
      if (old) {
        retire(old, t, me);
        me.ops++;
      }
    }
  };

  handshake(c.ready_file, c.go_file);
  std::vector<std::thread> th;
  for (unsigned t = 0; t < threads; t++) th.emplace_back(body, t);
  while (ready.load() < threads) std::this_thread::yield();
  Stopwatch sw;
  sw.start();
  go.store(true, std::memory_order_release);
  for (auto& x : th) x.join();
  sw.stop();

  for (auto& s : slots)
    if (void* p = s.exchange(nullptr)) retire(p, threads, tally[threads]);
  uint64_t ops = 0, frees = 0, foreign = 0, corrupt = 0, check = 0;
  for (unsigned t = 0; t < threads; t++) ops += tally[t].ops;
  for (auto& x : tally) {
    frees += x.frees, corrupt += x.corrupt, check += x.check;
    if (&x != &tally[threads]) foreign += x.foreign;
  }
  uint64_t loop_frees = frees - tally[threads].frees;
  slots.clear();
  slots.shrink_to_fit();
  long exit_rss = status_kb("VmRSS");
  long peak = status_kb("VmHWM");  // read last: the kernel folds current RSS into it
  if (corrupt)
    std::fprintf(stderr,
                 "bench_xthread_random: %llu freed blocks had a wrong header or last byte: the "
                 "allocator handed out overlapping blocks\n",
                 (unsigned long long)corrupt);
  char extra[200];
  std::snprintf(extra, sizeof extra, "slots=%zu min=%lld max=%lld foreign_pct=%.1f corrupt=%llu",
                nslots, lo, hi, loop_frees ? 100.0 * foreign / double(loop_frees) : 0.0,
                (unsigned long long)corrupt);
  report("xthread-random", extra, threads, ops, sw, check, peak, exit_rss);
  return corrupt ? 3 : 0;
}
