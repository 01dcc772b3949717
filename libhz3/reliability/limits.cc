// rel_limits: libhz3 at the edges of its resources, run with LD_PRELOAD by t_limits.sh.
// Usage: rel_limits GROUP CASE [ARG]; result lines are GROUP/CASE.
//   vlimit LIMIT_MIB     under `ulimit -v LIMIT_MIB`: the arena shrank to fit (>= 64 MiB or none);
//                        large and small allocations run until NULL with ENOMEM and the process
//                        goes on; while memory is exhausted every entry point fails cleanly
//                        (realloc keeps the old block, new throws std::bad_alloc); requests beyond
//                        the limit (4 GiB … 2^62) fail; after freeing, all sizes work again, a
//                        thread starts and a forked child allocates.
//   arena_exhaust        with a 1 GiB-arena build: allocations past the arena fall back to mmap
//                        (small, medium, large, aligned, realloc), and once freed the arena serves
//                        again.
//   small_fill LIMIT_MIB under `ulimit -v LIMIT_MIB`: malloc(64) until NULL gets at least
//                        MIN_MIB of blocks (glibc gets ~1.6 GiB under 2 GiB): past the arena,
//                        small blocks come from shared chunks, not a 4 KiB mapping each; then
//                        all of them free and the process allocates normally again.
//   dlopen_plugin PATH   a library loaded after start allocates and frees through libhz3: in its
//                        constructor and destructor, in dynamic TLS of its threads, and across
//                        the library boundary both ways, over repeated dlopen/dlclose cycles.
// Requests near SIZE_MAX, plain dlopen of system libraries and fork with threads are covered by
// libhz3/tests (api_test, stress_test) and not repeated here.
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <sys/wait.h>

#include <new>
#include <thread>
#include <vector>

#include "check.h"

using namespace hz3::test;

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

const ArenaDesc* served_desc() {
  const ArenaDesc* d = arena_desc();
  return d != nullptr && d->magic == HZ3_DESC_MAGIC ? d : nullptr;
}

// First and last byte of a block carry a value derived from its address: enough to catch a
// block handed out twice or overlapping another, without touching (and paying for) every page.
unsigned char mark(const void* p) { return static_cast<unsigned char>(mix64(uintptr_t(p)) | 1); }
void touch(void* p, size_t n) {
  unsigned char* b = static_cast<unsigned char*>(p);
  b[0] = b[n - 1] = mark(p);
}
bool touched(const void* p, size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  return b[0] == mark(p) && b[n - 1] == mark(p);
}

// Allocates n-byte blocks until NULL or `cap` blocks; each is touched. Returns the blocks; *err
// gets the errno of the failing call (0 when the cap was reached first).
std::vector<void*> fill_until_null(size_t n, size_t cap, int* err, bool whole) {
  std::vector<void*> v;
  v.reserve(cap < 4000000 ? cap : 4000000);
  *err = 0;
  while (v.size() < cap) {
    errno = 0;
    void* p = malloc(n);
    if (p == nullptr) {
      *err = errno ? errno : -1;
      break;
    }
    if (whole)
      fill_pattern(p, n);
    else
      touch(p, n);
    v.push_back(p);
  }
  return v;
}

// Everything must still work normally: a mix of sizes allocated, checked and freed, at most 256
// live at a time (about 10 MiB), so it fits under a tight limit too.
void check_normal_operation(const char* when) {
  Rng rng(7);
  constexpr size_t WINDOW = 256;
  std::pair<void*, size_t> live[WINDOW] = {};
  for (size_t i = 0; i < 4000 + WINDOW; i++) {
    auto& [p, n] = live[i % WINDOW];
    if (p) {
      CHECKF(verify_pattern(p, n) == SIZE_MAX, "%s: block %p (%zu B) corrupted", when, p, n);
      free(p);
      p = nullptr;
    }
    if (i >= 4000) continue;
    n = i % 20 == 0 ? rng.range(65537, 1 * MiB) : rng.range(0, 32 * KiB);
    p = malloc(n);
    if (!CHECKF(p != nullptr, "%s: malloc(%zu) failed (errno %d)", when, n, errno)) return;
    fill_pattern(p, n);
  }
}

