// bench_xfree — cross-thread ("remote") frees at a chosen rate. T threads each run the SSOT loop
// on their own WS slots; when a full slot is emptied, with probability --remote % the block is not
// freed but handed through a ring to the next thread (t+1 mod T), which frees it. A thread drains
// its inbound ring every 16 iterations. Operations: every malloc and every free, whoever does it.
// If the next thread's ring is full (it is descheduled on an oversubscribed machine), the sender
// drains its own ring and yields until there is room (counted in `ring_stalls`); the achieved
// remote share (`remote_pct_actual`) is reported rather than assumed. It does not measure lock-step
// producer/consumer handoff (bench_prodcons) or thread exit (bench_churn).
#include <atomic>
#include <thread>

#include "common.h"
#include "ring.h"

using namespace hz3::bench;

static const char USAGE[] =
    "usage: bench_xfree [--threads T] [--remote PCT] [--iters N per thread] [--ws N]\n"
    "                   [--min B] [--max B]\n"
    "  defaults: 2 threads, 50 % remote, 10000000 iterations per thread, ws 400,\n"
    "  sizes 16..2048\n";

namespace {

constexpr size_t RING_CAP = 4096;
constexpr unsigned DRAIN_EVERY = 16;

struct alignas(64) Worker {
  std::unique_ptr<SpscRing> inbound;
  std::atomic<bool> done{false};
  uint64_t ops = 0, local_frees = 0, remote_frees = 0, ring_stalls = 0, check = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o(argc, argv, USAGE);
  unsigned threads = unsigned(o.get_int("threads", 2, 1, 4096));
  unsigned pct = unsigned(o.get_int("remote", 50, 0, 100));
  long long iters = o.get_int("iters", 10000000, 1, 1ll << 40);
  long long ws = o.get_int("ws", 400, 1, 1 << 24);
  long long lo = o.get_int("min", 16, 1, 1ll << 30);
  long long hi = o.get_int("max", 2048, lo, 1ll << 30);
  Common c(o);
  o.finish();
  if (pct > 0 && threads < 2) o.bad("remote frees need at least 2 threads", "--threads 1");

  std::vector<Worker> w(threads);
  for (auto& x : w) x.inbound = std::make_unique<SpscRing>(RING_CAP);
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  const uint32_t span = uint32_t(hi - lo + 1);

  auto body = [&](unsigned t) {
    Worker& me = w[t];
    Worker& prev = w[(t + threads - 1) % threads];  // the thread that sends to me
    SpscRing& out = *w[(t + 1) % threads].inbound;
    std::vector<void*> slots(ws, nullptr);
    Lcg lcg(c.seed + 7919u * t);
    uint64_t ops = 0, local = 0, remote = 0, stall = 0, check = 0;
    auto drain = [&](size_t max) {
      for (size_t k = 0; k < max; k++) {
        void* p = me.inbound->pop();
        if (!p) break;
        check += peek(p);
        free(p);
        ops++;
      }
    };
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();

    for (long long i = 0; i < iters; i++) {
      if (i % DRAIN_EVERY == 0) drain(64);
      uint32_t r = lcg.next();
      void*& slot = slots[r % uint32_t(ws)];
      if (slot) {
        if ((r >> 16) % 100 < pct) {
          // Back-pressure instead of a local free, so the remote share is what was asked for;
          // draining our own inbound ring meanwhile keeps a cycle of full rings from deadlocking.
          while (!out.push(slot)) {
            stall++;
            drain(SIZE_MAX);
            std::this_thread::yield();
          }
          remote++;
        } else {
          check += peek(slot);
          free(slot);
          local++;
          ops++;
        }
        slot = nullptr;
      } else {
        void* p = malloc(size_t(lo) + (r >> 8) % span);
        if (!p) die("malloc failed", nullptr);
        touch(p, r);
        slot = p;
        ops++;
      }
    }
    for (void*& p : slots)
      if (p) {
        check += peek(p);
        free(p);
        p = nullptr;
        local++;
        ops++;
      }
    me.done.store(true, std::memory_order_release);
    // Whatever the previous thread sent is ours to free; it may still be sending.
    for (;;) {
      bool prev_done = prev.done.load(std::memory_order_acquire);
      drain(SIZE_MAX);
      if (prev_done) {
        drain(SIZE_MAX);
        break;
      }
      std::this_thread::yield();
    }
    me.ops = ops, me.local_frees = local, me.remote_frees = remote, me.ring_stalls = stall;
    me.check = check;
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

  uint64_t ops = 0, local = 0, remote = 0, stalls = 0, check = 0;
  for (auto& x : w) {
    ops += x.ops, local += x.local_frees, remote += x.remote_frees, stalls += x.ring_stalls;
    check += x.check;
  }
  w.clear();
  long exit_rss = status_kb("VmRSS");
  long peak = status_kb("VmHWM");  // read last: the kernel folds current RSS into it
  double actual = local + remote ? 100.0 * remote / double(local + remote) : 0;
  char extra[256];
  std::snprintf(extra, sizeof extra,
                "remote_pct=%u remote_pct_actual=%.1f ring_stalls=%llu min=%lld max=%lld ws=%lld",
                pct, actual, (unsigned long long)stalls, lo, hi, ws);
  std::string name = "xfree-" + std::to_string(pct);
  report(name.c_str(), extra, threads, ops, sw, check, peak, exit_rss);
  return 0;
}
