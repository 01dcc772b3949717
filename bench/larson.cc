// bench_larson — a larson-style server simulation (after Larson & Krishnan's benchmark, written
// anew here). T arrays of --slots live blocks, filled by the main thread. In each of --rounds
// rounds, T fresh threads start; thread t adopts array (t + round) % T — blocks allocated by other,
// now finished, threads — and --ops times replaces a random block with a new one of random size
// (free + malloc, sizes in [min, max]). Then the threads exit and the next round's threads adopt
// the arrays. Long-lived blocks, frees by a thread other than the allocator, threads that come
// and go: what a thread-per-connection server does to its allocator. Operations: every malloc and
// every free. Unlike the original it runs a fixed number of operations, not for a fixed time, so
// every allocator does the same work.
#include <atomic>
#include <thread>

#include "common.h"

using namespace hz3::bench;

static const char USAGE[] =
    "usage: bench_larson [--threads T] [--rounds R] [--ops N per thread per round] [--slots S]\n"
    "                    [--min B] [--max B]\n"
    "  defaults: 2 threads, 10 rounds, 3000000 ops, 1000 slots, sizes 16..1000\n";

int main(int argc, char** argv) {
  Options o(argc, argv, USAGE);
  unsigned threads = unsigned(o.get_int("threads", 2, 1, 4096));
  long long rounds = o.get_int("rounds", 10, 1, 1ll << 40);
  long long nops = o.get_int("ops", 3000000, 1, 1ll << 40);
  long long nslots = o.get_int("slots", 1000, 1, 1 << 24);
  long long lo = o.get_int("min", 16, 1, 1ll << 30);
  long long hi = o.get_int("max", 1000, lo, 1ll << 30);
  Common c(o);
  o.finish();

  const uint32_t span = uint32_t(hi - lo + 1);
  std::vector<std::vector<void*>> arrays(threads, std::vector<void*>(nslots));
  Lcg init(c.seed);
  for (auto& a : arrays)
    for (void*& p : a) {
      uint32_t r = init.next();
      p = malloc(size_t(lo) + (r >> 8) % span);
      if (!p) die("malloc failed", nullptr);
      touch(p, r);
    }
  std::vector<uint64_t> checks(size_t(threads) * 8, 0);

  auto body = [&](unsigned t, unsigned round) {
    std::vector<void*>& a = arrays[(t + round) % threads];
    Lcg lcg(c.seed + 7919u * t + 104729u * round);
    uint64_t check = 0;
    for (long long i = 0; i < nops; i++) {
      uint32_t r = lcg.next();
      void*& slot = a[r % uint32_t(nslots)];
      check += peek(slot);
      free(slot);
      slot = malloc(size_t(lo) + (r >> 8) % span);
      if (!slot) die("malloc failed", nullptr);
      touch(slot, r);
    }
    checks[t * 8] += check;
  };

  handshake(c.ready_file, c.go_file);
  Stopwatch sw;
  sw.start();
  std::vector<std::thread> th;
  for (long long round = 0; round < rounds; round++) {
    for (unsigned t = 0; t < threads; t++) th.emplace_back(body, t, unsigned(round));
    for (auto& x : th) x.join();
    th.clear();
  }
  sw.stop();

  uint64_t check = 0;
  for (unsigned t = 0; t < threads; t++) check += checks[t * 8];
  for (auto& a : arrays)
    for (void* p : a) free(p);
  arrays.clear();
  long exit_rss = status_kb("VmRSS");
  long peak = status_kb("VmHWM");  // read last: the kernel folds current RSS into it
  char extra[160];
  std::snprintf(extra, sizeof extra, "rounds=%lld ops_per_round=%lld slots=%lld min=%lld max=%lld",
                rounds, nops, nslots, lo, hi);
  report("larson", extra, threads, uint64_t(2 * nops * rounds) * threads, sw, check, peak,
         exit_rss);
  return 0;
}
