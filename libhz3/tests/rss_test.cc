// RSS-return test for libhz3: after a process allocates and touches at least 1 GiB in small
// (16…2048 B) or medium (4…64 KiB) blocks and frees all of it, its resident set must come back to
// within 64 MiB of the baseline within 2 s, with no further allocator call (the test only sleeps
// and reads /proc/self/statm, both without malloc). Cases: small, medium, blocks freed by threads
// that then exit (thread-exit flush), and blocks freed by a thread other than the allocating one.
// Usage: rss_test GROUP [--limit-mib N] [--wait-ms N] [--case NAME]; each case runs in a fresh
// process of its own. Not a benchmark: it reports how long the
// return took, but only the bound is asserted.
#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <thread>
#include <vector>

#include "check.h"

using namespace hz3::test;

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * KiB;
constexpr size_t TARGET = 1024 * MiB;  // bytes allocated per case

size_t g_limit = 64 * MiB;
unsigned g_wait_ms = 2000;

// Resident bytes from /proc/self/statm, read without the allocator (open/read into the stack).
size_t rss_bytes() {
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* p = strchr(buf, ' ');  // field 2: resident pages
  if (p == nullptr) return 0;
  return strtoull(p + 1, nullptr, 10) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

double mib(size_t b) { return static_cast<double>(b) / static_cast<double>(MiB); }

// A pointer array outside the allocator, so its own pages neither count as allocator memory
// nor keep allocator pages alive; unmapped before RSS is measured.
struct PtrArray {
  void** v = nullptr;
  size_t cap = 0, n = 0;
  explicit PtrArray(size_t c) : cap(c) {
    void* m = mmap(nullptr, c * sizeof(void*), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    v = m == MAP_FAILED ? nullptr : static_cast<void**>(m);
  }
  ~PtrArray() { release(); }
  void release() {
    if (v) munmap(v, cap * sizeof(void*));
    v = nullptr;
  }
};

// Allocates `target` bytes in blocks of [lo, hi], touching every byte; returns false on failure.
bool fill_up(PtrArray& a, size_t target, size_t lo, size_t hi, uint64_t seed) {
  Rng rng(seed);
  size_t total = 0;
  while (total < target && a.n < a.cap) {
    size_t n = rng.range(lo, hi);
    void* p = malloc(n);
    if (p == nullptr) return false;
    memset(p, static_cast<int>(a.n & 0xFF) | 1, n);
    a.v[a.n++] = p;
    total += n;
  }
  return total >= target;
}

// Frees every block in a scattered order (stride through the array), as real programs do.
void free_all(PtrArray& a) {
  const size_t stride = 7919;  // prime, so the walk visits every index once
  size_t start = 0;
  for (size_t k = 0; k < stride && k < a.n; k++, start++)
    for (size_t i = start; i < a.n; i += stride) free(a.v[i]);
  a.n = 0;
}

// Waits (no allocator calls) until RSS is within the limit of the baseline; checks and reports.
void expect_return(const char* what, size_t baseline, size_t peak) {
  double t0 = now_s();
  size_t rss = rss_bytes();
  while (rss > baseline + g_limit && (now_s() - t0) * 1000 < g_wait_ms) {
    sleep_ms(20);
    rss = rss_bytes();
  }
  double took = now_s() - t0;
  printf("  rss %s: baseline %.1f MiB, peak %.1f MiB, after free %.1f MiB (%.2f s)\n", what,
         mib(baseline), mib(peak), mib(rss), took);
  CHECKF(peak >= baseline + TARGET * 8 / 10, "peak %.1f MiB: the case never held ~1 GiB",
         mib(peak));
  CHECKF(rss <= baseline + g_limit,
         "RSS %.1f MiB is %.1f MiB above the baseline %.1f MiB %.1f s after freeing %.0f MiB",
         mib(rss), mib(rss - baseline), mib(baseline), took, mib(peak - baseline));
}

void one_thread_case(const char* what, size_t lo, size_t hi, uint64_t seed) {
  size_t baseline = rss_bytes();
  PtrArray a(TARGET / lo + 16);
  REQUIRE(a.v != nullptr);
  REQUIREF(fill_up(a, TARGET, lo, hi, seed), "allocation failed after %zu blocks", a.n);
  size_t peak = rss_bytes();
  free_all(a);
  a.release();
  expect_return(what, baseline, peak);
}

void t_small() { one_thread_case("small", 16, 2048, 1); }
void t_medium() { one_thread_case("medium", 4 * KiB, 64 * KiB, 2); }

// Four threads each allocate a quarter, free it themselves and exit: what their caches held must
// be flushed back at thread exit and returned.
void t_threads_exit() {
  size_t baseline = rss_bytes();
  constexpr int T = 4;
  std::atomic<size_t> peak{0};
  std::atomic<int> ready{0}, failed{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < T; t++) {
    ts.emplace_back([&, t] {
      PtrArray a(TARGET / T / 16 + 16);
      bool ok = a.v != nullptr && fill_up(a, TARGET / T, 16, (t & 1) ? 64 * KiB : 2048, 10 + t);
      if (!ok) failed++;
      ready++;
      while (ready.load() < T) sched_yield();  // hold everything at once to measure the peak
      size_t r = rss_bytes();
      size_t p = peak.load();
      while (r > p && !peak.compare_exchange_weak(p, r)) {
      }
      free_all(a);
    });
  }
  for (auto& t : ts) t.join();
  REQUIREF(failed.load() == 0, "%d threads failed to allocate", failed.load());
  expect_return("threads_exit", baseline, peak.load());
}

// Main allocates everything, a second thread frees it all (remote frees), and that thread exits.
void t_cross_thread() {
  size_t baseline = rss_bytes();
  PtrArray a(TARGET / 16 + 16);
  REQUIRE(a.v != nullptr);
  REQUIREF(fill_up(a, TARGET, 16, 16 * KiB, 3), "allocation failed after %zu blocks", a.n);
  size_t peak = rss_bytes();
  std::thread([&] { free_all(a); }).join();
  a.release();
  expect_return("cross_thread", baseline, peak);
}

// Waits (no allocator calls) until RSS is within `limit` of the baseline, after a case that held
// at least `held` bytes at its peak.
void expect_return_to(const char* what, size_t baseline, size_t peak, size_t held, size_t limit) {
  double t0 = now_s();
  size_t rss = rss_bytes();
  while (rss > baseline + limit && (now_s() - t0) * 1000 < g_wait_ms) {
    sleep_ms(20);
    rss = rss_bytes();
  }
  double took = now_s() - t0;
  printf("  rss %s: baseline %.1f MiB, peak %.1f MiB, after free %.1f MiB (%.2f s)\n", what,
         mib(baseline), mib(peak), mib(rss), took);
  CHECKF(peak >= baseline + held * 8 / 10, "peak %.1f MiB: the case never held %.0f MiB", mib(peak),
         mib(held));
  CHECKF(rss <= baseline + limit,
         "RSS %.1f MiB is %.1f MiB above the baseline %.1f MiB %.1f s later", mib(rss),
         mib(rss - baseline), mib(baseline), took);
}

// Three threads allocate a third each and stay alive, idle, while main frees everything in
// rotation (block k of owner k % 3): every free is remote, no owner ever calls the allocator
// again, and the freeing thread never frees twice in a row to the same heap. The owners' inboxes
// must still be drained back to the spans and the OS.
void t_idle_owners_rotating() {
  size_t baseline = rss_bytes();
  constexpr int T = 3;
  PtrArray a[T] = {PtrArray(TARGET / T / 16 + 16), PtrArray(TARGET / T / 16 + 16),
                   PtrArray(TARGET / T / 16 + 16)};
  std::atomic<int> ready{0}, failed{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < T; t++) {
    ts.emplace_back([&, t] {
      if (a[t].v == nullptr || !fill_up(a[t], TARGET / T, 16, 16 * KiB, 20 + t)) failed++;
      ready++;
      while (!done.load()) sleep_ms(10);  // alive and idle: no allocator call
    });
  }
  while (ready.load() < T) sleep_ms(1);
  size_t peak = rss_bytes();
  if (failed.load() == 0) {
    size_t n = a[0].n;
    for (int t = 1; t < T; t++) n = a[t].n > n ? a[t].n : n;
    for (size_t i = 0; i < n; i++)
      for (int t = 0; t < T; t++)
        if (i < a[t].n) free(a[t].v[i]);
    for (int t = 0; t < T; t++) a[t].n = 0;
    for (int t = 0; t < T; t++) a[t].release();
    expect_return_to("idle_owners_rotating", baseline, peak, TARGET, g_limit);
  }
  done = true;
  for (auto& t : ts) t.join();
  REQUIREF(failed.load() == 0, "%d threads failed to allocate", failed.load());
}

// Eight threads allocate blocks of every size class up to 64 KiB and exit; main frees them all
// (remote frees to orphaned heaps). malloc_trim(0) must then give back everything free: the
// orphans' empty spans included.
void t_trim_after_orphan_frees() {
  size_t baseline = rss_bytes();
  constexpr int T = 8, PER = 48;
  PtrArray a(T * PER * 64 + 16);
  REQUIRE(a.v != nullptr);
  std::atomic<size_t> held{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < T; t++) {
    ts.emplace_back([&, t] {
      size_t mine = 0;
      for (size_t size = 16; size <= 64 * KiB; size += size / 4 > 16 ? size / 4 : 16)
        for (int k = 0; k < PER; k++) {
          void* p = malloc(size);
          if (p == nullptr) continue;
          memset(p, t + 1, size);
          size_t slot = __atomic_fetch_add(&a.n, 1, __ATOMIC_RELAXED);
          a.v[slot] = p;
          mine += size;
        }
      held += mine;
    });
  }
  for (auto& t : ts) t.join();
  size_t peak = rss_bytes();
  for (size_t i = 0; i < a.n; i++) free(a.v[i]);
  a.n = 0;
  a.release();
  malloc_trim(0);
  expect_return_to("trim_after_orphan_frees", baseline, peak, held.load(), 8 * MiB);
}

struct Case {
  const char* name;
  void (*fn)();
};
const Case CASES[] = {{"small_1g_returned", t_small},
                      {"medium_1g_returned", t_medium},
                      {"threads_exit_1g_returned", t_threads_exit},
                      {"cross_thread_1g_returned", t_cross_thread},
                      {"idle_owners_rotating_returned", t_idle_owners_rotating},
                      {"trim_after_orphan_frees", t_trim_after_orphan_frees}};

// Runs one case in a fresh process (this program re-executed with --case): memory a failing case
// leaves resident must not become the next case's baseline.
void run_isolated(int argc, char** argv, const Case& c) {
  std::vector<char*> args(argv, argv + argc);
  args.push_back(const_cast<char*>("--case"));
  args.push_back(const_cast<char*>(c.name));
  args.push_back(nullptr);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    execv("/proc/self/exe", args.data());
    _exit(127);
  }
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid) {
    printf("FAIL: %s/%s: could not run the case process\n", suite().group, c.name);
    return;
  }
  // The child prints its own result; a death its crash guard cannot report (SIGKILL from the
  // OOM killer, exec failure) is reported here.
  bool guarded = WIFSIGNALED(st) &&
                 (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS || WTERMSIG(st) == SIGABRT ||
                  WTERMSIG(st) == SIGALRM || WTERMSIG(st) == SIGILL || WTERMSIG(st) == SIGFPE);
  if (WIFEXITED(st) ? WEXITSTATUS(st) > 1 : !guarded)
    printf("FAIL: %s/%s: case process %s %d\n", suite().group, c.name,
           WIFEXITED(st) ? "exited with status" : "killed by signal",
           WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) suite().failed++;
}

}  // namespace

