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
//   calloc_after_failed_release
//                            a freed large block whose first page is mlock'ed: malloc_trim's
//                            madvise fails there (EINVAL), so the run keeps its bytes, and
//                            calloc must still return zeros (found in review: the run was
//                            marked "released, reads as zero" whatever madvise said)
//   calloc_under_mlockall    the same for every run of a process that called mlockall
// Usage: rel_regress GROUP [--only CASE]
#include <errno.h>
#include <malloc.h>
#include <sys/mman.h>

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

// Index of the first non-zero byte of p[0, n), or n.
size_t first_nonzero(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return i;
  return n;
}

void t_calloc_after_failed_release() {
  constexpr size_t N = MiB;
  unsigned char* p = static_cast<unsigned char*>(malloc(N));
  if (!CHECKF(p != nullptr, "malloc(1 MiB) failed")) return;
  memset(p, 0xAB, N);
  if (mlock(p, 4096) != 0) {
    printf("# mlock: %s\n", strerror(errno));
    CHECKF(false, "mlock of one page failed (%s): cannot set the case up", strerror(errno));
    free(p);
    return;
  }
  free(p);
  malloc_trim(0);
  unsigned char* q = static_cast<unsigned char*>(calloc(1, N));
  if (!CHECKF(q != nullptr, "calloc(1, 1 MiB) failed")) return;
  size_t at = first_nonzero(q, N);
  CHECKF(at == N, "calloc(1, 1 MiB) = %p (the freed block %s) has byte %zu = 0x%02x", q,
         q == p ? "itself" : "elsewhere", at, at < N ? q[at] : 0);
  munlock(p, 4096);
  free(q);
}

void t_calloc_under_mlockall() {
  // MCL_ONFAULT: locked as touched, so the arena's metadata is not all faulted in at once;
  // madvise(MADV_DONTNEED) refuses locked ranges all the same.
  if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0) {
    CHECKF(false, "mlockall failed (%s): cannot set the case up", strerror(errno));
    return;
  }
  int dirty = 0;
  for (int i = 0; i < 64; i++) {
    unsigned char* p = static_cast<unsigned char*>(malloc(MiB));
    if (!p) break;
    memset(p, 0xAB, MiB);
    free(p);
    if (i % 8 == 0) malloc_trim(0);
    unsigned char* q = static_cast<unsigned char*>(calloc(1, MiB));
    if (!q) break;
    if (first_nonzero(q, MiB) != MiB) dirty++;
    free(q);
  }
  munlockall();
  CHECKF(dirty == 0, "%d of 64 calloc(1, 1 MiB) under mlockall returned non-zero bytes", dirty);
}

}  // namespace

int main(int argc, char** argv) {
  init(argc > 1 ? argv[1] : "regress", argc, argv);
  run_case("aligned_beyond_2mib", t_aligned_beyond_2mib, 60);
  run_case("span_churn_rss_flat", t_span_churn_rss_flat, 120);
  run_case("calloc_after_failed_release", t_calloc_after_failed_release, 30);
  run_case("calloc_under_mlockall", t_calloc_under_mlockall, 60);
  return finish();
}
