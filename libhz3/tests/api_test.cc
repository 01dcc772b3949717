// API conformance test for libhz3: every exported allocation function (the C functions and every
// C++ operator new/delete form) against the contract in the issue: glibc semantics for the edge
// cases (malloc(0), calloc overflow, bad alignments, realloc(p, 0), huge requests, bad_alloc),
// alignment 16 B … 1 MiB, contents kept by realloc, usable sizes, and proof that libhz3 (not
// glibc) served the process. One process, one result line per case, grouped by the first argument
// (`api/release`, `api/check`, …). Run with LD_PRELOAD=<libhz3.so> and `--hz3`; without `--hz3`
// the hz3-only cases are skipped, so the same binary can be checked against glibc. It is not a
// stress or death test (see stress_test.cc, death_test.cc).
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <regex.h>
#include <sys/mman.h>

#include <algorithm>
#include <new>
#include <utility>
#include <vector>

#include "check.h"

using namespace hz3::test;

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

bool g_hz3 = false;  // --hz3: the process must be served by libhz3

// Requests no allocator can satisfy; each must fail with ENOMEM.
const size_t HUGE_SIZES[] = {SIZE_MAX, SIZE_MAX - 4095, SIZE_MAX - 1 * MiB,
                             static_cast<size_t>(PTRDIFF_MAX) + 1,
                             static_cast<size_t>(PTRDIFF_MAX)};

size_t page_size() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

// The alignment malloc must give a request of n bytes: max_align_t for anything that can hold it,
// otherwise the largest power of two not above n (what a type of that size may need).
size_t required_malloc_alignment(size_t n) {
  size_t a = alignof(max_align_t);
  while (a > 1 && a > n) a >>= 1;
  return a;
}

// Blocks [p, p+usable) must not overlap: sorts and compares neighbours.
bool no_overlap(std::vector<std::pair<uintptr_t, size_t>> v, uintptr_t* where) {
  std::sort(v.begin(), v.end());
  for (size_t i = 1; i < v.size(); i++) {
    if (v[i - 1].first + v[i - 1].second > v[i].first) {
      *where = v[i].first;
      return false;
    }
  }
  return true;
}

// ---- proof that libhz3 serves this process
// -------------------------------------------------------

void t_served_by_hz3() {
  const ArenaDesc* d = arena_desc();
  if (!g_hz3) {
    if (d == nullptr) skip_case("not run under libhz3 (no --hz3)");
    return;
  }
  REQUIREF(d != nullptr, "dlsym(RTLD_DEFAULT, \"hz3_arena_desc\") found nothing: not preloaded?");
  void* small = malloc(64);
  sink(small);
  CHECKF(d->magic == HZ3_DESC_MAGIC, "magic 0x%llx", static_cast<unsigned long long>(d->magic));
  CHECKF(d->version == HZ3_DESC_VERSION, "version %u", d->version);
  CHECKF(d->page_shift == HZ3_PAGE_SHIFT, "page_shift %u", d->page_shift);
  CHECKF(d->size > 0 && d->base % HZ3_PAGE_SIZE == 0, "base 0x%llx size %llu",
         static_cast<unsigned long long>(d->base), static_cast<unsigned long long>(d->size));
  CHECKF(in_arena(d, small), "malloc(64)=%p outside arena [0x%llx, +%llu)", small,
         static_cast<unsigned long long>(d->base), static_cast<unsigned long long>(d->size));
  CHECKF(d->hwm_pages > 0, "hwm_pages %llu after a malloc",
         static_cast<unsigned long long>(d->hwm_pages));
  for (size_t n : {size_t{1000}, 40 * KiB, 1 * MiB}) {
    void* p = malloc(n);
    sink(p);
    CHECKF(in_arena(d, p), "malloc(%zu)=%p outside the arena", n, p);
    free(p);
  }
  char* c = new char[100];
  sink(c);
  CHECKF(in_arena(d, c), "new char[100]=%p outside the arena", static_cast<void*>(c));
  delete[] c;
  free(small);
}

// Every exported function must resolve to the object that exports hz3_arena_desc; a forgotten
// export would silently fall through to glibc or libstdc++ and mix two heaps.
void t_exports_resolve_to_hz3() {
  if (!g_hz3) {
    skip_case("not run under libhz3 (no --hz3)");
    return;
  }
  const void* d = arena_desc();
  Dl_info di;
  REQUIRE(d != nullptr && dladdr(d, &di) != 0);
  const void* lib = di.dli_fbase;
  static const char* const names[] = {"malloc",
                                      "free",
                                      "calloc",
                                      "realloc",
                                      "reallocarray",
                                      "posix_memalign",
                                      "aligned_alloc",
                                      "memalign",
                                      "valloc",
                                      "pvalloc",
                                      "malloc_usable_size",
                                      "_Znwm",
                                      "_Znam",
                                      "_ZnwmRKSt9nothrow_t",
                                      "_ZnamRKSt9nothrow_t",
                                      "_ZnwmSt11align_val_t",
                                      "_ZnamSt11align_val_t",
                                      "_ZnwmSt11align_val_tRKSt9nothrow_t",
                                      "_ZnamSt11align_val_tRKSt9nothrow_t",
                                      "_ZdlPv",
                                      "_ZdaPv",
                                      "_ZdlPvm",
                                      "_ZdaPvm",
                                      "_ZdlPvRKSt9nothrow_t",
                                      "_ZdaPvRKSt9nothrow_t",
                                      "_ZdlPvSt11align_val_t",
                                      "_ZdaPvSt11align_val_t",
                                      "_ZdlPvmSt11align_val_t",
                                      "_ZdaPvmSt11align_val_t",
                                      "_ZdlPvSt11align_val_tRKSt9nothrow_t",
                                      "_ZdaPvSt11align_val_tRKSt9nothrow_t"};
  for (const char* n : names) {
    void* s = dlsym(RTLD_DEFAULT, n);
    Dl_info si;
    if (!CHECKF(s != nullptr, "%s not found", n)) continue;
    CHECKF(dladdr(s, &si) != 0 && si.dli_fbase == lib, "%s resolves to %s, not libhz3", n,
           si.dli_fname ? si.dli_fname : "?");
  }
}

