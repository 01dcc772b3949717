// Differential fuzz target (libFuzzer) for the allocator core, linked with the hz3_-prefixed
// entry points (hz3_prefixed.h) and built with AddressSanitizer, so ASan checks hz3's own memory
// accesses while this harness checks what hz3 promises. The input bytes are a program: each op
// picks one of 64 slots and one of malloc, calloc, realloc, reallocarray, free, the five aligned
// forms, malloc_usable_size, malloc_trim, a free or an allocation on another thread, and a thread
// that allocates and exits. Sizes cover 0 … 8 MiB with every class boundary, huge blocks (>= 1
// GiB, mmap'ed, touched sparsely) and requests near SIZE_MAX that must fail with ENOMEM.
//
// The shadow model knows every live block's requested size, usable size, alignment and content
// seed. Each op is checked against it: results are aligned, usable >= requested, usable ranges of
// live blocks never overlap, contents survive until free and realloc keeps the common prefix,
// calloc reads zero, failures return NULL with the right errno and leave the old block intact.
// Every byte up to the usable size is written, so an overstated usable size corrupts a neighbour
// and shows. A mismatch prints one line and aborts: libFuzzer saves the input as a crash.
// Not a benchmark and not a test of misuse (death tests cover invalid frees).
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <condition_variable>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>

#include "hz3_prefixed.h"

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
constexpr int SLOTS = 64;
constexpr size_t FULL_FILL = 16 * KiB;  // blocks up to this are written and checked whole
constexpr size_t EDGE = 4 * KiB;        // larger ones: both ends and 64 probes in between

// ---- failure reporting
// ---------------------------------------------------------------------------

size_t g_op;  // index of the op being executed in the current input

// HZ3_FUZZ_MAX_ALIGN=BYTES caps the alignments asked for, to fuzz on past a known alignment bug
// while it is open (docs/reliability.md). Unset: up to 2 GiB.
size_t g_max_align = size_t{1} << 31;

[[noreturn]] __attribute__((format(printf, 1, 2))) void die(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(stderr, "hz3-fuzz: op %zu: %s\n", g_op, buf);
  abort();
}

// ---- content patterns ------------------------------------------------------------------------

// The pattern code is left out of coverage instrumentation: its compares are the harness's, not
// hz3's, and would dominate the run time.
#define HZ3_NO_COVERAGE __attribute__((no_sanitize("coverage")))

HZ3_NO_COVERAGE uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Byte i of a block's pattern is byte i % 8 of word_at(seed, i / 8), so whole words can be
// written and compared at once (little-endian).
HZ3_NO_COVERAGE uint64_t word_at(uint64_t seed, size_t w) {
  return mix64(seed ^ w * 0x9E3779B97F4A7C15ull);
}
HZ3_NO_COVERAGE unsigned char byte_at(uint64_t seed, size_t i) {
  return static_cast<unsigned char>(word_at(seed, i >> 3) >> (8 * (i & 7)));
}

// The byte ranges of an n-byte block that carry its pattern: all of it when small, else its
// first and last EDGE bytes and 64 evenly spaced 64-byte probes (a 1 GiB block costs 66 page
// faults, not 262144). Returns how many ranges it wrote (at most 66).
struct Region {
  size_t off, len;
};
HZ3_NO_COVERAGE int regions(size_t n, Region* r) {
  if (n <= FULL_FILL) {
    r[0] = {0, n};
    return n ? 1 : 0;
  }
  int k = 0;
  r[k++] = {0, EDGE};
  size_t stride = (n - 2 * EDGE) / 64 & ~size_t{7};
  for (size_t j = 0; j < 64; j++) r[k++] = {EDGE + j * stride, 64};
  r[k++] = {n - EDGE, EDGE};
  return k;
}

HZ3_NO_COVERAGE void fill(void* p, size_t n, uint64_t seed) {
  unsigned char* b = static_cast<unsigned char*>(p);
  Region r[66];
  for (int k = regions(n, r) - 1; k >= 0; k--) {
    size_t i = r[k].off, end = r[k].off + r[k].len;
    for (; i < end && (i & 7); i++) b[i] = byte_at(seed, i);
    for (; i + 8 <= end; i += 8) {
      uint64_t w = word_at(seed, i >> 3);
      memcpy(b + i, &w, 8);
    }
    for (; i < end; i++) b[i] = byte_at(seed, i);
  }
}

