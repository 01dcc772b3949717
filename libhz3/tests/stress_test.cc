// Multi-threaded stress test for libhz3: blocks handed between threads through queues and freed
// by a thread other than their allocator, more than 100 threads alive at once, thousands of
// short-lived threads, malloc/free from late TLS destructors (C++ thread_local and pthread keys,
// after the allocator's own per-thread teardown), and fork from a multi-threaded process with
// allocation in the child and in the parent afterwards. Every block carries a pattern derived
// from its address and size, checked right before it is freed, so a block served twice, a lost
// free list or a torn cross-thread handoff shows up as corruption rather than luck.
// Usage: stress_test GROUP [case …] [--after CASE]   (default: every case). Not a benchmark: sizes
// and counts are chosen to finish in seconds on 2 cores, including under the `check` variant.
#include <errno.h>
#include <pthread.h>
#include <sys/wait.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "check.h"

using namespace hz3::test;

namespace {

constexpr size_t KiB = 1024;

// Mostly small blocks, some medium, a few large: the mix crosses every size range.
size_t pick_size(Rng& rng) {
  uint64_t r = rng.next();
  switch (r & 15) {
    case 0:
      return rng.range(2049, 64 * KiB);
    case 1:
      return (r & 0xF00) == 0 ? rng.range(64 * KiB + 1, 600 * KiB) : rng.range(0, 64);
    default:
      return rng.range(0, 2048);
  }
}

struct Block {
  void* p = nullptr;
  size_t n = 0;
};

Block make_block(Rng& rng) {
  size_t n = pick_size(rng);
  void* p = malloc(n);
  if (p != nullptr) fill_pattern(p, n);
  return {p, n};
}

// Counted, thread-safe corruption report: CHECK from many threads at once would race on the
// case's first-failure buffer, so workers count and keep one message under a lock.
struct Errors {
  std::mutex mu;
  std::atomic<long> count{0};
  char first[256] = {0};
  void add(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (count.fetch_add(1) == 0) {
      std::lock_guard<std::mutex> g(mu);
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(first, sizeof first, fmt, ap);
      va_end(ap);
    }
  }
  // Verifies and frees; records corruption.
  void release(const Block& b, const char* where) {
    size_t bad = verify_pattern(b.p, b.n);
    if (bad != SIZE_MAX) add("%s: block %p (%zu B) corrupted at +%zu", where, b.p, b.n, bad);
    free(b.p);
  }
};

void report(Errors& e) {
  CHECKF(e.count.load() == 0, "%ld errors, first: %s", e.count.load(), e.first);
}

// ---- cross-thread frees through queues
// -----------------------------------------------------------

// A bounded multi-producer queue; push fails when full (the producer then frees locally).
struct Queue {
  std::mutex mu;
  std::vector<Block> items;
  size_t cap = 2048;
  bool push(const Block& b) {
    std::lock_guard<std::mutex> g(mu);
    if (items.size() >= cap) return false;
    items.push_back(b);
    return true;
  }
  size_t pop_all(std::vector<Block>& out) {
    std::lock_guard<std::mutex> g(mu);
    size_t n = items.size();
    out.insert(out.end(), items.begin(), items.end());
    items.clear();
    return n;
  }
};

void t_cross_thread_queues() {
  constexpr int T = 8;
  constexpr int OPS = 60000;
  Queue q[T];
  Errors err;
  std::atomic<long> allocated{0}, freed{0};
  std::atomic<int> done{0};
  auto worker = [&](int id) {
    Rng rng(1000 + id);
    std::vector<Block> local, inbox;
    for (int i = 0; i < OPS; i++) {
      Block b = make_block(rng);
      if (b.p == nullptr) {
        err.add("malloc(%zu) failed", b.n);
        continue;
      }
      allocated++;
      // 3 of 4 blocks go to another thread; the rest stay in a local working set.
      if ((rng.next() & 3) != 0) {
        int to = static_cast<int>((id + 1 + rng.next() % (T - 1)) % T);
        if (!q[to].push(b)) local.push_back(b);
      } else {
        local.push_back(b);
      }
      if (local.size() > 64) {
        size_t k = rng.next() % local.size();
        err.release(local[k], "local");
        freed++;
        local[k] = local.back();
        local.pop_back();
      }
      if ((i & 15) == 0) {
        inbox.clear();
        q[id].pop_all(inbox);
        for (const Block& x : inbox) {
          err.release(x, "remote");
          freed++;
        }
      }
    }
    for (const Block& x : local) {
      err.release(x, "local");
      freed++;
    }
    done++;
    // Keep draining until every producer stopped, so nothing is left behind for a dead thread.
    while (true) {
      bool last = done.load() == T;
      inbox.clear();
      q[id].pop_all(inbox);
      for (const Block& x : inbox) {
        err.release(x, "remote");
        freed++;
      }
      if (last) break;
      sched_yield();
    }
  };
  std::vector<std::thread> ts;
  for (int i = 0; i < T; i++) ts.emplace_back(worker, i);
  for (auto& t : ts) t.join();
  std::vector<Block> rest;
  for (auto& x : q) x.pop_all(rest);
  for (const Block& x : rest) {  // pushed after the owner's final drain: freed by main
    err.release(x, "leftover");
    freed++;
  }
  report(err);
  CHECKF(allocated.load() == freed.load(), "allocated %ld, freed %ld", allocated.load(),
         freed.load());
}

// ---- many threads alive at once -----------------------------------------------------------------

// A barrier built on the allocator-independent futex-free primitive std::atomic + yield, so a
// thread that is slow to start does not deadlock the round (pthread_barrier would do as well).
struct SpinBarrier {
  std::atomic<int> arrived{0};
  std::atomic<int> generation{0};
  int n;
  explicit SpinBarrier(int count) : n(count) {}
  void wait() {
    int gen = generation.load();
    if (arrived.fetch_add(1) + 1 == n) {
      arrived.store(0);
      generation.fetch_add(1);
    } else {
      while (generation.load() == gen) sched_yield();
    }
  }
};

void t_many_threads_alive() {
  constexpr int T = 160;  // the original hz3 aborts above 63
  constexpr int PER = 150;
  Errors err;
  for (int round = 0; round < 2; round++) {
    std::vector<std::vector<Block>> blocks(T);
    SpinBarrier all_alive(T), freed_remote(T);
    std::atomic<int> peak{0}, alive{0};
    auto worker = [&](int id) {
      int now = alive.fetch_add(1) + 1;
      int prev = peak.load();
      while (now > prev && !peak.compare_exchange_weak(prev, now)) {
      }
      Rng rng(round * 100000 + id);
      blocks[id].reserve(PER);
      for (int i = 0; i < PER; i++) {
        Block b = make_block(rng);
        if (b.p == nullptr)
          err.add("thread %d: malloc(%zu) failed", id, b.n);
        else
          blocks[id].push_back(b);
      }
      all_alive.wait();
      // Free the neighbour's blocks: every block here is freed by a thread that did not
      // allocate it, while its allocator is still alive.
      for (const Block& b : blocks[(id + 1) % T]) err.release(b, "neighbour");
      for (int i = 0; i < 200; i++) {  // and some local churn with a full set of heaps in use
        Block b = make_block(rng);
        if (b.p) err.release(b, "churn");
      }
      freed_remote.wait();
      alive.fetch_sub(1);
    };
    std::vector<pthread_t> ts(T);
    std::vector<int> ids(T);
    int started = 0;
    for (int i = 0; i < T; i++) {
      ids[i] = i;
      // Small stacks: 160 threads x 8 MiB of reserved stack is needless address space.
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setstacksize(&attr, 256 * KiB);
      auto tramp = [](void* arg) -> void* {
        auto* pair = static_cast<std::pair<decltype(&worker), int>*>(arg);
        (*pair->first)(pair->second);
        delete pair;
        return nullptr;
      };
      auto* arg = new std::pair<decltype(&worker), int>(&worker, i);
      int rc = pthread_create(&ts[i], &attr, tramp, arg);
      pthread_attr_destroy(&attr);
      if (rc != 0) {
        // The barrier waits for T threads; without every one the round cannot finish.
        printf("FAIL: %s/many_threads_alive: pthread_create #%d: %s\n", suite().group, i,
               strerror(rc));
        fflush(stdout);
        _exit(1);
      }
      started++;
    }
    for (int i = 0; i < started; i++) pthread_join(ts[i], nullptr);
    CHECKF(peak.load() == T, "round %d: peak %d threads alive, wanted %d", round, peak.load(), T);
  }
  report(err);
}

// ---- thread churn
// ----------------------------------------------------------------------------------

// Blocks left by exited threads, freed later by other threads or main.
struct Orphans {
  std::mutex mu;
  std::vector<Block> v;
};

void t_thread_churn() {
  constexpr int THREADS = 5000;
  constexpr int AT_ONCE = 4;
  Errors err;
  Orphans orphans;
  std::atomic<long> ops{0};
  for (int base = 0; base < THREADS; base += AT_ONCE) {
    std::thread ts[AT_ONCE];
    for (int k = 0; k < AT_ONCE; k++) {
      ts[k] = std::thread([&, id = base + k] {
        Rng rng(77 + id);
        Block mine[24];
        for (Block& b : mine) {
          b = make_block(rng);
          if (b.p == nullptr) err.add("thread %d: malloc failed", id);
        }
        // Free half here, leave half for whoever comes next: the thread exits with blocks out.
        std::vector<Block> adopt;
        {
          std::lock_guard<std::mutex> g(orphans.mu);
          for (int i = 0; i < 12; i++)
            if (mine[i].p) orphans.v.push_back(mine[i]);
          if (orphans.v.size() > 500) {
            adopt.assign(orphans.v.begin(), orphans.v.begin() + 200);
            orphans.v.erase(orphans.v.begin(), orphans.v.begin() + 200);
          }
        }
        for (const Block& b : adopt) err.release(b, "orphan");
        for (int i = 12; i < 24; i++)
          if (mine[i].p) err.release(mine[i], "own");
        ops += 24;
      });
    }
    for (auto& t : ts) t.join();
  }
  for (const Block& b : orphans.v) err.release(b, "orphan-main");
  report(err);
  CHECK(ops.load() == 24L * THREADS);
}

// ---- late TLS destructors
// -----------------------------------------------------------------------------

Errors* g_tls_err = nullptr;
std::mutex g_handoff_mu;
std::vector<Block> g_handoff;  // allocated in late destructors, freed by main afterwards
std::atomic<long> g_late_runs{0}, g_key_runs{0};

// Exercises every entry point from a context where the thread's allocator cache may be gone.
void late_work(const char* where, uint64_t seed) {
  Rng rng(seed);
  for (int i = 0; i < 20; i++) {
    Block b = make_block(rng);
    if (b.p == nullptr) {
      g_tls_err->add("%s: malloc failed", where);
      continue;
    }
    // realloc may move the block: its bytes, not its address-derived pattern, must survive.
    fill_seeded(b.p, 0, b.n, seed + i);
    void* r = realloc(b.p, b.n + 100);
    if (r == nullptr) {
      g_tls_err->add("%s: realloc(%zu) failed", where, b.n + 100);
      free(b.p);
      continue;
    }
    if (verify_seeded(r, b.n, seed + i) != SIZE_MAX) g_tls_err->add("%s: realloc lost data", where);
    b.p = r;
    b.n += 100;
    fill_pattern(b.p, b.n);
    g_tls_err->release(b, where);
  }
  int* o = new int[100];
  for (int i = 0; i < 100; i++) o[i] = i;
  delete[] o;
  void* c = calloc(10, 100);
  free(c);
  Block keep = make_block(rng);  // outlives the thread
  if (keep.p) {
    std::lock_guard<std::mutex> g(g_handoff_mu);
    g_handoff.push_back(keep);
  }
}

struct LateTls {
  Block early{};  // allocated by the thread body, freed in the destructor
  ~LateTls() {
    late_work("thread_local dtor", reinterpret_cast<uintptr_t>(this));
    if (early.p) g_tls_err->release(early, "thread_local dtor: early block");
    g_late_runs++;
  }
};
thread_local LateTls t_late;

pthread_key_t g_key;
struct KeyState {
  int round = 0;
  Block held{};
};

// Runs up to PTHREAD_DESTRUCTOR_ITERATIONS times: each round frees the previous round's block,
// allocates a new one and re-arms the key, so allocations happen across several teardown rounds.
void key_destructor(void* v) {
  KeyState* s = static_cast<KeyState*>(v);
  if (s->held.p) g_tls_err->release(s->held, "key dtor: held block");
  s->held = {};
  late_work("key dtor", 991 + s->round);
  g_key_runs++;
  if (++s->round < 3) {
    Rng rng(s->round);
    s->held = make_block(rng);
    pthread_setspecific(g_key, s);
  } else {
    delete s;
  }
}

void t_late_tls_destructors() {
  Errors err;
  g_tls_err = &err;
  g_late_runs = 0;
  g_key_runs = 0;
  REQUIRE(pthread_key_create(&g_key, key_destructor) == 0);
  constexpr int THREADS = 64;
  for (int base = 0; base < THREADS; base += 8) {
    std::thread ts[8];
    for (int k = 0; k < 8; k++) {
      ts[k] = std::thread([id = base + k] {
        // Touch the thread_local before the first allocation, so its destructor is registered
        // first and runs last, after whatever the allocator registered for this thread.
        LateTls& late = t_late;
        Rng rng(5000 + id);
        std::vector<Block> work;
        for (int i = 0; i < 200; i++) work.push_back(make_block(rng));
        for (const Block& b : work)
          if (b.p) g_tls_err->release(b, "body");
        late.early = make_block(rng);
        pthread_setspecific(g_key, new KeyState);
      });
    }
    for (auto& t : ts) t.join();
  }
  pthread_key_delete(g_key);
  std::vector<Block> handoff;
  {
    std::lock_guard<std::mutex> g(g_handoff_mu);
    handoff.swap(g_handoff);
  }
  for (const Block& b : handoff) err.release(b, "main: block from a late destructor");
  report(err);
  CHECKF(g_late_runs.load() == THREADS, "thread_local destructors ran %ld times",
         g_late_runs.load());
  CHECKF(g_key_runs.load() == 3L * THREADS, "key destructor rounds %ld", g_key_runs.load());
  CHECKF(handoff.size() == 4u * THREADS, "%zu blocks handed out of destructors", handoff.size());
  g_tls_err = nullptr;
}

// The main thread's own late teardown: a static object constructed at startup is destroyed after
// main returns, when the allocator may already have flushed or reported at exit. Its result is
// printed with write(2), after everything else.
struct LateStatic {
  bool armed = false;
  ~LateStatic() {
    if (!armed) return;
    Rng rng(31337);
    bool ok = true;
    for (int i = 0; i < 100; i++) {
      Block b = make_block(rng);
      if (b.p == nullptr || verify_pattern(b.p, b.n) != SIZE_MAX) ok = false;
      free(b.p);
    }
    char line[160];
    snprintf(line, sizeof line, "%s: %s/late_static_destructor%s\n", ok ? "PASS" : "FAIL",
             suite().group, ok ? "" : ": malloc/free after main returned misbehaved");
    write_str(1, line);
  }
} g_late_static;

// ---- fork from a multi-threaded process ------------------------------------------------------

// Work a child does: its own allocations across sizes, frees of blocks the parent's threads
// allocated (their owners do not exist in the child), and a new thread of its own.
int child_body(std::vector<Block>& inherited) {
  alarm(20);  // a deadlock on a lock held at fork time becomes a SIGALRM, not a hang
  int bad = 0;
  for (const Block& b : inherited) {
    if (verify_pattern(b.p, b.n) != SIZE_MAX) bad++;
    free(b.p);
  }
  Rng rng(getpid());
  std::vector<Block> mine;
  for (int i = 0; i < 1500; i++) {
    Block b = make_block(rng);
    if (b.p == nullptr) return 3;
    mine.push_back(b);
  }
  std::thread t([&] {
    for (const Block& b : mine) {
      if (verify_pattern(b.p, b.n) != SIZE_MAX) bad++;
      free(b.p);
    }
    Rng r2(1);
    for (int i = 0; i < 1500; i++) {
      Block b = make_block(r2);
      if (b.p == nullptr || verify_pattern(b.p, b.n) != SIZE_MAX) bad++;
      free(b.p);
    }
  });
  t.join();
  return bad == 0 ? 0 : 2;
}

void t_fork_multithreaded() {
  constexpr int WORKERS = 3;
  Errors err;
  std::atomic<bool> stop{false};
  // Shared slots: workers swap blocks in and out, so frees are cross-thread at fork time too.
  constexpr int SLOTS = 256;
  std::atomic<Block*> slots[SLOTS];
  for (auto& s : slots) s = nullptr;
  auto worker = [&](int id) {
    Rng rng(id * 7919);
    while (!stop.load(std::memory_order_relaxed)) {
      Block b = make_block(rng);
      if (b.p == nullptr) {
        err.add("worker malloc failed");
        continue;
      }
      Block* box = new Block(b);
      Block* old = slots[rng.next() % SLOTS].exchange(box);
      if (old) {
        err.release(*old, "worker");
        delete old;
      }
    }
  };
  std::vector<std::thread> ts;
  for (int i = 0; i < WORKERS; i++) ts.emplace_back(worker, i);

  auto fork_once = [&](const char* from) {
    std::vector<Block> inherited;  // allocated by this thread just before the fork
    static std::atomic<uint64_t> forks{0};
    Rng rng(++forks);
    for (int i = 0; i < 50; i++) {
      Block b = make_block(rng);
      if (b.p) inherited.push_back(b);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(child_body(inherited));
    if (pid < 0) {
      err.add("fork from %s: %s", from, strerror(errno));
      return;
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
      err.add("child forked from %s: %s %d", from, WIFSIGNALED(st) ? "signal" : "exit status",
              WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    for (const Block& b : inherited) err.release(b, "parent after fork");
  };
  for (int i = 0; i < 12; i++) {
    fork_once("main thread");
    sleep_ms(2);
  }
  // fork from a non-main thread while the others keep allocating
  for (int i = 0; i < 4; i++) {
    std::thread f([&] { fork_once("a secondary thread"); });
    f.join();
  }
  stop = true;
  for (auto& t : ts) t.join();
  for (auto& s : slots) {
    Block* b = s.exchange(nullptr);
    if (b) {
      err.release(*b, "slots");
      delete b;
    }
  }
  // The parent keeps working normally afterwards.
  Rng rng(3);
  for (int i = 0; i < 20000; i++) {
    Block b = make_block(rng);
    if (b.p) err.release(b, "parent afterwards");
  }
  report(err);
}

// Case names on the command line select cases; options (--after NAME) are not names.
bool wanted(int argc, char** argv, const char* name) {
  bool any = false;
  for (int i = 2; i < argc; i++) {
    if (strncmp(argv[i], "--", 2) == 0) {
      i++;
      continue;
    }
    any = true;
    if (strcmp(argv[i], name) == 0) return true;
  }
  return !any;
}

}  // namespace

int main(int argc, char** argv) {
  static char group[128];
  snprintf(group, sizeof group, "stress/%s", argc > 1 ? argv[1] : "default");
  init(group, argc, argv);
  if (wanted(argc, argv, "cross_thread_queues"))
    run_case("cross_thread_queues", t_cross_thread_queues, 180);
  if (wanted(argc, argv, "many_threads_alive"))
    run_case("many_threads_alive", t_many_threads_alive, 180);
  if (wanted(argc, argv, "thread_churn")) run_case("thread_churn", t_thread_churn, 180);
  if (wanted(argc, argv, "late_tls_destructors")) {
    run_case("late_tls_destructors", t_late_tls_destructors, 120);
    g_late_static.armed = true;
  }
  if (wanted(argc, argv, "fork_multithreaded"))
    run_case("fork_multithreaded", t_fork_multithreaded, 180);
  return finish();
}
