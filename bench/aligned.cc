// bench_aligned — aligned allocation, one thread: the SSOT loop (ITERS operations on WS slots,
// LCG-chosen) where every allocation asks for an alignment of 2^(4 + (r >> 24) % 9), i.e.
// 16 … 4096 bytes, and a size in [min, max]; even r use posix_memalign, odd r aligned_alloc (size
// rounded up to the alignment, as C11 requires). Every returned pointer is checked; misaligned ones
// are counted in `misaligned` (the first is described on stderr) rather than ending the run, so an
// allocator with an alignment bug still gets a number, flagged by the runner — Debian's mimalloc
// 2.0.9 returns 128-aligned blocks for aligned_alloc(256, 256) (microsoft/mimalloc#700). It
// measures the aligned paths that SIMD code, page-aligned I/O buffers and `new` of over-aligned
// types take; with --min/--max it can also probe large alignments against large sizes. Operations:
// every allocation and every free.
#include "common.h"

using namespace hz3::bench;

static const char USAGE[] =
    "usage: bench_aligned [--iters N] [--ws N] [--min BYTES] [--max BYTES]\n"
    "                     [--max-align-log2 K]\n"
    "  defaults: 15000000 iterations, ws 400, sizes 16..8192, alignments 16..4096 (K = 12)\n";

int main(int argc, char** argv) {
  Options o(argc, argv, USAGE);
  long long iters = o.get_int("iters", 15000000, 1, 1ll << 40);
  long long ws = o.get_int("ws", 400, 1, 1 << 24);
  long long lo = o.get_int("min", 16, 1, 1ll << 30);
  long long hi = o.get_int("max", 8192, lo, 1ll << 30);
  unsigned kmax = unsigned(o.get_int("max-align-log2", 12, 4, 21));
  Common c(o);
  o.finish();

  std::vector<void*> slots(ws, nullptr);
  const uint32_t span = uint32_t(hi - lo + 1);
  const uint32_t nalign = kmax - 4 + 1;
  Lcg lcg(c.seed);
  uint64_t check = 0, misaligned = 0;
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
      continue;
    }
    size_t align = size_t(1) << (4 + (r >> 24) % nalign);
    size_t size = size_t(lo) + (r >> 8) % span;
    void* p = nullptr;
    if (r & 1) {
      size = (size + align - 1) & ~(align - 1);
      p = aligned_alloc(align, size);
    } else if (int e = posix_memalign(&p, align, size); e != 0) {
      die("posix_memalign failed", std::strerror(e));
    }
    if (!p) die("aligned_alloc failed", std::strerror(errno));
    if (uintptr_t(p) & (align - 1)) [[unlikely]] {
      if (misaligned++ == 0)
        std::fprintf(stderr, "bench_aligned: %p is not aligned to %zu (size %zu, %s)\n", p, align,
                     size, (r & 1) ? "aligned_alloc" : "posix_memalign");
    }
    touch(p, r);
    slot = p;
  }
  sw.stop();

  for (void* p : slots) free(p);
  long exit_rss = status_kb("VmRSS");
  long peak = status_kb("VmHWM");  // read last: the kernel folds current RSS into it
  char extra[160];
  std::snprintf(extra, sizeof extra, "misaligned=%llu min=%lld max=%lld max_align=%zu ws=%lld",
                (unsigned long long)misaligned, lo, hi, size_t(1) << kmax, ws);
  report("aligned", extra, 1, uint64_t(iters), sw, check, peak, exit_rss);
  return 0;
}