// The descriptor's class table must be increasing, and each class size must be served from the
// arena with at least that many usable bytes.
void t_class_table() {
  const ArenaDesc* d = arena_desc();
  if (!g_hz3 || d == nullptr) {
    skip_case("not run under libhz3");
    return;
  }
  const uint32_t* cls = reinterpret_cast<const uint32_t*>(d->class_size);
  REQUIREF(cls != nullptr && d->nclasses > 0 && d->nclasses < 4096, "nclasses %u", d->nclasses);
  for (uint32_t i = 1; i <= d->nclasses; i++) {
    if (i > 1) CHECKF(cls[i] > cls[i - 1], "class %u size %u after %u", i, cls[i], cls[i - 1]);
    for (size_t n : {size_t{cls[i]} - 1, size_t{cls[i]}, size_t{cls[i]} + 1}) {
      if (n == 0) continue;
      void* p = malloc(n);
      CHECKF(p != nullptr && malloc_usable_size(p) >= n && in_arena(d, p),
             "malloc(%zu)=%p usable %zu", n, p, p ? malloc_usable_size(p) : 0);
      if (p) memset(p, 0xA5, malloc_usable_size(p));
      free(p);
    }
  }
}

// ---- malloc / free / usable size
// ------------------------------------------------------------------

void t_malloc_zero() {
  void* a = malloc(0);
  void* b = malloc(0);
  sink(a);
  sink(b);
  CHECKF(a != nullptr && b != nullptr, "malloc(0) = %p, %p", a, b);
  CHECKF(a != b, "two malloc(0) returned the same pointer %p", a);
  CHECK(aligned_to(a, alignof(max_align_t)));
  free(a);
  free(b);
  void* r = realloc(nullptr, 0);  // glibc: realloc(NULL, 0) is malloc(0)
  CHECKF(r != nullptr, "realloc(NULL, 0) returned NULL");
  free(r);
}

// Sizes 0…4 KiB one by one, then every power of two ±1 up to 64 MiB, all live at once: aligned,
// usable >= request, fully writable, no two blocks overlapping, every byte kept until free.
void t_malloc_sizes() {
  std::vector<size_t> sizes;
  for (size_t n = 0; n <= 4096; n++) sizes.push_back(n);
  for (size_t p2 = 8 * KiB; p2 <= 64 * MiB; p2 <<= 1)
    for (size_t n : {p2 - 1, p2, p2 + 1, p2 + p2 / 2}) sizes.push_back(n);
  std::vector<std::pair<uintptr_t, size_t>> blocks;
  std::vector<void*> ptrs;
  for (size_t n : sizes) {
    void* p = malloc(n);
    if (!CHECKF(p != nullptr, "malloc(%zu) failed", n)) continue;
    size_t u = malloc_usable_size(p);
    CHECKF(u >= n, "malloc_usable_size(malloc(%zu)) = %zu", n, u);
    CHECKF(aligned_to(p, required_malloc_alignment(n)), "malloc(%zu)=%p misaligned", n, p);
    fill_pattern(p, u);
    blocks.push_back({reinterpret_cast<uintptr_t>(p), u});
    ptrs.push_back(p);
  }
  uintptr_t where = 0;
  CHECKF(no_overlap(blocks, &where), "blocks overlap at 0x%lx", static_cast<unsigned long>(where));
  for (size_t i = 0; i < ptrs.size(); i++) {
    size_t bad = verify_pattern(ptrs[i], blocks[i].second);
    CHECKF(bad == SIZE_MAX, "block %p (%zu usable) corrupted at +%zu", ptrs[i], blocks[i].second,
           bad);
    free(ptrs[i]);
  }
}

