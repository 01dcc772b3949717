// bench_idle — memory kept for idle threads: T threads (8 by default) each allocate --blocks
// blocks (63 by default) of every one of 44 sizes from 16 B to 64 KiB, fill each block completely,
// then verify and free them all, --rounds times; then they block on a condition variable with
// nothing live, still alive. VmRSS is sampled at the times of --rss-at (seconds after the last
// thread went idle; RESULT fields rss_after_s / rss_after_kb) while they wait, then they are
// woken and joined and joined_rss_kb is read. exit_rss_kb is the last idle sample (or RSS at the
// moment all went idle without --rss-at): what an allocator keeps for threads that will allocate
// again but not now — a thread pool between bursts. peak_rss_kb includes the live burst (T x the
// sum of the sizes x blocks, `burst_kb` per thread). Operations: every malloc and every free; the
// timed part is short and its ops/s says little; the RSS figures are the point.
// The sizes are hz3's 44 size classes as of 2026-12 (docs/size-classes.md), fixed here so the
// workload does not move when hz3's classes do; for other allocators they are simply a sweep
// of 4 sizes per power of two.
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common.h"

using namespace hz3::bench;

static const char USAGE[] =
    "usage: bench_idle [--threads T] [--blocks N per size] [--rounds R] [--rss-at S,S,…]\n"
    "  defaults: 8 threads, 63 blocks of each of 44 sizes 16..65536, 1 round, no RSS samples\n"
    "  (bench/run.py passes --rss-at 0,1,2,5)\n";

namespace {

constexpr unsigned SIZES[] = {16,    32,    48,    64,    80,    96,    112,   128,   160,
                              192,   224,   256,   320,   384,   448,   512,   640,   768,
                              896,   1024,  1280,  1536,  1792,  2048,  2560,  3072,  3584,
                              4096,  5120,  6144,  7168,  8192,  10240, 12288, 14336, 16384,
                              20480, 24576, 28672, 32768, 40960, 49152, 57344, 65536};
constexpr unsigned NSIZES = sizeof SIZES / sizeof SIZES[0];
static_assert(NSIZES == 44);

struct alignas(64) Tally {
  uint64_t ops = 0, check = 0, bad = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o(argc, argv, USAGE);
  unsigned threads = unsigned(o.get_int("threads", 8, 1, 4096));
  long long blocks = o.get_int("blocks", 63, 1, 1 << 20);
  long long rounds = o.get_int("rounds", 1, 1, 1 << 20);
  std::string rss_at = o.get_str("rss-at", "");
  std::vector<double> times = parse_times(o, "rss-at", rss_at);
  Common c(o);
  o.finish();

  std::vector<Tally> tally(threads);
  std::mutex mu;
  std::condition_variable cv;
  unsigned ready = 0, idle = 0;
  bool go = false, wake = false;

  auto body = [&](unsigned t) {
    Tally& me = tally[t];
    {
      std::unique_lock<std::mutex> lk(mu);
      ready++;
      cv.notify_all();
      cv.wait(lk, [&] { return go; });
    }
    {
      std::vector<void*> live(size_t(blocks) * NSIZES);
      for (long long round = 0; round < rounds; round++) {
        uint8_t v = uint8_t((c.seed >> 3) + t * 31 + round * 7) | 1;
        size_t k = 0;
        for (unsigned s = 0; s < NSIZES; s++)
          for (long long b = 0; b < blocks; b++) {
            void* p = malloc(SIZES[s]);
            if (!p) die("malloc failed", nullptr);
            std::memset(p, v, SIZES[s]);
            live[k++] = p;
          }
        me.ops += k;
        k = 0;
        for (unsigned s = 0; s < NSIZES; s++)
          for (long long b = 0; b < blocks; b++) {
            auto* p = static_cast<volatile uint8_t*>(live[k++]);
            me.bad += p[0] != v || p[SIZES[s] - 1] != v;
            me.check += p[SIZES[s] / 2];
            free(const_cast<uint8_t*>(p));
          }
        me.ops += k;
      }
    }  // `live` itself is freed here: nothing of this thread's stays allocated
    std::unique_lock<std::mutex> lk(mu);
    idle++;
    cv.notify_all();
    cv.wait(lk, [&] { return wake; });
  };

  handshake(c.ready_file, c.go_file);
  std::vector<std::thread> th;
  for (unsigned t = 0; t < threads; t++) th.emplace_back(body, t);
  Stopwatch sw;
  {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return ready == threads; });
    sw.start();
    go = true;
    cv.notify_all();
    cv.wait(lk, [&] { return idle == threads; });
    sw.stop();
  }
  long idle_rss = status_kb("VmRSS"), sampled_max = idle_rss;
  std::string timeline = rss_timeline(now_ns(), times, &idle_rss, &sampled_max);
  {
    std::lock_guard<std::mutex> lk(mu);
    wake = true;
  }
  cv.notify_all();
  for (auto& x : th) x.join();
  long joined_rss = status_kb("VmRSS");
  long peak = status_kb("VmHWM");              // read last: the kernel folds current RSS into it
  if (peak < sampled_max) peak = sampled_max;  // see rss_timeline

  uint64_t ops = 0, check = 0, bad = 0;
  for (auto& x : tally) ops += x.ops, check += x.check, bad += x.bad;
  if (bad)
    std::fprintf(stderr,
                 "bench_idle: %llu blocks lost their contents before they were freed: the "
                 "allocator handed out overlapping blocks\n",
                 (unsigned long long)bad);
  uint64_t burst = 0;
  for (unsigned s : SIZES) burst += uint64_t(s) * uint64_t(blocks);
  char extra[160];
  std::snprintf(extra, sizeof extra,
                "blocks=%lld sizes=%u rounds=%lld burst_kb=%llu "
                "joined_rss_kb=%ld bad=%llu",
                blocks, NSIZES, rounds, (unsigned long long)(burst >> 10), joined_rss,
                (unsigned long long)bad);
  report("idle", timeline.empty() ? std::string(extra) : std::string(extra) + " " + timeline,
         threads, ops, sw, check, peak, idle_rss);
  return bad ? 3 : 0;
}
