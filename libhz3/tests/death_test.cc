// Death tests for libhz3: free, realloc and malloc_usable_size of pointers that are not ours (a
// stack address, a pointer into the middle of a freed large block, an in-arena page that holds
// nothing, a foreign mmap), double frees of large blocks (caught by every variant) and, with
// --check, double frees of small blocks. Each case runs in a forked child whose stderr goes to a
// pipe; the parent asserts that the child died of SIGABRT and wrote exactly one line, starting
// with the expected `hz3: <fn>(): <what> 0x` and naming the exact pointer that was passed.
// Usage: death_test GROUP [--hz3] [--check] [--hardened]. --hz3 enables the cases that need the
// arena descriptor; --check adds what only VARIANT=check promises: small double frees (including a
// free after realloc(p, 0), which proves realloc freed p) and interior pointers of live blocks.
// --hardened adds those and what VARIANT=hardened promises besides: immediate and delayed double
// frees of small, medium and large blocks named as such, a double free whose first free was by
// another thread, 1-byte tail overflows, a write after free found by the next malloc, interior
// pointers of medium blocks, and a large-block overflow that hits the guard page (SIGSEGV). Not
// a fuzzer: each case is one deliberate misuse.
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "check.h"

using namespace hz3::test;

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * KiB;

bool g_hz3 = false;
bool g_check = false;
bool g_hardened = false;

// What a case does in the child: performs the misuse and returns the pointer it passed (reported
// through a pipe, since the parent cannot know stack or mmap addresses of the child in advance).
using Misuse = void (*)(int ptr_fd);

void tell(int fd, const void* p) {
  uintptr_t v = reinterpret_cast<uintptr_t>(p);
  if (write(fd, &v, sizeof v) != sizeof v) _exit(95);
}

// Expected first words of the line; any one of them may match.
struct Expect {
  const char* prefixes[2];
};

struct Outcome {
  int status = 0;
  std::string err;
  uintptr_t ptr = 0;
  bool have_ptr = false;
};

std::string read_all(int fd) {
  std::string s;
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0)
      s.append(buf, static_cast<size_t>(n));
    else if (n == 0 || errno != EINTR)
      break;
  }
  return s;
}

Outcome run_child(Misuse m) {
  Outcome o;
  int errp[2], ptrp[2];
  if (pipe(errp) != 0 || pipe(ptrp) != 0) {
    o.status = -1;
    return o;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);  // an abort per case would otherwise write a core each
    // The crash guard is the parent's: in the child a signal must simply kill it, for the
    // parent to see (the guard would print a result line into the shared stdout).
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM}) signal(sig, SIG_DFL);
    alarm(10);
    dup2(errp[1], 2);
    close(errp[0]);
    close(errp[1]);
    close(ptrp[0]);
    m(ptrp[1]);
    _exit(97);  // the misuse returned instead of aborting
  }
  close(errp[1]);
  close(ptrp[1]);
  uintptr_t v = 0;
  if (read(ptrp[0], &v, sizeof v) == sizeof v) {
    o.ptr = v;
    o.have_ptr = true;
  }
  close(ptrp[0]);
  o.err = read_all(errp[0]);
  close(errp[0]);
  waitpid(pid, &o.status, 0);
  return o;
}

std::string printable(const std::string& s) {
  std::string r;
  for (char c : s.substr(0, 200)) {
    if (c == '\n')
      r += "\\n";
    else if (c >= 32 && c < 127)
      r += c;
    else
      r += '?';
  }
  return r;
}

