// Header-only test helper, the one assertion style of every C++ test program (libhz3/tests,
// libhz3/unit, libhz3/reliability, hz3top/tests): named test cases that print one
// `PASS: group/name` or `FAIL: group/name: why` line each (the lines scripts/run-tests.sh counts),
// CHECK macros that record the first failure of a case without ending it, a crash/timeout guard
// that still names the case that died, address/size-derived fill patterns, and access to the arena
// descriptor libhz3 exports. It is not a test framework to grow: no fixtures, no registration, no
// output beyond the result lines. Most programs are linked normally (not against libhz3) and run
// with LD_PRELOAD, so nothing here may depend on libhz3 being present.
#pragma once

#include <dlfcn.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "hz3/hz3.h"

namespace hz3::test {

// Keeps the compiler from proving an allocation unused (we also build with -fno-builtin, but a
// pointer that escapes into an asm statement is safe under any flags).
inline void sink(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

// Hides a value's origin from the optimiser, so deliberate misuse (freeing a stack address, asking
// for SIZE_MAX bytes) is neither folded away nor rejected at compile time.
template <class T>
inline T launder_value(T v) {
  asm volatile("" : "+r"(v));
  return v;
}

// ---- result lines -------------------------------------------------------------------------------

struct Suite {
  const char* group = "hz3";      // prefix of every result name, e.g. "api/release"
  const char* current = nullptr;  // case now running (the crash guard names it)
  char first_failure[512] = {0};  // why the current case fails; empty while it passes
  int case_checks_failed = 0;
  int passed = 0;
  int failed = 0;
  int skipped = 0;
  const char* resume_after = nullptr;  // --after NAME: skip cases up to and including NAME
  int argc = 0;                        // for --only NAME (run just the named cases)
  char** argv = nullptr;
};

inline Suite& suite() {
  static Suite s;
  return s;
}

// True when `--only` was not given, or one of its values names this case.
inline bool selected(const char* name) {
  Suite& s = suite();
  bool any = false;
  for (int i = 1; i + 1 < s.argc; i++) {
    if (strcmp(s.argv[i], "--only") != 0) continue;
    any = true;
    if (strcmp(s.argv[i + 1], name) == 0) return true;
  }
  return !any;
}

// Fatal signals and the watchdog print a FAIL line naming the running case with write(2) only:
// the allocator may be what broke, so the handler must not call it.
inline void write_str(int fd, const char* s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

inline void on_fatal_signal(int sig) {
  Suite& s = suite();
  char num[16];
  int i = sizeof num - 1;
  num[i] = 0;
  int v = sig;
  do {
    num[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 && i > 0);
  write_str(1, "FAIL: ");
  write_str(1, s.group);
  write_str(1, "/");
  write_str(1, s.current ? s.current : "startup");
  write_str(1, sig == SIGALRM ? ": timed out (watchdog, signal " : ": crashed with signal ");
  write_str(1, num + i);
  write_str(1, sig == SIGALRM ? ")\n" : "\n");
  signal(sig, SIG_DFL);
  raise(sig);
}

// Line-buffered stdout (a crash must not swallow earlier result lines) and the crash guard.
// `--after NAME` anywhere in argv resumes after the case NAME: the scripts rerun a program that
// crashed from the case after the one that killed it, so one crash does not hide later results.
// `--only NAME` (repeatable) runs only the named cases.
inline void init(const char* group, int argc = 0, char** argv = nullptr) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  suite().group = group;
  suite().argc = argc;
  suite().argv = argv;
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], "--after") == 0) suite().resume_after = argv[i + 1];
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM}) signal(sig, on_fatal_signal);
}

// Records a failed check; keeps the first message, counts the rest.
inline bool check_failed(const char* file, int line, const char* expr, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
inline bool check_failed(const char* file, int line, const char* expr, const char* fmt, ...) {
  Suite& s = suite();
  if (s.case_checks_failed++ == 0) {
    const char* base = strrchr(file, '/');
    int n = snprintf(s.first_failure, sizeof s.first_failure, "%s:%d: %s", base ? base + 1 : file,
                     line, expr);
    if (fmt != nullptr && n > 0 && static_cast<size_t>(n) < sizeof s.first_failure) {
      size_t used = static_cast<size_t>(n);
      used += static_cast<size_t>(
          snprintf(s.first_failure + used, sizeof s.first_failure - used, " ("));
      if (used < sizeof s.first_failure) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(s.first_failure + used, sizeof s.first_failure - used, fmt, ap);
        va_end(ap);
        if (m > 0) used += static_cast<size_t>(m);
      }
      if (used + 2 < sizeof s.first_failure) strcat(s.first_failure, ")");
    }
  }
  return false;
}

