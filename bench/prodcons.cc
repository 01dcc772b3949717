// bench_prodcons — producer/consumer: T/2 pairs (at least one); each producer allocates --items
// blocks (sizes from the LCG in [min, max], first byte written) and pushes them through its own
// ring to its consumer, which reads and frees them. Every free is therefore remote, and the
// producer's cache never sees its blocks come back: the pattern of a request pipeline or a
// message queue. A full ring makes the producer yield (it is real back-pressure, not a fallback).
// Operations: every malloc and every free. It does not mix local and remote frees (bench_xfree).
#include <atomic>
#include <thread>

#include "common.h"
#include "ring.h"

using namespace hz3::bench;

static const char USAGE[] =
    "usage: bench_prodcons [--threads T] [--items N per producer] [--min B] [--max B]\n"
    "                      [--ring N]\n"
    "  T/2 producer/consumer pairs (at least one)\n"
    "  defaults: 2 threads, 5000000 items, sizes 16..512, ring 1024\n";

int main(int argc, char** argv) {
  Options o(argc, argv, USAGE);
  unsigned threads = unsigned(o.get_int("threads", 2, 1, 4096));
  long long items = o.get_int("items", 5000000, 1, 1ll << 40);
  long long lo = o.get_int("min", 16, 1, 1ll << 30);
  long long hi = o.get_int("max", 512, lo, 1ll << 30);
  long long ring_cap = o.get_int("ring", 1024, 2, 1 << 24);
  Common c(o);
  o.finish();
  if (ring_cap & (ring_cap - 1)) o.bad("--ring must be a power of two", std::to_string(ring_cap));

  unsigned pairs = threads / 2 ? threads / 2 : 1;
  std::vector<std::unique_ptr<SpscRing>> rings;
  for (unsigned i = 0; i < pairs; i++) rings.push_back(std::make_unique<SpscRing>(ring_cap));
  std::vector<uint64_t> checks(pairs * 16, 0);  // 16 apart: one cache line per consumer
  std::atomic<uint64_t> stalls{0};
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  const uint32_t span = uint32_t(hi - lo + 1);

  auto wait_go = [&] {
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
  };
  auto producer = [&](unsigned i) {
    SpscRing& ring = *rings[i];
    Lcg lcg(c.seed + 7919u * i);
    uint64_t stall = 0;
    wait_go();
    for (long long k = 0; k < items; k++) {
      uint32_t r = lcg.next();
      void* p = malloc(size_t(lo) + (r >> 8) % span);
      if (!p) die("malloc failed", nullptr);
      touch(p, r | 1);  // never 0, so the consumer can tell a block from "empty"
      while (!ring.push(p)) {
        stall++;
        std::this_thread::yield();
      }
    }
    stalls.fetch_add(stall);
  };
  auto consumer = [&](unsigned i) {
    SpscRing& ring = *rings[i];
    uint64_t check = 0;
    wait_go();
    for (long long k = 0; k < items;) {
      void* p = ring.pop();
      if (!p) {
        std::this_thread::yield();
        continue;
      }
      check += peek(p);
      free(p);
      k++;
    }
    checks[i * 16] = check;
  };

  handshake(c.ready_file, c.go_file);
  std::vector<std::thread> th;
  for (unsigned i = 0; i < pairs; i++) {
    th.emplace_back(producer, i);
    th.emplace_back(consumer, i);
  }
  while (ready.load() < 2 * pairs) std::this_thread::yield();
  Stopwatch sw;
  sw.start();
  go.store(true, std::memory_order_release);
  for (auto& x : th) x.join();
  sw.stop();

  uint64_t check = 0;
  for (unsigned i = 0; i < pairs; i++) check += checks[i * 16];
  rings.clear();
  long exit_rss = status_kb("VmRSS");
  long peak = status_kb("VmHWM");  // read last: the kernel folds current RSS into it
  char extra[160];
  std::snprintf(extra, sizeof extra, "pairs=%u producer_stalls=%llu min=%lld max=%lld", pairs,
                (unsigned long long)stalls.load(), lo, hi);
  report("prodcons", extra, 2 * pairs, uint64_t(2 * items) * pairs, sw, check, peak, exit_rss);
  return 0;
}
