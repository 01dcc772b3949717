// rel_regress: minimal reproducers of allocator bugs the reliability work found, one case each,
// run with LD_PRELOAD by t_regress.sh against release and check. A case FAILs while its bug is
// present and keeps guarding against it once fixed. docs/reliability.md lists the bugs.
//   aligned_beyond_2mib      posix_memalign / aligned_alloc / memalign with an alignment above
//                            2 MiB must return a block aligned to it (found by fuzz_diff: large
//                            blocks were aligned relative to the arena base, which the kernel
//                            aligns to 2 MiB only)
//   span_churn_rss_flat      allocating and freeing whole spans of small blocks over and over
//                            must not grow RSS (found by reading the check variant: each new
//                            span's allocation bitmap came from metadata never reused)
// Usage: rel_regress GROUP [--only CASE]
#include <errno.h>
#include <malloc.h>

#include "check.h"

using namespace hz3::test;

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * KiB;

void t_aligned_beyond_2mib() {
  for (size_t a = 4 * MiB; a <= 256 * MiB; a <<= 1) {
    for (size_t n : {size_t{1}, size_t{253}, size_t{5000}, size_t{300000}, 3 * MiB}) {
      void* p = nullptr;
      int rc = posix_memalign(&p, a, n);
      if (CHECKF(rc == 0, "posix_memalign(%zu, %zu) = %d", a, n, rc)) {
        CHECKF(aligned_to(p, a), "posix_memalign(%zu MiB, %zu) = %p is not aligned", a / MiB, n, p);
        free(p);
      }
      p = aligned_alloc(a, n);
      if (CHECKF(p != nullptr, "aligned_alloc(%zu, %zu) failed", a, n)) {
        CHECKF(aligned_to(p, a), "aligned_alloc(%zu MiB, %zu) = %p is not aligned", a / MiB, n, p);
        free(p);
      }
      p = memalign(a, n);
      if (CHECKF(p != nullptr, "memalign(%zu, %zu) failed", a, n)) {
        CHECKF(aligned_to(p, a), "memalign(%zu MiB, %zu) = %p is not aligned", a / MiB, n, p);
        free(p);
      }
    }
  }
}

long rss_kib() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long size = 0, res = 0;
  if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
  fclose(f);
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

// Three spans' worth of 16-byte blocks allocated and freed, 8,000 times: every round gives
// spans back to the page heap and takes new ones. The live set is 192 KiB throughout.
void t_span_churn_rss_flat() {
  constexpr size_t N = 3 * 4096;
  static void* v[N];
  long before = 0;
  for (int round = 0; round < 8000; round++) {
    for (size_t i = 0; i < N; i++) v[i] = malloc(16);
    for (size_t i = 0; i < N; i++) free(v[i]);
    if (round == 100) before = rss_kib();
  }
  long after = rss_kib();
  printf("# RSS after 100 rounds %ld KiB, after 8000 rounds %ld KiB\n", before, after);
  CHECKF(after - before < 1536, "RSS grew by %ld KiB over 7900 rounds of span churn",
         after - before);
}

}  // namespace

int main(int argc, char** argv) {
  init(argc > 1 ? argv[1] : "regress", argc, argv);
  run_case("aligned_beyond_2mib", t_aligned_beyond_2mib, 60);
  run_case("span_churn_rss_flat", t_span_churn_rss_flat, 120);
  return finish();
}
