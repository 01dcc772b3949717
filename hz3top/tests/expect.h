// The assertion style of hz3top's unit test programs (unit.cc, heap_unit.cc): EXPECT macros that
// record an unmet expectation on stderr and let the case go on, and the loop that runs named
// cases and prints one `PASS: group/name` or `FAIL: group/name: why` line each (the lines
// scripts/run-tests.sh counts). Header-only; not a framework: no fixtures, no registration.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace hz3top::test {

// False once the running case met an unmet expectation.
inline bool g_ok;

using Cases = std::vector<std::pair<const char*, std::function<void()>>>;

// Runs every case and prints its result line; the exit status for main (1 if any failed).
inline int run_cases(const char* group, const Cases& cases) {
  int failed = 0;
  for (auto& [name, fn] : cases) {
    g_ok = true;
    fn();
    fflush(stderr);
    if (g_ok) {
      printf("PASS: %s/%s\n", group, name);
    } else {
      printf("FAIL: %s/%s: unmet expectations on stderr\n", group, name);
      failed++;
    }
    fflush(stdout);
  }
  return failed ? 1 : 0;
}

}  // namespace hz3top::test

#define EXPECT(cond)                                                        \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "  %s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
      ::hz3top::test::g_ok = false;                                         \
    }                                                                       \
  } while (0)
#define EXPECT_EQ_STR(a, b)                                                               \
  do {                                                                                    \
    std::string x_ = (a), y_ = (b);                                                       \
    if (x_ != y_) {                                                                       \
      fprintf(stderr, "  %s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, \
              x_.c_str(), y_.c_str());                                                    \
      ::hz3top::test::g_ok = false;                                                       \
    }                                                                                     \
  } while (0)