// Checks the pattern of an n-byte fill, limited to the first `upto` bytes.
HZ3_NO_COVERAGE void verify(const void* p, size_t n, size_t upto, uint64_t seed, const char* what) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  Region r[66];
  for (int k = regions(n, r) - 1; k >= 0; k--) {
    size_t end = r[k].off + r[k].len < upto ? r[k].off + r[k].len : upto;
    for (size_t i = r[k].off; i < end;) {
      if ((i & 7) == 0 && i + 8 <= end) {
        uint64_t w, want = word_at(seed, i >> 3);
        memcpy(&w, b + i, 8);
        if (w == want) {
          i += 8;
          continue;
        }
      }
      if (b[i] != byte_at(seed, i))
        die("%s: block %p (filled %zu B) byte %zu is 0x%02x, expected 0x%02x", what, p, n, i, b[i],
            byte_at(seed, i));
      i++;
    }
  }
}

HZ3_NO_COVERAGE void verify_zero(const void* p, size_t n, const char* what) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  Region r[66];
  for (int k = regions(n, r) - 1; k >= 0; k--)
    for (size_t i = r[k].off; i < r[k].off + r[k].len; i++)
      if (b[i] != 0)
        die("%s: block %p (%zu B) byte %zu is 0x%02x, expected 0", what, p, n, i, b[i]);
}

// ---- the shadow model ------------------------------------------------------------------------

struct Block {
  void* p = nullptr;
  size_t req = 0;     // requested size
  size_t usable = 0;  // malloc_usable_size at allocation; filled up to here
  size_t align = 16;
  uint64_t seed = 0;
};

struct Model {
  Block slot[SLOTS];
  std::map<uintptr_t, uintptr_t> ranges;  // live [start, end) by start
  uint64_t next_seed = 1;
};
Model g_model;

void add_range(const Block& b) {
  uintptr_t lo = reinterpret_cast<uintptr_t>(b.p);
  uintptr_t hi = lo + (b.usable ? b.usable : 1);
  auto it = g_model.ranges.upper_bound(lo);
  if (it != g_model.ranges.end() && it->first < hi)
    die("new block [%#lx, %#lx) overlaps live block at %#lx", lo, hi, it->first);
  if (it != g_model.ranges.begin() && std::prev(it)->second > lo)
    die("new block [%#lx, %#lx) overlaps live block [%#lx, %#lx)", lo, hi, std::prev(it)->first,
        std::prev(it)->second);
  g_model.ranges[lo] = hi;
}

void remove_range(const Block& b) { g_model.ranges.erase(reinterpret_cast<uintptr_t>(b.p)); }

// Takes a fresh block under the model's control: checks alignment, usable size and overlap,
// then writes its pattern over the whole usable size.
void adopt(int s, void* p, size_t req, size_t align, const char* fn) {
  if (reinterpret_cast<uintptr_t>(p) % align != 0)
    die("%s(%zu) = %p: not %zu-aligned", fn, req, p, align);
  size_t usable = hz3_malloc_usable_size(p);
  if (usable < req) die("%s(%zu) = %p: usable size %zu < requested", fn, req, p, usable);
  Block& b = g_model.slot[s];
  b = {p, req, usable, align, g_model.next_seed++};
  add_range(b);
  fill(p, usable, b.seed);
}

void check_block(const Block& b, const char* what) {
  verify(b.p, b.usable, b.usable, b.seed, what);
  size_t u = hz3_malloc_usable_size(b.p);
  if (u != b.usable) die("%s: usable size of %p changed from %zu to %zu", what, b.p, b.usable, u);
}

// Verifies and frees a slot's block (on this thread).
void release(int s) {
  Block& b = g_model.slot[s];
  if (!b.p) return;
  check_block(b, "before free");
  remove_range(b);
  hz3_free(b.p);
  b = {};
}

// ---- a helper thread for cross-thread frees and allocations -----------------------------------

