// The assertion levels of libhz3/src/util.h, seen from outside: built with one HZ3_ASSERT_LEVEL
// (or none, to get the default the variant's HZ3_CHECK gives) and linked against libhz3.a for
// hz3::fatal. `assert_levels cheap|internal|expensive` runs one failing assertion of that level
// whose condition counts its evaluations; if the assertion is compiled out it prints
// "compiled out, evaluated N" and exits 0, otherwise fatal() prints its message and aborts.
// `assert_levels level` prints the HZ3_ASSERT_LEVEL the build chose.
#include <cstdio>
#include <cstring>

#include "util.h"

static int evaluated = 0;
static bool fails() {
  evaluated++;
  return false;
}

int main(int argc, char** argv) {
  const char* which = argc > 1 ? argv[1] : "";
  if (!strcmp(which, "level")) {
    printf("level %d\n", HZ3_ASSERT_LEVEL);
    return 0;
  }
  if (!strcmp(which, "cheap")) {
    HZ3_ASSERT(fails());
  } else if (!strcmp(which, "internal")) {
    HZ3_ASSERT_INTERNAL(fails());
  } else if (!strcmp(which, "expensive")) {
    HZ3_ASSERT_EXPENSIVE(fails());
  } else {
    fprintf(stderr, "usage: assert_levels level|cheap|internal|expensive\n");
    return 2;
  }
  printf("compiled out, evaluated %d\n", evaluated);
  return 0;
}
