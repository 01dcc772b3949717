// A workload with three allocation sites of known sizes and counts, each in its own function,
// for `hz3top heap`'s test (t_hz3top_heap.sh): the test checks that each function's name comes
// out as a site with estimated bytes close to the truth this program prints. Built with frame
// pointers and without inlining so that the sampled stacks reach these functions by name. Not a
// benchmark: the sizes are chosen for enough samples (docs/heap-profiling.md, "Accuracy").
//
//   heap_sites STARTFILE STOPFILE
// waits for STARTFILE to exist, allocates, prints "truth KEY=VALUE…", then holds its blocks
// until STOPFILE exists and exits without freeing them.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

namespace {

constexpr size_t KEEP_N = 400000, KEEP_SIZE = 512;  // half of them freed again
constexpr size_t BIG_N = 200, BIG_SIZE = 256 * 1024;
constexpr size_t CHURN_N = 2000000, CHURN_SIZE = 64;

// Stores every pointer so no allocation is optimised away, and touches a byte of each.
std::vector<void*> g_keep, g_big;

__attribute__((noinline)) void site_keep_half() {
  for (size_t i = 0; i < KEEP_N; i++) {
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

bool exists(const char* path) {
  struct stat st;
  return stat(path, &st) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: heap_sites STARTFILE STOPFILE\n");
    return 2;
  }
  g_keep.reserve(KEEP_N);
  g_big.reserve(BIG_N);
  while (!exists(argv[1])) usleep(10000);
  timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  site_keep_half();
  site_big_blocks();
  site_churn();
  clock_gettime(CLOCK_MONOTONIC, &t1);
  // Not a truth: the run time, which the heap test prints to show what sampling costs.
  long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
  printf(
      "truth run_us=%ld site_keep_half_alloc=%zu site_keep_half_live=%zu site_big_blocks_alloc=%zu "
      "site_big_blocks_live=%zu site_churn_alloc=%zu site_churn_live=0 "
      "site_keep_half_n=%zu site_keep_half_size=%zu site_big_blocks_n=%zu "
      "site_big_blocks_size=%zu site_churn_n=%zu site_churn_size=%zu\n",
      us, KEEP_N * KEEP_SIZE, KEEP_N / 2 * KEEP_SIZE, BIG_N * BIG_SIZE, BIG_N * BIG_SIZE,
      CHURN_N * CHURN_SIZE, KEEP_N, KEEP_SIZE, BIG_N, BIG_SIZE, CHURN_N, CHURN_SIZE);
  fflush(stdout);
  while (!exists(argv[2])) usleep(10000);
  return 0;
}