// Runs jobs synchronously on one long-lived thread: its frees of our blocks are remote frees, and
// our frees of its blocks are remote frees the other way. Synchronous, so inputs replay exactly.
class Helper {
 public:
  Helper() : t_([this] { loop(); }) {}
  void run(std::function<void()> job) {
    std::unique_lock<std::mutex> g(mu_);
    job_ = std::move(job);
    cv_.notify_all();
    cv_.wait(g, [this] { return !job_; });
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> g(mu_);
    for (;;) {
      cv_.wait(g, [this] { return bool(job_); });
      job_();
      job_ = nullptr;
      cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
  std::thread t_;
};

Helper& helper() {
  static Helper* h = new Helper();  // never joined: lives as long as the fuzzing process
  return *h;
}

// ---- input decoding --------------------------------------------------------------------------

struct Input {
  const uint8_t* d;
  size_t n, i = 0;
  bool empty() const { return i >= n; }
  uint8_t u8() { return i < n ? d[i++] : 0; }
  uint32_t u16() { return uint32_t(u8()) | uint32_t(u8()) << 8; }
  uint32_t u24() { return u16() | uint32_t(u8()) << 16; }
};

// Sizes: mostly small, every class boundary, medium, large, a few huge and impossible ones.
size_t pick_size(Input& in) {
  static const size_t edges[] = {0,     1,     15,    16,      17,          127,    128,
                                 129,   2047,  2048,  2049,    4095,        4096,   4097,
                                 65535, 65536, 65537, 1 * MiB, 4 * MiB - 1, 8 * MiB};
  uint8_t sel = in.u8();
  switch (sel & 15) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
      return in.u8();  // 0 … 255
    case 5:
    case 6:
    case 7:
      return in.u16() % 2049;  // small
    case 8:
    case 9:
      return 2049 + in.u16() % (65536 - 2048);  // medium
    case 10:  // large, log-uniform-ish: mostly under 1 MiB, up to 4 MiB
      return 65537 + ((in.u24() % (4 * MiB)) >> (sel >> 5));
    case 11: {
      size_t e = edges[in.u8() % (sizeof edges / sizeof edges[0])];
      return e + (sel >> 6);  // boundary, +0 … +3
    }
    case 12:
      return 16 * (in.u8() + 1);  // exact multiples of 16, the fine-grained classes
    case 13:
      return size_t(in.u8() % 64 + 1) * 4096;  // whole pages
    case 14:
      // huge: mmap'ed outside the arena; rare so the input stays cheap
      return (sel & 0xF0) == 0xF0 ? GiB + in.u16() : 8 * MiB - in.u16();
    default:
      return SIZE_MAX - in.u16();  // impossible: must fail cleanly
  }
}

bool impossible(size_t n) { return n > (size_t{1} << 62); }

void expect_enomem(void* p, size_t n, const char* fn) {
  int e = errno;
  if (p) die("%s(%zu) = %p, expected NULL", fn, n, p);
  if (e != ENOMEM) die("%s(%zu) = NULL with errno %d, expected ENOMEM", fn, n, e);
}

void op_malloc(int s, size_t n) {
  release(s);
  errno = 0;
  void* p = hz3_malloc(n);
  if (impossible(n)) return expect_enomem(p, n, "malloc");
  if (!p) die("malloc(%zu) = NULL (errno %d)", n, errno);
  adopt(s, p, n, 16, "malloc");
}

void op_calloc(int s, size_t n, uint8_t m) {
  release(s);
  // odd m: about n bytes split into m elements; even m: m elements of n bytes, which overflows
  // when n is near SIZE_MAX (and is kept below 16 MiB otherwise, to stay cheap).
  size_t count = m ? m : 1;
  size_t each = (m & 1) || (!impossible(n) && n > 16 * MiB / count) ? n / count : n;
  size_t total;
  bool overflow = __builtin_mul_overflow(count, each, &total);
  errno = 0;
  void* p = hz3_calloc(count, each);
  if (overflow || impossible(total)) return expect_enomem(p, total, "calloc");
  if (!p) die("calloc(%zu, %zu) = NULL (errno %d)", count, each, errno);
  verify_zero(p, total, "calloc");
  adopt(s, p, total, 16, "calloc");
}

void op_realloc(int s, size_t n, bool array) {
  Block old = g_model.slot[s];
  if (old.p) check_block(old, "before realloc");
  errno = 0;
  void* q = array ? hz3_reallocarray(old.p, 1, n) : hz3_realloc(old.p, n);
  const char* fn = array ? "reallocarray" : "realloc";
  if (impossible(n)) {
    expect_enomem(q, n, fn);
    if (old.p) check_block(old, "after failed realloc");  // C: the old block is untouched
    return;
  }
  if (old.p && n == 0) {  // glibc: realloc(p, 0) frees p and returns NULL (reallocarray too)
    if (q) die("%s(%p, 0) = %p, expected NULL", fn, old.p, q);
    remove_range(old);
    g_model.slot[s] = {};
    return;
  }
  if (!q) die("%s(%p, %zu) = NULL (errno %d)", fn, old.p, n, errno);
  if (old.p) {
    remove_range(old);
    verify(q, old.usable, old.req < n ? old.req : n, old.seed, "realloc kept prefix");
  }
  g_model.slot[s] = {};
  adopt(s, q, n, 16, fn);
}

void op_aligned(int s, size_t n, uint8_t how, uint8_t which) {
  release(s);
  size_t align = size_t{1} << (how & 31);  // 1 … 2 GiB; large ones only when n is small
  if (align > 1 * MiB && n > 64 * KiB) align = 4096;
  while (align > g_max_align) align >>= 1;
  bool bad = (how & 0xC0) == 0xC0;  // not a power of two (or 0)
  if (bad) align = (how & 0x20) ? 0 : align * 3;
  errno = 0;
  void* p = nullptr;
  const char* fn;
  switch (which % 5) {
    case 0: {
      fn = "posix_memalign";
      void* out = reinterpret_cast<void*>(uintptr_t{0xDEAD});
      int rc = hz3_posix_memalign(&out, align, n);
      bool invalid = bad || align < sizeof(void*);
      if (invalid) {
        if (rc != EINVAL || out != reinterpret_cast<void*>(uintptr_t{0xDEAD}))
          die("posix_memalign(%zu, %zu) = %d, out changed: %d; expected EINVAL", align, n, rc,
              out != reinterpret_cast<void*>(uintptr_t{0xDEAD}));
        return;
      }
      if (impossible(n)) {
        if (rc != ENOMEM) die("posix_memalign(%zu, %zu) = %d, expected ENOMEM", align, n, rc);
        return;
      }
      if (rc != 0) die("posix_memalign(%zu, %zu) = %d", align, n, rc);
      p = out;
      break;
    }
    case 1:
      fn = "aligned_alloc";
      p = hz3_aligned_alloc(align, n);
      break;
    case 2:
      fn = "memalign";
      p = hz3_memalign(align, n);
      break;
    case 3:
      fn = "valloc";
      bad = false;
      align = 4096;
      p = hz3_valloc(n);
      break;
    default:
      fn = "pvalloc";
      bad = false;
      align = 4096;
      p = hz3_pvalloc(n);
      if (!impossible(n) && p && hz3_malloc_usable_size(p) < ((n + 4095) & ~size_t{4095}))
        die("pvalloc(%zu): usable size %zu is not the size rounded to pages", n,
            hz3_malloc_usable_size(p));
      break;
  }
  if (which % 5 != 0) {
    // glibc 2.36 (and so hz3): aligned_alloc and memalign take any alignment up to 2^63,
    // treat one <= 16 as malloc and round any other up to a power of two.
    if (bad) align = align <= 16 ? 16 : size_t{1} << (64 - __builtin_clzll(align));
    if (impossible(n)) return expect_enomem(p, n, fn);
    if (!p) die("%s(%zu, %zu) = NULL (errno %d)", fn, align, n, errno);
  }
  adopt(s, p, n, align < 16 ? 16 : align, fn);
}

void op_remote_free(int s) {
  Block b = g_model.slot[s];
  if (!b.p) return;
  check_block(b, "before remote free");
  remove_range(b);
  g_model.slot[s] = {};
  helper().run([p = b.p] { hz3_free(p); });
}

void op_remote_alloc(int s, size_t n) {
  release(s);
  if (impossible(n)) return;
  void* p = nullptr;
  helper().run([&] { p = hz3_malloc(n); });
  if (!p) die("malloc(%zu) on the helper thread = NULL", n);
  adopt(s, p, n, 16, "malloc on the helper thread");
}

// A thread that allocates into up to 4 slots and exits: its heap is orphaned with those blocks
// live, later freed here (orphan path) or adopted by the next new thread.
void op_thread_exit(Input& in) {
  int k = 1 + in.u8() % 4;
  int ss[4];
  size_t ns[4];
  for (int j = 0; j < k; j++) {
    ss[j] = in.u8() % SLOTS;
    ns[j] = pick_size(in);
    if (impossible(ns[j])) ns[j] = 100;
    release(ss[j]);
  }
  void* ps[4] = {};
  std::thread t([&] {
    for (int j = 0; j < k; j++) {
      ps[j] = hz3_malloc(ns[j]);
      // churn so the exiting thread has cached and span-resident blocks to hand back
      for (int r = 0; r < 20; r++) hz3_free(hz3_malloc(ns[j] % 4096));
    }
  });
  t.join();
  for (int j = 0; j < k; j++) {
    if (!ps[j]) die("malloc(%zu) on an exiting thread = NULL", ns[j]);
    if (g_model.slot[ss[j]].p) release(ss[j]);  // two picks of the same slot
    adopt(ss[j], ps[j], ns[j], 16, "malloc on an exiting thread");
  }
}

uint64_t g_total_ops, g_total_inputs;

// Printed when the fuzzer exits normally, beside libFuzzer's own statistics.
__attribute__((destructor)) void report_totals() {
  fprintf(stderr, "hz3-fuzz totals: %llu ops in %llu inputs\n", (unsigned long long)g_total_ops,
          (unsigned long long)g_total_inputs);
}

void run_input(const uint8_t* data, size_t size) {
  Input in{data, size};
  g_total_inputs++;
  for (g_op = 0; !in.empty(); g_op++, g_total_ops++) {
    uint8_t op = in.u8();
    int s = in.u8() % SLOTS;
    switch (op % 16) {
      case 0:
      case 1:
      case 2:
        op_malloc(s, pick_size(in));
        break;
      case 3:
        op_calloc(s, pick_size(in), in.u8());
        break;
      case 4:
      case 5:
        op_realloc(s, pick_size(in), false);
        break;
      case 6:
        op_realloc(s, pick_size(in), true);
        break;
      case 7:
      case 8:
        release(s);
        break;
      case 9:
        op_aligned(s, pick_size(in), in.u8(), in.u8());
        break;
      case 10:
        if (g_model.slot[s].p) check_block(g_model.slot[s], "usable size");
        break;
      case 11:
        op_remote_free(s);
        break;
      case 12:
        op_remote_alloc(s, pick_size(in));
        break;
      case 13:
        if ((op >> 4) == 0)
          op_thread_exit(in);
        else
          op_malloc(s, pick_size(in));
        break;
      case 14:
        if ((op >> 4) < 2) {
          hz3_malloc_trim(0);  // everything free goes back to the OS; live blocks must not care
          for (auto& b : g_model.slot)
            if (b.p) check_block(b, "after malloc_trim");
        } else {
          hz3_free(nullptr);
        }
        break;
      default:  // a mass free: scavenging and span release paths
        for (int k = 0; k < SLOTS; k++)
          if ((k & 3) == (op >> 4 & 3)) release(k);
        break;
    }
  }
  for (int k = 0; k < SLOTS; k++) release(k);  // every input ends with nothing live
  if (!g_model.ranges.empty()) die("model still holds %zu ranges", g_model.ranges.size());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* v = getenv("HZ3_FUZZ_MAX_ALIGN")) g_max_align = strtoull(v, nullptr, 0);
  if (g_max_align == 0) g_max_align = 1;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  run_input(data, size);
  return 0;
}
