// rel_stress: the long stress test behind `make stress` (and a short smoke of it in make test),
// run with LD_PRELOAD like every libhz3 test program. Worker threads trade blocks through a table
// of shared slots, so most frees happen on a thread other than the allocating one; sizes cover
// every class from 0 B to 8 MiB; a block taken from a slot is checked, then freed, put back, or
// put through a chain of reallocs that must keep its bytes. Workers retire after a random number
// of operations and are replaced (thread churn), bursts of short-lived threads come and go, and
// the process forks at a third and at two thirds of the run while everything is in flight: the
// child checks and frees every block it inherited, runs a short workload of its own, and exits.
//
// The live set is bounded (SLOTS blocks, sizes drawn from a fixed distribution), so resident
// memory must be too: RSS is sampled every 200 ms (by a thread of its own) with the exact live
// bytes beside it, and
//   rss_bounded   peak RSS <= 2 x peak live bytes + 96 MiB
//   rss_stable    peak RSS of the last third <= 1.25 x peak RSS of the middle third + 32 MiB
//                 (a leak, lost span or unreleased cache would grow across the run)
// Result lines: GROUP/{corruption,fork_children,rss_bounded,rss_stable}; `#` lines carry the
// numbers. Usage: rel_stress GROUP [--seconds S] [--threads T] [--slots N]
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "check.h"

using namespace hz3::test;

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * KiB;
constexpr uintptr_t BUSY = 1;  // a slot some thread is working on

struct Options {
  double seconds = 60;
  int threads = 12;
  int slots = 2048;
} g_opt;

// A slot: the block pointer, and metadata that only the thread holding the slot (it swapped in
// BUSY) reads or writes; the release store of the pointer publishes it.
struct Slot {
  std::atomic<uintptr_t> p{0};
  size_t n = 0;
  uint64_t seed = 0;
  uint32_t owner = 0;  // worker that allocated it
};
Slot* g_slots;

std::atomic<bool> g_stop{false};
std::atomic<int64_t> g_live_bytes{0};
std::atomic<uint64_t> g_ops{0}, g_frees{0}, g_remote_frees{0}, g_reallocs{0}, g_threads_started{0};
std::atomic<uint64_t> g_errors{0};
std::mutex g_err_mu;
char g_first_error[300];

void error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void error(const char* fmt, ...) {
  if (g_errors.fetch_add(1) != 0) return;
  std::lock_guard<std::mutex> g(g_err_mu);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_first_error, sizeof g_first_error, fmt, ap);
  va_end(ap);
}

// Sizes over every class: mostly small, some medium and large, rarely up to 8 MiB. The mean is
// about 40 KiB, so 2048 slots hold about 80 MiB live.
size_t pick_size(Rng& r) {
  uint64_t x = r.next();
  uint32_t k = x % 1000;
  if (k < 700) return (x >> 12) % 2049;                        // 0 … 2 KiB
  if (k < 930) return 2049 + (x >> 12) % (64 * KiB - 2048);    // medium
  if (k < 995) return 64 * KiB + 1 + (x >> 12) % (960 * KiB);  // large, up to 1 MiB
  return MiB + (x >> 12) % (7 * MiB);                          // up to 8 MiB
}

// Pattern regions: whole block up to 64 KiB; beyond, the first and last 16 KiB and one 64-byte
// probe per 64 KiB. Each byte depends on the seed and its offset, so realloc can check a prefix.
template <class F>
void regions(size_t n, F&& f) {
  if (n <= 64 * KiB) {
    if (n) f(size_t{0}, n);
    return;
  }
  f(size_t{0}, 16 * KiB);
  for (size_t off = 64 * KiB; off + 64 <= n - 16 * KiB; off += 64 * KiB) f(off, size_t{64});
  f(n - 16 * KiB, 16 * KiB);
}

void fill(void* p, size_t n, uint64_t seed) {
  regions(n, [&](size_t off, size_t len) { fill_seeded(p, off, off + len, seed); });
}

// Offset of the first wrong byte below `upto`, or SIZE_MAX.
size_t check(const void* p, size_t n, size_t upto, uint64_t seed) {
  size_t bad = SIZE_MAX;
  const unsigned char* b = static_cast<const unsigned char*>(p);
  regions(n, [&](size_t off, size_t len) {
    for (size_t i = off; i < off + len && i < upto && bad == SIZE_MAX; i++)
      if (b[i] != seed_byte(seed, i)) bad = i;
  });
  return bad;
}

