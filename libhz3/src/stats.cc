// Statistics (see stats.h and docs/stats.md): one snapshot of the allocator's own structures,
// and the glibc introspection calls on top of it: mallinfo, mallinfo2, malloc_stats,
// malloc_info, mallopt.
//
// How the snapshot is taken. The registry lock and every heap lock are held (in id order, the
// order fork_prepare uses), then the page heap is walked under its lock: every run of pages
// below the high-water mark, in address order. With those locks held no span changes, so the
// walk sees each span's `used` count (objects outside the span) exactly, and the page heap's
// free runs and large blocks exactly. Objects outside a span are in a thread cache, in an
// inbox, or held by the application:
//   - inboxes change only by pushes (a CAS that prepends) without the lock, and are emptied
//     only under it, so the list read from its head is stable and counted exactly;
//   - a thread cache is changed by its owner's fast paths without any lock. The caller's own
//     cache is counted exactly; another thread's magazines count as their fill (one relaxed
//     load of the top, at most the cap); its lists are followed with relaxed loads, at
//     most cache_cap + check_every + 1 nodes per list, and every node must lie in a live span
//     of that heap and class (tag and span record checked; such pages stay mapped while we
//     hold the heap lock, so every read is safe). That count is a racy snapshot: it can miss
//     objects or count one the owner just took. It is clamped so the ledger still adds up;
//   - remote frees a thread has not delivered yet (heap.h, RemoteBucket) count as held by the
//     application: the caller delivers its own first, so they are in inboxes; other threads'
//     are at most REMOTE_HOLD_BYTES each.
// Nothing here runs on the allocation paths, and nothing allocates while a lock is held.
#include "stats.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "heap.h"
#include "internal_api.h"
#include "large.h"
#include "outside.h"
#include "pal.h"
#include "process.h"

