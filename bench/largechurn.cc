// bench_largechurn — large-block churn: --live blocks of 5–25 MiB (sizes from the seeded LCG) stay
// live; each of --steps steps picks a random one and replaces it by a new zero-initialised block of
// a new random size, allocated before the old one is freed (as `v[i] = std::make_unique<char[]>(n)`
// does), so up to live + 1 blocks exist at once. The new block is used as a program would: one byte
// per 4 KiB page of the first --touch-pct % of it is read (it must be zero: a calloc that returns
// dirty memory exits 3) and then written. --api calloc (default) allocates with calloc,
// --api new with std::make_unique<char[]>(n), i.e. operator new[] plus value-initialisation (a
// memset the allocator cannot skip). One operation is one step (an allocation and a free).
//
// After the timed churn the live blocks stay allocated and VmRSS is sampled at the times of
// --rss-at (seconds after the churn stopped): the RESULT fields rss_after_s / rss_after_kb, next to
// live_kb (the bytes the program holds) and base_rss_kb (RSS before anything was allocated), show
// whether the allocator gives back what it no longer needs while the program keeps running. Then
// everything is freed and, after --exit-wait seconds, exit_rss_kb is read.
// It measures large-block reuse: page faults on reused memory, zeroing, and memory given back
// or kept; it says nothing about small blocks or threads.
#include <memory>

#include "common.h"

using namespace hz3::bench;

static const char USAGE[] =
    "usage: bench_largechurn [--steps N] [--live N] [--min-mib M] [--max-mib M]\n"
    "                        [--api calloc|new] [--touch-pct P] [--rss-at S,S,…]\n"
    "                        [--exit-wait S]\n"
    "  defaults: 2000 steps, 20 live blocks of 5..25 MiB, calloc, touch 100 % (one byte per\n"
    "  page), no RSS samples after the churn (bench/run.py passes --rss-at 0,1,2,5), exit-wait 0\n";

namespace {

constexpr size_t PAGE = 4096;

struct Block {
  char* p = nullptr;
  size_t n = 0;
  uint8_t tag = 0;  // the value written at offset 0, checked when the block is freed
};

bool use_new = false;

char* allocate(size_t n) {
  if (use_new) return std::make_unique<char[]>(n).release();
  return static_cast<char*>(calloc(1, n));
}

void release(char* p) {
  if (use_new)
    delete[] p;
  else
    free(p);
}

}  // namespace

int main(int argc, char** argv) {
  Options o(argc, argv, USAGE);
  long long steps = o.get_int("steps", 2000, 0, 1ll << 40);
  long long live = o.get_int("live", 20, 1, 1 << 16);
  long long min_mib = o.get_int("min-mib", 5, 1, 1 << 16);
  long long max_mib = o.get_int("max-mib", 25, min_mib, 1 << 16);
  std::string api = o.get_str("api", "calloc");
  long long touch_pct = o.get_int("touch-pct", 100, 0, 100);
  std::string rss_at = o.get_str("rss-at", "");
  std::vector<double> times = parse_times(o, "rss-at", rss_at);
  std::string exit_wait_s = o.get_str("exit-wait", "0");
  std::vector<double> exit_wait = parse_times(o, "exit-wait", exit_wait_s);
  Common c(o);
  o.finish();
  if (api == "new")
    use_new = true;
  else if (api != "calloc")
    o.bad("unknown --api (calloc or new)", api);
  if (exit_wait.size() != 1) o.bad("--exit-wait takes one number of seconds", exit_wait_s);

  const uint64_t lo = uint64_t(min_mib) << 20, span = (uint64_t(max_mib - min_mib) << 20) + 1;
  Lcg lcg(c.seed);
  auto next_size = [&] {
    uint64_t r = (uint64_t(lcg.next()) << 32) | lcg.next();
    return size_t(lo + r % span);
  };
  uint64_t check = 0, dirty = 0, lost = 0;
  auto make = [&](Block& b, size_t n, uint32_t r) {
    char* p = allocate(n);
    if (!p) die("allocation failed", nullptr);
    size_t end = size_t(n * uint64_t(touch_pct) / 100);
    volatile char* v = p;
    for (size_t off = 0; off < end; off += PAGE) {
      dirty += v[off] != 0;
      v[off] = char(r >> 24 | 1);
    }
    b.tag = uint8_t(r | 1);
    v[0] = char(b.tag);  // offset 0 always, even with --touch-pct 0
    b.p = p, b.n = n;
  };
  auto drop = [&](Block& b) {
    uint8_t got = peek(b.p);
    lost += got != b.tag;
    check += got;
    release(b.p);
    b.p = nullptr;
  };

  handshake(c.ready_file, c.go_file);
  long base_rss = status_kb("VmRSS");
  std::vector<Block> blocks(static_cast<size_t>(live));
  for (auto& b : blocks) make(b, next_size(), lcg.next());

  Stopwatch sw;
  sw.start();
  for (long long i = 0; i < steps; i++) {
    uint32_t r = lcg.next();
    Block& old = blocks[(r >> 16) % uint32_t(live)];
    Block fresh;
    make(fresh, next_size(), r);
    drop(old);
    old = fresh;
  }
  sw.stop();

  uint64_t live_bytes = 0;
  for (auto& b : blocks) live_bytes += b.n;
  long sampled_max = 0;
  std::string timeline = rss_timeline(now_ns(), times, nullptr, &sampled_max);
  for (auto& b : blocks) drop(b);
  sleep_until_ns(now_ns() + uint64_t(exit_wait[0] * 1e9));
  long exit_rss = status_kb("VmRSS");
  long peak = status_kb("VmHWM");              // read last: the kernel folds current RSS into it
  if (peak < sampled_max) peak = sampled_max;  // see rss_timeline
  if (peak < exit_rss) peak = exit_rss;
  if (dirty || lost) {
    std::fprintf(stderr,
                 "bench_largechurn: %llu pages of new blocks were not zero, %llu blocks lost their "
                 "first byte: the allocator is broken\n",
                 (unsigned long long)dirty, (unsigned long long)lost);
  }
  char extra[256];
  std::snprintf(extra, sizeof extra,
                "api=%s live=%lld min_mib=%lld max_mib=%lld touch_pct=%lld live_kb=%llu "
                "base_rss_kb=%ld dirty_pages=%llu",
                api.c_str(), live, min_mib, max_mib, touch_pct,
                (unsigned long long)(live_bytes >> 10), base_rss, (unsigned long long)dirty);
  report(use_new ? "largechurn-new" : "largechurn",
         timeline.empty() ? std::string(extra) : std::string(extra) + " " + timeline, 1,
         uint64_t(steps), sw, check, peak, exit_rss);
  return dirty || lost ? 3 : 0;
}
