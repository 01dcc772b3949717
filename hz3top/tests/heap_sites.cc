// A workload with allocation sites of known sizes and counts, each in its own function, for
// `hz3top heap`'s test (t_hz3top_heap.sh): the test checks that each function's name comes out
// as a site with estimated bytes close to the truth this program prints, with the source line
// of its allocation. libhz3's sampling test (libhz3/tests/t_sampling.sh) runs it too and
// compares bpftrace's sums per block size with the same truth, so no two sites share a size. Not a
// benchmark: the sizes are chosen for enough samples (docs/heap-profiling.md, "Accuracy"). The
// sites:
//   site_keep_half   allocates 400,000 × 512 B and frees every other block (half stays live)
//   site_big_blocks  200 × 256 KiB, all kept
//   site_churn       2,000,000 × 64 B, each freed at once (nothing live)
//   site_wrapped     50,000 × 1 KiB through zmalloc(), an allocation wrapper (as redis has)
//   site_inlined     12,500 × 4 KiB through make_node(), a function inlined into it
//   heap_lib_leak    25,000 × 2 KiB in libhz3top_heap_lib.so (built without frame pointers),
//                    called through heap_lib_outer() from site_lib
// The test builds it without frame pointers (-fomit-frame-pointer), so the stacks reach these
// functions only through DWARF unwinding.
//
//   heap_sites STARTFILE STOPFILE
// waits for STARTFILE to exist, allocates, prints "truth KEY=VALUE…", then holds its blocks
// until STOPFILE exists and exits without freeing them.
//
//   heap_sites --leak STOPFILE
// a service with a leak, for `make demo` (scripts/demo-heap.sh): until STOPFILE exists, serves
// up to 1,000 requests a second; each allocates and frees 16 small buffers and, in
// site_leak_session_cache, keeps a 16 KiB block that nothing frees (up to 16 MiB/s of growth).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string_view>
#include <vector>

#include "heap_sites_lib.h"

namespace {

constexpr size_t KEEP_N = 400000, KEEP_SIZE = 512;  // half of them freed again
constexpr size_t BIG_N = 200, BIG_SIZE = 256 * 1024;
constexpr size_t CHURN_N = 2000000, CHURN_SIZE = 64;
constexpr size_t WRAP_N = 50000, WRAP_SIZE = 1024;
constexpr size_t INL_N = 12500, INL_SIZE = 4096;
constexpr size_t LIB_N = 25000, LIB_SIZE = 2048;

// Stores every pointer so no allocation is optimised away, and touches a byte of each.
std::vector<void*> g_keep, g_big, g_wrap, g_inl, g_lib;
int g_keep_line, g_wrap_line, g_inl_line, g_make_node_line;

__attribute__((noinline)) void site_keep_half() {
  for (size_t i = 0; i < KEEP_N; i++) {
    g_keep_line = __LINE__ + 1;
    void* p = malloc(KEEP_SIZE);
    static_cast<char*>(p)[0] = 1;
    g_keep.push_back(p);
  }
  // Free every other block: live is half of what was allocated, spread through the run.
  for (size_t i = 0; i < KEEP_N; i += 2) {
    free(g_keep[i]);
    g_keep[i] = nullptr;
  }
}

__attribute__((noinline)) void site_big_blocks() {
  for (size_t i = 0; i < BIG_N; i++) {
    void* p = malloc(BIG_SIZE);
    static_cast<char*>(p)[0] = 1;
    g_big.push_back(p);
  }
}

__attribute__((noinline)) void site_churn() {
  for (size_t i = 0; i < CHURN_N; i++) {
    void* volatile p = malloc(CHURN_SIZE);
    static_cast<char*>(p)[0] = 1;
    free(p);
  }
}

}  // namespace

// An allocation wrapper with redis's name: the site is its caller. Not static, so that it keeps
// its symbol.
__attribute__((noinline)) void* zmalloc(size_t size) {
  void* p = malloc(size);
  if (!p) abort();
  return p;
}