// 20000 random blocks 0…70000 B, freed in random order, twice (the second round reuses what the
// first freed): no overlap, no corruption.
void t_malloc_random_no_overlap() {
  Rng rng(42);
  for (int round = 0; round < 2; round++) {
    std::vector<std::pair<uintptr_t, size_t>> blocks;
    std::vector<std::pair<void*, size_t>> live;
    for (int i = 0; i < 20000; i++) {
      size_t n = (rng.next() & 3) == 0 ? rng.range(2049, 70000) : rng.range(0, 2048);
      void* p = malloc(n);
      if (!CHECKF(p != nullptr, "malloc(%zu) failed", n)) return;
      fill_pattern(p, n);
      blocks.push_back({reinterpret_cast<uintptr_t>(p), std::max<size_t>(n, 1)});
      live.push_back({p, n});
    }
    uintptr_t where = 0;
    CHECKF(no_overlap(blocks, &where), "round %d: blocks overlap at 0x%lx", round,
           static_cast<unsigned long>(where));
    for (size_t i = live.size(); i > 1; i--) std::swap(live[i - 1], live[rng.next() % i]);
    for (auto& [p, n] : live) {
      size_t bad = verify_pattern(p, n);
      CHECKF(bad == SIZE_MAX, "round %d: %p (%zu B) corrupted at +%zu", round, p, n, bad);
      free(p);
    }
  }
}

void t_usable_size() {
  CHECK(malloc_usable_size(nullptr) == 0);
  for (size_t n : {size_t{1}, size_t{24}, size_t{1000}, 5 * KiB, 70 * KiB, 300 * KiB, 5 * MiB}) {
    unsigned char* p = static_cast<unsigned char*>(malloc(n));
    REQUIRE(p != nullptr);
    size_t u = malloc_usable_size(p);
    CHECKF(u >= n, "usable %zu < %zu", u, n);
    // The whole usable range is ours: write it, then check a neighbour allocated next is intact.
    memset(p, 0x5A, u);
    void* q = malloc(n);
    fill_pattern(q, n);
    memset(p, 0xA5, u);
    CHECKF(verify_pattern(q, n) == SIZE_MAX, "writing usable bytes of %p hit neighbour %p",
           static_cast<void*>(p), q);
    free(q);
    free(p);
  }
}

void t_free_null_and_errno() {
  free(nullptr);
  for (size_t n : {size_t{16}, size_t{3000}, 40 * KiB, 600 * KiB, 8 * MiB}) {
    void* p = malloc(n);
    REQUIRE(p != nullptr);
    memset(p, 1, n);
    errno = EEXIST;
    free(p);
    CHECKF(errno == EEXIST, "free of %zu bytes changed errno to %d", n, errno);
  }
  errno = EEXIST;
  free(nullptr);
  CHECK(errno == EEXIST);
}

// ---- calloc
// ---------------------------------------------------------------------------------------

bool all_zero(const void* p, size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++)
    if (b[i] != 0) return false;
  return true;
}

void t_calloc_zeroed() {
  // Dirty memory first, so a recycled block would show through.
  for (size_t n : {size_t{8}, size_t{100}, size_t{2048}, 6 * KiB, 48 * KiB, 300 * KiB, 3 * MiB}) {
    for (int i = 0; i < 4; i++) {
      void* d = malloc(n);
      REQUIRE(d != nullptr);
      memset(d, 0xEE, n);
      free(d);
      void* p = calloc(1, n);
      REQUIREF(p != nullptr, "calloc(1, %zu) failed", n);
      CHECKF(all_zero(p, n), "calloc(1, %zu) not zeroed", n);
      free(p);
    }
    void* p = calloc(n / 4 + 1, 4);
    REQUIRE(p != nullptr);
    CHECKF(all_zero(p, (n / 4 + 1) * 4), "calloc(%zu, 4) not zeroed", n / 4 + 1);
    free(p);
  }
}

void t_calloc_edges() {
  void* a = calloc(0, 16);
  void* b = calloc(16, 0);
  void* c = calloc(0, 0);
  CHECKF(a && b && c, "calloc with a zero count: %p %p %p", a, b, c);
  CHECK(a != b && b != c && a != c);
  free(a);
  free(b);
  free(c);
  const size_t half = launder_value(SIZE_MAX / 2 + 1);
  const std::pair<size_t, size_t> overflow[] = {{half, 2},
                                                {2, half},
                                                {SIZE_MAX, SIZE_MAX},
                                                {size_t{1} << 33, size_t{1} << 33},
                                                {launder_value(SIZE_MAX / 3 + 1), 3}};
  for (auto [n, m] : overflow) {
    errno = 0;
    void* p = calloc(launder_value(n), launder_value(m));
    CHECKF(p == nullptr && errno == ENOMEM, "calloc(%zu, %zu) = %p errno %d", n, m, p, errno);
    free(p);
  }
}

// ---- realloc / reallocarray
// -------------------------------------------------------------------------

void t_realloc_null_and_zero() {
  void* p = realloc(nullptr, 100);
  REQUIRE(p != nullptr);
  CHECK(malloc_usable_size(p) >= 100);
  memset(p, 3, 100);
  errno = 0;
  void* q = realloc(p, 0);  // glibc: frees p, returns NULL
  CHECKF(q == nullptr, "realloc(p, 0) returned %p (glibc returns NULL and frees p)", q);
  free(q);
  for (size_t n : {size_t{50000}, 400 * KiB}) {  // the same for medium and large blocks
    p = malloc(n);
    REQUIRE(p != nullptr);
    q = realloc(p, 0);
    CHECKF(q == nullptr, "realloc(malloc(%zu), 0) returned %p", n, q);
    free(q);
  }
}

