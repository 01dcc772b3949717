/* Heap-misuse cases, one per process: `misuse CASE` commits one misuse (double free, invalid
 * free, overflow, underflow, write after free, realloc or malloc_usable_size of a freed pointer)
 * and then, if nothing stopped it, writes "SURVIVED" to stdout and exits 0. The runner
 * (run.py) calls a case caught when the process does anything else: dies by a signal, exits
 * non-zero or hangs before that marker. A real crash caused by the misuse itself (touching
 * memory the allocator already unmapped) counts as caught, as in the public suites.
 *   misuse --list    every case name, one per line
 *   misuse --which   the path of the library that serves malloc (the runner checks LD_PRELOAD took)
 * Build with -O0 -fno-builtin and no sanitizer, so every call happens as written. Nothing is
 * printed through stdio: after a misuse the allocator may be corrupt, and stdout's buffer is
 * allocated by malloc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define S1 24
#define S2 200
#define M1 8192
#define M2 40960
#define L1 204800
#define L2 4194304

/* Hides a pointer's origin from the compiler (no -Wfree-nonheap-object, no folding). */
static void* launder(void* p) {
  void* volatile v = p;
  return v;
}
static void sink(void* p) { __asm__ volatile("" : : "r"(p) : "memory"); }
static void say(const char* s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(1, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}
static void fill(void* p, int c, size_t n) { memset(launder(p), c, n); }

/* Other traffic of mixed sizes, freed again: what a program does between two misuses. */
static void churn(void) {
  void* v[48];
  for (int i = 0; i < 48; i++) {
    v[i] = malloc((size_t)(16 + (i * 97) % 4000));
    fill(v[i], i, 16);
  }
  for (int i = 0; i < 48; i += 2) free(v[i]);
  for (int i = 1; i < 48; i += 2) free(v[i]);
}

/* n allocations of size, each written, then freed: lets an allocator meet a damaged block. */
static void reuse(size_t size, int n) {
  void* v[8];
  for (int i = 0; i < n; i++) {
    v[i] = malloc(size);
    fill(v[i], 0x5a, size < 64 ? size : 64);
  }
  for (int i = 0; i < n; i++) free(v[i]);
}

/* ---- double free ---------------------------------------------------------------------------- */
static void df_immediate(size_t n) {
  char* p = malloc(n);
  fill(p, 1, 8);
  free(p);
  free(launder(p));
}
static void df_delayed(size_t n) {
  char* p = malloc(n);
  fill(p, 1, 8);
  free(p);
  churn();
  free(launder(p));
}
static void df_interleaved(size_t n) {
  char* p = malloc(n);
  char* q = malloc(n);
  fill(p, 1, 8);
  fill(q, 2, 8);
  free(p);
  free(q);
  free(launder(p));
}
/* p freed, its slot (most allocators) handed to q, p freed again (q's block, from the
 * allocator's view), then q freed: one of the two last frees frees a free block. */
static void df_reused(size_t n) {
  char* p = malloc(n);
  fill(p, 1, 8);
  free(p);
  char* q = malloc(n);
  fill(q, 2, 8);
  free(launder(p));
  free(q);
}

/* ---- invalid free --------------------------------------------------------------------------- */
static char g_global[256];
static void inv_stack(size_t n) {
  char buf[64];
  (void)n;
  fill(buf, 1, sizeof buf);
  free(launder(buf + 16));
}
static void inv_global(size_t n) {
  (void)n;
  free(launder(g_global));
}
static void inv_unaligned(size_t n) {
  char* p = malloc(n);
  fill(p, 1, 8);
  free(launder(p + 1));
}
static void inv_interior(size_t n) {
  char* p = malloc(n);
  fill(p, 1, 32);
  free(launder(p + 16));
}
static void inv_mmap(size_t n) {
  (void)n;
  char* p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) _exit(99);
  fill(p, 1, 64);
  free(launder(p + 4096));
}

/* ---- overflow and underflow ----------------------------------------------------------------- */
static void of_then_free(size_t n, size_t over) {
  char* p = malloc(n);
  fill(p, 1, n);
  fill(p + n, 0x41, over);
  free(p);
}
static void of_then_malloc(size_t n, size_t over) {
  char* p = malloc(n);
  fill(p, 1, n);
  fill(p + n, 0x41, over);
  reuse(n, 8);
  free(p);
  reuse(n, 8);
}
static void of1_free(size_t n) { of_then_free(n, 1); }
static void of32_free(size_t n) { of_then_free(n, 32); }
static void of1_malloc(size_t n) { of_then_malloc(n, 1); }
static void of32_malloc(size_t n) { of_then_malloc(n, 32); }
static void underflow(size_t n) {
  char* p = malloc(n);
  fill(p, 1, n);
  fill(p - 16, 0x41, 16);
  free(p);
  reuse(n, 8);
}

