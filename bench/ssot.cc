// bench_ssot — the hz3 "SSOT" workloads (small, medium, mixed), one thread, as the original hz3
// defines them: ITERS operations on WS slots; an LCG value r = r*1664525 + 1013904223 chooses the
// slot (r % WS) and the size (min + (r >> 8) % (max - min + 1)); a full slot is freed, an empty one
// is allocated and its first byte written. One operation is one malloc or one free. It measures the
// allocator's single-thread hot paths with a small working set; it says nothing about threads,
// fragmentation over time or large blocks (the other bench_* programs cover those).
#include <cstdlib>

#include "common.h"

using namespace hz3::bench;

static const char USAGE[] =
    "usage: bench_ssot [--size small|medium|mixed] [--min BYTES --max BYTES] [--iters N]\n"
    "                  [--ws N]\n"
    "  small = 16..2048, medium = 4096..32768, mixed = 16..32768 (default small);\n"
    "  --iters 20000000 and --ws 400 are the original hz3's values\n";

int main(int argc, char** argv) {
  Options o(argc, argv, USAGE);
  std::string size = o.get_str("size", "small");
  long long lo = 16, hi = 2048;
  if (size == "medium") {
    lo = 4096, hi = 32768;
  } else if (size == "mixed") {
    lo = 16, hi = 32768;
  } else if (size != "small") {
    o.bad("unknown --size", size);
  }
  lo = o.get_int("min", lo, 1, 1ll << 30);
  hi = o.get_int("max", hi, lo, 1ll << 30);
  long long iters = o.get_int("iters", 20000000, 1, 1ll << 40);
  long long ws = o.get_int("ws", 400, 1, 1 << 24);
  Common c(o);
  o.finish();

  std::vector<void*> slots(ws, nullptr);
  const uint32_t span = uint32_t(hi - lo + 1);
  Lcg lcg(c.seed);
  uint64_t check = 0;
  handshake(c.ready_file, c.go_file);

  Stopwatch sw;
  sw.start();
  for (long long i = 0; i < iters; i++) {
    uint32_t r = lcg.next();
    void*& slot = slots[r % uint32_t(ws)];
    if (slot) {
      check += peek(slot);
      free(slot);
      slot = nullptr;
    } else {
      void* p = malloc(size_t(lo) + (r >> 8) % span);
      if (!p) die("malloc failed", nullptr);
      touch(p, r);
      slot = p;
    }
  }
  sw.stop();

  for (void* p : slots) free(p);
  long exit_rss = status_kb("VmRSS");
  long peak = status_kb("VmHWM");  // read last: the kernel folds current RSS into it
  std::string bench = "ssot-" + size;
  if (lo != (size == "medium" ? 4096 : 16) || hi != (size == "small" ? 2048 : 32768))
    bench = "ssot-custom";
  report(bench.c_str(),
         "min=" + std::to_string(lo) + " max=" + std::to_string(hi) + " ws=" + std::to_string(ws),
         1, uint64_t(iters), sw, check, peak, exit_rss);
  return 0;
}