// CHECK(cond) and CHECKF(cond, "fmt", args…) evaluate to cond and record a failure when false;
// REQUIRE leaves the case (the rest would only report consequences of the first failure).
#define CHECK(cond) ((cond) ? true : ::hz3::test::check_failed(__FILE__, __LINE__, #cond, nullptr))
#define CHECKF(cond, ...) \
  ((cond) ? true : ::hz3::test::check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__))
#define REQUIRE(cond)         \
  do {                        \
    if (!CHECK(cond)) return; \
  } while (0)
#define REQUIREF(cond, ...)                 \
  do {                                      \
    if (!CHECKF(cond, __VA_ARGS__)) return; \
  } while (0)

// CHECK_EQ(a, b) and CHECK_EQ_STR(a, b) evaluate each side once, compare, and on a mismatch record
// file:line, both expressions and both values (strings too long for the result line are written
// whole to stderr as well). CHECK_EQ takes numbers, bools, enums, pointers
// (integers of mixed signedness compare by value); CHECK_EQ_STR anything a std::string is made of.
template <class T>
inline std::string show_value(const T& v) {
  char buf[64];
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_enum_v<T>) {
    return show_value(static_cast<std::underlying_type_t<T>>(v));
  } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  } else if constexpr (std::is_integral_v<T>) {
    snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(v));
  } else if constexpr (std::is_floating_point_v<T>) {
    snprintf(buf, sizeof buf, "%.17g", static_cast<double>(v));
  } else if constexpr (std::is_pointer_v<T> || std::is_null_pointer_v<T>) {
    snprintf(buf, sizeof buf, "%p", static_cast<const void*>(v));
  } else {
    static_assert(std::is_arithmetic_v<T>, "CHECK_EQ shows numbers, enums and pointers");
  }
  return buf;
}

template <class A, class B>
inline bool values_equal(const A& a, const B& b) {
  if constexpr (std::is_integral_v<A> && std::is_integral_v<B> && !std::is_same_v<A, bool> &&
                !std::is_same_v<B, bool>)
    return std::cmp_equal(a, b);
  else
    return a == b;
}

template <class A, class B>
inline bool check_eq(const A& a, const B& b, const char* file, int line, const char* expr) {
  if (values_equal(a, b)) return true;
  return check_failed(file, line, expr, "left %s, right %s", show_value(a).c_str(),
                      show_value(b).c_str());
}

// Control characters are shown escaped, so a mismatch in a newline or a tab is visible on the
// one result line.
inline std::string show_string(std::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

inline bool check_eq_str(const std::string& a, const std::string& b, const char* file, int line,
                         const char* expr) {
  if (a == b) return true;
  std::string x = show_string(a), y = show_string(b);
  // The result line keeps 512 bytes of the first failure; longer values go whole to stderr.
  if (x.size() + y.size() > 300) {
    const char* base = strrchr(file, '/');
    fprintf(stderr, "  %s:%d: %s\n    left  %s\n    right %s\n", base ? base + 1 : file, line, expr,
            x.c_str(), y.c_str());
  }
  return check_failed(file, line, expr, "left %s, right %s", x.c_str(), y.c_str());
}

#define CHECK_EQ(a, b) ::hz3::test::check_eq((a), (b), __FILE__, __LINE__, #a " == " #b)
#define CHECK_EQ_STR(a, b) ::hz3::test::check_eq_str((a), (b), __FILE__, __LINE__, #a " == " #b)

// Marks the running case skipped (with the reason) instead of passed.
inline char* skip_reason() {
  static char reason[256];
  return reason;
}
inline void skip_case(const char* why) { snprintf(skip_reason(), 256, "%s", why); }

// Runs one case under a watchdog of `timeout_s` seconds and prints its result line.
template <class F>
inline bool run_case(const char* name, F&& body, unsigned timeout_s = 60) {
  Suite& s = suite();
  if (s.resume_after != nullptr) {
    if (strcmp(s.resume_after, name) == 0) s.resume_after = nullptr;
    return true;
  }
  if (!selected(name)) return true;
  s.current = name;
  s.first_failure[0] = 0;
  s.case_checks_failed = 0;
  skip_reason()[0] = 0;
  alarm(timeout_s);
  body();
  alarm(0);
  bool ok = s.case_checks_failed == 0;
  if (!ok) {
    if (s.case_checks_failed > 1)
      printf("FAIL: %s/%s: %s [+%d more failed checks]\n", s.group, name, s.first_failure,
             s.case_checks_failed - 1);
    else
      printf("FAIL: %s/%s: %s\n", s.group, name, s.first_failure);
    s.failed++;
  } else if (skip_reason()[0] != 0) {
    printf("SKIP: %s/%s: %s\n", s.group, name, skip_reason());
    s.skipped++;
  } else {
    printf("PASS: %s/%s\n", s.group, name);
    s.passed++;
  }
  s.current = nullptr;
  return ok;
}

// Exit status for main: 1 when any case failed, so a script sees it even without parsing lines.
inline int finish() {
  fflush(stdout);
  return suite().failed == 0 ? 0 : 1;
}

// ---- data patterns ------------------------------------------------------------------------------

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

// Small, fast, reproducible generator (splitmix64).
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() { return mix64(state += 0x9E3779B97F4A7C15ull); }
  // Uniform in [lo, hi].
  size_t range(size_t lo, size_t hi) { return lo + static_cast<size_t>(next() % (hi - lo + 1)); }
};

