// The same program run twice, once on glibc (no preload) and once under a libhz3 variant:
// t_glibc.sh diffs the two outputs line by line. Each line is one behaviour, `name: result`,
// with the result normalised so that two correct allocators print the same text: NULL or ptr,
// the errno name (or "errno untouched"), whether the pointer has the alignment glibc 2.36
// promises for that call, and for the introspection calls (mallinfo2, malloc_info) the shape of
// the answer rather than its numbers. Every case runs in a forked child, so a case that aborts
// (free() of a block the other allocator made) prints "crashed" instead of ending the run.
// Not here: hz3's own numbers (stats_test.cc) and mallopt, where hz3 deliberately differs.
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // mallinfo is compared on purpose

extern "C" {
void* __libc_malloc(size_t);
void __libc_free(void*);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void* __libc_valloc(size_t);
void* __libc_pvalloc(size_t);
}

namespace {

constexpr int UNTOUCHED = 12345;  // errno before each call: "untouched" when it stays
constexpr size_t PAGE = 4096;
constexpr size_t TOP = size_t{1} << 63;

template <class T>
T hide(T v) {  // keeps gcc from folding or rejecting deliberate misuse
  asm volatile("" : "+r"(v));
  return v;
}

const char* errno_name(int e) {
  switch (e) {
    case UNTOUCHED:
      return "errno untouched";
    case 0:
      return "errno 0";
    case EINVAL:
      return "EINVAL";
    case ENOMEM:
      return "ENOMEM";
    default:
      return "errno other";
  }
}

// The alignment glibc 2.36's memalign/aligned_alloc/valloc give (`_mid_memalign`): at most 16
// is plain malloc, more is rounded up to a power of two (MINSIZE 32 at least).
size_t glibc_alignment(size_t a) {
  if (a <= 16) return 16;
  size_t r = 32;
  while (r < a) r <<= 1;
  return r;
}

std::string describe(void* p, int err, size_t align) {
  std::string s = p ? "ptr" : "NULL";
  s += std::string(" ") + errno_name(err);
  if (p) s += uintptr_t(p) % align == 0 ? " aligned" : " MISALIGNED";
  return s;
}

// Runs body in a child; prints "name: <what body returned>" or "name: crashed (signal N)".
template <class F>
void run(const char* name, F body) {
  fflush(stdout);
  int fd[2];
  if (pipe(fd) != 0) return;
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    std::string r = body();
    std::string line = std::string(name) + ": " + r + "\n";
    if (write(fd[1], line.data(), line.size()) < 0) _exit(2);
    _exit(0);
  }
  close(fd[1]);
  char buf[4096];
  std::string out;
  ssize_t n;
  while ((n = read(fd[0], buf, sizeof buf)) > 0) out.append(buf, size_t(n));
  close(fd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFSIGNALED(st))
    printf("%s: crashed (signal %d)\n", name, WTERMSIG(st));
  else if (out.empty())
    printf("%s: exited %d without a result\n", name, WEXITSTATUS(st));
  else
    fputs(out.c_str(), stdout);
}

#define ALLOC_CASE(name, align, expr)        \
  run(name, [] {                             \
    errno = UNTOUCHED;                       \
    void* p = (expr);                        \
    int e = errno;                           \
    std::string r = describe(p, e, (align)); \
    if (p) free(p);                          \
    return r;                                \
  })

std::string posix_case(size_t align, size_t size) {
  void* p = reinterpret_cast<void*>(uintptr_t(1));
  errno = UNTOUCHED;
  int r = posix_memalign(&p, hide(align), hide(size));
  int e = errno;
  std::string s = std::string("returns ") + (r == 0 ? "0" : errno_name(r)) + ", " + errno_name(e);
  if (p == reinterpret_cast<void*>(uintptr_t(1)))
    s += ", *out untouched";
  else if (!p)
    s += ", *out NULL";
  else {
    s += uintptr_t(p) % glibc_alignment(align) == 0 ? ", aligned" : ", MISALIGNED";
    free(p);
  }
  return s;
}

