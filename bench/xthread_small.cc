// bench_xthread_small — cross-thread small frees: T producer threads each allocate --blocks blocks
// of --size bytes (64 by default) and pass them through a ring of their own (bench/ring.h) to
// their consumer thread, which frees them: 2T threads, every free remote, one fixed size, so the
// allocator's remote-free path for its commonest small class is all that is timed. Each block
// carries its producer's sequence number; a consumer that pops anything but the next number of
// its producer counts it (`corrupt=`, exit 3), so an allocator that hands out a live block is
// caught. A full ring makes the producer yield, an empty one the consumer (real back-pressure).
// Operations: every malloc and every free. Unlike bench_prodcons (random sizes 16–512 B) it
// isolates one class, the pattern of a logger or a task queue passing small records.
#include <atomic>
#include <thread>

#include "common.h"
#include "ring.h"

using namespace hz3::bench;

static const char USAGE[] =
    "usage: bench_xthread_small [--threads T producers] [--blocks N per producer]\n"
    "                           [--size B] [--ring N]\n"
    "  T producers and T consumers (2T threads)\n"
    "  defaults: 2 producers, 10000000 blocks each, 64 bytes, ring 1024\n";

namespace {
constexpr uint64_t MAGIC = 0x9E3779B97F4A7C15ull;
}

int main(int argc, char** argv) {
  Options o(argc, argv, USAGE);
  unsigned producers = unsigned(o.get_int("threads", 2, 1, 2048));
  long long blocks = o.get_int("blocks", 10000000, 1, 1ll << 40);
  long long size = o.get_int("size", 64, 16, 1 << 20);
  long long ring_cap = o.get_int("ring", 1024, 2, 1 << 24);
  Common c(o);
  o.finish();
  if (ring_cap & (ring_cap - 1)) o.bad("--ring must be a power of two", std::to_string(ring_cap));

  std::vector<std::unique_ptr<SpscRing>> rings;
  for (unsigned i = 0; i < producers; i++) rings.push_back(std::make_unique<SpscRing>(ring_cap));
  struct alignas(64) Tally {
    uint64_t check = 0, corrupt = 0, stalls = 0;
  };
  std::vector<Tally> tally(producers);
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};

  auto wait_go = [&] {
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
  };
  auto producer = [&](unsigned i) {
    SpscRing& ring = *rings[i];
    uint64_t salt = MAGIC * (c.seed + i + 1), stall = 0;
    wait_go();
    for (long long k = 0; k < blocks; k++) {
      auto* p = static_cast<uint64_t*>(malloc(size_t(size)));
      if (!p) die("malloc failed", nullptr);
      p[0] = uint64_t(k) ^ salt;
      while (!ring.push(p)) {
        stall++;
        std::this_thread::yield();
      }
    }
    tally[i].stalls = stall;
  };
  auto consumer = [&](unsigned i) {
    SpscRing& ring = *rings[i];
    uint64_t salt = MAGIC * (c.seed + i + 1), check = 0, corrupt = 0;
    wait_go();
    for (long long k = 0; k < blocks;) {
      auto* p = static_cast<uint64_t*>(ring.pop());
      if (!p) {
        std::this_thread::yield();
        continue;
      }
      uint64_t v = p[0] ^ salt;
      corrupt += v != uint64_t(k);
      check += v & 0xff;
      free(p);
      k++;
    }
    tally[i].check = check, tally[i].corrupt = corrupt;
  };

  handshake(c.ready_file, c.go_file);
  std::vector<std::thread> th;
  for (unsigned i = 0; i < producers; i++) {
    th.emplace_back(producer, i);
    th.emplace_back(consumer, i);
  }
  while (ready.load() < 2 * producers) std::this_thread::yield();
  Stopwatch sw;
  sw.start();
  go.store(true, std::memory_order_release);
  for (auto& x : th) x.join();
  sw.stop();

  uint64_t check = 0, corrupt = 0, stalls = 0;
  for (auto& t : tally) check += t.check, corrupt += t.corrupt, stalls += t.stalls;
  rings.clear();
  long exit_rss = status_kb("VmRSS");
  long peak = status_kb("VmHWM");  // read last: the kernel folds current RSS into it
  if (corrupt)
    std::fprintf(stderr,
                 "bench_xthread_small: %llu blocks arrived with another block's contents: the "
                 "allocator handed out a live block\n",
                 (unsigned long long)corrupt);
  char extra[160];
  std::snprintf(extra, sizeof extra, "producers=%u size=%lld producer_stalls=%llu corrupt=%llu",
                producers, size, (unsigned long long)stalls, (unsigned long long)corrupt);
  report("xthread-small", extra, 2 * producers, uint64_t(2 * blocks) * producers, sw, check, peak,
         exit_rss);
  return corrupt ? 3 : 0;
}