void* allocate(Rng& r, size_t n) {
  switch (r.next() % 8) {
    case 0:
      return calloc(1, n);
    case 1: {
      void* p = nullptr;
      return posix_memalign(&p, size_t{16} << (r.next() % 9), n) == 0 ? p : nullptr;
    }
    case 2:
      return aligned_alloc(64, n);
    default:
      return malloc(n);
  }
}

// Takes a slot: returns false when another thread holds it.
bool take(Slot& s, uintptr_t* p) {
  *p = s.p.exchange(BUSY, std::memory_order_acquire);
  if (*p == BUSY) return false;
  return true;
}
void give(Slot& s, uintptr_t p) { s.p.store(p, std::memory_order_release); }

void worker(uint32_t id, uint64_t seed, uint64_t lifetime_ops) {
  Rng r(seed);
  for (uint64_t op = 0; op < lifetime_ops && !g_stop.load(std::memory_order_relaxed); op++) {
    Slot& s = g_slots[r.next() % size_t(g_opt.slots)];
    uintptr_t cur;
    if (!take(s, &cur)) continue;
    g_ops.fetch_add(1, std::memory_order_relaxed);
    if (cur == 0) {  // empty: allocate into it
      size_t n = pick_size(r);
      void* p = allocate(r, n);
      if (p == nullptr) {
        error("allocation of %zu B failed (errno %d)", n, errno);
        give(s, 0);
        continue;
      }
      if (malloc_usable_size(p) < n) error("usable size %zu < %zu", malloc_usable_size(p), n);
      s.n = n;
      s.seed = r.next();
      s.owner = id;
      fill(p, n, s.seed);
      g_live_bytes.fetch_add(int64_t(n), std::memory_order_relaxed);
      give(s, uintptr_t(p));
      continue;
    }
    void* p = reinterpret_cast<void*>(cur);
    size_t bad = check(p, s.n, s.n, s.seed);
    if (bad != SIZE_MAX) {
      error("block %p (%zu B, allocated by worker %u) corrupted at +%zu", p, s.n, s.owner, bad);
      give(s, 0);  // leaked: its bytes cannot be trusted
      continue;
    }
    uint32_t action = r.next() % 20;
    if (action < 12) {  // free
      g_live_bytes.fetch_sub(int64_t(s.n), std::memory_order_relaxed);
      g_frees.fetch_add(1, std::memory_order_relaxed);
      if (s.owner != id) g_remote_frees.fetch_add(1, std::memory_order_relaxed);
      free(p);
      give(s, 0);
    } else if (action < 17) {  // a realloc chain: each step keeps the common prefix
      int steps = 1 + int(r.next() % 6);
      for (int k = 0; k < steps; k++) {
        size_t m = pick_size(r);
        void* q = realloc(p, m);
        g_reallocs.fetch_add(1, std::memory_order_relaxed);
        if (q == nullptr && m != 0) {
          error("realloc(%zu -> %zu) failed (errno %d)", s.n, m, errno);
          break;
        }
        if (m == 0) {  // glibc semantics: freed, NULL returned; start a fresh block
          if (q == nullptr) q = malloc(0);
          if (q == nullptr) {
            error("malloc(0) failed");
            g_live_bytes.fetch_sub(int64_t(s.n), std::memory_order_relaxed);
            s.n = 0;
            p = nullptr;
            break;
          }
        } else if ((bad = check(q, s.n, std::min(s.n, m), s.seed)) != SIZE_MAX) {
          error("realloc(%zu -> %zu) lost byte %zu", s.n, m, bad);
        }
        g_live_bytes.fetch_add(int64_t(m) - int64_t(s.n), std::memory_order_relaxed);
        p = q;
        s.n = m;
        s.seed = r.next();
        s.owner = id;
        fill(p, m, s.seed);
      }
      give(s, uintptr_t(p));
    } else {  // leave it for another thread
      give(s, cur);
    }
  }
}