// Walks one block through every size range and back, checking the kept prefix at each step.
void t_realloc_grow_shrink() {
  const size_t steps[] = {1,       15,        16,        17,        100,     1000,        2048,
                          2049,    4095,      4096,      4097,      20000,   32768,       65536,
                          65537,   200 * KiB, 256 * KiB, 300 * KiB, 1 * MiB, 3 * MiB + 7, 16 * MiB,
                          3 * MiB, 300 * KiB, 70000,     65536,     4097,    2048,        100,
                          16,      1,         5000,      1,         2 * MiB, 24};
  const uint64_t seed = 0xC0FFEE;
  size_t cur = 0;
  unsigned char* p = nullptr;
  for (size_t n : steps) {
    unsigned char* q = static_cast<unsigned char*>(realloc(p, n));
    REQUIREF(q != nullptr, "realloc(%p, %zu) failed", static_cast<void*>(p), n);
    size_t kept = std::min(cur, n);
    size_t bad = verify_seeded(q, kept, seed);
    CHECKF(bad == SIZE_MAX, "realloc %zu -> %zu lost byte %zu", cur, n, bad);
    CHECKF(malloc_usable_size(q) >= n, "usable %zu < %zu", malloc_usable_size(q), n);
    CHECK(aligned_to(q, required_malloc_alignment(n)));
    fill_seeded(q, kept, n, seed);
    p = q;
    cur = n;
  }
  free(p);
  // Random walk: 3000 reallocs of a few blocks at once, each keeping its own contents.
  Rng rng(7);
  struct B {
    unsigned char* p = nullptr;
    size_t n = 0;
    uint64_t seed = 0;
  } b[8];
  for (int i = 0; i < 3000; i++) {
    B& x = b[rng.next() % 8];
    size_t n = (rng.next() & 7) == 0 ? rng.range(0, 400 * KiB) : rng.range(0, 5000);
    unsigned char* q = static_cast<unsigned char*>(realloc(x.p, n));
    if (n == 0 && x.p != nullptr) {  // freed
      CHECK(q == nullptr);
      x = B{};
      continue;
    }
    REQUIREF(q != nullptr, "realloc(%zu) failed", n);
    if (x.p == nullptr) x.seed = rng.next();
    size_t kept = std::min(x.n, n);
    size_t bad = verify_seeded(q, kept, x.seed);
    CHECKF(bad == SIZE_MAX, "step %d: realloc %zu -> %zu lost byte %zu", i, x.n, n, bad);
    fill_seeded(q, kept, n, x.seed);
    x.p = q;
    x.n = n;
  }
  for (B& x : b) free(x.p);
}

void t_realloc_failure_keeps_block() {
  for (size_t n : {size_t{100}, 40 * KiB, 1 * MiB}) {
    unsigned char* p = static_cast<unsigned char*>(malloc(n));
    REQUIRE(p != nullptr);
    fill_seeded(p, 0, n, n);
    for (size_t h : HUGE_SIZES) {
      errno = 0;
      void* q = realloc(p, launder_value(h));
      CHECKF(q == nullptr && errno == ENOMEM, "realloc(%zu B block, %zu) = %p errno %d", n, h, q,
             errno);
    }
    CHECKF(verify_seeded(p, n, n) == SIZE_MAX, "failed realloc changed the %zu B block", n);
    free(p);
  }
}

void t_reallocarray() {
  int* a = static_cast<int*>(reallocarray(nullptr, 100, sizeof(int)));
  REQUIRE(a != nullptr);
  for (int i = 0; i < 100; i++) a[i] = i * 7;
  int* b = static_cast<int*>(reallocarray(a, 100000, sizeof(int)));
  REQUIRE(b != nullptr);
  bool same = true;
  for (int i = 0; i < 100; i++) same = same && b[i] == i * 7;
  CHECK(same);
  errno = 0;
  void* c = reallocarray(b, launder_value(SIZE_MAX / 2 + 1), 2);
  CHECKF(c == nullptr && errno == ENOMEM, "reallocarray overflow = %p errno %d", c, errno);
  errno = 0;
  c = reallocarray(b, launder_value(size_t{1} << 40), size_t{1} << 30);
  CHECKF(c == nullptr && errno == ENOMEM, "reallocarray 2^70 = %p errno %d", c, errno);
  same = true;
  for (int i = 0; i < 100; i++) same = same && b[i] == i * 7;
  CHECKF(same, "a failed reallocarray changed the block");
  free(b);
}

// ---- aligned allocation
// -------------------------------------------------------------------------------

// Keeps blocks of many alignments and sizes live together, checks alignment, usable size, no
// overlap and contents, then frees them in a shuffled order.
template <class Alloc>
void aligned_battery(const char* fn, size_t min_align, Alloc alloc) {
  struct Blk {
    void* p;
    size_t n, a;
  };
  std::vector<Blk> live;
  std::vector<std::pair<uintptr_t, size_t>> ranges;
  for (size_t a = min_align; a <= 1 * MiB; a <<= 1) {
    for (size_t n : {size_t{1}, a / 2 + 1, a - 1, a, a + 1, 3 * a + 5, size_t{100000}}) {
      if (n == 0) continue;
      void* p = alloc(a, n);
      if (!CHECKF(p != nullptr, "%s(%zu, %zu) failed (errno %d)", fn, a, n, errno)) continue;
      CHECKF(aligned_to(p, a), "%s(%zu, %zu) = %p misaligned", fn, a, n, p);
      size_t u = malloc_usable_size(p);
      CHECKF(u >= n, "%s(%zu, %zu): usable %zu", fn, a, n, u);
      fill_pattern(p, n);
      live.push_back({p, n, a});
      ranges.push_back({reinterpret_cast<uintptr_t>(p), n});
    }
  }
  uintptr_t where = 0;
  CHECKF(no_overlap(ranges, &where), "%s blocks overlap at 0x%lx", fn,
         static_cast<unsigned long>(where));
  Rng rng(min_align);
  for (size_t i = live.size(); i > 1; i--) std::swap(live[i - 1], live[rng.next() % i]);
  for (Blk& b : live) {
    CHECKF(verify_pattern(b.p, b.n) == SIZE_MAX, "%s(%zu, %zu) block corrupted", fn, b.a, b.n);
    free(b.p);
  }
}

