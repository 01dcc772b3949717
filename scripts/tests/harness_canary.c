/* A program that misbehaves on purpose, for scripts/tests/t_harness.sh: it prints result lines
 * the way a test program does, then ends as MODE says:
 *   segv   raise(SIGSEGV) after the PASS lines (a crash after apparent success)
 *   abort  abort() after the PASS lines
 *   exit3  exit(3) after the PASS lines (a non-zero exit without a FAIL line)
 *   clean  exit(0) after the PASS lines (the control: nothing wrong)
 * Usage: harness_canary MODE [GROUP] [ignored…]   (GROUP defaults to "unit"; extra arguments such
 * as run_group's --after CASE are ignored). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "segv";
  const char* group = argc > 2 ? argv[2] : "unit";
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("PASS: %s/canary_first\n", group);
  printf("PASS: %s/canary_second\n", group);
  fflush(stdout);
  if (strcmp(mode, "segv") == 0) raise(SIGSEGV);
  if (strcmp(mode, "abort") == 0) abort();
  if (strcmp(mode, "exit3") == 0) return 3;
  if (strcmp(mode, "clean") == 0) return 0;
  fprintf(stderr, "harness_canary: unknown mode %s\n", mode);
  return 2;
}