// malloc_info's element layout with the numbers and the per-size lines taken out, every heap
// after the first folded into one: "<malloc version=1> <heap> <sizes> </sizes> <total fast> …".
std::string info_skeleton(const std::string& xml) {
  std::string out;
  int heaps = 0;
  bool in_later_heap = false;
  size_t i = 0;
  while ((i = xml.find('<', i)) != std::string::npos) {
    size_t j = xml.find('>', i);
    if (j == std::string::npos) return out + " UNTERMINATED";
    std::string el = xml.substr(i + 1, j - i - 1);
    i = j + 1;
    std::string name = el.substr(0, el.find(' '));
    if (name == "size" || name == "unsorted") continue;  // contents of <sizes>
    if (name == "heap") in_later_heap = heaps++ > 0;
    bool closes_heap = name == "/heap";
    if (!in_later_heap) {
      std::string t;
      size_t k = el.find("type=\"");
      if (k != std::string::npos) t = " " + el.substr(k + 6, el.find('"', k + 6) - k - 6);
      if (name == "malloc") t = el.find("version=\"1\"") != std::string::npos ? " v1" : " v?";
      if (t == " subheaps") continue;  // glibc: only arenas after the main one have it
      out += (out.empty() ? "<" : " <") + name + t + ">";
    }
    if (closes_heap) in_later_heap = false;
  }
  return out + (heaps > 0 ? " (heaps: some)" : " (heaps: none)");
}

}  // namespace