void t_posix_memalign() {
  aligned_battery("posix_memalign", sizeof(void*), [](size_t a, size_t n) -> void* {
    void* p = reinterpret_cast<void*>(1);
    int rc = posix_memalign(&p, a, n);
    return rc == 0 ? p : nullptr;
  });
  void* z = nullptr;
  CHECK(posix_memalign(&z, 64, 0) == 0);  // size 0: a unique pointer (or NULL), freeable
  free(z);
}

void t_posix_memalign_errors() {
  for (size_t a : {size_t{0}, size_t{1}, size_t{2}, size_t{4}, size_t{12}, size_t{24}, size_t{48},
                   size_t{4097}, launder_value(SIZE_MAX)}) {
    void* p = reinterpret_cast<void*>(0x1234);
    errno = 4321;
    int rc = posix_memalign(&p, launder_value(a), 64);
    CHECKF(rc == EINVAL, "posix_memalign(alignment %zu) returned %d", a, rc);
    CHECKF(errno == 4321, "posix_memalign(alignment %zu) touched errno (%d)", a, errno);
    CHECKF(p == reinterpret_cast<void*>(0x1234), "posix_memalign(alignment %zu) wrote %p", a, p);
  }
  for (size_t h : HUGE_SIZES) {
    void* p = reinterpret_cast<void*>(0x1234);
    errno = 0;
    int rc = posix_memalign(&p, 64, launder_value(h));
    CHECKF(rc == ENOMEM, "posix_memalign(64, %zu) returned %d", h, rc);
    CHECKF(errno == ENOMEM, "posix_memalign(64, %zu): errno %d, glibc leaves ENOMEM", h, errno);
    CHECKF(p == reinterpret_cast<void*>(0x1234), "failed posix_memalign wrote %p", p);
  }
}

// glibc 2.36 (memalign, and aligned_alloc, which is memalign there): an alignment that is not a
// power of two is rounded up to the next one, at most 16 is plain malloc, above 2^63 is EINVAL.
template <class F>
void odd_alignments(const char* fn, F alloc) {
  for (size_t a : {size_t{0}, size_t{3}, size_t{24}, size_t{48}, size_t{100}, size_t{4097}}) {
    size_t want = 16;
    while (want < a) want <<= 1;
    errno = 4321;
    void* p = alloc(launder_value(a), 64);
    CHECKF(p != nullptr && errno == 4321, "%s(%zu, 64) = %p errno %d", fn, a, p, errno);
    CHECKF(aligned_to(p, want), "%s(%zu, 64) = %p, not %zu-aligned", fn, a, p, want);
    free(p);
  }
  for (size_t a : {(size_t{1} << 63) + 1, launder_value(SIZE_MAX)}) {
    errno = 0;
    void* p = alloc(launder_value(a), 64);
    CHECKF(p == nullptr && errno == EINVAL, "%s(%zu, 64) = %p errno %d", fn, a, p, errno);
    free(p);
  }
}

void t_aligned_alloc() {
  aligned_battery("aligned_alloc", 1, [](size_t a, size_t n) { return aligned_alloc(a, n); });
  odd_alignments("aligned_alloc", [](size_t a, size_t n) { return aligned_alloc(a, n); });
}

void t_memalign() {
  aligned_battery("memalign", 1, [](size_t a, size_t n) { return memalign(a, n); });
  odd_alignments("memalign", [](size_t a, size_t n) { return memalign(a, n); });
}

void t_valloc_pvalloc() {
  const size_t pg = page_size();
  std::vector<void*> live;
  for (size_t n : {size_t{1}, size_t{100}, pg - 1, pg, pg + 1, 10 * pg + 3, 300 * KiB, 2 * MiB}) {
    void* p = valloc(n);
    REQUIREF(p != nullptr, "valloc(%zu) failed", n);
    CHECKF(aligned_to(p, pg), "valloc(%zu) = %p", n, p);
    CHECKF(malloc_usable_size(p) >= n, "valloc(%zu) usable %zu", n, malloc_usable_size(p));
    memset(p, 0x11, n);
    live.push_back(p);
    void* q = pvalloc(n);
    REQUIREF(q != nullptr, "pvalloc(%zu) failed", n);
    size_t rounded = (n + pg - 1) / pg * pg;
    CHECKF(aligned_to(q, pg), "pvalloc(%zu) = %p", n, q);
    CHECKF(malloc_usable_size(q) >= rounded, "pvalloc(%zu) usable %zu < %zu", n,
           malloc_usable_size(q), rounded);
    memset(q, 0x22, rounded);  // pvalloc promises whole pages
    live.push_back(q);
  }
  void* z = pvalloc(0);
  CHECK(z != nullptr);
  free(z);
  for (void* p : live) free(p);
}

