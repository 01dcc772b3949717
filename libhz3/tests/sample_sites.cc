// A workload with known allocation sites for the heap-sampling test (t_sampling.sh): it waits for
// a start file (so the tracer attaches first), then allocates
//   site A: 400,000 x 512 B, half of them freed at the end
//   site B: 200 x 256 KiB (large blocks), all kept
//   site C: 4,000,000 x 64 B, each freed at once
// and prints the truth as one line the test compares the sampled estimates with.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc > 1)
    while (access(argv[1], F_OK) != 0) usleep(10000);
  const int NA = 400000, NB = 200, NC = 4000000;
  void** a = static_cast<void**>(calloc(NA, sizeof(void*)));
  void** b = static_cast<void**>(calloc(NB, sizeof(void*)));
  for (int i = 0; i < NA; i++) memset(a[i] = malloc(512), 1, 512);
  for (int i = 0; i < NB; i++) memset(b[i] = malloc(256 << 10), 1, 4096);
  for (int i = 0; i < NC; i++) {
    void* volatile p = malloc(64);
    free(p);
  }
  for (int i = 0; i < NA; i += 2) free(a[i]);
  printf("truth A_alloc=%lld A_live=%lld B_alloc=%lld B_live=%lld C_alloc=%lld C_live=0\n",
         512ll * NA, 512ll * (NA / 2), 262144ll * NB, 262144ll * NB, 64ll * NC);
  fflush(stdout);
  if (argc > 2)  // hold the live blocks until told to exit, so a tracer sees them live
    while (access(argv[2], F_OK) != 0) usleep(10000);
  return 0;
}