// Runs a misuse and checks signal, line count, prefix and pointer.
void expect_death(Misuse m, Expect e) {
  Outcome o = run_child(m);
  REQUIRE(o.status != -1);
  REQUIREF(o.have_ptr, "child died before it reached the misuse: %s", printable(o.err).c_str());
  if (WIFEXITED(o.status)) {
    CHECKF(false,
           "child exited with status %d instead of SIGABRT (97 = call returned); stderr '%s'",
           WEXITSTATUS(o.status), printable(o.err).c_str());
    return;
  }
  CHECKF(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT,
         "child killed by signal %d, wanted SIGABRT; stderr '%s'", WTERMSIG(o.status),
         printable(o.err).c_str());
  size_t nl = o.err.find('\n');
  REQUIREF(nl != std::string::npos && nl + 1 == o.err.size(),
           "stderr is not exactly one line: '%s'", printable(o.err).c_str());
  const char* matched = nullptr;
  for (const char* pre : e.prefixes)
    if (pre != nullptr && o.err.compare(0, strlen(pre), pre) == 0) matched = pre;
  REQUIREF(matched != nullptr, "stderr '%s' does not start with '%s'%s%s", printable(o.err).c_str(),
           e.prefixes[0], e.prefixes[1] ? "' or '" : "", e.prefixes[1] ? e.prefixes[1] : "");
  const char* hex = o.err.c_str() + strlen(matched);
  char* end = nullptr;
  errno = 0;
  unsigned long long shown = strtoull(hex, &end, 16);
  CHECKF(end != hex && errno == 0 && (*end == '\n' || *end == ' ' || *end == ':' || *end == ','),
         "no hex pointer after the prefix: '%s'", printable(o.err).c_str());
  CHECKF(shown == o.ptr, "message names 0x%llx, the call passed 0x%llx", shown,
         static_cast<unsigned long long>(o.ptr));
}

// A misuse that must die of `sig` (a guard page: no message, the kernel stops it).
void expect_signal(Misuse m, int sig) {
  Outcome o = run_child(m);
  REQUIRE(o.status != -1);
  REQUIREF(o.have_ptr, "child died before it reached the misuse: %s", printable(o.err).c_str());
  CHECKF(WIFSIGNALED(o.status) && WTERMSIG(o.status) == sig,
         "child %s %d, wanted signal %d; stderr '%s'",
         WIFSIGNALED(o.status) ? "killed by signal" : "exited with status",
         WIFSIGNALED(o.status) ? WTERMSIG(o.status) : WEXITSTATUS(o.status), sig,
         printable(o.err).c_str());
}

constexpr Expect FREE_INVALID{{"hz3: free(): invalid pointer 0x", nullptr}};
constexpr Expect REALLOC_INVALID{{"hz3: realloc(): invalid pointer 0x", nullptr}};
constexpr Expect USABLE_INVALID{{"hz3: malloc_usable_size(): invalid pointer 0x", nullptr}};
constexpr Expect FREE_DOUBLE{{"hz3: free(): double free 0x", nullptr}};
constexpr Expect FREE_OVERFLOW{{"hz3: free(): heap overflow 0x", nullptr}};
constexpr Expect MALLOC_WRITE_AFTER_FREE{{"hz3: malloc(): write after free 0x", nullptr}};
constexpr Expect FREE_DOUBLE_OR_INVALID{
    {"hz3: free(): double free 0x", "hz3: free(): invalid pointer 0x"}};

// ---- the misuses (run in the child) ------------------------------------------------------------

void* stack_pointer(char* buf) { return launder_value(static_cast<void*>(buf + 16)); }

void* foreign_mmap() {
  void* p = mmap(nullptr, 64 * KiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) _exit(96);
  memset(p, 0x77, 64 * KiB);  // looks like data, so a header read would find garbage
  return p;
}

// A page inside the arena that no block was ever carved from: beyond the high-water mark, near
// the end of the reservation (PROT_NONE, so touching it would crash rather than abort).
void* empty_arena_page() {
  const ArenaDesc* d = arena_desc();
  if (d == nullptr || d->magic != HZ3_DESC_MAGIC) _exit(94);
  uintptr_t p = d->base + d->size - 16 * HZ3_PAGE_SIZE + 64;
  if ((p - d->base) >> HZ3_PAGE_SHIFT < d->hwm_pages) _exit(93);
  return reinterpret_cast<void*>(p);
}