// Aligned blocks are ordinary blocks: realloc keeps their contents, usable size works, free works
// after a realloc moved them.
void t_aligned_then_realloc() {
  for (size_t a : {size_t{64}, size_t{4096}, 64 * KiB, 1 * MiB}) {
    for (size_t n : {size_t{10}, a + 1, 200 * KiB}) {
      void* p = nullptr;
      REQUIRE(posix_memalign(&p, a, n) == 0);
      fill_seeded(p, 0, n, a + n);
      void* q = realloc(p, 2 * n + 1000);
      REQUIRE(q != nullptr);
      CHECKF(verify_seeded(q, n, a + n) == SIZE_MAX, "grow of aligned(%zu, %zu) lost data", a, n);
      void* r = realloc(q, n / 2 + 1);
      REQUIRE(r != nullptr);
      CHECKF(verify_seeded(r, n / 2 + 1, a + n) == SIZE_MAX, "shrink of aligned(%zu,%zu)", a, n);
      free(r);
    }
  }
}

// ---- huge requests
// --------------------------------------------------------------------------------

void t_huge_requests_fail() {
  for (size_t h0 : HUGE_SIZES) {
    const size_t h = launder_value(h0);
    auto expect_null = [&](const char* fn, void* p) {
      CHECKF(p == nullptr && errno == ENOMEM, "%s(%zu) = %p errno %d", fn, h, p, errno);
      free(p);
    };
    errno = 0;
    expect_null("malloc", malloc(h));
    errno = 0;
    expect_null("calloc(1, n)", calloc(1, h));
    errno = 0;
    expect_null("calloc(n, 1)", calloc(h, 1));
    errno = 0;
    expect_null("realloc(NULL, n)", realloc(nullptr, h));
    errno = 0;
    expect_null("reallocarray(NULL, n, 1)", reallocarray(nullptr, h, 1));
    errno = 0;
    expect_null("aligned_alloc(64, n)", aligned_alloc(64, h));
    errno = 0;
    expect_null("memalign(4096, n)", memalign(4096, h));
    errno = 0;
    expect_null("valloc", valloc(h));
    errno = 0;
    expect_null("pvalloc", pvalloc(h));
  }
}

// A block beyond the arena's size classes (1 GiB and up is mmap'ed directly): usable, resizable,
// freeable. Only a few pages are touched, so it costs little memory.
void t_huge_block() {
  const size_t n = 1 * GiB + 3 * MiB + 5;
  unsigned char* p = static_cast<unsigned char*>(malloc(n));
  REQUIREF(p != nullptr, "malloc(%zu) failed (errno %d)", n, errno);
  CHECK(malloc_usable_size(p) >= n);
  CHECK(aligned_to(p, alignof(max_align_t)));
  p[0] = 1;
  p[n / 2] = 2;
  p[n - 1] = 3;
  unsigned char* q = static_cast<unsigned char*>(realloc(p, n + 64 * MiB));
  REQUIRE(q != nullptr);
  CHECK(q[0] == 1 && q[n / 2] == 2 && q[n - 1] == 3);
  q[n + 64 * MiB - 1] = 4;
  unsigned char* r = static_cast<unsigned char*>(realloc(q, 100));  // back to a small block
  REQUIRE(r != nullptr);
  CHECK(r[0] == 1);
  free(r);
  void* c = calloc(1, n);  // calloc of fresh mmap'ed memory is zero without touching it
  REQUIRE(c != nullptr);
  CHECK(static_cast<unsigned char*>(c)[n - 1] == 0 && static_cast<unsigned char*>(c)[0] == 0);
  free(c);
}

// ---- C++ operators
// ----------------------------------------------------------------------------------

void t_new_delete_plain() {
  std::vector<void*> ps;
  for (size_t n : {size_t{0}, size_t{1}, size_t{17}, size_t{2000}, 9 * KiB, 90 * KiB, 3 * MiB}) {
    void* a = ::operator new(n);
    void* b = ::operator new[](n);
    sink(a);
    sink(b);
    CHECKF(a != nullptr && b != nullptr && a != b, "new(%zu): %p %p", n, a, b);
    CHECK(aligned_to(a, __STDCPP_DEFAULT_NEW_ALIGNMENT__) &&
          aligned_to(b, __STDCPP_DEFAULT_NEW_ALIGNMENT__));
    CHECKF(malloc_usable_size(a) >= n && malloc_usable_size(b) >= n, "new(%zu) usable", n);
    memset(a, 1, n);
    memset(b, 2, n);
    // Every delete form that fits a plain new: unsized, sized, nothrow.
    switch (n % 3) {
      case 0:
        ::operator delete(a);
        ::operator delete[](b);
        break;
      case 1:
        ::operator delete(a, n);
        ::operator delete[](b, n);
        break;
      default:
        ::operator delete(a, std::nothrow);
        ::operator delete[](b, std::nothrow);
    }
  }
  // new-expressions with sized deallocation of class types.
  struct Obj {
    char data[72];
  };
  Obj* o = new Obj;
  Obj* arr = new Obj[33];
  sink(o);
  sink(arr);
  memset(o, 1, sizeof *o);
  memset(arr, 2, sizeof(Obj) * 33);
  delete o;
  delete[] arr;
  void* z1 = ::operator new(0);
  void* z2 = ::operator new(0);
  CHECKF(z1 != z2, "new(0) twice gave %p", z1);
  ::operator delete(z1);
  ::operator delete (z2, size_t{0});
}

