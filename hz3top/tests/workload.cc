// hz3top_workload: a process with known allocator operation counts, for hz3top's tests. It
// waits for commands on stdin so a tracer can attach first, does exactly what each command
// says, and answers "ok …" on stdout after each one. It uses read()/write() only, never stdio
// or iostreams, so that the only allocations it makes are the ones the commands ask for.
//
//   run N M K   N large (1 MiB) malloc+free pairs, M small (64 B) malloc+free pairs,
//               K huge (>= 1 GiB, never touched) malloc+free pairs
//   hold H      allocate H large (1 MiB) blocks and keep them
//   release     free the held blocks
//   small N     allocate N small (64 B) blocks and keep them (freed by release too)
//   huge N      allocate N huge (1 GiB, never touched) blocks and keep them (freed by release)
//   stats       malloc_stats(): libhz3's ledger on stderr (hz3top reads the same numbers live)
//   exec PATH   execv(PATH) with no arguments (the test names the workload through a symlink,
//               so its name changes); the new image answers "ready" again
//   bareexec PATH  the same with an empty environment: no LD_PRELOAD, so no libhz3
//   spin MS     malloc+free small and medium blocks for MS milliseconds (perf sampling)
//   badfree     free a pointer into the middle of a large block: libhz3 misses (tag 0) and
//               aborts; the test checks that hz3top saw the miss
//   thread      start a thread that sleeps until the process exits; answers its thread id
//   worker N    start a thread named "hz3wl-worker" that allocates N small (64 B) blocks, keeps
//               them and sleeps until the process exits; answers its thread id
//   alloc N S   allocate N blocks of S bytes and keep them on the pool (a stack, 65536 at most)
//   freesome N  free the N blocks on top of the pool, in this thread (they go to its cache)
//   xfree N     start a thread named "hz3wl-xfree" that frees the N blocks on top of the pool
//               (remote frees: delivered to the owner's inbox in batches, the rest parked in
//               the thread's remote buckets) and then sleeps until the process exits; answers
//               its thread id
//   fork N      fork a child that waits for SIGUSR1, then does N large malloc+free pairs and
//               exits 0; answers the child's pid (the parent goes on taking commands)
//   exit        exit 0
// Not a benchmark: no timing, no randomness.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

namespace {

constexpr size_t LARGE = size_t{1} << 20;
constexpr size_t HUGE = size_t{1} << 30;
constexpr int MAX_HOLD = 1024;
void* g_held[MAX_HOLD];
int g_nheld = 0;
constexpr long MAX_SMALL = 1 << 20;
void** g_small = nullptr;  // allocated by the first "small" command
long g_nsmall = 0;
void* g_huge[8];
int g_nhuge = 0;

// Keeps the compiler from pairing away malloc+free.
void* volatile g_sink;

void say(const char* s) {
  size_t n = strlen(s);
  while (n) {
    ssize_t w = write(STDOUT_FILENO, s, n);
    if (w <= 0) _exit(3);
    s += w;
    n -= size_t(w);
  }
}

void say_ok(const char* what, long a) {
  char buf[96];
  snprintf(buf, sizeof buf, "ok %s %ld\n", what, a);  // snprintf does not allocate
  say(buf);
}

// One command line from stdin, without stdio. False at end of input.
bool read_line(char* buf, size_t cap) {
  size_t n = 0;
  while (n + 1 < cap) {
    char c;
    ssize_t r = read(STDIN_FILENO, &c, 1);
    if (r <= 0) return n > 0;
    if (c == '\n') break;
    buf[n++] = c;
  }
  buf[n] = 0;
  return true;
}

double now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) * 1e-6;
}

void large_pairs(long n) {
  for (long i = 0; i < n; i++) {
    char* p = static_cast<char*>(malloc(LARGE));
    if (!p) _exit(4);
    p[0] = 1;
    g_sink = p;
    free(p);
  }
}

pid_t g_thread_tid = 0;

void* sleeper(void*) {
  __atomic_store_n(&g_thread_tid, pid_t(syscall(SYS_gettid)), __ATOMIC_RELEASE);
  for (;;) pause();
}

constexpr long MAX_POOL = 65536;
void* g_pool[MAX_POOL];
long g_npool = 0;
pid_t g_xfree_tid = 0;

void* xfree(void* arg) {
  pthread_setname_np(pthread_self(), "hz3wl-xfree");
  long n = reinterpret_cast<long>(arg);
  for (long i = 0; i < n && g_npool; i++) free(g_pool[--g_npool]);
  __atomic_store_n(&g_xfree_tid, pid_t(syscall(SYS_gettid)), __ATOMIC_RELEASE);
  for (;;) pause();
}

pid_t g_worker_tid = 0;

void* worker(void* arg) {
  pthread_setname_np(pthread_self(), "hz3wl-worker");
  long n = reinterpret_cast<long>(arg);
  for (long i = 0; i < n; i++) {
    char* volatile p = static_cast<char*>(malloc(64));
    if (!p) _exit(4);
    p[0] = 1;
  }
  __atomic_store_n(&g_worker_tid, pid_t(syscall(SYS_gettid)), __ATOMIC_RELEASE);
  for (;;) pause();
}

}  // namespace