void free_stack(int fd) {
  char buf[64];
  void* p = stack_pointer(buf);
  tell(fd, p);
  free(p);
}
void free_mid_freed_large(int fd) {
  char* p = static_cast<char*>(malloc(1 * MiB));
  memset(p, 1, 1 * MiB);
  free(p);
  void* mid = launder_value(static_cast<void*>(p + 512 * KiB));
  tell(fd, mid);
  free(mid);
}
void free_empty_arena_page(int fd) {
  void* p = empty_arena_page();
  tell(fd, p);
  free(p);
}
void free_foreign_mmap(int fd) {
  void* p = foreign_mmap();
  tell(fd, p);
  free(p);
}
void realloc_stack(int fd) {
  char buf[64];
  void* p = stack_pointer(buf);
  tell(fd, p);
  sink(realloc(p, 100));
}
void realloc_foreign_mmap(int fd) {
  void* p = foreign_mmap();
  tell(fd, p);
  sink(realloc(p, 100));
}
void realloc_empty_arena_page(int fd) {
  void* p = empty_arena_page();
  tell(fd, p);
  sink(realloc(p, 100));
}
void usable_stack(int fd) {
  char buf[64];
  void* p = stack_pointer(buf);
  tell(fd, p);
  sink(reinterpret_cast<void*>(malloc_usable_size(p)));
}
void usable_foreign_mmap(int fd) {
  void* p = foreign_mmap();
  tell(fd, p);
  sink(reinterpret_cast<void*>(malloc_usable_size(p)));
}
void usable_empty_arena_page(int fd) {
  void* p = empty_arena_page();
  tell(fd, p);
  sink(reinterpret_cast<void*>(malloc_usable_size(p)));
}
template <size_t N>
void double_free_large(int fd) {
  void* p = malloc(N);
  memset(p, 2, N);
  free(p);
  tell(fd, p);
  free(p);
}
void double_free_small(int fd) {
  void* p = malloc(48);
  memset(p, 3, 48);
  free(p);
  tell(fd, p);
  free(p);
}
// The classic a, b, a sequence: the second free of `a` is not the most recent free.
void double_free_small_aba(int fd) {
  void* a = malloc(64);
  void* b = malloc(64);
  memset(a, 4, 64);
  memset(b, 5, 64);
  free(a);
  free(b);
  tell(fd, a);
  free(a);
}

// realloc(p, 0) frees p (glibc semantics): freeing p again must be caught as a double free.
void realloc_zero_then_free(int fd) {
  void* p = malloc(80);
  memset(p, 6, 80);
  void* q = realloc(p, 0);
  sink(q);
  tell(fd, p);
  free(p);
}
// A pointer into the middle of a live small block is not a block start.
void free_interior_small(int fd) {
  char* p = static_cast<char*>(malloc(256));
  memset(p, 7, 256);
  void* mid = launder_value(static_cast<void*>(p + 64));
  tell(fd, mid);
  free(mid);
}

// ---- hardened variant ----