int main(int argc, char** argv) {
  static char group[128];
  snprintf(group, sizeof group, "rss/%s", argc > 1 ? argv[1] : "default");
  const char* only = nullptr;
  for (int i = 2; i + 1 < argc; i++) {
    if (strcmp(argv[i], "--limit-mib") == 0) g_limit = strtoull(argv[i + 1], nullptr, 10) * MiB;
    if (strcmp(argv[i], "--wait-ms") == 0) g_wait_ms = static_cast<unsigned>(atoi(argv[i + 1]));
    if (strcmp(argv[i], "--case") == 0) only = argv[i + 1];
  }
  init(group);
  if (only == nullptr) {
    for (const Case& c : CASES) run_isolated(argc, argv, c);
    return finish();
  }
  // Warm-up: the allocator's one-time setup (arena, tag map, a thread cache) belongs to the
  // baseline, not to what must be returned.
  std::thread([] {
    for (int i = 0; i < 1000; i++) free(malloc(static_cast<size_t>(16 + i * 40)));
  }).join();
  for (int i = 0; i < 1000; i++) free(malloc(static_cast<size_t>(16 + i * 40)));
  for (const Case& c : CASES)
    if (strcmp(c.name, only) == 0) run_case(c.name, c.fn, 60);
  return finish();
}