// A block's pattern depends on its address and size, so a block that was handed to two owners, or
// moved without its contents, or overlapped by a neighbour, shows up as a mismatch.
inline uint64_t pattern_word(const void* p, size_t n, size_t i) {
  return mix64(reinterpret_cast<uintptr_t>(p) ^ (n * 0x9E3779B97F4A7C15ull)) +
         i * 0x2545F4914F6CDD1Dull;
}

inline void fill_pattern(void* p, size_t n) {
  unsigned char* b = static_cast<unsigned char*>(p);
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w = pattern_word(p, n, i);
    memcpy(b + i * 8, &w, 8);
  }
  uint64_t tail = pattern_word(p, n, words);
  for (size_t j = words * 8; j < n; j++) b[j] = static_cast<unsigned char>(tail >> (8 * (j & 7)));
}

// Returns the offset of the first wrong byte, or SIZE_MAX when the block is intact.
inline size_t verify_pattern(const void* p, size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w;
    memcpy(&w, b + i * 8, 8);
    if (w != pattern_word(p, n, i)) {
      uint64_t want = pattern_word(p, n, i);
      for (size_t j = 0; j < 8; j++)
        if (((w >> (8 * j)) & 0xFF) != ((want >> (8 * j)) & 0xFF)) return i * 8 + j;
    }
  }
  uint64_t tail = pattern_word(p, n, words);
  for (size_t j = words * 8; j < n; j++)
    if (b[j] != static_cast<unsigned char>(tail >> (8 * (j & 7)))) return j;
  return SIZE_MAX;
}

// A pattern that depends only on a seed, for contents that move (realloc keeps bytes, not
// addresses).
inline unsigned char seed_byte(uint64_t seed, size_t i) {
  return static_cast<unsigned char>(mix64(seed + i / 8) >> (8 * (i & 7)));
}
inline void fill_seeded(void* p, size_t from, size_t to, uint64_t seed) {
  unsigned char* b = static_cast<unsigned char*>(p);
  for (size_t i = from; i < to; i++) b[i] = seed_byte(seed, i);
}
inline size_t verify_seeded(const void* p, size_t n, uint64_t seed) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++)
    if (b[i] != seed_byte(seed, i)) return i;
  return SIZE_MAX;
}

inline bool aligned_to(const void* p, size_t a) {
  return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0;
}

// ---- libhz3 presence
// -----------------------------------------------------------------------------

// hz3.h declares a variable with the struct's name, which hides the type in C++.
using ArenaDesc = struct ::hz3_arena_desc;

// The descriptor libhz3 exports, or nullptr when the process runs on another allocator.
inline const ArenaDesc* arena_desc() {
  return static_cast<const ArenaDesc*>(dlsym(RTLD_DEFAULT, "hz3_arena_desc"));
}

inline bool in_arena(const ArenaDesc* d, const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return d != nullptr && a >= d->base && a - d->base < d->size;
}

// ---- clocks and /proc
// ------------------------------------------------------------------------------

inline double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

inline void sleep_ms(unsigned ms) {
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

}  // namespace hz3::test
