// fork_sampling: fork in a loop while other threads allocate and a tracer samples them (run by
// t_fork_sampling.sh with bpftrace attached to otel_memory:alloc). Each child allocates large
// blocks, which a sampling child records in the sampled-block table, so a child that inherited
// that table's lock held by a parent thread hangs. A child that does not exit within 5 s is a
// FAIL; the parent kills it and reports how many forks hung.
// Usage: fork_sampling READY_FILE FORKS
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "check.h"

using namespace hz3::test;

namespace {

std::atomic<bool> g_stop{false};

// Two threads churn 60-65 KB blocks (the largest medium class), keeping a few live.
void churn(unsigned seed) {
  void* keep[16] = {};
  while (!g_stop.load(std::memory_order_relaxed)) {
    seed = seed * 1664525u + 1013904223u;
    unsigned i = (seed >> 8) % 16;
    free(keep[i]);
    keep[i] = malloc(60000 + (seed >> 12) % 5000);
    sink(keep[i]);
  }
  for (void* p : keep) free(p);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fork_sampling READY_FILE FORKS\n");
    return 2;
  }
  int forks = atoi(argv[2]);
  std::thread a(churn, 1u), b(churn, 2u);
  struct stat st;
  for (int i = 0; i < 3000 && stat(argv[1], &st) != 0; i++) usleep(10000);  // tracer attached
  int hung = 0, failed = 0;
  int f = 0;
  for (; f < forks && hung < 3; f++) {  // three hangs are proof enough
    pid_t pid = fork();
    if (pid == 0) {
      for (int i = 0; i < 64; i++) {
        void* p = malloc(300000);
        sink(p);
        free(p);
      }
      _exit(0);
    }
    if (pid < 0) {
      failed++;
      continue;
    }
    double deadline = now_s() + 5.0;
    int status = 0;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_s() < deadline) usleep(1000);
    if (r == 0) {
      hung++;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      failed++;
    }
  }
  g_stop = true;
  a.join();
  b.join();
  printf("forks=%d hung=%d failed=%d\n", f, hung, failed);
  return hung || failed ? 1 : 0;
}