/* ---- use of a freed block ------------------------------------------------------------------- */
static void write_after_free(size_t n) {
  char* p = malloc(n);
  fill(p, 1, n);
  free(p);
  fill(p, 0x41, n < 64 ? n : 64);
  reuse(n, 8);
  reuse(n, 8);
}
static void realloc_freed(size_t n) {
  char* p = malloc(n);
  fill(p, 1, 8);
  free(p);
  char* q = realloc(launder(p), n * 2);
  sink(q);
  fill(q, 2, 8);
  free(q);
}
static void usable_size_freed(size_t n) {
  char* p = malloc(n);
  fill(p, 1, 8);
  free(p);
  size_t u = malloc_usable_size(launder(p));
  sink((void*)u);
}

/* ---- the control: correct use of every size, must survive everywhere ------------------------ */
static void control(size_t n) {
  size_t sizes[] = {S1, S2, M1, M2, L1, L2};
  (void)n;
  for (int r = 0; r < 3; r++)
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      char* p = malloc(sizes[i]);
      fill(p, 1, sizes[i]);
      p = realloc(p, sizes[i] * 2);
      sink((void*)malloc_usable_size(p));
      free(p);
    }
}

struct misuse_case {
  const char* name;
  void (*fn)(size_t);
  size_t size;
};

#define SIZES6(prefix, fn) \
  {prefix "_small_24", fn, S1}, {prefix "_small_200", fn, S2}, {prefix "_medium_8k", fn, M1}, \
      {prefix "_medium_40k", fn, M2}, {prefix "_large_200k", fn, L1}, {prefix "_large_4m", fn, L2}
#define SIZES3(prefix, fn) \
  {prefix "_small_24", fn, S1}, {prefix "_medium_8k", fn, M1}, {prefix "_large_200k", fn, L1}
#define SIZES4(prefix, fn)                                                               \
  {prefix "_small_200", fn, S2}, {prefix "_medium_40k", fn, M2}, {prefix "_large_200k", fn, L1}, \
      {prefix "_large_4m", fn, L2}

static const struct misuse_case cases[] = {
    {"control_correct_use", control, 0},
    SIZES6("double_free_immediate", df_immediate),
    SIZES6("double_free_delayed", df_delayed),
    SIZES6("double_free_interleaved", df_interleaved),
    SIZES6("double_free_reused", df_reused),
    {"invalid_free_stack", inv_stack, 0},
    {"invalid_free_global", inv_global, 0},
    {"invalid_free_foreign_mmap", inv_mmap, 0},
    SIZES4("invalid_free_unaligned", inv_unaligned),
    SIZES4("invalid_free_interior", inv_interior),
    SIZES3("overflow1_then_free", of1_free),
    SIZES3("overflow32_then_free", of32_free),
    SIZES3("overflow1_then_malloc", of1_malloc),
    SIZES3("overflow32_then_malloc", of32_malloc),
    SIZES3("underflow16", underflow),
    SIZES3("write_after_free", write_after_free),
    SIZES3("realloc_freed", realloc_freed),
    SIZES3("usable_size_freed", usable_size_freed),
};

int main(int argc, char** argv) {
  size_t ncases = sizeof cases / sizeof cases[0];
  if (argc != 2) {
    say("usage: misuse CASE | --list | --which\n");
    return 2;
  }
  if (strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < ncases; i++) {
      say(cases[i].name);
      say("\n");
    }
    return 0;
  }
  if (strcmp(argv[1], "--which") == 0) {
    Dl_info info;
    void* m = dlsym(RTLD_DEFAULT, "malloc");
    if (m == NULL || dladdr(m, &info) == 0 || info.dli_fname == NULL) return 3;
    say(info.dli_fname);
    say("\n");
    return 0;
  }
  for (size_t i = 0; i < ncases; i++) {
    if (strcmp(argv[1], cases[i].name) != 0) continue;
    cases[i].fn(cases[i].size);
    say("SURVIVED\n");
    return 0;
  }
  say("misuse: unknown case\n");
  return 2;
}
