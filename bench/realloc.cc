// bench_realloc — realloc-heavy, one thread: ITERS operations on WS slots chosen by the SSOT LCG.
// An empty slot gets malloc(16..256); a full one, by (r >> 16) % 16: 0-1 free, 2-10 grow by half
// plus 16 (restarting at 16..256 once past --max, as a buffer that is dropped and reused),
// 11-13 shrink to half, 14-15 a nudge of up to 7 bytes either way (realloc within a size class).
// It is the pattern of string builders and growing vectors; it exercises in-place growth, copy on
// class change and shrink. Each block's first and last bytes carry a tag that is verified after
// every realloc, so an allocator that loses data fails the run (exit 3) instead of looking fast.
// Operations: every malloc, realloc and free.
#include <algorithm>

#include "common.h"

using namespace hz3::bench;

static const char USAGE[] =
    "usage: bench_realloc [--iters N] [--ws N] [--max BYTES]\n"
    "  defaults: 10000000 iterations, ws 400, growth up to 65536 bytes\n";

namespace {

struct Slot {
  unsigned char* p;
  uint32_t size;
  uint8_t tag;
};

void stamp(Slot& s) {
  s.p[0] = s.tag;
  s.p[s.size - 1] = s.tag;
}

[[noreturn]] void lost(const Slot& s, uint32_t old_size) {
  std::fprintf(stderr, "bench_realloc: realloc lost data (%u -> %u bytes, tag %u, got %u/%u)\n",
               old_size, s.size, s.tag, s.p[0], s.p[std::min(old_size, s.size) - 1]);
  std::exit(3);
}

}  // namespace

int main(int argc, char** argv) {
  Options o(argc, argv, USAGE);
  long long iters = o.get_int("iters", 10000000, 1, 1ll << 40);
  long long ws = o.get_int("ws", 400, 1, 1 << 24);
  long long max = o.get_int("max", 65536, 512, 1ll << 30);
  Common c(o);
  o.finish();

  std::vector<Slot> slots(ws, Slot{nullptr, 0, 0});
  Lcg lcg(c.seed);
  uint64_t check = 0, reallocs = 0;
  handshake(c.ready_file, c.go_file);

  Stopwatch sw;
  sw.start();
  for (long long i = 0; i < iters; i++) {
    uint32_t r = lcg.next();
    Slot& s = slots[r % uint32_t(ws)];
    if (!s.p) {
      s.size = 16 + (r >> 8) % 241;
      s.tag = uint8_t(r >> 24);
      s.p = static_cast<unsigned char*>(malloc(s.size));
      if (!s.p) die("malloc failed", nullptr);
      stamp(s);
      continue;
    }
    unsigned action = (r >> 16) % 16;
    if (action < 2) {
      check += s.p[0];
      free(s.p);
      s.p = nullptr;
      continue;
    }
    uint32_t old = s.size, want;
    if (action <= 10) {
      want = old + old / 2 + 16;
      if (want > max) want = 16 + (r >> 8) % 241;
    } else if (action <= 13) {
      want = old / 2 ? old / 2 : 1;
    } else {
      int d = int((r >> 24) % 15) - 7;
      want = uint32_t(std::max(1, int(old) + d));
    }
    void* q = realloc(s.p, want);
    if (!q) die("realloc failed", nullptr);
    s.p = static_cast<unsigned char*>(q);
    s.size = want;
    reallocs++;
    // The first byte always survives; the old last byte survives when the block did not shrink.
    if (s.p[0] != s.tag || (want >= old && s.p[old - 1] != s.tag)) lost(s, old);
    stamp(s);
  }
  sw.stop();

  for (Slot& s : slots) free(s.p);
  long exit_rss = status_kb("VmRSS");
  long peak = status_kb("VmHWM");  // read last: the kernel folds current RSS into it
  char extra[128];
  std::snprintf(extra, sizeof extra, "reallocs=%llu ws=%lld max=%lld", (unsigned long long)reallocs,
                ws, max);
  report("realloc", extra, 1, uint64_t(iters), sw, check, peak, exit_rss);
  return 0;
}