namespace hz3 {
namespace {

// One heap's share, per class: objects outside spans, free in spans, in caches, in inboxes.
struct HeapAcc {
  uint64_t span_bytes;
  uint64_t spans;
  uint64_t used[NUM_BINS], free[NUM_BINS], cached[NUM_BINS], inbox[NUM_BINS];
  bool live;
};

struct Walk {
  HeapAcc* heaps;
  uint32_t nheaps;
  hz3_stats* st;
};

constexpr size_t round_page(size_t n) { return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1); }

void on_run(const Span& s, void* ctx) {
  Walk& w = *static_cast<Walk*>(ctx);
  size_t bytes = size_t(s.npages) * PAGE_SIZE;
  switch (s.state) {
    case SpanState::FREE_DIRTY:
      w.st->pageheap_dirty += bytes;
      break;
    case SpanState::FREE_RELEASED:
      w.st->pageheap_released += bytes;
      break;
    case SpanState::LARGE:
      w.st->app_large += bytes;
      w.st->large_blocks++;
      break;
    case SpanState::SMALL: {
      uint32_t tag = tag_strip(s.tag);
      uint32_t owner = tag_owner_field(tag) - 1, bin = tag_bin_field(tag);
      const ClassInfo& k = CLASSES[bin];
      w.st->small_spans++;
      w.st->span_waste += bytes - size_t(k.span_objs) * k.size;
      if (owner >= w.nheaps) {  // not reached: every span belongs to a registered heap
        w.st->unaccounted += size_t(k.span_objs) * k.size;
        break;
      }
      HeapAcc& h = w.heaps[owner];
      h.span_bytes += bytes;
      h.spans++;
      h.used[bin] += s.used;
      h.free[bin] += k.span_objs - s.used;
      break;
    }
  }
}

// The heap whose span holds p as an object slot of class cls (a free block of that class),
// or -1 when p is not one; p is checked before anything is read through it.
int64_t block_owner(void* p, uint32_t cls) {
  if (!in_arena(p) || uintptr_t(p) % 16 != 0) return -1;
  size_t idx = page_index(p);
  uint32_t tag = tag_strip(tag_load(idx));
  if (!tag_is_small(tag) || tag_bin_field(tag) != cls) return -1;
  Span* s = map_load(idx);
  if (!s || s->state != SpanState::SMALL || s->tag != tag || uintptr_t(p) >= s->bump_end ||
      (uintptr_t(p) - s->start) % CLASSES[cls].size != 0)
    return -1;
  return int64_t(tag_owner_field(tag)) - 1;
}

// Length of a list of cls objects of heap `id` (an inbox), following at most `bound` links,
// each checked (block_owner) before it is read.
uint64_t count_list(void* p, uint32_t id, uint32_t cls, uint64_t bound) {
  uint64_t n = 0;
  for (; p && n < bound && block_owner(p, cls) == int64_t(id); n++)
    p = __atomic_load_n(static_cast<void**>(p), __ATOMIC_RELAXED);
  return n;
}

// A thread cache's list of class cls, followed as count_list does: its blocks may belong to any
// heap (a cache keeps the blocks it adopts, heap.cc), and each counts in its own heap's share.
void count_cache_list(void* p, uint32_t cls, uint64_t bound, HeapAcc* acc, uint32_t nheaps) {
  for (uint64_t n = 0; p && n < bound; n++) {
    int64_t owner = block_owner(p, cls);
    if (owner < 0 || owner >= int64_t(nheaps)) break;
    acc[owner].cached[cls]++;
    p = __atomic_load_n(static_cast<void**>(p), __ATOMIC_RELAXED);
  }
}

// Heap h's inboxes into its share a, and, while h is LIVE, its owner's cache into the shares of
// the heaps its blocks belong to (acc, nheaps: every heap's share).
void count_heap(Heap* h, HeapAcc& a, HeapAcc* acc, uint32_t nheaps) {
  a.live = h->state.load(std::memory_order_relaxed) == HeapState::LIVE;
  for (uint32_t c = 1; c < NUM_BINS; c++) {
    void* head = h->inbox[c].load(std::memory_order_acquire);
    if (head) a.inbox[c] = count_list(head, h->id, c, a.used[c]);
  }
  ThreadCache* tc = a.live ? h->owner_cache.load(std::memory_order_acquire) : nullptr;
  if (!tc) return;
  for (uint32_t c = 1; c < NUM_BINS; c++) {
    uint64_t bound = cache_list_walk_bound(c);
    // A class's list is head[]; while the thread samples, the blocks its bound cut off the list
    // or the magazine wait in parked[] (heap.cc, "heap sampling").
    for (void** slot : {&tc->head[c], &tc->parked[c]})
      count_cache_list(__atomic_load_n(slot, __ATOMIC_RELAXED), c, bound, acc, nheaps);
    if (is_mag_bin(c)) {  // a magazine: its fill, read once, at most its cap, each slot checked
      uint64_t top = __atomic_load_n(&tc->mag_top[c], __ATOMIC_RELAXED);
      uint64_t n = top > MAG_BASE[c] ? top - MAG_BASE[c] : 0;
      if (n > CLASSES[c].cache_cap) n = CLASSES[c].cache_cap;
      for (uint64_t i = 0; i < n; i++) {
        int64_t owner =
            block_owner(__atomic_load_n(&tc->mag_slots[MAG_BASE[c] + i], __ATOMIC_RELAXED), c);
        if (owner >= 0 && owner < int64_t(nheaps)) acc[owner].cached[c]++;
      }
    }
  }
}

// Scratch space for the per-heap shares, mapped (not malloc'ed: the heap locks are held).
struct Scratch {
  HeapAcc* p = nullptr;
  size_t bytes = 0;
  ~Scratch() {
    if (p) Pal::unmap(p, bytes);
  }
};

// The snapshot. With `scratch`, the per-heap shares stay available to the caller.
bool snapshot(hz3_stats* st, Scratch* scratch, uint32_t* nheaps) {
  memset(st, 0, sizeof *st);
  st->version = HZ3_STATS_VERSION;
  global_init();
  deliver_remote_frees();
  Scratch own;
  Scratch& sc = scratch ? *scratch : own;
  uint32_t n;
  Heap* const* heaps = stats_lock_heaps(&n);
  sc.bytes = round_page(size_t(n ? n : 1) * sizeof(HeapAcc));
  sc.p = static_cast<HeapAcc*>(Pal::map(sc.bytes));  // zero-filled
  if (!sc.p) {
    stats_unlock_heaps();
    return false;
  }
  Walk w{sc.p, n, st};
  size_t span_meta = 0;
  page_heap::Stats ph = page_heap::for_each_run(on_run, &w, &span_meta);
  for (uint32_t i = 0; i < n; i++) count_heap(heaps[i], sc.p[i], sc.p, n);
  stats_unlock_heaps();

  st->heaps = n;
  for (uint32_t i = 0; i < n; i++) {
    HeapAcc& a = sc.p[i];
    st->heaps_live += a.live;
    for (uint32_t c = 1; c < NUM_BINS; c++) {
      uint64_t size = CLASSES[c].size;
      if (a.inbox[c] > a.used[c]) a.inbox[c] = a.used[c];
      if (a.cached[c] > a.used[c] - a.inbox[c]) a.cached[c] = a.used[c] - a.inbox[c];  // racy
      st->app_small += (a.used[c] - a.inbox[c] - a.cached[c]) * size;
      st->thread_caches += a.cached[c] * size;
      st->inboxes += a.inbox[c] * size;
      st->span_free += a.free[c] * size;
      st->cached_objs += a.cached[c];
      st->inbox_objs += a.inbox[c];
      st->free_objs += a.free[c];
    }
  }
  st->arena = uint64_t(ph.hwm_pages) * PAGE_SIZE;
  uint64_t parts = st->app_small + st->app_large + st->thread_caches + st->inboxes + st->span_free +
                   st->span_waste + st->pageheap_dirty + st->pageheap_released + st->unaccounted;
  // A page in no run (never, if the page heap is consistent) shows up here rather than being
  // hidden. A walk that found more than the high-water mark (a bug too) leaves the sum wrong,
  // which the tests check.
  if (parts < st->arena) st->unaccounted += st->arena - parts;
  st->free_runs = ph.free_runs;
  st->arena_reserved = g_arena.size;
  st->arena_committed = uint64_t(ph.committed_pages) * PAGE_SIZE;
  size_t huge_n, huge_bytes, huge_table;
  huge_totals(&huge_n, &huge_bytes, &huge_table);
  st->huge = huge_bytes;
  st->huge_blocks = huge_n;
  size_t heap_chunks = (n + 63) / 64;  // heap records are mapped 64 at a time (heap.cc)
  st->metadata = span_meta + heap_chunks * 64 * sizeof(Heap) +
                 round_page(ph.hwm_pages * sizeof(uint32_t)) +
                 round_page(ph.hwm_pages * sizeof(Span*)) + huge_table;
  OutsideStats os = outside_stats();
  st->outside = os.mapped_bytes;
  st->outside_used = os.used_bytes;
  st->outside_chunks = os.chunks;
  st->mapped = st->arena + st->huge + st->outside + st->metadata;
  st->app_total = st->app_small + st->app_large + st->huge + st->outside_used;
  if (nheaps) *nheaps = n;
  return true;
}

size_t clamp_int(uint64_t v) { return v > uint64_t(INT_MAX) ? size_t(INT_MAX) : size_t(v); }

struct mallinfo2 to_mallinfo2(const hz3_stats& s) {
  struct mallinfo2 m;
  memset(&m, 0, sizeof m);
  m.arena = s.arena;                       // non-mmapped space: arena pages handed out
  m.ordblks = s.free_runs;                 // free blocks: the page heap's free runs
  m.smblks = s.cached_objs;                // "fastbin" blocks: objects in thread caches
  m.hblks = s.huge_blocks;                 // mmapped blocks
  m.hblkhd = s.huge;                       // their bytes
  m.usmblks = 0;                           // unused, as in glibc
  m.fsmblks = s.thread_caches;             // bytes in "fastbins": thread caches
  m.uordblks = s.app_small + s.app_large;  // in use in the arena
  m.fordblks = s.arena - m.uordblks;       // free in the arena (caches included)
  m.keepcost = s.pageheap_dirty;           // what malloc_trim would give back now
  return m;
}

// One ledger line: marker (' ', '+', '='), bytes, MiB, label.
void ledger_line(char*& out, char* end, char mark, uint64_t bytes, const char* label) {
  int n = snprintf(out, size_t(end - out), "%c %15llu (%10.1f MiB)  %s\n", mark,
                   static_cast<unsigned long long>(bytes), double(bytes) / (1 << 20), label);
  if (n > 0) out += n < end - out ? n : end - out - 1;
}

}  // namespace