// free(p); then other blocks of the same and other classes come and go (p stays in the cache,
// or goes back to its span, whose other live block keeps it in use); then free(p) again.
template <size_t N>
void double_free_delayed(int fd) {
  void* keep = malloc(N);  // same class, allocated first: p's span stays in use
  void* p = malloc(N);
  memset(p, 8, N);
  free(p);
  void* v[300];
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < 300; i++) v[i] = malloc(i % 3 == 0 ? N : 16 + 40 * i);
    for (int i = 0; i < 300; i++) free(v[i]);
  }
  sink(keep);
  tell(fd, p);
  free(p);
}
template <size_t N>
void double_free_now(int fd) {
  void* p = malloc(N);
  memset(p, 9, N);
  free(p);
  tell(fd, p);
  free(p);
}
// Large: the second free comes after other large blocks of different sizes were allocated.
void double_free_large_delayed(int fd) {
  void* p = malloc(512 * KiB);
  memset(p, 10, 512 * KiB);
  free(p);
  void* q = malloc(2 * MiB);  // too big for p's run
  void* small[100];
  for (int i = 0; i < 100; i++) small[i] = malloc(64 + i);
  for (int i = 0; i < 100; i++) free(small[i]);
  sink(q);
  tell(fd, p);
  free(p);
}
void* free_in_thread(void* p) {
  free(p);
  return nullptr;
}
// The first free is by another thread (a remote free into this thread's inbox), the second here.
template <size_t N>
void double_free_remote_first(int fd) {
  void* p = malloc(N);
  memset(p, 11, N);
  pthread_t t;
  if (pthread_create(&t, nullptr, free_in_thread, p) != 0 || pthread_join(t, nullptr) != 0)
    _exit(92);
  tell(fd, p);
  free(p);
}
// The first free is here, the second by another thread.
void double_free_remote_second(int fd) {
  void* p = malloc(200);
  memset(p, 12, 200);
  free(p);
  tell(fd, p);
  pthread_t t;
  if (pthread_create(&t, nullptr, free_in_thread, p) != 0 || pthread_join(t, nullptr) != 0)
    _exit(92);
}
// One byte written just past the requested size (changed whatever it held).
template <size_t N>
void overflow_one_byte(int fd) {
  char* p = static_cast<char*>(malloc(N));
  memset(p, 13, N);
  volatile char* tail = launder_value(p + N);
  *tail = char(*tail ^ 0x5A);
  tell(fd, p);
  free(p);
}
// A write into a freed small block, found when the next malloc of that size hands it out.
void write_after_free_small(int fd) {
  char* p = static_cast<char*>(malloc(64));
  memset(p, 14, 64);
  free(p);
  volatile char* inside = launder_value(p + 20);
  *inside = 'x';
  tell(fd, p);
  sink(malloc(64));
}
void free_interior_medium(int fd) {
  char* p = static_cast<char*>(malloc(8192));
  memset(p, 15, 8192);
  void* mid = launder_value(static_cast<void*>(p + 4096));
  tell(fd, mid);
  free(mid);
}
// Writing one page past a large block's end lands in its guard page.
void large_overflow_guard(int fd) {
  char* p = static_cast<char*>(malloc(256 * KiB));
  memset(p, 16, 256 * KiB);
  tell(fd, p);
  volatile char* past = launder_value(p + 256 * KiB);
  *past = 1;
}
// The same past a huge (mmap'ed) block's end, and before its start. Without a guard the page
// next to the mapping may be free: the child maps it first (MAP_FIXED_NOREPLACE fails where a
// guard is), so a missing guard shows as a write that succeeds, never as a fault by luck.
void occupy_page(void* at) {
  void* q = mmap(at, 4096, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (q != MAP_FAILED && q != at) munmap(q, 4096);  // kernels without NOREPLACE: a hint only
}
void huge_overflow_guard(int fd) {
  char* p = static_cast<char*>(malloc(size_t(1) << 30));
  tell(fd, p);
  occupy_page(p + (size_t(1) << 30));
  volatile char* past = launder_value(p + (size_t(1) << 30));
  *past = 1;
}
void huge_underflow_guard(int fd) {
  char* p = static_cast<char*>(malloc(size_t(1) << 30));
  tell(fd, p);
  occupy_page(p - 4096);
  volatile char* before = launder_value(p - 1);
  *before = 1;
}

}  // namespace