void t_new_nothrow() {
  for (size_t n : {size_t{0}, size_t{8}, size_t{500}, 20 * KiB, 2 * MiB}) {
    void* a = ::operator new(n, std::nothrow);
    void* b = ::operator new[](n, std::nothrow);
    CHECKF(a != nullptr && b != nullptr, "nothrow new(%zu): %p %p", n, a, b);
    memset(a, 1, n);
    memset(b, 1, n);
    ::operator delete(a, std::nothrow);
    ::operator delete[](b);
  }
}

void t_new_aligned() {
  std::vector<std::pair<void*, size_t>> live;
  for (size_t a = 16; a <= 1 * MiB; a <<= 1) {
    const std::align_val_t al{a};
    for (size_t n : {size_t{1}, a - 1, a + 1, 2 * a + 3}) {
      void* p1 = ::operator new(n, al);
      void* p2 = ::operator new[](n, al);
      void* p3 = ::operator new(n, al, std::nothrow);
      void* p4 = ::operator new[](n, al, std::nothrow);
      void* ps[] = {p1, p2, p3, p4};
      for (void* p : ps) {
        CHECKF(p != nullptr && aligned_to(p, a), "aligned new(%zu, %zu) = %p", n, a, p);
        if (p) fill_pattern(p, n);
        CHECKF(p == nullptr || malloc_usable_size(p) >= n, "aligned new(%zu, %zu) usable", n, a);
      }
      for (void* p : ps)
        if (p) CHECKF(verify_pattern(p, n) == SIZE_MAX, "aligned new(%zu, %zu) corrupted", n, a);
      // Each aligned delete form once per size: plain, sized, nothrow.
      switch ((a + n) % 3) {
        case 0:
          ::operator delete(p1, al);
          ::operator delete[](p2, al);
          ::operator delete(p3, al, std::nothrow);
          ::operator delete[](p4, al, std::nothrow);
          break;
        case 1:
          ::operator delete(p1, n, al);
          ::operator delete[](p2, n, al);
          ::operator delete(p3, n, al);
          ::operator delete[](p4, n, al);
          break;
        default:
          ::operator delete(p1, al, std::nothrow);
          ::operator delete[](p2, al, std::nothrow);
          ::operator delete(p3, al);
          ::operator delete[](p4, al);
      }
    }
  }
  // An over-aligned type through new-expressions.
  struct alignas(256) Wide {
    char c[300];
  };
  Wide* w = new Wide;
  Wide* wa = new Wide[5];
  CHECK(aligned_to(w, 256) && aligned_to(wa, 256));
  memset(w, 1, sizeof *w);
  memset(wa, 1, sizeof(Wide) * 5);
  delete w;
  delete[] wa;
}

template <class F>
bool throws_bad_alloc(F f) {
  try {
    void* p = f();
    sink(p);
    return false;
  } catch (const std::bad_alloc&) {
    return true;
  }
}

void t_new_bad_alloc() {
  for (size_t h : HUGE_SIZES) {
    const size_t n = launder_value(h);
    CHECKF(throws_bad_alloc([&] { return ::operator new(n); }), "new(%zu)", n);
    CHECKF(throws_bad_alloc([&] { return ::operator new[](n); }), "new[](%zu)", n);
    CHECKF(throws_bad_alloc([&] { return ::operator new (n, std::align_val_t{64}); }),
           "new(%zu, align 64)", n);
    CHECKF(throws_bad_alloc([&] { return ::operator new[](n, std::align_val_t{4096}); }),
           "new[](%zu, align 4096)", n);
  }
  // new T[count] with a count whose byte size overflows (the compiler's check, then operator new).
  size_t count = launder_value(SIZE_MAX / 4);
  bool threw = false;
  try {
    int* p = new int[count];
    sink(p);
    delete[] p;
  } catch (const std::bad_alloc&) {  // std::bad_array_new_length derives from bad_alloc
    threw = true;
  }
  CHECK(threw);
}

void t_new_nothrow_null() {
  for (size_t h : HUGE_SIZES) {
    const size_t n = launder_value(h);
    void* p[] = {::operator new(n, std::nothrow), ::operator new[](n, std::nothrow),
                 ::operator new (n, std::align_val_t{64}, std::nothrow),
                 ::operator new[](n, std::align_val_t{1 * MiB}, std::nothrow)};
    for (void* q : p) CHECKF(q == nullptr, "nothrow new(%zu) = %p", n, q);
  }
}

// The standard's operator new calls the installed new_handler until it succeeds or the handler
// gives up; a replacement must keep that loop.
int g_handler_calls = 0;
void counting_handler() {
  if (++g_handler_calls >= 3) std::set_new_handler(nullptr);
}

