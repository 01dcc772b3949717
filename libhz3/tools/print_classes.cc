// Prints docs/size-classes.md from the constexpr tables (`make docs-classes`), so the document
// can never drift from the code. Not a test.
#include <cstdio>

#include "sizeclass.h"

using namespace hz3;

int main() {
  std::printf(
      "# hz3 size classes\n\n"
      "Generated from `libhz3/src/sizeclass.h` by `make docs-classes`; do not edit by hand.\n\n"
      "A request of `n` bytes (n <= %zu) is served from the smallest class >= n (one byte-table\n"
      "lookup on `(n + 15) >> 4`). Above %zu bytes a block is a run of whole pages from the page\n"
      "heap (waste < 4 KiB, tail given back on shrink); from %d MiB a block is its own mmap.\n\n"
      "- *worst waste*: the largest share of a block lost to rounding up, for the smallest\n"
      "  request that lands in the class.\n"
      "- *span*: pages a span of this class takes from the page heap; *tail*: bytes at the end\n"
      "  of a span that fit no object. Spans are carved lazily: pages never handed out are\n"
      "  never touched.\n"
      "- *cache cap*: objects a thread cache keeps per class before it gives half back to the\n"
      "  spans; for a magazine class (above 2 KiB), the cap a thread starts with to the most it\n"
      "  grows to while the magazine's fill swings from end to end (docs/design.md);\n"
      "  *align*: the alignment every object of the class has (memalign uses it).\n\n"
      "| class | size | worst waste | span pages | objects/span | tail B | cache cap | align |\n"
      "|---:|---:|---:|---:|---:|---:|---:|---:|\n",
      MAX_MEDIUM, MAX_MEDIUM, HZ3_HUGE_MIB);
  for (uint32_t c = 1; c < NUM_BINS; c++) {
    const ClassInfo& k = CLASSES[c];
    uint32_t smallest = c == 1 ? 1 : CLASSES[c - 1].size + 1;
    double waste = 100.0 * (k.size - smallest) / k.size;
    unsigned tail = unsigned(k.span_pages * PAGE_SIZE - k.span_objs * k.size);
    char cap[32];
    if (HZ3_MAGAZINES && k.size > MAX_SMALL)
      std::snprintf(cap, sizeof cap, "%u to %u", mag_start_cap(c), k.cache_cap);
    else
      std::snprintf(cap, sizeof cap, "%u", k.cache_cap);
    std::printf("| %u | %u | %.1f %% | %u | %u | %u | %s | %u |\n", c, k.size, waste, k.span_pages,
                k.span_objs, tail, cap, k.align);
  }
  return 0;
}
