// bench_churn — thread churn: --rounds times, start T threads, let each run a short SSOT loop
// (--ops iterations on 64 slots, sizes in [min, max]) and exit, then join them. Each thread hands
// --keep of its live blocks to the main thread, which frees them after the thread is gone, so
// frees into a dead thread's cache or heap are part of the pattern. It measures what services with
// per-request or pooled-and-recycled threads pay: cache creation, flush at thread exit, orphaned
// blocks. Operations: every malloc and every free; the time includes thread create and join,
// which is the point. It does not measure steady-state throughput (bench_xfree, bench_larson).
#include <atomic>
#include <thread>

#include "common.h"

using namespace hz3::bench;

static const char USAGE[] =
    "usage: bench_churn [--threads T] [--rounds R] [--ops N per thread] [--keep K]\n"
    "                   [--min B] [--max B]\n"
    "  defaults: 2 threads, 5000 rounds, 2000 ops, keep 16, sizes 16..1024\n";

constexpr unsigned SLOTS = 64;

int main(int argc, char** argv) {
  Options o(argc, argv, USAGE);
  unsigned threads = unsigned(o.get_int("threads", 2, 1, 4096));
  long long rounds = o.get_int("rounds", 5000, 1, 1ll << 40);
  long long nops = o.get_int("ops", 2000, 1, 1ll << 40);
  unsigned keep = unsigned(o.get_int("keep", 16, 0, SLOTS));
  long long lo = o.get_int("min", 16, 1, 1ll << 30);
  long long hi = o.get_int("max", 1024, lo, 1ll << 30);
  Common c(o);
  o.finish();

  const uint32_t span = uint32_t(hi - lo + 1);
  std::vector<void*> orphans(size_t(threads) * keep, nullptr);
  std::vector<uint64_t> ops(size_t(threads) * 8, 0), checks(size_t(threads) * 8, 0);

  auto body = [&](unsigned t, uint32_t seed) {
    void* slots[SLOTS] = {};
    Lcg lcg(seed);
    uint64_t n = 0, check = 0;
    for (long long i = 0; i < nops; i++) {
      uint32_t r = lcg.next();
      void*& slot = slots[r % SLOTS];
      if (slot) {
        check += peek(slot);
        free(slot);
        slot = nullptr;
      } else {
        slot = malloc(size_t(lo) + (r >> 8) % span);
        if (!slot) die("malloc failed", nullptr);
        touch(slot, r);
      }
      n++;
    }
    // Hand `keep` blocks to main (allocating any missing, so the count is exact), free the rest.
    unsigned given = 0;
    for (unsigned s = 0; s < SLOTS; s++) {
      if (given < keep) {
        if (!slots[s]) {
          slots[s] = malloc(size_t(lo));
          if (!slots[s]) die("malloc failed", nullptr);
          touch(slots[s], s);
          n++;
        }
        orphans[size_t(t) * keep + given++] = slots[s];
      } else if (slots[s]) {
        check += peek(slots[s]);
        free(slots[s]);
        n++;
      }
    }
    ops[t * 8] += n;
    checks[t * 8] += check;
  };

  handshake(c.ready_file, c.go_file);
  uint64_t main_ops = 0, main_check = 0;
  Stopwatch sw;
  sw.start();
  std::vector<std::thread> th;
  th.reserve(threads);
  for (long long round = 0; round < rounds; round++) {
    for (unsigned t = 0; t < threads; t++)
      th.emplace_back(body, t, c.seed + uint32_t(round * 7919 + t * 104729));
    for (auto& x : th) x.join();
    th.clear();
    for (void*& p : orphans) {
      main_check += peek(p);
      free(p);
      p = nullptr;
      main_ops++;
    }
  }
  sw.stop();

  uint64_t total = main_ops, check = main_check;
  for (unsigned t = 0; t < threads; t++) total += ops[t * 8], check += checks[t * 8];
  long exit_rss = status_kb("VmRSS");
  long peak = status_kb("VmHWM");  // read last: the kernel folds current RSS into it
  char extra[160];
  std::snprintf(extra, sizeof extra, "rounds=%lld ops_per_thread=%lld keep=%u threads_created=%lld",
                rounds, nops, keep, rounds * threads);
  report("churn", extra, threads, total, sw, check, peak, exit_rss);
  return 0;
}
