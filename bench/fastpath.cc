// bench_fastpath — the fast-path loops whose instruction counts are the budget in
// bench/fastpath.golden. Each loop lives in its own never-inlined extern "C" function so
// callgrind can count exactly it (--toggle-collect=hz3_fastpath_*), the loop and the calls
// included:
//   malloc_free_64     for n: free(malloc(64))
//   malloc_free_8192   for n: free(malloc(8192))         (a medium class)
//   realloc_in_class   for n: p = realloc(p, n odd ? 57 : 64)   (same 16-byte class both ways)
// bench/fastpath.sh runs it for 1,100,000 and 100,000 iterations and divides the difference by
// 1,000,000, which cancels the first, slow-path call and everything outside the loop. Run plain,
// it prints ns per iteration, which is noisy and only for orientation; the instruction count is
// the measurement.
#include "common.h"

using namespace hz3::bench;

static const char USAGE[] =
    "usage: bench_fastpath --path malloc_free_64|malloc_free_8192|realloc_in_class\n"
    "                      [--n N]\n";

// The empty asm with the pointer as input keeps the compiler from proving the block unused and
// deleting the pair (it also compiles with -fno-builtin-malloc); it emits no instruction.
#define HZ3_KEEP(p) asm volatile("" : : "r"(p) : "memory")

extern "C" {

__attribute__((noinline)) void hz3_fastpath_malloc_free_64(long n) {
  for (long i = 0; i < n; i++) {
    void* p = malloc(64);
    HZ3_KEEP(p);
    free(p);
  }
}

__attribute__((noinline)) void hz3_fastpath_malloc_free_8192(long n) {
  for (long i = 0; i < n; i++) {
    void* p = malloc(8192);
    HZ3_KEEP(p);
    free(p);
  }
}

__attribute__((noinline)) void* hz3_fastpath_realloc_in_class(void* p, long n) {
  for (long i = 0; i < n; i++) {
    p = realloc(p, (i & 1) ? 57 : 64);
    HZ3_KEEP(p);
  }
  return p;
}
}

int main(int argc, char** argv) {
  Options o(argc, argv, USAGE, false);
  std::string path = o.get_str("path", "");
  long n = long(o.get_int("n", 1000000, 0, 1ll << 40));
  o.finish();

  uint64_t t0 = now_ns();
  if (path == "malloc_free_64") {
    hz3_fastpath_malloc_free_64(n);
  } else if (path == "malloc_free_8192") {
    hz3_fastpath_malloc_free_8192(n);
  } else if (path == "realloc_in_class") {
    void* p = malloc(64);
    p = hz3_fastpath_realloc_in_class(p, n);
    free(p);
  } else {
    o.bad("unknown --path", path);
  }
  uint64_t t1 = now_ns();
  std::printf("%s: %.2f ns per iteration (%ld iterations; wall time is noisy, use callgrind)\n",
              path.c_str(), n ? double(t1 - t0) / n : 0.0, n);
  std::printf("RESULT bench=fastpath path=%s n=%ld seconds=%.6f allocator=%s\n", path.c_str(), n,
              (t1 - t0) / 1e9, malloc_owner().c_str());
  return 0;
}