bool stats_snapshot(hz3_stats* out) { return snapshot(out, nullptr, nullptr); }

}  // namespace hz3

using namespace hz3;

HZ3_EXPORT_C struct mallinfo2 HZ3_API(mallinfo2)(void) noexcept {
  hz3_stats s;
  snapshot(&s, nullptr, nullptr);
  return to_mallinfo2(s);
}

// The same fields clamped to INT_MAX (glibc's int fields simply wrap).
HZ3_EXPORT_C struct mallinfo HZ3_API(mallinfo)(void) noexcept {
  hz3_stats s;
  snapshot(&s, nullptr, nullptr);
  struct mallinfo2 m2 = to_mallinfo2(s);
  struct mallinfo m;
  m.arena = int(clamp_int(m2.arena));
  m.ordblks = int(clamp_int(m2.ordblks));
  m.smblks = int(clamp_int(m2.smblks));
  m.hblks = int(clamp_int(m2.hblks));
  m.hblkhd = int(clamp_int(m2.hblkhd));
  m.usmblks = int(clamp_int(m2.usmblks));
  m.fsmblks = int(clamp_int(m2.fsmblks));
  m.uordblks = int(clamp_int(m2.uordblks));
  m.fordblks = int(clamp_int(m2.fordblks));
  m.keepcost = int(clamp_int(m2.keepcost));
  return m;
}

