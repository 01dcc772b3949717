// Arena reservation, the PageTagMap writes, and the page heap (see arena.h).
#include "arena.h"

#include <string.h>

#include <atomic>

#include "hz3/hz3.h"
#include "pal.h"
#include "probes.h"

extern "C" {
// The descriptor tracers read from a live process (include/hz3/hz3.h).
__attribute__((visibility("default"))) struct hz3_arena_desc hz3_arena_desc;
}

namespace hz3 {

// The tag encoding and page size as the public header documents them for tracers
// (hz3top/model.h checks the BPF side's copies, probes/hz3_events.h, against the same macros).
static_assert(TAG_BIN_LARGE == HZ3_TAG_BIN_LARGE && TAG_OWNER_LARGE == HZ3_TAG_OWNER_LARGE &&
              MAX_HEAPS == HZ3_TAG_OWNER_MAX && PAGE_SHIFT == HZ3_PAGE_SHIFT);
static_assert(tag_owner_field(TAG_LARGE) == HZ3_TAG_OWNER(TAG_LARGE) &&
              tag_strip(tag_bin_field(TAG_LARGE | TAG_SAMPLED)) ==
                  HZ3_TAG_BIN(TAG_LARGE | TAG_SAMPLED));
// The run states as the descriptor documents them.
static_assert(uint8_t(SpanState::FREE_DIRTY) == HZ3_SPAN_FREE_DIRTY &&
              uint8_t(SpanState::FREE_RELEASED) == HZ3_SPAN_FREE_RELEASED &&
              uint8_t(SpanState::SMALL) == HZ3_SPAN_SMALL &&
              uint8_t(SpanState::LARGE) == HZ3_SPAN_LARGE && sizeof(SpanState) == 1);
static_assert(sizeof(uintptr_t) == 8 && sizeof(Span*) == 8 && sizeof(Span) < 0x10000);

ArenaGlobals g_arena;  // zero until arena_init: every lookup misses
HardSecrets g_hard;
HardBin g_hard_bins[NUM_BINS];

namespace {

uintptr_t g_hard_live[HARD_SHIFT_MAX + 1];  // hardened: the size table of each alignment

constexpr size_t BUCKETS = 128;  // exact free lists for runs of 1..128 pages; one list above
constexpr size_t COMMIT_STEP_PAGES = 8192;  // commit the arena 32 MiB at a time
constexpr size_t DIRTY_MIN_PAGES = (size_t{HZ3_DIRTY_MIN_MIB} << 20) >> PAGE_SHIFT;

Mutex g_init_lock;
bool g_init_done;
bool g_init_failed;

// All state below is guarded by g_lock.
Mutex g_lock;
size_t g_npages;     // pages in the arena
size_t g_hwm;        // pages ever handed out
size_t g_committed;  // pages made read-write
size_t g_dirty;      // pages in FREE_DIRTY runs
size_t g_released;   // pages in FREE_RELEASED runs
size_t g_free_runs;
Span* g_free[2][BUCKETS + 1];  // [0] dirty, [1] released; index min(npages, BUCKETS+1)-1
Span* g_lru_head;              // dirty runs, oldest first
Span* g_lru_tail;

// Span records come from metadata chunks and are recycled through a free list.
Span* g_span_pool;
char* g_meta_cur;
char* g_meta_end;
size_t g_meta_mapped;  // bytes of metadata chunks (statistics)

void* meta_alloc(size_t bytes) {
  bytes = (bytes + 15) & ~size_t{15};
  if (size_t(g_meta_end - g_meta_cur) < bytes) {
    size_t chunk = bytes > (1u << 20) ? bytes : (1u << 20);
    char* c = static_cast<char*>(Pal::map(chunk));
    if (!c) return nullptr;
    g_meta_mapped += chunk;
    g_meta_cur = c;
    g_meta_end = c + chunk;
  }
  void* p = g_meta_cur;
  g_meta_cur += bytes;
  return p;
}

Span* span_new() {
  Span* s = g_span_pool;
  if (s) {
    g_span_pool = s->next;
  } else {
    s = static_cast<Span*>(meta_alloc(sizeof(Span)));
    if (!s) return nullptr;
  }
  memset(s, 0, sizeof *s);
  return s;
}

void span_delete(Span* s) {
  s->state = SpanState::FREE_DIRTY;
  s->tag = 0;
  s->next = g_span_pool;
  g_span_pool = s;
}

// VARIANT=check: one allocation bitmap per small span, fixed size, recycled through a list.
constexpr size_t BITMAP_BYTES = [] {
  uint32_t most = 0;
  for (uint32_t c = 1; c < NUM_BINS; c++)
    most = CLASSES[c].span_objs > most ? CLASSES[c].span_objs : most;
  return (most + 63) / 64 * 8;
}();
uint64_t* g_bitmap_pool;

uint64_t* bitmap_new() {
  uint64_t* b = g_bitmap_pool;
  if (b) {
    g_bitmap_pool = reinterpret_cast<uint64_t*>(b[0]);
    return b;
  }
  return static_cast<uint64_t*>(meta_alloc(BITMAP_BYTES));
}

void bitmap_delete(uint64_t* b) {
  b[0] = reinterpret_cast<uint64_t>(g_bitmap_pool);
  g_bitmap_pool = b;
}

size_t idx_of(uintptr_t addr) { return (addr - g_arena.base) >> PAGE_SHIFT; }

void map_set(size_t idx, Span* s) { __atomic_store_n(&g_arena.map[idx], s, __ATOMIC_RELAXED); }
void tag_set(size_t idx, uint32_t t) { __atomic_store_n(&g_arena.tags[idx], t, __ATOMIC_RELAXED); }

// A free run is findable from its neighbours through its first and last page-map entries.
void map_ends(Span* s) {
  size_t i = idx_of(s->start);
  map_set(i, s);
  map_set(i + s->npages - 1, s);
}

Span*& bucket(const Span* s) {
  size_t b = s->npages > BUCKETS ? BUCKETS : s->npages - 1;
  return g_free[s->state == SpanState::FREE_RELEASED][b];
}

void list_push(Span*& head, Span* s) {
  s->prev = nullptr;
  s->next = head;
  if (head) head->prev = s;
  head = s;
}

void list_remove(Span*& head, Span* s) {
  if (s->prev)
    s->prev->next = s->next;
  else
    head = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = nullptr;
}

void lru_append(Span* s) {
  s->lru_next = nullptr;
  s->lru_prev = g_lru_tail;
  if (g_lru_tail)
    g_lru_tail->lru_next = s;
  else
    g_lru_head = s;
  g_lru_tail = s;
}

void lru_remove(Span* s) {
  if (s->lru_prev)
    s->lru_prev->lru_next = s->lru_next;
  else
    g_lru_head = s->lru_next;
  if (s->lru_next)
    s->lru_next->lru_prev = s->lru_prev;
  else
    g_lru_tail = s->lru_prev;
  s->lru_next = s->lru_prev = nullptr;
}

// Adds a free run (state FREE_DIRTY or FREE_RELEASED already set) to the free structures.
void insert_free(Span* s) {
  list_push(bucket(s), s);
  map_ends(s);
  g_free_runs++;
  if (s->state == SpanState::FREE_DIRTY) {
    g_dirty += s->npages;
    lru_append(s);
  } else {
    g_released += s->npages;
  }
}

void remove_free(Span* s) {
  list_remove(bucket(s), s);
  g_free_runs--;
  if (s->state == SpanState::FREE_DIRTY) {
    g_dirty -= s->npages;
    lru_remove(s);
  } else {
    g_released -= s->npages;
  }
}

Span* free_neighbour(size_t idx, SpanState state) {
  if (idx >= g_hwm) return nullptr;
  Span* n = g_arena.map[idx];
  return n && n->state == state ? n : nullptr;
}

// Merges s (not yet inserted) with free neighbours of the same state, then inserts it. Runs of
// different states are kept apart so "released" stays exact and dirty accounting stays honest.
void coalesce_insert(Span* s) {
  size_t i = idx_of(s->start);
  if (i > 0) {
    if (Span* l = free_neighbour(i - 1, s->state)) {
      remove_free(l);
      map_set(i - 1, nullptr);  // interior boundaries never keep stale records
      map_set(i, nullptr);
      s->start = l->start;
      s->dirty_since_ms =
          l->dirty_since_ms > s->dirty_since_ms ? l->dirty_since_ms : s->dirty_since_ms;
      s->npages += l->npages;
      s->zeroed = s->zeroed && l->zeroed;
      span_delete(l);
      i = idx_of(s->start);
    }
  }
  size_t r = i + s->npages;
  if (Span* n = free_neighbour(r, s->state)) {
    remove_free(n);
    map_set(r - 1, nullptr);
    map_set(r, nullptr);
    s->npages += n->npages;
    s->zeroed = s->zeroed && n->zeroed;
    span_delete(n);
  }
  insert_free(s);
}

// A run reads as zero only if the madvise that released it succeeded. When it failed (an
// mlock'ed page in the run, or mlockall), part of the run keeps its old bytes: it still moves to
// the released lists, so the schedule does not retry it on every visit, but as not zeroed, so
// calloc clears it.
void release_run(Span* s) {
  remove_free(s);
  bool zero = Pal::decommit(reinterpret_cast<void*>(s->start), size_t(s->npages) * PAGE_SIZE);
  if constexpr (HARDENED) {  // the run's size entries (all 0: no block is live), whole pages
    for (uint32_t sh = HARD_SHIFT_MIN; sh <= HARD_SHIFT_MAX; sh++) {
      uintptr_t lo = g_hard_live[sh] + ((s->start - g_arena.base) >> sh) * 2;
      uintptr_t hi = lo + ((size_t(s->npages) * PAGE_SIZE) >> sh) * 2;
      lo = (lo + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
      hi &= ~(PAGE_SIZE - 1);
      if (lo < hi) (void)Pal::decommit(reinterpret_cast<void*>(lo), hi - lo);
    }
  }
  s->state = SpanState::FREE_RELEASED;
  s->zeroed = zero;
  coalesce_insert(s);
}

// Pages in use (small/medium spans and large blocks): the arena's high-water mark less its free
// runs. Its peak over the current and the previous window sizes the dirty bound.
size_t g_peak_cur, g_peak_prev;
uint64_t g_peak_window_start;

size_t in_use_pages() { return g_hwm - g_dirty - g_released; }

// Called at every page-heap visit: after a window without visits the older peak is forgotten too.
void note_peak(uint64_t now) {
  if (now - g_peak_window_start >= HZ3_PEAK_WINDOW_MS) {
    bool skipped = now - g_peak_window_start >= 2 * HZ3_PEAK_WINDOW_MS;
    g_peak_prev = skipped ? 0 : g_peak_cur;
    g_peak_cur = 0;
    g_peak_window_start = now;
  }
  size_t u = in_use_pages();
  if (u > g_peak_cur) g_peak_cur = u;
}

bool scavenger_running();

size_t dirty_cap() {
  if (!scavenger_running()) return DIRTY_MIN_PAGES;
  size_t peak = g_peak_cur > g_peak_prev ? g_peak_cur : g_peak_prev;
  size_t cap = peak >> HZ3_DIRTY_PEAK_SHIFT;
  return cap > DIRTY_MIN_PAGES ? cap : DIRTY_MIN_PAGES;
}

// The bounded schedule, run at every page-heap visit and by the scavenger: never more than
// dirty_cap() resident-but-free (released down to three quarters of it, so a burst of frees pays
// one madvise per run, not one per free; oldest first), and nothing dirty for longer than the
// decay time.
void maybe_release(uint64_t now) {
  note_peak(now);
  size_t cap = dirty_cap();
  if (g_dirty > cap) {
    while (g_lru_head && g_dirty > cap - cap / 4) release_run(g_lru_head);
  }
  while (g_lru_head && now - g_lru_head->dirty_since_ms >= HZ3_DIRTY_DECAY_MS)
    release_run(g_lru_head);
}

// ---- the scavenger: a thread that releases aged dirty runs when nobody calls the allocator ----
//
// It wakes every half decay time while anything is dirty, and sleeps on a futex with no deadline
// while nothing is: the free that next leaves pages dirty wakes it (a syscall, no lock). It calls
// nothing but the page heap, and blocks every signal.
//
// It is started only from an allocation slow path (scavenger_poll), once some page is dirty, and
// never from a free: pthread_create allocates, so it must not run under any allocator lock, and
// glibc calls free while holding locks pthread_create takes (its stack cache lock, when it
// trims cached thread stacks), while it takes none of those around malloc. Its stack is a large
// block of the arena taken when the arena is reserved (kept for good; after fork the child's copy
// is unused and its own scavenger takes it again), so starting it later takes no memory or
// address space a program at its limits was counting on.
// Until it runs, the dirty bound stays at its minimum: only a running scavenger can promise
// that the extra dirty pages of a larger bound come back when the program goes idle.
enum : int { SCAV_NONE, SCAV_STARTING, SCAV_RUNNING, SCAV_FAILED };
std::atomic<int> g_scav_state{SCAV_NONE};
uint64_t g_scav_retry_ms;  // after a failed start, not before this
void* g_scav_stack;        // set by the one thread that starts the scavenger
constexpr size_t SCAV_STACK_BYTES = 256 * 1024;
uint32_t g_scav_idle;  // futex word, guarded by g_lock: 1 while the scavenger waits without
                       // a deadline
std::atomic<bool> g_scav_wanted{false};  // some page became dirty while none ran

void* scavenger_main(void*) {
  for (;;) {
    bool idle;
    {
      LockGuard g(g_lock);
      maybe_release(Pal::now_ms());
      idle = g_dirty == 0;
      __atomic_store_n(&g_scav_idle, idle ? 1 : 0, __ATOMIC_RELAXED);
    }
    // The word's value as just stored: a wait on any other value returns at once, and the loop
    // would spin on g_lock while pages are dirty.
    Pal::futex_wait(&g_scav_idle, idle ? 1 : 0, idle ? 0 : HZ3_DIRTY_DECAY_MS / 2);
  }
  return nullptr;
}

bool scavenger_running() { return g_scav_state.load(std::memory_order_relaxed) == SCAV_RUNNING; }

// Under g_lock, after pages became dirty: whether the caller must wake the scavenger.
bool scavenger_needs_wake() {
  if (g_dirty > 0 && !scavenger_running()) g_scav_wanted.store(true, std::memory_order_relaxed);
  if (__atomic_load_n(&g_scav_idle, __ATOMIC_RELAXED) == 0 || g_dirty == 0) return false;
  __atomic_store_n(&g_scav_idle, 0, __ATOMIC_RELAXED);
  return true;
}

// Cuts [s->start + off_pages, + npages) out of free run s; the rest goes back as free runs of
// the same state. Returns the record for the cut-out part.
Span* carve(Span* s, size_t off_pages, size_t npages) {
  remove_free(s);
  size_t total = s->npages;
  SpanState st = s->state;
  if (off_pages > 0) {
    Span* head = span_new();
    if (!head) {  // out of metadata: give up cleanly, nothing changed
      insert_free(s);
      return nullptr;
    }
    head->start = s->start;
    head->npages = uint32_t(off_pages);
    head->state = st;
    head->zeroed = s->zeroed;
    head->dirty_since_ms = s->dirty_since_ms;
    s->start += off_pages * PAGE_SIZE;
    s->npages = uint32_t(total - off_pages);
    insert_free(head);
  }
  size_t rest = s->npages - npages;
  if (rest > 0) {
    Span* tail = span_new();
    if (!tail) {
      s->state = st;
      coalesce_insert(s);
      return nullptr;
    }
    tail->start = s->start + npages * PAGE_SIZE;
    tail->npages = uint32_t(rest);
    tail->state = st;
    tail->zeroed = s->zeroed;
    tail->dirty_since_ms = s->dirty_since_ms;
    s->npages = uint32_t(npages);
    insert_free(tail);
  }
  return s;
}

// Best fit among runs of one state that can hold npages at align_pages alignment.
Span* find_fit(int released, size_t npages, size_t align_pages, size_t* off) {
  size_t need = npages + align_pages - 1;
  size_t first = (need > BUCKETS ? BUCKETS : need - 1);
  Span* best = nullptr;
  for (size_t b = first; b <= BUCKETS; b++) {
    for (Span* s = g_free[released][b]; s; s = s->next) {
      size_t mis =
          (s->start >> PAGE_SHIFT) & (align_pages - 1);  // absolute: base may be less aligned
      size_t o = mis ? align_pages - mis : 0;
      if (s->npages < npages + o) continue;
      if (!best || s->npages < best->npages) {
        best = s;
        *off = o;
      }
      if (b < BUCKETS) break;  // exact-size bucket: any member is as good as another
    }
    if (best) return best;
  }
  return nullptr;
}

// Takes fresh pages from the top of the arena, committing in large steps.
Span* grow(size_t npages, size_t align_pages) {
  // Align the absolute address, not the index: the arena base is only page (or THP) aligned.
  size_t base_page = g_arena.base >> PAGE_SHIFT;
  size_t start = ((base_page + g_hwm + align_pages - 1) & ~(align_pages - 1)) - base_page;
  if (start + npages > g_npages || start + npages < start) return nullptr;
  size_t end = start + npages;
  if (end > g_committed) {
    size_t target = (end + COMMIT_STEP_PAGES - 1) / COMMIT_STEP_PAGES * COMMIT_STEP_PAGES;
    if (target > g_npages) target = g_npages;
    if (!Pal::commit(reinterpret_cast<void*>(g_arena.base + g_committed * PAGE_SIZE),
                     (target - g_committed) * PAGE_SIZE))
      return nullptr;
    if constexpr (HARDENED) {
      // Fault one page of the new range now, so the whole committed VMA gets its anon_vma before
      // guard pages split it. Pieces split off a VMA without one fault separately, get anon_vmas
      // of their own and can never merge again once the guards are gone: /proc/PID/maps would
      // keep growing with the history of large blocks instead of following the live ones.
      *reinterpret_cast<volatile char*>(g_arena.base + g_committed * PAGE_SIZE) = 0;
    }
    g_committed = target;
    __atomic_store_n(&hz3_arena_desc.committed_pages, uint64_t(g_committed), __ATOMIC_RELAXED);
  }
  Span* s = span_new();
  if (!s) return nullptr;
  if (start > g_hwm) {  // alignment gap becomes a free (zeroed, never touched) run
    Span* gap = span_new();
    if (!gap) {
      span_delete(s);
      return nullptr;
    }
    gap->start = g_arena.base + g_hwm * PAGE_SIZE;
    gap->npages = uint32_t(start - g_hwm);
    gap->state = SpanState::FREE_RELEASED;
    gap->zeroed = true;
    g_hwm = start;
    coalesce_insert(gap);
  }
  s->start = g_arena.base + start * PAGE_SIZE;
  s->npages = uint32_t(npages);
  s->zeroed = true;
  g_hwm = end;
  __atomic_store_n(&hz3_arena_desc.hwm_pages, uint64_t(g_hwm), __ATOMIC_RELAXED);
  return s;
}

// No dirty run holds npages: reuse the resident pages of a recent dirty run that is long enough
// together with the released run right after it, or with fresh pages when it ends at the top of
// the arena. Only the pages that were not resident fault in (a large-block churn replacing a
// block with a slightly bigger one would otherwise fault in every page of the new block). The
// result is not zeroed; calloc clears it. Looks at the 32 most recently freed runs.
Span* extend_dirty(size_t npages) {
  int looked = 0;
  for (Span* d = g_lru_tail; d && looked < 32; d = d->lru_prev, looked++) {
    size_t end = idx_of(d->end());
    size_t extra = npages - d->npages;  // d->npages < npages: no dirty run fits
    Span* more;
    if (end == g_hwm) {
      if (g_hwm + extra > g_npages) continue;
      more = grow(extra, 1);  // starts at the old high-water mark, right after d
    } else {
      Span* n = g_arena.map[end];
      if (!n || n->state != SpanState::FREE_RELEASED || d->npages + n->npages < npages) continue;
      more = carve(n, 0, extra);
    }
    if (!more) continue;
    map_set(end, nullptr);  // interior boundaries keep no stale records
    map_set(end + extra - 1, nullptr);
    remove_free(d);
    map_set(end - 1, nullptr);
    d->npages += uint32_t(extra);
    d->zeroed = false;
    span_delete(more);
    return d;
  }
  return nullptr;
}

// from_tail: cut the pages from the end of the free run chosen (small and medium spans do), so
// that the first page of a large block freed there stays free — and its tag 0 — as long as
// possible: a second free of that block is then caught as an invalid pointer, not taken for
// the first object of a span that now starts at the same address.
Span* alloc_run(size_t npages, size_t align_pages, bool from_tail = false) {
  if (g_arena.size == 0 || npages == 0 || npages > g_npages) return nullptr;
  if (g_lru_head) {  // a visit: runs past their decay time go before one may be reused
    uint64_t now = Pal::now_ms();
    if (now - g_lru_head->dirty_since_ms >= HZ3_DIRTY_DECAY_MS) maybe_release(now);
  }
  // A full arena answers at once: no bucket scan for every fallback allocation.
  if (npages > g_dirty + g_released + (g_npages - g_hwm)) return nullptr;
  size_t off = 0;
  for (int released = 0; released < 2; released++) {
    if (Span* s = find_fit(released, npages, align_pages, &off))
      return carve(s, from_tail && align_pages == 1 ? s->npages - npages : off, npages);
    if (!released && align_pages == 1 && npages > 1 && g_dirty > 0 && !from_tail)
      if (Span* s = extend_dirty(npages)) return s;
  }
  return grow(npages, align_pages);
}

}  // namespace

// Only the bit changes: a concurrent set or clear of the whole tag cannot happen while the page
// holds a live (sampled) block.
void tag_mark_sampled(size_t idx) {
  __atomic_fetch_or(&g_arena.tags[idx], TAG_SAMPLED, __ATOMIC_RELAXED);
}
void tag_unmark_sampled(size_t idx) {
  __atomic_fetch_and(&g_arena.tags[idx], ~TAG_SAMPLED, __ATOMIC_RELAXED);
}

bool arena_init() {
  LockGuard g(g_init_lock);
  if (g_init_done) return !g_init_failed;
  g_init_done = true;
  size_t size = ARENA_MAX_BYTES;
  for (; size >= (size_t{HZ3_ARENA_MIN_MIB} << 20); size /= 2) {
    size_t npages = size >> PAGE_SHIFT;
    // The fixed layout when both ranges are free, else the kernel's choice (arena.h).
    void* base = FIXED_BASE ? Pal::reserve_at(FIXED_BASE, size) : nullptr;
    void* tags = base ? Pal::map_sparse_at(FIXED_TAGS, npages * sizeof(uint32_t)) : nullptr;
    bool fixed = tags != nullptr;
    if (base && !tags) {
      Pal::unmap(base, size);
      base = nullptr;
    }
    if (!base) base = Pal::reserve(size);
    if (!base) continue;
    if (!tags) tags = Pal::map_sparse(npages * sizeof(uint32_t));
    void* map = tags ? Pal::map_sparse(npages * sizeof(Span*)) : nullptr;
    size_t live_bytes = 0;  // hardened: the size tables, one per class alignment
    for (uint32_t sh = HARD_SHIFT_MIN; sh <= HARD_SHIFT_MAX; sh++) live_bytes += (size >> sh) * 2;
    void* live = map && HARDENED ? Pal::map_sparse(live_bytes) : nullptr;
    if (!map || (HARDENED && !live)) {
      if (map) Pal::unmap(map, npages * sizeof(Span*));
      if (tags) Pal::unmap(tags, npages * sizeof(uint32_t));
      Pal::unmap(base, size);
      continue;
    }
    if constexpr (HARDENED) {
      Pal::name(live, live_bytes, "hz3-livesizes");
      uintptr_t t = uintptr_t(live);
      for (uint32_t sh = HARD_SHIFT_MIN; sh <= HARD_SHIFT_MAX; sh++) {
        g_hard_live[sh] = t;
        t += (size >> sh) * 2;
      }
      for (uint32_t c = 1; c < NUM_BINS; c++) {
        uint32_t sh = uint32_t(__builtin_ctz(CLASSES[c].align));
        g_hard_bins[c] = {g_hard_live[sh] - (uintptr_t(base) >> sh) * 2, sh, CLASSES[c].align - 1u,
                          0};
      }
    }
    Pal::name(base, size, "hz3-arena");
    Pal::name(tags, npages * sizeof(uint32_t), "hz3-pagetags");
    g_npages = npages;
    g_arena.tags = static_cast<uint32_t*>(tags);
    g_arena.map = static_cast<Span**>(map);
    g_arena.base = uintptr_t(base);
    hz3_arena_desc.version = HZ3_DESC_VERSION;
    hz3_arena_desc.page_shift = PAGE_SHIFT;
    hz3_arena_desc.base = uintptr_t(base);
    hz3_arena_desc.size = size;
    hz3_arena_desc.tags = uintptr_t(tags);
    hz3_arena_desc.nclasses = NUM_CLASSES;
    hz3_arena_desc.max_heaps = MAX_HEAPS;
    static uint32_t class_size[NUM_BINS];
    for (uint32_t c = 1; c < NUM_BINS; c++) class_size[c] = CLASSES[c].size;
    hz3_arena_desc.class_size = uintptr_t(class_size);
    static uint32_t class_objs[NUM_BINS];
    for (uint32_t c = 1; c < NUM_BINS; c++) class_objs[c] = CLASSES[c].span_objs;
    hz3_arena_desc.class_objs = uintptr_t(class_objs);
    hz3_arena_desc.map = uintptr_t(map);
    hz3_arena_desc.span = {uint16_t(sizeof(Span)),           uint16_t(offsetof(Span, start)),
                           uint16_t(offsetof(Span, npages)), uint16_t(offsetof(Span, tag)),
                           uint16_t(offsetof(Span, state)),  uint16_t(offsetof(Span, used)),
                           uint16_t(LARGE_GUARD_PAGES),      0};
    // Publish last: a reader that sees size != 0 sees base, tags and map.
    __atomic_store_n(&g_arena.size, uintptr_t(size), __ATOMIC_RELEASE);
    if (fixed) __atomic_store_n(&g_arena.fixed_pages, uintptr_t(npages), __ATOMIC_RELEASE);
    __atomic_store_n(&hz3_arena_desc.magic, HZ3_DESC_MAGIC, __ATOMIC_RELEASE);
    if (Span* st = page_heap::alloc_large(SCAV_STACK_BYTES >> PAGE_SHIFT, 1))  // untouched: free
      g_scav_stack = reinterpret_cast<void*>(st->start);
    return true;
  }
  g_init_failed = true;
  return false;
}

namespace page_heap {

Span* alloc_small(uint32_t npages, uint32_t tag, uint32_t obj_size, uint32_t nobjs) {
  LockGuard g(g_lock);
  Span* s = alloc_run(npages, 1, /*from_tail=*/true);
  if (!s) return nullptr;
  if constexpr (CHECK) {
    s->alloc_bits = bitmap_new();
    if (!s->alloc_bits) {
      s->state = SpanState::FREE_DIRTY;
      s->dirty_since_ms = Pal::now_ms();
      coalesce_insert(s);
      return nullptr;
    }
    memset(s->alloc_bits, 0, BITMAP_BYTES);
  }
  s->state = SpanState::SMALL;
  s->tag = tag;
  s->used = 0;
  s->free_list = nullptr;
  s->bump = s->start;
  s->bump_end = s->start + uintptr_t(obj_size) * nobjs;
  size_t i = idx_of(s->start);
  for (size_t k = 0; k < npages; k++) {
    map_set(i + k, s);
    tag_set(i + k, tag);
  }
  HZ3_PROBE(tag_set, (uint64_t)i, npages, tag_bin_field(tag), tag_owner_field(tag));
  note_peak(Pal::now_ms());
  return s;
}

Span* alloc_large(size_t npages, size_t align_pages) {
  LockGuard g(g_lock);
  Span* s = alloc_run(npages + LARGE_GUARD_PAGES, align_pages);
  if (!s) return nullptr;
  if constexpr (HARDENED)
    Pal::protect_none(reinterpret_cast<void*>(s->end() - PAGE_SIZE), PAGE_SIZE);
  s->state = SpanState::LARGE;
  s->tag = TAG_LARGE;
  size_t i = idx_of(s->start);
  map_ends(s);
  tag_set(i, TAG_LARGE);
  HZ3_PROBE(tag_set, (uint64_t)i, (uint32_t)npages, TAG_BIN_LARGE, TAG_OWNER_LARGE);
  note_peak(Pal::now_ms());
  return s;
}

void free_span(Span* s) {
  bool wake;
  {
    LockGuard g(g_lock);
    size_t i = idx_of(s->start);
    HZ3_PROBE(tag_clear, (uint64_t)i, s->npages, tag_bin_field(s->tag), tag_owner_field(s->tag));
    if (s->state == SpanState::SMALL) {
      for (size_t k = 0; k < s->npages; k++) {
        tag_set(i + k, 0);
        map_set(i + k, nullptr);
      }
      if (s->alloc_bits) bitmap_delete(s->alloc_bits);  // check variant
      s->alloc_bits = nullptr;
    } else {
      if constexpr (HARDENED) Pal::commit(reinterpret_cast<void*>(s->end() - PAGE_SIZE), PAGE_SIZE);
      tag_set(i, 0);
      map_set(i, nullptr);
      map_set(i + s->npages - 1, nullptr);
    }
    s->tag = 0;
    s->state = SpanState::FREE_DIRTY;
    s->zeroed = false;
    uint64_t now = Pal::now_ms();
    s->dirty_since_ms = now;
    coalesce_insert(s);
    maybe_release(now);
    wake = scavenger_needs_wake();
  }
  if (wake) Pal::futex_wake(&g_scav_idle);
}

bool grow_large(Span* s, size_t new_npages) {
  LockGuard g(g_lock);
  new_npages += LARGE_GUARD_PAGES;
  size_t extra = new_npages - s->npages;
  size_t r = idx_of(s->start) + s->npages;
  Span* n = r < g_hwm ? g_arena.map[r] : nullptr;
  if (!n || (n->state != SpanState::FREE_DIRTY && n->state != SpanState::FREE_RELEASED) ||
      n->npages < extra)
    return false;
  Span* got = carve(n, 0, extra);
  if (!got) return false;
  map_set(idx_of(s->start) + s->npages - 1, nullptr);
  map_set(r, nullptr);
  span_delete(got);
  if constexpr (HARDENED) {  // the guard moves to the new last page
    Pal::commit(reinterpret_cast<void*>(s->end() - PAGE_SIZE), PAGE_SIZE);
    Pal::protect_none(reinterpret_cast<void*>(s->start + (new_npages - 1) * PAGE_SIZE), PAGE_SIZE);
  }
  s->npages = uint32_t(new_npages);
  map_ends(s);
  return true;
}

void shrink_large(Span* s, size_t new_npages) {
  bool wake;
  {
    LockGuard g(g_lock);
    new_npages += LARGE_GUARD_PAGES;
    Span* tail = span_new();
    if (!tail) return;         // keep the block whole; still correct
    if constexpr (HARDENED) {  // the guard moves to the new last page; the tail goes back RW
      Pal::commit(reinterpret_cast<void*>(s->end() - PAGE_SIZE), PAGE_SIZE);
      Pal::protect_none(reinterpret_cast<void*>(s->start + (new_npages - 1) * PAGE_SIZE),
                        PAGE_SIZE);
    }
    size_t i = idx_of(s->start);
    map_set(i + s->npages - 1, nullptr);
    tail->start = s->start + new_npages * PAGE_SIZE;
    tail->npages = uint32_t(s->npages - new_npages);
    s->npages = uint32_t(new_npages);
    map_ends(s);
    tail->state = SpanState::FREE_DIRTY;
    uint64_t now = Pal::now_ms();
    tail->dirty_since_ms = now;
    coalesce_insert(tail);
    maybe_release(now);
    wake = scavenger_needs_wake();
  }
  if (wake) Pal::futex_wake(&g_scav_idle);
}

bool freed_large_marked(const void* p, uint64_t mark) {
  if constexpr (HARDENED) {
    LockGuard g(g_lock);
    uintptr_t a = uintptr_t(p);
    if (!in_arena(p) || (a & (PAGE_SIZE - 1)) != 0 || idx_of(a) >= g_hwm) return false;
    Span* s = g_arena.map[idx_of(a)];
    if (s && s->state == SpanState::LARGE && a == s->end() - PAGE_SIZE) return false;  // a guard
    return static_cast<const uint64_t*>(p)[1] == mark;
  }
  return false;
}

void scavenger_poll() {
  int st = g_scav_state.load(std::memory_order_relaxed);
  if (HZ3_LIKELY(st == SCAV_RUNNING) || st == SCAV_STARTING ||
      !g_scav_wanted.load(std::memory_order_relaxed))
    return;
  uint64_t now = Pal::now_ms();
  if (st == SCAV_FAILED && now < __atomic_load_n(&g_scav_retry_ms, __ATOMIC_RELAXED)) return;
  if (!g_scav_state.compare_exchange_strong(st, SCAV_STARTING)) return;
  if (Pal::spawn(scavenger_main, "hz3-scavenge", g_scav_stack, SCAV_STACK_BYTES) ||
      (g_scav_stack && Pal::spawn(scavenger_main, "hz3-scavenge", nullptr, 0))) {
    g_scav_state.store(SCAV_RUNNING);
  } else {  // e.g. RLIMIT_NPROC: visits still release by age, under the minimum bound
    __atomic_store_n(&g_scav_retry_ms, now + 10000, __ATOMIC_RELAXED);
    g_scav_state.store(SCAV_FAILED);
  }
}

size_t release_all() {
  LockGuard g(g_lock);
  size_t pages = g_dirty;
  while (g_lru_head) release_run(g_lru_head);
  return pages * PAGE_SIZE;
}

void lock_for_fork() { g_lock.lock(); }
void unlock_after_fork(bool child) {
  if (child) {
    g_lock.reset_after_fork();
    g_init_lock.reset_after_fork();
    // Only the forking thread lives on: the scavenger starts again when the child needs one.
    g_scav_state.store(SCAV_NONE, std::memory_order_relaxed);
    g_scav_wanted.store(g_dirty > 0, std::memory_order_relaxed);
    g_scav_idle = 0;
  } else {
    g_lock.unlock();
  }
}

Stats stats() {
  LockGuard g(g_lock);
  return {g_hwm, g_committed, g_dirty, g_released, g_free_runs};
}

Stats for_each_run(void (*fn)(const Span& s, void* ctx), void* ctx, size_t* meta_bytes) {
  LockGuard g(g_lock);
  // Every page below the high-water mark is in exactly one run, and every run's first page
  // maps to its record (spans: every page; large blocks and free runs: both ends).
  for (size_t i = 0; i < g_hwm;) {
    Span* s = g_arena.map[i];
    if (!s || s->start != g_arena.base + i * PAGE_SIZE || s->npages == 0) {
      i++;  // not reached; the statistics would show the page as unaccounted
      continue;
    }
    fn(*s, ctx);
    i += s->npages;
  }
  *meta_bytes = g_meta_mapped;
  return {g_hwm, g_committed, g_dirty, g_released, g_free_runs};
}

}  // namespace page_heap
}  // namespace hz3
