// Death tests for libhz3: free, realloc and malloc_usable_size of pointers that are not ours (a
// stack address, a pointer into the middle of a freed large block, an in-arena page that holds
// nothing, a foreign mmap), double frees of large blocks (caught by every variant) and, with
// --check, double frees of small blocks. Each case runs in a forked child whose stderr goes to a
// pipe; the parent asserts that the child died of SIGABRT and wrote exactly one line, starting
// with the expected `hz3: <fn>(): <what> 0x` and naming the exact pointer that was passed.
// Usage: death_test GROUP [--hz3] [--check]. --hz3 enables the cases that need the arena
// descriptor; --check adds what only VARIANT=check promises: small double frees (including a
// free after realloc(p, 0), which proves realloc freed p) and interior pointers of live blocks. Not
// a fuzzer: each case is one deliberate misuse.
#include <errno.h>
#include <malloc.h>
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

constexpr Expect FREE_INVALID{{"hz3: free(): invalid pointer 0x", nullptr}};
constexpr Expect REALLOC_INVALID{{"hz3: realloc(): invalid pointer 0x", nullptr}};
constexpr Expect USABLE_INVALID{{"hz3: malloc_usable_size(): invalid pointer 0x", nullptr}};
constexpr Expect FREE_DOUBLE{{"hz3: free(): double free 0x", nullptr}};
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

}  // namespace

int main(int argc, char** argv) {
  static char group[128];
  snprintf(group, sizeof group, "death/%s", argc > 1 ? argv[1] : "default");
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--hz3") == 0) g_hz3 = true;
    if (strcmp(argv[i], "--check") == 0) g_check = true;
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
  if (g_check) {
    run_case("double_free_small", [] { expect_death(double_free_small, FREE_DOUBLE); });
    run_case("double_free_small_aba", [] { expect_death(double_free_small_aba, FREE_DOUBLE); });
    run_case("realloc_zero_then_free", [] { expect_death(realloc_zero_then_free, FREE_DOUBLE); });
    run_case("free_interior_small", [] { expect_death(free_interior_small, FREE_INVALID); });
  }
  return finish();
}