// The ledger on stderr: lines marked '+' add up to the next '=' line (docs/stats.md).
HZ3_EXPORT_C void HZ3_API(malloc_stats)(void) noexcept {
  hz3_stats s;
  snapshot(&s, nullptr, nullptr);
  char buf[4096], lab[160];
  char *o = buf, *e = buf + sizeof buf;
  o += snprintf(o, size_t(e - o),
                "------------------------------------------------------------------------\n"
                "hz3 malloc_stats (bytes; other threads' caches are a racy snapshot)\n");
  ledger_line(o, e, ' ', s.app_small, "in use by application: small/medium objects");
  snprintf(lab, sizeof lab, "in use by application: large blocks (%llu)",
           static_cast<unsigned long long>(s.large_blocks));
  ledger_line(o, e, '+', s.app_large, lab);
  snprintf(lab, sizeof lab, "in thread caches (%llu objects)",
           static_cast<unsigned long long>(s.cached_objs));
  ledger_line(o, e, '+', s.thread_caches, lab);
  snprintf(lab, sizeof lab, "in remote-free inboxes (%llu objects)",
           static_cast<unsigned long long>(s.inbox_objs));
  ledger_line(o, e, '+', s.inboxes, lab);
  snprintf(lab, sizeof lab, "free in spans (%llu objects in %llu spans)",
           static_cast<unsigned long long>(s.free_objs),
           static_cast<unsigned long long>(s.small_spans));
  ledger_line(o, e, '+', s.span_free, lab);
  ledger_line(o, e, '+', s.span_waste, "span tails no object fits into");
  ledger_line(o, e, '+', s.pageheap_dirty, "page heap: free, dirty (resident)");
  ledger_line(o, e, '+', s.pageheap_released, "page heap: free, released (not resident)");
  if (s.unaccounted) ledger_line(o, e, '+', s.unaccounted, "unaccounted (a bug: please report)");
  ledger_line(o, e, '=', s.arena, "arena pages handed out (high-water mark)");
  snprintf(lab, sizeof lab, "huge blocks (%llu, mmap'ed outside the arena)",
           static_cast<unsigned long long>(s.huge_blocks));
  ledger_line(o, e, '+', s.huge, lab);
  if (s.outside) {
    snprintf(lab, sizeof lab, "small/medium outside the full arena (%llu chunks, %llu in use)",
             static_cast<unsigned long long>(s.outside_chunks),
             static_cast<unsigned long long>(s.outside_used));
    ledger_line(o, e, '+', s.outside, lab);
  }
  ledger_line(o, e, '+', s.metadata, "metadata (span records, heaps, tag and page maps)");
  ledger_line(o, e, '=', s.mapped, "mapped");
  o += snprintf(o, size_t(e - o),
                "------------------------------------------------------------------------\n"
                "in use by application, total: %llu bytes (small/medium + large + huge + outside)\n"
                "arena: %llu bytes reserved, %llu committed; %llu free runs\n"
                "heaps: %u (%u live)\n",
                static_cast<unsigned long long>(s.app_total),
                static_cast<unsigned long long>(s.arena_reserved),
                static_cast<unsigned long long>(s.arena_committed),
                static_cast<unsigned long long>(s.free_runs), s.heaps, s.heaps_live);
  fputs(buf, stderr);
}