void case_vlimit(size_t limit_mib) {
  const ArenaDesc* d = served_desc();
  REQUIREF(d != nullptr, "hz3_arena_desc not found: not running on libhz3, or no arena at all");
  const size_t limit = limit_mib * MiB;
  printf("# ulimit -v %zu MiB: arena %zu MiB\n", limit_mib, size_t(d->size / MiB));
  CHECKF(d->size >= 64 * MiB && d->size <= limit, "arena of %zu MiB under a %zu MiB limit",
         size_t(d->size / MiB), limit_mib);
  // A process that has freed large blocks once runs hz3's scavenger thread, started at an
  // allocation after the free; its thread descriptor is one small allocation. Start it here,
  // as any process past its first minutes has, so the exact accounting below (free half,
  // allocate the same again) is about the allocator's own memory, not a one-time thread start.
  free(malloc(2 * MiB));
  free(malloc(100));
  free(malloc(2 * MiB));

  // Requests beyond the limit, far below SIZE_MAX, fail with ENOMEM on every entry point.
  for (size_t h : {4 * GiB, size_t{1} << 40, size_t{1} << 46, size_t{1} << 62}) {
    h = launder_value(h);
    errno = 0;
    void* p = malloc(h);
    CHECKF(p == nullptr && errno == ENOMEM, "malloc(%zu) = %p errno %d", h, p, errno);
    errno = 0;
    p = calloc(h / 64, 64);
    CHECKF(p == nullptr && errno == ENOMEM, "calloc(%zu, 64) = %p errno %d", h / 64, p, errno);
    errno = 0;
    p = aligned_alloc(4096, h);
    CHECKF(p == nullptr && errno == ENOMEM, "aligned_alloc(4096, %zu) = %p errno %d", h, p, errno);
    p = nullptr;
    int rc = posix_memalign(&p, 64, h);
    CHECKF(rc == ENOMEM && p == nullptr, "posix_memalign(64, %zu) = %d", h, rc);
    bool threw = false;
    try {
      sink(new char[h]);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    CHECKF(threw, "new char[%zu] did not throw std::bad_alloc", h);
    CHECKF(new (std::nothrow) char[h] == nullptr, "new (nothrow) char[%zu] returned a block", h);
  }

  // Large blocks until the address space is gone: more than the arena holds, so the mmap
  // fallback served the rest, and the last call says ENOMEM.
  int err = 0;
  std::vector<void*> big = fill_until_null(MiB, limit / MiB + 64, &err, false);
  size_t got = big.size() * MiB;
  printf("# 1 MiB blocks until NULL: %zu MiB (errno %d)\n", got / MiB, err);
  CHECKF(err == ENOMEM, "large fill ended with errno %d after %zu blocks", err, big.size());
  CHECKF(got > d->size, "only %zu MiB of 1 MiB blocks fit a %zu MiB arena: no fallback", got / MiB,
         size_t(d->size / MiB));
  CHECKF(got >= limit / 2, "only %zu MiB allocated under a %zu MiB limit", got / MiB, limit_mib);

  // While exhausted: every entry point either works or fails cleanly.
  void* keep = big.empty() ? nullptr : big.back();
  if (keep) {
    errno = 0;
    void* q = realloc(keep, 512 * MiB);
    if (q == nullptr) {
      CHECKF(errno == ENOMEM, "realloc failure with errno %d", errno);
      CHECK(touched(keep, MiB));  // C: the old block is untouched
    } else {
      big.back() = q;  // it fit after all: still a usable block
      touch(q, 512 * MiB);
      CHECKF(malloc_usable_size(q) >= 512 * MiB, "usable size %zu", malloc_usable_size(q));
      free(q);
      big.pop_back();
    }
  }
  for (size_t n : {size_t{0}, size_t{64}, size_t{3000}, size_t{40000}, size_t{300000}}) {
    errno = 0;
    void* p = malloc(n);
    if (p) {
      memset(p, 1, n);
      free(p);
    } else {
      CHECKF(errno == ENOMEM, "malloc(%zu) = NULL with errno %d", n, errno);
    }
    void* c = calloc(1, n);
    if (c) {
      for (size_t i = 0; i < n; i++)
        if (static_cast<char*>(c)[i] != 0) {
          CHECKF(false, "calloc(1, %zu) not zeroed at %zu", n, i);
          break;
        }
      free(c);
    }
    try {
      char* x = new char[n + 1];
      delete[] x;
    } catch (const std::bad_alloc&) {
    }
  }

  // Free half, allocate again, free all.
  for (size_t i = 0; i < big.size(); i += 2) {
    CHECK(touched(big[i], MiB));
    free(big[i]);
    big[i] = nullptr;
  }
  for (size_t i = 0; i < big.size(); i += 2) {
    big[i] = malloc(MiB);
    if (!CHECKF(big[i] != nullptr, "re-malloc(1 MiB) #%zu after freeing half failed", i / 2)) break;
    touch(big[i], MiB);
  }
  for (void* p : big) {
    if (p == nullptr) continue;
    CHECK(touched(p, MiB));
    free(p);
  }
  big.clear();
  big.shrink_to_fit();
  malloc_trim(0);

  // Small blocks until NULL (each written whole) where the limit is small enough to reach;
  // under a larger limit, up to 300 MiB of them.
  size_t cap = (limit < 300 * MiB ? limit : 300 * MiB) / 256;
  std::vector<void*> small =
      fill_until_null(256, limit < 300 * MiB ? cap + cap / 2 : cap, &err, true);
  printf("# 256 B blocks: %zu (%zu MiB)%s\n", small.size(), small.size() * 256 / MiB,
         err ? " until NULL" : "");
  if (limit < 300 * MiB) CHECKF(err == ENOMEM, "small fill ended with errno %d", err);
  size_t bad = 0;
  for (void* p : small) {
    if (verify_pattern(p, 256) != SIZE_MAX) bad++;
    free(p);
  }
  CHECKF(bad == 0, "%zu of %zu small blocks corrupted", bad, small.size());
  small.clear();
  small.shrink_to_fit();
  malloc_trim(0);

  // Freed small blocks gave their spans back: half the arena is one free run again.
  void* half = malloc(d->size / 2);
  CHECKF(half != nullptr && in_arena(d, half),
         "after freeing the small blocks, malloc(%zu MiB) = %p is not in the arena",
         size_t(d->size / 2 / MiB), half);
  free(half);

  // The process goes on: all sizes, a new thread, a forked child.
  check_normal_operation("after exhaustion");
  bool thread_ok = false;
  std::thread t([&] {
    void* p = malloc(100);
    thread_ok = p != nullptr;
    free(p);
  });
  t.join();
  CHECK(thread_ok);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < 2000; i++) {
      void* p = malloc(size_t(i) * 37 % 70000);
      if (!p) _exit(3);
      free(p);
    }
    _exit(0);
  }
  int st = 0;
  CHECKF(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
         "forked child under the limit: status %#x", st);
}

