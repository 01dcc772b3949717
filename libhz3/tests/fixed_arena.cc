// The arena's placement (libhz3/src/arena.h, the fixed layout), run by t_fixed_arena.sh.
//   fixed_arena MODE [EXPECT]  MODE names the group; EXPECT is "fixed" (the arena must sit at
//                              4 TiB, its tags at 4 GiB) or "dynamic" (it must not: this binary
//                              was linked with a section where one of them would go, see
//                              libhz3.mk, so hz3 had to fall back to the kernel's placement).
// Either way the allocator must work the same: every size class, realloc, usable size,
// cross-thread frees, and a free of an address in the fixed range that hz3 does not own (the
// blocking section, or a never-handed-out page of the fixed arena) must abort as an invalid
// pointer, never be taken for a block.
#include <malloc.h>
#include <sys/wait.h>

#include <thread>
#include <vector>

#include "check.h"

#ifndef HZ3_TEST_BLOCK_AT
#define HZ3_TEST_BLOCK_AT 0
#endif
#if HZ3_TEST_BLOCK_AT
// A page of this program at the address hz3 wants (the linker puts the section at
// HZ3_TEST_BLOCK_AT).
__attribute__((section(".hz3_block"), used, aligned(4096))) char g_block[4096] = {1};
#endif

using namespace hz3::test;

namespace {

constexpr uintptr_t FIXED_BASE = uintptr_t{4} << 40;
constexpr uintptr_t FIXED_TAGS = uintptr_t{4} << 30;

void t_placement(bool want_fixed) {
  void* p = malloc(64);
  const ArenaDesc* d = arena_desc();
  REQUIRE(d != nullptr && d->magic == HZ3_DESC_MAGIC);
  bool fixed = d->base == FIXED_BASE && d->tags == FIXED_TAGS;
  CHECKF(fixed == want_fixed, "arena at %#lx, tags at %#lx, wanted %s", (unsigned long)d->base,
         (unsigned long)d->tags, want_fixed ? "the fixed layout" : "a dynamic one");
  CHECK(in_arena(d, p));
  free(p);
}

// Every class, in batches, written and verified, freed in another order than allocated.
void t_classes() {
  const ArenaDesc* d = arena_desc();
  std::vector<void*> v;
  for (size_t size = 1; size <= 64 * 1024; size += size < 2048 ? 7 : 997) {
    for (int k = 0; k < 4; k++) {
      void* p = malloc(size);
      REQUIRE(p != nullptr);
      CHECK(in_arena(d, p));
      CHECK(malloc_usable_size(p) >= size);
      fill_seeded(p, 0, size, size);
      v.push_back(p);
      v.push_back(reinterpret_cast<void*>(size));
    }
  }
  for (size_t i = v.size(); i >= 2; i -= 2) {
    void* p = v[i - 2];
    size_t size = reinterpret_cast<size_t>(v[i - 1]);
    CHECK(verify_seeded(p, size, size) == SIZE_MAX);
    void* q = realloc(p, size + 100);
    REQUIRE(q != nullptr);
    CHECK(verify_seeded(q, size, size) == SIZE_MAX);
    free(q);
  }
  void* big = calloc(1, 1 << 20);  // large: in the arena too
  CHECK(big != nullptr && in_arena(d, big));
  free(big);
}

// Blocks freed by a thread that did not allocate them, and its own ones after it.
void t_cross_thread() {
  std::vector<void*> v;
  for (int i = 0; i < 20000; i++) v.push_back(malloc(size_t(16 + (i % 64) * 16)));
  std::thread([&] {
    for (void* p : v) free(p);
    for (int i = 0; i < 20000; i++) free(malloc(48));
  }).join();
  for (int i = 0; i < 20000; i++) free(malloc(48));
  CHECK(true);
}

// free(p) for an address hz3 never handed out, in a child: it must die with the invalid-pointer
// line.
void expect_invalid_free(void* p, const char* what) {
  fflush(stdout);
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    signal(SIGABRT, SIG_DFL);
    free(p);
    _exit(0);
  }
  close(fds[1]);
  char buf[256] = {0};
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && n > 0 &&
             strstr(buf, "hz3: free(): invalid pointer 0x") != nullptr,
         "free of %s (%p): status %#x, stderr '%s'", what, p, st, buf);
}

void t_invalid_in_range() {
  const ArenaDesc* d = arena_desc();
  REQUIRE(d != nullptr);
#if HZ3_TEST_BLOCK_AT
  expect_invalid_free(reinterpret_cast<void*>(uintptr_t{HZ3_TEST_BLOCK_AT} + 64),
                      "this program's page at the fixed address");
#endif
  // A page past everything handed out so far, but inside the reservation: tag 0.
  uintptr_t past = d->base + (d->hwm_pages + 16) * 4096 + 64;
  if (past < d->base + d->size) expect_invalid_free(reinterpret_cast<void*>(past), "a fresh page");
}

}  // namespace

int main(int argc, char** argv) {
  static char group[128];
  const char* mode = argc > 1 ? argv[1] : "default";
  bool want_fixed = argc > 2 && strcmp(argv[2], "fixed") == 0;
  snprintf(group, sizeof group, "fixed_arena/%s", mode);
  init(group, argc, argv);
  run_case(want_fixed ? "placement_fixed" : "placement_dynamic", [&] { t_placement(want_fixed); });
  run_case("classes", t_classes);
  run_case("cross_thread", t_cross_thread);
  run_case("invalid_in_range", t_invalid_in_range);
  return finish();
}