// A burst of short-lived threads, each allocating into a few slots and leaving.
void burst(Rng& r) {
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; i++) {
    g_threads_started.fetch_add(1);
    ts.emplace_back(worker, 1000000 + uint32_t(i), r.next(), 200);
  }
  for (auto& t : ts) t.join();
}

size_t rss_bytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, res = 0;
  if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
  fclose(f);
  return res * size_t(sysconf(_SC_PAGESIZE));
}

// The forked child: only this thread exists. Slots held (BUSY) by a parent thread at fork time
// are skipped; every other block is checked and freed, then a small workload runs on 2 threads.
int child_body() {
  alarm(60);  // a lock still held from the parent becomes SIGALRM, not a hang
  int bad = 0;
  for (int i = 0; i < g_opt.slots; i++) {
    Slot& s = g_slots[i];
    uintptr_t p = s.p.load(std::memory_order_acquire);
    if (p == 0 || p == BUSY) continue;
    if (check(reinterpret_cast<void*>(p), s.n, s.n, s.seed) != SIZE_MAX) bad++;
    free(reinterpret_cast<void*>(p));
    s.p.store(0, std::memory_order_relaxed);
  }
  if (bad) return 2;
  g_stop.store(false);
  g_errors.store(0);
  std::thread a(worker, 2000001, 11, 5000), b(worker, 2000002, 12, 5000);
  a.join();
  b.join();
  return g_errors.load() == 0 ? 0 : 3;
}

struct Sample {
  double t;
  size_t rss;
  int64_t live;
};

void parse(int argc, char** argv) {
  for (int i = 2; i + 1 < argc; i++) {
    if (strcmp(argv[i], "--seconds") == 0)
      g_opt.seconds = atof(argv[++i]);
    else if (strcmp(argv[i], "--threads") == 0)
      g_opt.threads = atoi(argv[++i]);
    else if (strcmp(argv[i], "--slots") == 0)
      g_opt.slots = atoi(argv[++i]);
  }
  if (g_opt.threads < 2) g_opt.threads = 2;
  if (g_opt.slots < 16) g_opt.slots = 16;
}

}  // namespace