int main() {
  say("ready\n");
  char line[128];
  while (read_line(line, sizeof line)) {
    long a = 0, b = 0, c = 0;
    if (sscanf(line, "run %ld %ld %ld", &a, &b, &c) == 3) {
      large_pairs(a);
      for (long i = 0; i < b; i++) {
        g_sink = malloc(64);
        free(g_sink);
      }
      for (long i = 0; i < c; i++) {
        g_sink = malloc(HUGE);  // reserved, never touched: costs no memory
        if (!g_sink) return 4;
        free(g_sink);
      }
      say_ok("run", a + b + c);
    } else if (sscanf(line, "hold %ld", &a) == 1) {
      for (long i = 0; i < a && g_nheld < MAX_HOLD; i++) {
        char* p = static_cast<char*>(malloc(LARGE));
        if (!p) return 4;
        memset(p, 1, LARGE);
        g_held[g_nheld++] = p;
      }
      say_ok("hold", g_nheld);
    } else if (strcmp(line, "release") == 0) {
      long n = g_nheld + g_nsmall;
      while (g_nheld) free(g_held[--g_nheld]);
      while (g_nsmall) free(g_small[--g_nsmall]);
      n += g_nhuge;
      while (g_nhuge) free(g_huge[--g_nhuge]);
      say_ok("release", n);
    } else if (sscanf(line, "small %ld", &a) == 1) {
      if (!g_small) g_small = static_cast<void**>(malloc(MAX_SMALL * sizeof(void*)));
      if (!g_small) return 4;
      for (long i = 0; i < a && g_nsmall < MAX_SMALL; i++) {
        g_small[g_nsmall] = malloc(64);
        if (!g_small[g_nsmall]) return 4;
        g_nsmall++;
      }
      say_ok("small", g_nsmall);
    } else if (sscanf(line, "huge %ld", &a) == 1) {
      for (long i = 0; i < a && g_nhuge < 8; i++)
        if (!(g_huge[g_nhuge++] = malloc(HUGE))) return 4;
      say_ok("huge", g_nhuge);
    } else if (strcmp(line, "stats") == 0) {
      malloc_stats();
      say_ok("stats", 0);
    } else if (strncmp(line, "bareexec ", 9) == 0) {
      char* argv[] = {line + 9, nullptr};
      char* envp[] = {nullptr};
      execve(line + 9, argv, envp);
      say("error exec failed\n");
    } else if (strncmp(line, "exec ", 5) == 0) {
      char* argv[] = {line + 5, nullptr};
      execv(line + 5, argv);
      say("error exec failed\n");
    } else if (sscanf(line, "spin %ld", &a) == 1) {
      double end = now_ms() + double(a);
      long ops = 0;
      void* ring[64] = {};
      while (now_ms() < end) {
        for (int i = 0; i < 4096; i++, ops++) {
          unsigned slot = unsigned(ops) & 63;
          free(ring[slot]);
          ring[slot] = malloc(16 + (size_t(ops) * 2654435761u) % 32768);
        }
      }
      for (void* p : ring) free(p);
      say_ok("spin", ops);
    } else if (strcmp(line, "badfree") == 0) {
      char* p = static_cast<char*>(malloc(LARGE));
      say_ok("badfree", 0);
      char* volatile inside = p + 2 * 4096;  // volatile: the compiler would flag the bad free
      free(inside);                          // never returns: libhz3 aborts on the invalid pointer
      return 5;
    } else if (strcmp(line, "thread") == 0) {
      pthread_t t;
      if (pthread_create(&t, nullptr, sleeper, nullptr) != 0) return 4;
      while (!__atomic_load_n(&g_thread_tid, __ATOMIC_ACQUIRE)) usleep(1000);
      say_ok("thread", g_thread_tid);
    } else if (sscanf(line, "worker %ld", &a) == 1) {
      pthread_t t;
      if (pthread_create(&t, nullptr, worker, reinterpret_cast<void*>(a)) != 0) return 4;
      while (!__atomic_load_n(&g_worker_tid, __ATOMIC_ACQUIRE)) usleep(1000);
      say_ok("worker", g_worker_tid);
    } else if (sscanf(line, "alloc %ld %ld", &a, &b) == 2) {
      for (long i = 0; i < a && g_npool < MAX_POOL; i++) {
        char* p = static_cast<char*>(malloc(size_t(b)));
        if (!p) return 4;
        p[0] = 1;
        g_pool[g_npool++] = p;
      }
      say_ok("alloc", g_npool);
    } else if (sscanf(line, "freesome %ld", &a) == 1) {
      for (long i = 0; i < a && g_npool; i++) free(g_pool[--g_npool]);
      say_ok("freesome", g_npool);
    } else if (sscanf(line, "xfree %ld", &a) == 1) {
      pthread_t t;
      __atomic_store_n(&g_xfree_tid, 0, __ATOMIC_RELEASE);
      if (pthread_create(&t, nullptr, xfree, reinterpret_cast<void*>(a)) != 0) return 4;
      while (!__atomic_load_n(&g_xfree_tid, __ATOMIC_ACQUIRE)) usleep(1000);
      say_ok("xfree", g_xfree_tid);
    } else if (sscanf(line, "fork %ld", &a) == 1) {
      // SIGUSR1 blocked before the fork, so the child cannot miss it.
      sigset_t usr1;
      sigemptyset(&usr1);
      sigaddset(&usr1, SIGUSR1);
      sigprocmask(SIG_BLOCK, &usr1, nullptr);
      pid_t child = fork();
      if (child < 0) return 4;
      if (child == 0) {
        int sig = 0;
        sigwait(&usr1, &sig);
        large_pairs(a);
        _exit(0);
      }
      say_ok("fork", child);
    } else if (strcmp(line, "exit") == 0) {
      say_ok("exit", 0);
      return 0;
    } else {
      say("error unknown command\n");
    }
  }
  return 0;
}
