// probes/tests/t_hits_time_bound.sh: one malloc+free of 64 B every millisecond for argv[1] seconds
// (a quiet service), then exit.
#include <stdlib.h>
#include <time.h>
int main(int argc, char** argv) {
  int secs = argc > 1 ? atoi(argv[1]) : 8;
  struct timespec ms = {0, 1000000};
  for (int i = 0; i < secs * 1000; i++) {
    void* volatile p = malloc(64);
    free(p);
    nanosleep(&ms, 0);
  }
  return 0;
}
