// Measurements behind t_hardened.sh, run with LD_PRELOAD=<libhz3.so> (any variant, or glibc):
//   hardened_test addresses N SIZE   prints the offsets of the first N malloc(SIZE) blocks from
//                                    the first one, on one line (two runs of the hardened
//                                    variant must differ: its refills hand blocks out shuffled)
//   hardened_test vma-churn N LIVE   allocates and frees N large blocks (64 KiB … 1 MiB) with at
//                                    most LIVE alive at once, and prints the process's VMA count
//                                    (/proc/self/maps lines) before, at its peak and after
// Not a benchmark: it prints numbers for the script to judge.
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vector>

static long vma_count() {
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0) return -1;
  static char buf[1 << 16];
  long lines = 0;
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; i++) lines += buf[i] == '\n';
  close(fd);
  return lines;
}

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[1], "addresses") == 0) {
    int n = atoi(argv[2]);
    size_t size = strtoul(argv[3], nullptr, 0);
    std::vector<void*> v(n);
    for (int i = 0; i < n; i++) v[i] = malloc(size);
    for (int i = 0; i < n; i++)
      printf("%s%lld", i ? " " : "", (long long)((intptr_t)v[i] - (intptr_t)v[0]));
    printf("\n");
    for (void* p : v) free(p);
    return 0;
  }
  if (argc == 4 && strcmp(argv[1], "vma-churn") == 0) {
    long n = atol(argv[2]), live = atol(argv[3]);
    std::vector<void*> slot(live, nullptr);
    long before = vma_count(), peak = before;
    uint32_t r = 12345;
    for (long i = 0; i < n; i++) {
      r = r * 1664525u + 1013904223u;
      void*& s = slot[(r >> 8) % live];
      if (s) free(s);
      size_t size = 65 * 1024 + (r >> 4) % (960 * 1024);
      s = malloc(size);
      if (!s) return 2;
      static_cast<char*>(s)[size - 1] = 1;
      if (i % 64 == 0) {
        long c = vma_count();
        if (c > peak) peak = c;
      }
    }
    long c = vma_count();
    if (c > peak) peak = c;
    for (void*& s : slot) free(s);
    printf("before=%ld peak=%ld after=%ld\n", before, peak, vma_count());
    return 0;
  }
  fprintf(stderr, "usage: hardened_test addresses N SIZE | vma-churn N LIVE\n");
  return 2;
}