int main(int argc, char** argv) {
  static char group[128];
  snprintf(group, sizeof group, "death/%s", argc > 1 ? argv[1] : "default");
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--hz3") == 0) g_hz3 = true;
    if (strcmp(argv[i], "--check") == 0) g_check = true;
    if (strcmp(argv[i], "--hardened") == 0) g_hardened = true;
  }
  init(group, argc, argv);
  auto arena_case = [](const char* name, Misuse m, Expect e) {
    run_case(name, [&] {
      if (!g_hz3)
        skip_case("needs the hz3 arena descriptor (--hz3)");
      else
        expect_death(m, e);
    });
  };
  run_case("free_stack_pointer", [] { expect_death(free_stack, FREE_INVALID); });
  run_case("free_mid_freed_large", [] { expect_death(free_mid_freed_large, FREE_INVALID); });
  arena_case("free_empty_arena_page", free_empty_arena_page, FREE_INVALID);
  run_case("free_foreign_mmap", [] { expect_death(free_foreign_mmap, FREE_INVALID); });
  run_case("realloc_stack_pointer", [] { expect_death(realloc_stack, REALLOC_INVALID); });
  run_case("realloc_foreign_mmap", [] { expect_death(realloc_foreign_mmap, REALLOC_INVALID); });
  arena_case("realloc_empty_arena_page", realloc_empty_arena_page, REALLOC_INVALID);
  run_case("usable_size_stack_pointer", [] { expect_death(usable_stack, USABLE_INVALID); });
  run_case("usable_size_foreign_mmap", [] { expect_death(usable_foreign_mmap, USABLE_INVALID); });
  arena_case("usable_size_empty_arena_page", usable_empty_arena_page, USABLE_INVALID);
  run_case("double_free_large_256k",
           [] { expect_death(double_free_large<256 * KiB>, FREE_DOUBLE_OR_INVALID); });
  run_case("double_free_large_4m",
           [] { expect_death(double_free_large<4 * MiB>, FREE_DOUBLE_OR_INVALID); });
  if (g_check || g_hardened) {
    run_case("double_free_small", [] { expect_death(double_free_small, FREE_DOUBLE); });
    run_case("double_free_small_aba", [] { expect_death(double_free_small_aba, FREE_DOUBLE); });
    run_case("realloc_zero_then_free", [] { expect_death(realloc_zero_then_free, FREE_DOUBLE); });
    run_case("free_interior_small", [] { expect_death(free_interior_small, FREE_INVALID); });
  }
  if (g_hardened) {
    run_case("double_free_medium", [] { expect_death(double_free_now<8192>, FREE_DOUBLE); });
    run_case("double_free_large", [] { expect_death(double_free_now<256 * KiB>, FREE_DOUBLE); });
    run_case("double_free_small_delayed",
             [] { expect_death(double_free_delayed<48>, FREE_DOUBLE); });
    run_case("double_free_medium_delayed",
             [] { expect_death(double_free_delayed<8192>, FREE_DOUBLE); });
    run_case("double_free_large_delayed",
             [] { expect_death(double_free_large_delayed, FREE_DOUBLE); });
    run_case("double_free_small_remote_first",
             [] { expect_death(double_free_remote_first<96>, FREE_DOUBLE); });
    run_case("double_free_medium_remote_first",
             [] { expect_death(double_free_remote_first<20000>, FREE_DOUBLE); });
    run_case("double_free_remote_second",
             [] { expect_death(double_free_remote_second, FREE_DOUBLE); });
    run_case("overflow_small_1byte", [] { expect_death(overflow_one_byte<100>, FREE_OVERFLOW); });
    run_case("overflow_small_1byte_16", [] { expect_death(overflow_one_byte<8>, FREE_OVERFLOW); });
    run_case("overflow_medium_1byte", [] { expect_death(overflow_one_byte<5000>, FREE_OVERFLOW); });
    run_case("write_after_free_small",
             [] { expect_death(write_after_free_small, MALLOC_WRITE_AFTER_FREE); });
    run_case("free_interior_medium", [] { expect_death(free_interior_medium, FREE_INVALID); });
    run_case("large_overflow_guard", [] { expect_signal(large_overflow_guard, SIGSEGV); });
    run_case("huge_overflow_guard", [] { expect_signal(huge_overflow_guard, SIGSEGV); });
    run_case("huge_underflow_guard", [] { expect_signal(huge_underflow_guard, SIGSEGV); });
  }
  return finish();
}