// glibc's XML layout (version 1): one <heap> per hz3 heap with its free objects per class in
// <sizes>, "fast" = its blocks in thread caches (its own thread's, and those other threads
// adopted), "rest" = its inboxes and free objects in its spans,
// "current"/"max"/"aspace" = its spans' bytes; then the totals, where "rest" adds the page
// heap's free runs, "mmap" is the huge blocks, "current"/"max" the arena pages handed out (a
// high-water mark already) and "aspace" the committed arena.
HZ3_EXPORT_C int HZ3_API(malloc_info)(int options, FILE* fp) noexcept {
  if (options != 0) return EINVAL;  // glibc: the error number is the result, errno untouched
  hz3_stats s;
  Scratch sc;
  uint32_t n = 0;
  if (!snapshot(&s, &sc, &n)) return -1;
  auto ull = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  fputs("<malloc version=\"1\">\n", fp);
  for (uint32_t i = 0; i < n; i++) {
    const HeapAcc& a = sc.p[i];
    uint64_t fast_n = 0, fast_b = 0, rest_n = 0, rest_b = 0;
    fprintf(fp, "<heap nr=\"%u\">\n<sizes>\n", i);
    for (uint32_t c = 1; c < NUM_BINS; c++) {
      uint64_t size = CLASSES[c].size;
      if (a.free[c])
        fprintf(fp, "  <size from=\"%llu\" to=\"%llu\" total=\"%llu\" count=\"%llu\"/>\n",
                ull(size), ull(size), ull(a.free[c] * size), ull(a.free[c]));
      fast_n += a.cached[c];
      fast_b += a.cached[c] * size;
      rest_n += a.free[c] + a.inbox[c];
      rest_b += (a.free[c] + a.inbox[c]) * size;
    }
    fprintf(fp,
            "</sizes>\n<total type=\"fast\" count=\"%llu\" size=\"%llu\"/>\n"
            "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n"
            "<system type=\"current\" size=\"%llu\"/>\n<system type=\"max\" size=\"%llu\"/>\n"
            "<aspace type=\"total\" size=\"%llu\"/>\n<aspace type=\"mprotect\" size=\"%llu\"/>\n"
            "</heap>\n",
            ull(fast_n), ull(fast_b), ull(rest_n), ull(rest_b), ull(a.span_bytes),
            ull(a.span_bytes), ull(a.span_bytes), ull(a.span_bytes));
  }
  fprintf(fp,
          "<total type=\"fast\" count=\"%llu\" size=\"%llu\"/>\n"
          "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n"
          "<total type=\"mmap\" count=\"%llu\" size=\"%llu\"/>\n"
          "<system type=\"current\" size=\"%llu\"/>\n<system type=\"max\" size=\"%llu\"/>\n"
          "<aspace type=\"total\" size=\"%llu\"/>\n<aspace type=\"mprotect\" size=\"%llu\"/>\n"
          "</malloc>\n",
          ull(s.cached_objs), ull(s.thread_caches), ull(s.free_objs + s.inbox_objs + s.free_runs),
          ull(s.span_free + s.inboxes + s.pageheap_dirty + s.pageheap_released), ull(s.huge_blocks),
          ull(s.huge), ull(s.arena), ull(s.arena), ull(s.arena_committed), ull(s.arena_committed));
  return 0;
}

// hz3 has no runtime knobs. An option is accepted (1, glibc's "success") only where ignoring
// it keeps what the caller asked for: arena limits (hz3's per-thread heaps have no arenas to
// cap) and the thresholds for giving memory back (hz3's bounded schedule already does), and
// M_PERTURB 0 (no fill, which is what hz3 does). Everything else, unknown options included,
// returns 0 (glibc returns 1 for options it does not know). docs/stats.md has the table.
HZ3_EXPORT_C int HZ3_API(mallopt)(int param, int value) noexcept {
  switch (param) {
    case M_ARENA_MAX:
    case M_ARENA_TEST:
    case M_MMAP_THRESHOLD:
    case M_TRIM_THRESHOLD:
    case M_TOP_PAD:
      return 1;
    case M_PERTURB:
      return value == 0;
    default:
      return 0;
  }
}