void case_arena_exhaust() {
  const ArenaDesc* d = served_desc();
  REQUIREF(d != nullptr, "hz3_arena_desc not found: not running on libhz3");
  printf("# arena %zu MiB\n", size_t(d->size / MiB));
  REQUIREF(d->size <= GiB, "arena is %zu MiB: run this case with the 1 GiB-arena build",
           size_t(d->size / MiB));
  auto inside = [&](const void* p) { return in_arena(d, p); };

  // 1 MiB blocks past the arena's end.
  std::vector<void*> big;
  size_t outside = 0;
  for (size_t i = 0; i < d->size / MiB + 300; i++) {
    void* p = malloc(MiB);
    if (!CHECKF(p != nullptr, "malloc(1 MiB) #%zu failed with errno %d", i, errno)) break;
    touch(p, MiB);
    outside += !inside(p);
    big.push_back(p);
  }
  printf("# %zu blocks of 1 MiB, %zu outside the arena\n", big.size(), outside);
  CHECKF(outside >= 300, "only %zu of %zu blocks fell back outside the arena", outside, big.size());

  // With the arena full, every size class still gets memory (small ones from the fallback).
  Rng rng(11);
  std::vector<std::pair<void*, size_t>> v;
  size_t small_outside = 0;
  for (int i = 0; i < 4000; i++) {
    size_t n = i % 3 == 0   ? rng.range(0, 2048)
               : i % 3 == 1 ? rng.range(2049, 65536)
                            : rng.range(65537, 300000);
    void* p = i % 7 == 0 ? aligned_alloc(size_t{64} << (i % 7), n) : malloc(n);
    if (!CHECKF(p != nullptr, "malloc(%zu) with the arena full failed (errno %d)", n, errno)) break;
    if (!CHECKF(malloc_usable_size(p) >= n, "usable %zu < %zu", malloc_usable_size(p), n)) break;
    fill_pattern(p, n);
    if (n <= 2048) small_outside += !inside(p);
    v.push_back({p, n});
  }
  printf("# %zu mixed blocks with the arena full, %zu small ones outside it\n", v.size(),
         small_outside);
  // realloc of fallback blocks, both ways, keeps the bytes.
  for (size_t i = 0; i < v.size(); i += 5) {
    auto& [p, n] = v[i];
    uint64_t seed = i;
    fill_seeded(p, 0, n, seed);
    size_t m = (i & 1) ? n / 2 : n * 2 + 100;
    void* q = realloc(p, m);
    if (!CHECKF(q != nullptr, "realloc(%zu -> %zu) failed", n, m)) continue;
    CHECKF(verify_seeded(q, n < m ? n : m, seed) == SIZE_MAX, "realloc(%zu -> %zu) lost data", n,
           m);
    p = q;
    n = m;
    fill_pattern(p, n);
  }
  for (auto& [p, n] : v) {
    CHECKF(verify_pattern(p, n) == SIZE_MAX, "block %p (%zu B) corrupted", p, n);
    free(p);
  }
  for (void* p : big) {
    CHECK(touched(p, MiB));
    free(p);
  }
  // Freed, the arena serves again.
  void* p = malloc(MiB);
  CHECKF(p != nullptr && inside(p), "after freeing, malloc(1 MiB) = %p is not in the arena", p);
  free(p);
  check_normal_operation("after arena exhaustion");
}