int main() {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  // memalign: any alignment; non-powers of two round up, 0..16 is malloc, > 2^63 is EINVAL.
  ALLOC_CASE("memalign(24, 100)", 32, memalign(hide(size_t{24}), 100));
  ALLOC_CASE("memalign(48, 100)", 64, memalign(hide(size_t{48}), 100));
  ALLOC_CASE("memalign(24, 0)", 32, memalign(hide(size_t{24}), 0));
  ALLOC_CASE("memalign(0, 100)", 16, memalign(hide(size_t{0}), 100));
  ALLOC_CASE("memalign(1, 100)", 16, memalign(hide(size_t{1}), 100));
  ALLOC_CASE("memalign(3, 100)", 16, memalign(hide(size_t{3}), 100));
  ALLOC_CASE("memalign(64, 0)", 64, memalign(hide(size_t{64}), 0));
  ALLOC_CASE("memalign(4097, 100)", 8192, memalign(hide(size_t{4097}), 100));
  ALLOC_CASE("memalign(5000, 100000)", 8192, memalign(hide(size_t{5000}), 100000));
  ALLOC_CASE("memalign(2^20+1, 10)", 2 << 20, memalign(hide((size_t{1} << 20) + 1), 10));
  ALLOC_CASE("memalign(2^63, 1)", 1, memalign(hide(TOP), 1));
  ALLOC_CASE("memalign(2^63+1, 1)", 1, memalign(hide(TOP + 1), 1));
  ALLOC_CASE("memalign(SIZE_MAX, 1)", 1, memalign(hide(SIZE_MAX), 1));
  ALLOC_CASE("memalign(2^62, 1)", 1, memalign(hide(size_t{1} << 62), 1));
  ALLOC_CASE("memalign(64, SIZE_MAX)", 1, memalign(64, hide(SIZE_MAX)));
  ALLOC_CASE("memalign(64, PTRDIFF_MAX)", 1, memalign(64, hide(size_t{PTRDIFF_MAX})));
  ALLOC_CASE("memalign(24, SIZE_MAX)", 1, memalign(hide(size_t{24}), hide(SIZE_MAX)));
  // aligned_alloc is memalign in glibc 2.36 (2.38 started to reject non-powers of two).
  ALLOC_CASE("aligned_alloc(24, 100)", 32, aligned_alloc(hide(size_t{24}), 100));
  ALLOC_CASE("aligned_alloc(48, 100)", 64, aligned_alloc(hide(size_t{48}), 100));
  ALLOC_CASE("aligned_alloc(0, 100)", 16, aligned_alloc(hide(size_t{0}), 100));
  ALLOC_CASE("aligned_alloc(3, 100)", 16, aligned_alloc(hide(size_t{3}), 100));
  ALLOC_CASE("aligned_alloc(64, 0)", 64, aligned_alloc(hide(size_t{64}), 0));
  ALLOC_CASE("aligned_alloc(64, 100)", 64, aligned_alloc(hide(size_t{64}), 100));
  ALLOC_CASE("aligned_alloc(12288, 100)", 16384, aligned_alloc(hide(size_t{12288}), 100));
  ALLOC_CASE("aligned_alloc(2^63, 1)", 1, aligned_alloc(hide(TOP), 1));
  ALLOC_CASE("aligned_alloc(2^63+1, 1)", 1, aligned_alloc(hide(TOP + 1), 1));
  ALLOC_CASE("aligned_alloc(SIZE_MAX, 1)", 1, aligned_alloc(hide(SIZE_MAX), 1));
  ALLOC_CASE("aligned_alloc(2^62, 1)", 1, aligned_alloc(hide(size_t{1} << 62), 1));
  ALLOC_CASE("aligned_alloc(64, SIZE_MAX)", 1, aligned_alloc(64, hide(SIZE_MAX)));
  ALLOC_CASE("aligned_alloc(64, PTRDIFF_MAX)", 1, aligned_alloc(64, hide(size_t{PTRDIFF_MAX})));
  // posix_memalign: a power-of-two multiple of sizeof(void*) or EINVAL with errno untouched;
  // ENOMEM is returned and (glibc 2.36) also left in errno.
  struct {
    const char* name;
    size_t align, size;
  } pm[] = {
      {"posix_memalign(0, 10)", 0, 10},
      {"posix_memalign(1, 10)", 1, 10},
      {"posix_memalign(4, 10)", 4, 10},
      {"posix_memalign(8, 10)", 8, 10},
      {"posix_memalign(24, 10)", 24, 10},
      {"posix_memalign(48, 10)", 48, 10},
      {"posix_memalign(16, 0)", 16, 0},
      {"posix_memalign(4096, 10)", 4096, 10},
      {"posix_memalign(SIZE_MAX, 1)", SIZE_MAX, 1},
      {"posix_memalign(2^63, 1)", TOP, 1},
      {"posix_memalign(2^62, 1)", size_t{1} << 62, 1},
      {"posix_memalign(64, SIZE_MAX)", 64, SIZE_MAX},
      {"posix_memalign(64, PTRDIFF_MAX)", 64, size_t{PTRDIFF_MAX}},
      {"posix_memalign(8, SIZE_MAX)", 8, SIZE_MAX},
  };
  for (auto& c : pm) {
    size_t a = c.align, n = c.size;
    run(c.name, [a, n] { return posix_case(a, n); });
  }
  ALLOC_CASE("valloc(0)", PAGE, valloc(hide(size_t{0})));
  ALLOC_CASE("valloc(1)", PAGE, valloc(hide(size_t{1})));
  ALLOC_CASE("valloc(100000)", PAGE, valloc(hide(size_t{100000})));
  ALLOC_CASE("valloc(SIZE_MAX)", 1, valloc(hide(SIZE_MAX)));
  ALLOC_CASE("valloc(SIZE_MAX-4095)", 1, valloc(hide(SIZE_MAX - 4095)));
  ALLOC_CASE("valloc(PTRDIFF_MAX)", 1, valloc(hide(size_t{PTRDIFF_MAX})));
  ALLOC_CASE("pvalloc(0)", PAGE, pvalloc(hide(size_t{0})));
  ALLOC_CASE("pvalloc(1)", PAGE, pvalloc(hide(size_t{1})));
  ALLOC_CASE("pvalloc(SIZE_MAX)", 1, pvalloc(hide(SIZE_MAX)));
  ALLOC_CASE("pvalloc(SIZE_MAX-4095)", 1, pvalloc(hide(SIZE_MAX - 4095)));
  ALLOC_CASE("pvalloc(SIZE_MAX-4096)", 1, pvalloc(hide(SIZE_MAX - 4096)));
  ALLOC_CASE("pvalloc(PTRDIFF_MAX)", 1, pvalloc(hide(size_t{PTRDIFF_MAX})));

  // __libc_* entry points and the standard ones must be the same allocator.
  run("free(__libc_malloc(100))", [] {
    char* p = static_cast<char*>(__libc_malloc(hide(size_t{100})));
    memset(p, 1, 100);
    free(p);
    return std::string("ok");
  });
  run("free(__libc_malloc(200000))", [] {
    char* p = static_cast<char*>(__libc_malloc(hide(size_t{200000})));
    memset(p, 1, 200000);
    free(p);
    return std::string("ok");
  });
  run("__libc_free(malloc(100))", [] {
    void* p = malloc(hide(size_t{100}));
    __libc_free(p);
    return std::string("ok");
  });
  run("__libc_free(malloc(200000))", [] {
    void* p = malloc(hide(size_t{200000}));
    __libc_free(p);
    return std::string("ok");
  });
  run("realloc(__libc_calloc(10, 10), 5000)", [] {
    unsigned char* p = static_cast<unsigned char*>(__libc_calloc(10, hide(size_t{10})));
    int zero = 1;
    for (int i = 0; i < 100; i++) zero &= p[i] == 0;
    p = static_cast<unsigned char*>(realloc(p, 5000));
    free(p);
    return std::string(zero ? "zeroed, ok" : "NOT ZEROED");
  });
  run("__libc_realloc(malloc(100), 5000)", [] {
    char* p = static_cast<char*>(malloc(hide(size_t{100})));
    memcpy(p, "hz3", 4);
    p = static_cast<char*>(__libc_realloc(p, 5000));
    std::string r = strcmp(p, "hz3") == 0 ? "contents kept" : "CONTENTS LOST";
    __libc_free(p);
    return r;
  });
  run("free(__libc_memalign(64, 100))", [] {
    void* p = __libc_memalign(hide(size_t{64}), 100);
    std::string r = describe(p, UNTOUCHED, 64);
    free(p);
    return r;
  });
  run("free(__libc_valloc(100))", [] {
    void* p = __libc_valloc(hide(size_t{100}));
    std::string r = describe(p, UNTOUCHED, PAGE);
    free(p);
    return r;
  });
  run("free(__libc_pvalloc(100))", [] {
    void* p = __libc_pvalloc(hide(size_t{100}));
    std::string r = describe(p, UNTOUCHED, PAGE);
    free(p);
    return r;
  });
  run("malloc_usable_size(__libc_malloc(100))", [] {
    void* p = __libc_malloc(hide(size_t{100}));
    std::string r = malloc_usable_size(p) >= 100 ? ">= 100" : "TOO SMALL";
    free(p);
    return r;
  });

  // Introspection: same layout and invariants, different numbers.
  run("mallinfo2 arena = uordblks + fordblks", [] {
    void* p = malloc(hide(size_t{1000}));
    struct mallinfo2 m = mallinfo2();
    free(p);
    return std::string(m.arena == m.uordblks + m.fordblks ? "yes" : "NO") +
           (m.uordblks >= 1000 ? ", uordblks >= 1000" : ", uordblks < 1000");
  });
  run("mallinfo matches mallinfo2", [] {
    void* p = malloc(hide(size_t{1000}));
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo m = mallinfo();
    free(p);
    return std::string(size_t(m.arena) == m2.arena && size_t(m.hblks) == m2.hblks ? "yes" : "NO");
  });
  run("mallinfo2 counts an mmap'ed block", [] {
    struct mallinfo2 a = mallinfo2();
    void* p = malloc(hide(size_t{1} << 30));
    struct mallinfo2 b = mallinfo2();
    free(p);
    return std::string(b.hblks == a.hblks + 1 && b.hblkhd >= a.hblkhd + (size_t{1} << 30) ? "yes"
                                                                                          : "NO");
  });
  run("malloc_info(0) layout", [] {
    void* p = malloc(hide(size_t{1000}));
    char* buf = nullptr;
    size_t len = 0;
    FILE* f = open_memstream(&buf, &len);
    errno = UNTOUCHED;
    int r = malloc_info(0, f);
    int e = errno;
    fclose(f);
    std::string s = "returns " + std::to_string(r) + ", " + errno_name(e) + ", " +
                    info_skeleton(std::string(buf, len));
    free(buf);
    free(p);
    return s;
  });
  run("malloc_info(1)", [] {
    errno = UNTOUCHED;
    int r = malloc_info(1, stdout);
    int e = errno;
    return "returns " + std::string(r == EINVAL ? "EINVAL" : std::to_string(r)) + ", " +
           errno_name(e);
  });
  run("malloc_stats writes to stderr", [] {
    int fd[2];
    if (pipe(fd) != 0) return std::string("pipe failed");
    int saved = dup(2);
    dup2(fd[1], 2);
    malloc_stats();
    fflush(stderr);
    dup2(saved, 2);
    close(fd[1]);
    char buf[256];
    ssize_t n = read(fd[0], buf, sizeof buf);
    close(fd[0]);
    return std::string(n > 0 ? "some output" : "NOTHING");
  });
  return 0;
}