void t_new_handler() {
  g_handler_calls = 0;
  std::set_new_handler(counting_handler);
  bool threw = throws_bad_alloc([] { return ::operator new(launder_value(SIZE_MAX - 4095)); });
  std::set_new_handler(nullptr);
  CHECK(threw);
  CHECKF(g_handler_calls == 3, "new_handler called %d times, expected 3", g_handler_calls);
}

// ---- glibc allocating on our behalf
// ---------------------------------------------------------------

void t_libc_interop() {
  char* s = strdup("hz3 strdup");
  CHECK(s != nullptr && strcmp(s, "hz3 strdup") == 0);
  free(s);
  s = strndup("abcdefgh", 3);
  CHECK(s != nullptr && strcmp(s, "abc") == 0);
  free(s);
  char* a = nullptr;
  CHECK(asprintf(&a, "%d-%s", 42, "x") == 4 && strcmp(a, "42-x") == 0);
  free(a);
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  REQUIRE(f != nullptr);
  for (int i = 0; i < 20000; i++) fprintf(f, "line %d\n", i);  // grows by realloc inside libc
  fclose(f);
  CHECKF(len > 100000 && strncmp(buf, "line 0\n", 7) == 0, "open_memstream len %zu", len);
  FILE* g = fmemopen(buf, len, "r");
  REQUIRE(g != nullptr);
  char* line = nullptr;
  size_t cap = 0;
  int lines = 0;
  while (getline(&line, &cap, g) > 0) lines++;
  fclose(g);
  free(line);
  free(buf);
  CHECKF(lines == 20000, "getline read %d lines", lines);
  char* rp = realpath("/proc/self/exe", nullptr);
  CHECK(rp != nullptr);
  free(rp);
  char* cwd = getcwd(nullptr, 0);
  CHECK(cwd != nullptr);
  free(cwd);
  regex_t re;
  REQUIRE(regcomp(&re, "^(a|b)+[0-9]{2,5}x*$", REG_EXTENDED) == 0);
  CHECK(regexec(&re, "abba123xx", 0, nullptr, 0) == 0);
  CHECK(regexec(&re, "abc", 0, nullptr, 0) != 0);
  regfree(&re);
  dirent** list = nullptr;
  int n = scandir("/proc/self", &list, nullptr, alphasort);
  CHECKF(n > 10, "scandir returned %d", n);
  for (int i = 0; i < n; i++) free(list[i]);
  free(list);
}

// The dynamic loader allocates through the process malloc once it is up (link maps, dlerror text).
void t_dlopen_cycle() {
  for (int i = 0; i < 30; i++) {
    void* h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
    REQUIREF(h != nullptr, "dlopen(libz.so.1): %s", dlerror());
    using Fn = const char* (*)();
    Fn v = reinterpret_cast<Fn>(dlsym(h, "zlibVersion"));
    CHECK(v != nullptr && v()[0] == '1');
    CHECK(dlclose(h) == 0);
    CHECK(dlopen("/nonexistent/libhz3-none.so", RTLD_NOW) == nullptr);
    const char* e = dlerror();
    CHECK(e != nullptr && strstr(e, "libhz3-none") != nullptr);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* group = argc > 1 ? argv[1] : "api";
  for (int i = 2; i < argc; i++)
    if (strcmp(argv[i], "--hz3") == 0) g_hz3 = true;
  static char name[128];
  snprintf(name, sizeof name, "api/%s", group);
  init(name, argc, argv);

  run_case("served_by_hz3", t_served_by_hz3);
  run_case("exports_resolve_to_hz3", t_exports_resolve_to_hz3);
  run_case("class_table", t_class_table);
  run_case("malloc_zero", t_malloc_zero);
  run_case("malloc_sizes", t_malloc_sizes);
  run_case("malloc_random_no_overlap", t_malloc_random_no_overlap);
  run_case("usable_size", t_usable_size);
  run_case("free_null_keeps_errno", t_free_null_and_errno);
  run_case("calloc_zeroed", t_calloc_zeroed);
  run_case("calloc_edges_overflow", t_calloc_edges);
  run_case("realloc_null_and_zero", t_realloc_null_and_zero);
  run_case("realloc_grow_shrink", t_realloc_grow_shrink);
  run_case("realloc_failure_keeps_block", t_realloc_failure_keeps_block);
  run_case("reallocarray", t_reallocarray);
  run_case("posix_memalign", t_posix_memalign);
  run_case("posix_memalign_errors", t_posix_memalign_errors);
  run_case("aligned_alloc", t_aligned_alloc);
  run_case("memalign", t_memalign);
  run_case("valloc_pvalloc", t_valloc_pvalloc);
  run_case("aligned_then_realloc", t_aligned_then_realloc);
  run_case("huge_requests_enomem", t_huge_requests_fail);
  run_case("huge_block", t_huge_block);
  run_case("new_delete_plain_sized", t_new_delete_plain);
  run_case("new_nothrow", t_new_nothrow);
  run_case("new_aligned", t_new_aligned);
  run_case("new_bad_alloc", t_new_bad_alloc);
  run_case("new_nothrow_null", t_new_nothrow_null);
  run_case("new_handler", t_new_handler);
  run_case("libc_interop", t_libc_interop);
  run_case("dlopen_cycle", t_dlopen_cycle);
  return finish();
}