int main(int argc, char** argv) {
  const char* group = argc > 1 ? argv[1] : "longstress";
  parse(argc, argv);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  g_slots = new Slot[size_t(g_opt.slots)];
  printf("# %s: %.0f s, %d worker threads, %d slots\n", group, g_opt.seconds, g_opt.threads,
         g_opt.slots);

  Rng r(12345);
  const double t0 = now_s();
  // Workers: each retires after a random number of ops and is replaced at once (thread churn).
  std::vector<std::thread> workers(size_t(g_opt.threads));
  std::vector<std::atomic<bool>> done(size_t(g_opt.threads));
  uint32_t next_id = 1;
  auto start_worker = [&](size_t i) {
    done[i].store(false);
    uint32_t id = next_id++;
    uint64_t seed = r.next(), life = 20000 + r.next() % 200000;
    g_threads_started.fetch_add(1);
    workers[i] = std::thread([&, i, id, seed, life] {
      worker(id, seed, life);
      done[i].store(true);
    });
  };
  for (size_t i = 0; i < workers.size(); i++) start_worker(i);

  // RSS sampler: its own thread, so forks and bursts on the main thread do not delay it.
  std::vector<Sample> samples;
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    while (sampling.load()) {
      samples.push_back({now_s() - t0, rss_bytes(), g_live_bytes.load()});
      sleep_ms(200);
    }
  });
  int forks = 0, fork_failures = 0;
  char fork_why[200] = "";
  bool forked_at[2] = {false, false};
  double next_burst = 1.0;
  while (true) {
    double t = now_s() - t0;
    if (t >= g_opt.seconds) break;
    sleep_ms(100);
    for (size_t i = 0; i < workers.size(); i++)
      if (done[i].load()) {
        workers[i].join();
        start_worker(i);
      }
    if (t >= next_burst) {
      burst(r);
      next_burst = t + 1.0;
    }
    for (int k = 0; k < 2; k++) {
      if (forked_at[k] || t < g_opt.seconds * (k + 1) / 3) continue;
      forked_at[k] = true;
      forks++;
      fflush(stdout);
      pid_t pid = fork();
      if (pid == 0) _exit(child_body());
      int st = 0;
      if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fork_failures++;
        snprintf(fork_why, sizeof fork_why, "child forked at %.0f s: %s %d", t,
                 pid < 0           ? "fork failed"
                 : WIFSIGNALED(st) ? "killed by signal"
                                   : "exit status",
                 pid < 0           ? errno
                 : WIFSIGNALED(st) ? WTERMSIG(st)
                                   : WEXITSTATUS(st));
      }
    }
  }
  g_stop.store(true);
  for (auto& w : workers) w.join();
  sampling.store(false);
  sampler.join();

  // Every block left is checked and freed.
  for (int i = 0; i < g_opt.slots; i++) {
    uintptr_t p = g_slots[i].p.load();
    if (p == 0 || p == BUSY) continue;
    size_t bad = check(reinterpret_cast<void*>(p), g_slots[i].n, g_slots[i].n, g_slots[i].seed);
    if (bad != SIZE_MAX)
      error("block %#lx (%zu B) corrupted at +%zu at the end", p, g_slots[i].n, bad);
    free(reinterpret_cast<void*>(p));
    g_live_bytes.fetch_sub(int64_t(g_slots[i].n));
  }

  // RSS: peak against peak live bytes, and the last third against the middle third.
  size_t peak_rss = 0, mid_peak = 0, last_peak = 0;
  int64_t peak_live = 0;
  double dur = samples.empty() ? 0 : samples.back().t;
  for (const Sample& s : samples) {
    peak_rss = std::max(peak_rss, s.rss);
    peak_live = std::max(peak_live, s.live);
    if (s.t >= dur / 3 && s.t < 2 * dur / 3) mid_peak = std::max(mid_peak, s.rss);
    if (s.t >= 2 * dur / 3) last_peak = std::max(last_peak, s.rss);
  }
  printf(
      "# ops %llu, frees %llu (%.0f%% by another thread), realloc steps %llu, threads %llu, "
      "forks %d\n",
      (unsigned long long)g_ops.load(), (unsigned long long)g_frees.load(),
      g_frees.load() ? 100.0 * double(g_remote_frees.load()) / double(g_frees.load()) : 0.0,
      (unsigned long long)g_reallocs.load(), (unsigned long long)g_threads_started.load(), forks);
  printf(
      "# live peak %.1f MiB; RSS peak %.1f MiB, middle third %.1f MiB, last third %.1f MiB, "
      "%zu samples\n",
      double(peak_live) / MiB, double(peak_rss) / MiB, double(mid_peak) / MiB,
      double(last_peak) / MiB, samples.size());
  printf("# RSS over time (MiB, every ~%zu samples):", samples.size() / 12 + 1);
  for (size_t i = 0; i < samples.size(); i += samples.size() / 12 + 1)
    printf(" %.0f", double(samples[i].rss) / MiB);
  printf("\n");

  int failed = 0;
  auto result = [&](const char* name, bool ok, const char* why) {
    if (ok) {
      printf("PASS: %s/%s\n", group, name);
    } else {
      printf("FAIL: %s/%s: %s\n", group, name, why);
      failed++;
    }
  };
  char why[400];
  snprintf(why, sizeof why, "%llu errors, first: %s", (unsigned long long)g_errors.load(),
           g_first_error);
  result("corruption", g_errors.load() == 0 && g_ops.load() > 0, why);
  snprintf(why, sizeof why, "%d of %d children failed; last: %s", fork_failures, forks, fork_why);
  result("fork_children", fork_failures == 0, why);
  snprintf(why, sizeof why, "peak RSS %.1f MiB > 2 x peak live %.1f MiB + 96 MiB",
           double(peak_rss) / MiB, double(peak_live) / MiB);
  result("rss_bounded", peak_rss <= 2 * size_t(peak_live) + 96 * MiB, why);
  if (samples.size() < 15) {
    printf("SKIP: %s/rss_stable: only %zu RSS samples (run longer than 3 s)\n", group,
           samples.size());
  } else {
    snprintf(why, sizeof why, "RSS peak of the last third %.1f MiB > 1.25 x %.1f MiB + 32 MiB",
             double(last_peak) / MiB, double(mid_peak) / MiB);
    result("rss_stable", last_peak <= mid_peak + mid_peak / 4 + 32 * MiB, why);
  }
  delete[] g_slots;
  return failed ? 1 : 0;
}