void case_small_fill(size_t min_mib) {
  std::vector<void*> v;
  v.reserve(40u << 20);  // reserved before the limit bites: 320 MiB of pointers, untouched
  for (;;) {
    void* p = malloc(64);
    if (!p) break;
    if (v.size() == v.capacity()) {
      free(p);
      break;
    }
    v.push_back(p);
  }
  int err = errno;
  size_t mib = v.size() * 64 / MiB;
  printf("# malloc(64) until NULL: %zu blocks, %zu MiB (errno %d)\n", v.size(), mib, err);
  CHECKF(mib >= min_mib, "only %zu MiB of 64-byte blocks before NULL (at least %zu expected)", mib,
         min_mib);
  for (size_t i = 0; i < v.size(); i += 4096) memset(v[i], 0x5A, 64);  // usable memory
  for (void* p : v) free(p);
  v.clear();
  malloc_trim(0);
  check_normal_operation("after the small fill");
}

void case_dlopen_plugin(const char* path) {
  const ArenaDesc* d = served_desc();
  REQUIREF(d != nullptr, "hz3_arena_desc not found: not running on libhz3");
  void* before = malloc(777);  // allocated before the plugin existed, freed by it later
  memset(before, 0xCD, 777);
  void* survivor = nullptr;  // allocated by the plugin, freed after its dlclose
  for (int cycle = 0; cycle < 12; cycle++) {
    void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    REQUIREF(h != nullptr, "dlopen(%s): %s", path, dlerror());
    auto sym = [&](const char* name) { return dlsym(h, name); };
    auto alloc = reinterpret_cast<void* (*)(size_t)>(sym("plugin_alloc"));
    auto check_free = reinterpret_cast<int (*)(void*, size_t)>(sym("plugin_check_free"));
    auto usable = reinterpret_cast<size_t (*)(void*)>(sym("plugin_usable_size"));
    auto threads = reinterpret_cast<long (*)(int)>(sym("plugin_threads"));
    auto state_ok = reinterpret_cast<int (*)()>(sym("plugin_state_ok"));
    REQUIRE(alloc && check_free && usable && threads && state_ok);
    CHECKF(state_ok(), "cycle %d: the plugin's constructor state is wrong", cycle);
    for (size_t n : {size_t{1}, size_t{100}, size_t{5000}, size_t{70000}, size_t{3 * MiB}}) {
      unsigned char* p = static_cast<unsigned char*>(alloc(n));
      if (!CHECKF(p != nullptr, "plugin_alloc(%zu) failed", n)) continue;
      CHECKF(in_arena(d, p), "plugin block %p not from the hz3 arena", p);
      CHECKF(p[0] == 0xAB && p[n - 1] == 0xAB, "plugin block contents");
      CHECKF(usable(p) == malloc_usable_size(p), "usable size differs across the boundary");
      free(p);
      void* q = malloc(n);
      memset(q, 0xCD, n);
      CHECKF(check_free(q, n) == 1, "the plugin saw a %zu B block of ours corrupted", n);
    }
    if (cycle == 0) {
      CHECKF(check_free(before, 777) == 1, "a block from before the dlopen was corrupted");
      survivor = alloc(4000);
    }
    long want = 0;
    for (int t = 0; t < 6; t++) want += 500 * 499 / 2 + 500;
    long got = threads(6);
    CHECKF(got == want, "cycle %d: plugin threads computed %ld, expected %ld", cycle, got, want);
    CHECKF(dlclose(h) == 0, "dlclose: %s", dlerror());
  }
  REQUIRE(survivor != nullptr);
  CHECK(static_cast<unsigned char*>(survivor)[3999] == 0xAB);
  free(survivor);
  check_normal_operation("after the plugin cycles");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr,
            "usage: rel_limits GROUP vlimit LIMIT_MIB | GROUP arena_exhaust | "
            "GROUP small_fill MIN_MIB | GROUP dlopen_plugin PATH\n");
    return 2;
  }
  init(argv[1], argc, argv);
  const char* what = argv[2];
  if (strcmp(what, "vlimit") == 0 && argc > 3) {
    size_t mib = strtoull(argv[3], nullptr, 10);
    static char name[64];
    snprintf(name, sizeof name, "vlimit_%zu_mib", mib);
    run_case(
        name, [&] { case_vlimit(mib); }, 120);
  } else if (strcmp(what, "small_fill") == 0 && argc > 3) {
    size_t min_mib = strtoull(argv[3], nullptr, 10);
    run_case(
        "small_fill", [&] { case_small_fill(min_mib); }, 120);
  } else if (strcmp(what, "arena_exhaust") == 0) {
    run_case("arena_exhaust", case_arena_exhaust, 120);
  } else if (strcmp(what, "dlopen_plugin") == 0 && argc > 3) {
    run_case(
        "dlopen_plugin", [&] { case_dlopen_plugin(argv[3]); }, 120);
  } else {
    fprintf(stderr, "rel_limits: unknown case %s\n", what);
    return 2;
  }
  return finish();
}