namespace {

__attribute__((noinline)) void site_wrapped() {
  for (size_t i = 0; i < WRAP_N; i++) {
    g_wrap_line = __LINE__ + 1;
    void* p = zmalloc(WRAP_SIZE);
    static_cast<char*>(p)[0] = 1;
    g_wrap.push_back(p);
  }
}

__attribute__((always_inline)) inline void* make_node() {
  g_make_node_line = __LINE__ + 1;
  void* p = malloc(INL_SIZE);
  static_cast<char*>(p)[0] = 1;
  return p;
}

__attribute__((noinline)) void site_inlined() {
  for (size_t i = 0; i < INL_N; i++) {
    g_inl_line = __LINE__ + 1;
    g_inl.push_back(make_node());
  }
}

__attribute__((noinline)) void site_lib() {
  for (size_t i = 0; i < LIB_N; i++) g_lib.push_back(heap_lib_outer(LIB_SIZE));
}

bool exists(const char* path) {
  struct stat st;
  return stat(path, &st) == 0;
}

constexpr size_t LEAK_SIZE = 16384, LEAK_REQUEST_BUFFERS = 16, LEAK_REQUEST_US = 1000;
std::vector<void*> g_leak;

// The leaking site: a session cache that is filled on every request and never evicted.
__attribute__((noinline)) void site_leak_session_cache() {
  void* p = malloc(LEAK_SIZE);
  static_cast<char*>(p)[0] = 1;
  g_leak.push_back(p);
}

// One request: buffers freed before it returns (nothing live), then the leak.
__attribute__((noinline)) void serve_request() {
  void* volatile bufs[LEAK_REQUEST_BUFFERS];
  for (size_t i = 0; i < LEAK_REQUEST_BUFFERS; i++) {
    bufs[i] = malloc(256 + 64 * i);
    static_cast<char*>(bufs[i])[0] = 1;
  }
  for (size_t i = 0; i < LEAK_REQUEST_BUFFERS; i++) free(bufs[i]);
  site_leak_session_cache();
}

int leak_main(const char* stopfile) {
  g_leak.reserve(1 << 20);
  while (!exists(stopfile)) {
    serve_request();
    usleep(LEAK_REQUEST_US);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "--leak") return leak_main(argv[2]);
  if (argc != 3) {
    fprintf(stderr, "usage: heap_sites STARTFILE STOPFILE | heap_sites --leak STOPFILE\n");
    return 2;
  }
  g_keep.reserve(KEEP_N);
  g_big.reserve(BIG_N);
  g_wrap.reserve(WRAP_N);
  g_inl.reserve(INL_N);
  g_lib.reserve(LIB_N);
  while (!exists(argv[1])) usleep(10000);
  timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  site_keep_half();
  site_big_blocks();
  site_churn();
  site_wrapped();
  site_inlined();
  site_lib();
  clock_gettime(CLOCK_MONOTONIC, &t1);
  // Not a truth: the run time, which the heap test prints to show what sampling costs.
  long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
  printf("truth run_us=%ld", us);
  struct Site {
    const char* name;
    size_t n, size, live_n;
  } sites[] = {{"site_keep_half", KEEP_N, KEEP_SIZE, KEEP_N / 2},
               {"site_big_blocks", BIG_N, BIG_SIZE, BIG_N},
               {"site_churn", CHURN_N, CHURN_SIZE, 0},
               {"site_wrapped", WRAP_N, WRAP_SIZE, WRAP_N},
               {"make_node", INL_N, INL_SIZE, INL_N},
               {"heap_lib_leak", LIB_N, LIB_SIZE, LIB_N}};
  for (const Site& s : sites)
    printf(" %s_alloc=%zu %s_live=%zu %s_n=%zu %s_size=%zu", s.name, s.n * s.size, s.name,
           s.live_n * s.size, s.name, s.n, s.name, s.size);
  printf(" site_keep_half_line=%d site_wrapped_line=%d site_inlined_line=%d make_node_line=%d\n",
         g_keep_line, g_wrap_line, g_inl_line, g_make_node_line);
  fflush(stdout);
  while (!exists(argv[2])) usleep(10000);
  return 0;
}
