// Thread caches and heaps: refill, overflow, remote frees, thread start and exit (see heap.h for
// the vocabulary). The registry of heaps, global_init and fork are in process.cc.
#include "heap.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <new>

#include "large.h"
#include "outside.h"
#include "pal.h"
#include "probes.h"
#include "process.h"
#include "sample.h"

namespace hz3 {

__thread ThreadCache t_cache __attribute__((tls_model("initial-exec")));

namespace {

// Hardened variant: refill order (splitmix64 over a counter seeded with a secret). Slow path.
std::atomic<uint64_t> g_hard_rng;

uint64_t hard_random() {
  uint64_t z = g_hard_rng.fetch_add(0x9E3779B97F4A7C15ull, std::memory_order_relaxed);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

// Secrets from getrandom (never blocks: GRND_NONBLOCK), else from clocks and addresses.
void hard_init_secrets() {
  uint64_t r[4] = {};
  size_t got = 0;
  while (got < sizeof r) {
    ssize_t n = getrandom(reinterpret_cast<char*>(r) + got, sizeof r - got, GRND_NONBLOCK);
    if (n <= 0) break;
    got += size_t(n);
  }
  if (got < sizeof r) {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = __builtin_ia32_rdtsc() ^ uint64_t(ts.tv_nsec) ^ uint64_t(uintptr_t(&ts)) ^
                 (uint64_t(getpid()) << 32);
    for (uint64_t& v : r) {
      x += 0x9E3779B97F4A7C15ull;
      v ^= (x ^ (x >> 29)) * 0xBF58476D1CE4E5B9ull;
    }
  }
  g_hard.mark = r[0] | 1;  // never 0: a zeroed word 1 is never a marker
  g_hard.poison = r[1];
  uint8_t c = uint8_t(r[2]);
  if (c == 0) c = 0xA5;  // a written '\0' (the classic off-by-one) must change the canary
  g_hard.canary = 0x0101010101010101ull * c;
  g_hard_rng.store(r[3], std::memory_order_relaxed);
}

namespace {

constexpr uint32_t SCAVENGE_AFTER_RELEASES = 16;  // net span releases (see scavenge)
#ifndef HZ3_ADOPT_PER_REFILL
#define HZ3_ADOPT_PER_REFILL 2
#endif
// Blocks from other heaps a refill of class c lets the thread adopt: this many refill batches.
constexpr uint32_t ADOPT_PER_REFILL = HZ3_ADOPT_PER_REFILL;

void report_hits(ThreadCache& tc) {
  uint64_t n = tc.hits_pending;
  if (n == 0) return;
  // In a register: left to itself the compiler may name the TLS slot (8@%fs:OFF(%reg)) as
  // the probe's argument, an operand USDT tracers (libbpf, hz3top) cannot read.
  asm("" : "+r"(n));
  HZ3_PROBE(hits, n);
  tc.hits_pending = 0;
}

HZ3_FAST_PATH void count_hit(ThreadCache& tc) {
  if (HZ3_UNLIKELY(++tc.hits_pending >= HZ3_HIT_BATCH)) report_hits(tc);
}

// Local frees of class c since frees_left was last reset become pending hits.
void collect_hits(ThreadCache& tc, uint32_t c) {
  uint64_t done = tc.credit[c] - tc.frees_left[c];
  tc.hits_pending += done;
  tc.walk_due[c] -= done;
  tc.credit[c] = tc.frees_left[c];
}

// Hits must also reach a tracer from a quiet thread, whose batch would take minutes to fill.
// While the hits probe is attached, frees_left counts down chunks of at most HITS_TRACED_CHUNK
// local frees, so each class reaches cache_overflow often, and every slow path reports what is
// pending once the last on-time report is HITS_MAX_AGE_MS old. Detached, none of this runs: the
// chunks are whole bound-check intervals and nothing reads the clock.
constexpr uint64_t HITS_TRACED_CHUNK = 32;
constexpr uint64_t HITS_MAX_AGE_MS = 1000;

void report_hits_on_time(ThreadCache& tc) {
  uint64_t now = Pal::now_ms();
  if (now - tc.hits_reported_ms < HITS_MAX_AGE_MS) return;
  tc.hits_reported_ms = now;
  if (tc.state == CacheState::LIVE)
    for (uint32_t c = 1; c < NUM_BINS; c++) collect_hits(tc, c);
  report_hits(tc);
}

uint32_t return_list(Heap* h, uint32_t bin, void* list);
void return_to_span(Heap* h, uint32_t bin, void* p);
void deliver_set_aside(ThreadCache& tc);

// Heap h (the thread's own) locked while cached blocks go back to its spans. Adopted blocks
// among them are set aside by return_to_span; the release unlocks and then hands them to their
// owners (deliver_set_aside), so no thread holds two heap locks (see "adopted blocks").
class CacheReturnLock {
 public:
  CacheReturnLock(ThreadCache& tc, Heap* h) : tc_(tc), h_(h) { h_->lock.lock(); }
  ~CacheReturnLock() {
    h_->lock.unlock();
    deliver_set_aside(tc_);
  }
  CacheReturnLock(const CacheReturnLock&) = delete;
  CacheReturnLock& operator=(const CacheReturnLock&) = delete;

 private:
  ThreadCache& tc_;
  Heap* h_;
};

// ---- heap sampling (sample.h) ----
//
// While a tracer samples, class c counts its allocations down (samp[c].left, a geometric draw:
// sample.h) and the allocation the count reaches must take a slow path, with nothing counted on
// the fast path. The fast path pops only what the class's cache holds (head[c]'s list, or c's
// magazine) and what local frees push, so every slow path of c bounds both: with `upper` blocks
// poppable now and frees_left frees until the next overflow, at most upper + frees_left - 1 <=
// left - 1 pops happen before the next slow path of c (a refill, or the overflow that the last of
// those frees calls), and the left-th allocation is a refill. Blocks beyond the bound wait in
// parked[c] (a list, for magazine classes too), where refills take them first. A refill finds
// the cache empty, so the pops since the last count are exactly upper + the chunk's frees; an
// overflow counts them from the blocks cached now: a magazine's count is its fill (no walk), a
// list is walked, but only once the bound leaves no room for the next chunk of frees. Most of
// the time left is far larger than what the cache can hold (8192 allocations of a 64 B class at
// the 512 KiB mean), nothing is cut and no chunk shortened: the thread takes the slow paths of a
// detached one, plus a few near each sample. A magazine class's other slow path, mag_full, only
// takes blocks out of the magazine (off `upper`), so it needs no bound of its own.
//
// Entering and leaving depend only on the thread's own state (tc.sampling): the semaphore that
// says whether a tracer wants samples can flip at any instant, so it is read once per decision
// (sync_sampling) and never trusted to say which state the thread is in.

uint32_t list_len(void* p) {
  uint32_t n = 0;
  for (; p; p = *static_cast<void**>(p)) n++;
  return n;
}

// Puts the (non-empty) list in front of head.
void list_prepend(void*& head, void* list) {
  void* tail = list;
  while (*static_cast<void**>(tail)) tail = *static_cast<void**>(tail);
  *static_cast<void**>(tail) = head;
  head = list;
}

uint64_t mag_count(const ThreadCache& tc, uint32_t bin) { return tc.mag_top[bin] - MAG_BASE[bin]; }
// The magazine's current cap (mag_end, between mag_start_cap and the array's length).
uint32_t mag_cap(const ThreadCache& tc, uint32_t bin) {
  return uint32_t(tc.mag_end[bin] - MAG_BASE[bin]);
}

// Blocks a refill of class cls takes from the spans once the class runs at its full batch: a
// magazine's batch follows its current cap (a list's first refills are smaller: refill_into).
uint32_t cache_refill_batch(const ThreadCache& tc, uint32_t cls) {
  return is_mag_bin(cls) ? refill_batch_of(mag_cap(tc, cls)) : refill_batch(cls);
}

// Blocks of class c in the thread's cache (parked[c] aside).
int64_t cached_count(const ThreadCache& tc, uint32_t c) {
  return is_mag_bin(c) ? int64_t(mag_count(tc, c)) : int64_t(list_len(tc.head[c]));
}

// Blocks of class c left the cache other than by malloc (trim, flush, scavenge): off `upper`.
void sample_note_removed(ThreadCache& tc, uint32_t c, uint64_t n) {
  if (SAMPLING && tc.sampling) tc.samp[c].upper -= int64_t(n);
}

// Moves class c's cached blocks beyond the `keep` most recently cached ones to parked[c]:
// head[c]'s after its first `keep`, or the magazine's oldest. parked[c] holds at most the
// class's cap: a cut that would take it past the cap goes back to the spans instead (a thread
// that frees many blocks of a class just before its sample would otherwise keep them all).
void park_after(ThreadCache& tc, uint32_t c, int64_t keep) {
  SampleClass& s = tc.samp[c];
  const uint64_t cap = is_mag_bin(c) ? mag_cap(tc, c) : CLASSES[c].cache_cap;
  void* rest;
  uint64_t n = 0;
  if (is_mag_bin(c)) {
    uint64_t count = mag_count(tc, c), k = uint64_t(keep);
    if (count <= k) return;
    void** m = &tc.mag_slots[MAG_BASE[c]];
    n = count - k;
    rest = nullptr;
    for (uint64_t i = 0; i < n; i++) {  // linked newest first
      *static_cast<void**>(m[i]) = rest;
      rest = m[i];
    }
    for (uint64_t i = 0; i < k; i++) m[i] = m[n + i];
    tc.mag_top[c] = MAG_BASE[c] + k;
  } else {
    void** link = &tc.head[c];
    for (int64_t i = 0; i < keep && *link; i++) link = static_cast<void**>(*link);
    rest = *link;
    *link = nullptr;
    if (!rest) return;
    n = list_len(rest);
  }
  if (s.parked + n > cap) {
    CacheReturnLock g(tc, tc.heap);
    return_list(tc.heap, c, rest);
    return;
  }
  list_prepend(tc.parked[c], rest);
  s.parked += n;
}

// The cache of c holds len blocks and samp[c].left counts from now: bound the pops until the
// next slow path of c to left - 1, shortening the chunk of frees first (to half of left: each
// later slow path then counts off about as many allocations as it allows) and then the cache.
void sample_rebound(ThreadCache& tc, uint32_t c, int64_t len) {
  SampleClass& s = tc.samp[c];
  uint64_t f = tc.frees_left[c];
  if (len + int64_t(f) > s.left) {
    uint64_t fmax = s.left / 2 > 1 ? uint64_t(s.left / 2) : 1;
    if (f > fmax) {
      collect_hits(tc, c);  // hits stay exact: credit - frees_left restarts from the new chunk
      tc.frees_left[c] = tc.credit[c] = f = fmax;
    }
    int64_t keep = s.left - int64_t(f);  // >= 0
    if (len > keep) {
      park_after(tc, c, keep);
      len = keep;
    }
  }
  s.upper = len;
  s.chunk = f;
}

// cache_overflow of class c while sampling: the chunk's frees are done and frees_left was reset
// to the next chunk (blocks cache_bound, mag_full or scavenge took out are already off
// `upper`). A magazine is counted every time (its fill is at hand); a list only when the bound
// leaves no room for the whole next chunk.
void sample_after_overflow(ThreadCache& tc, uint32_t c) {
  SampleClass& s = tc.samp[c];
  s.upper += int64_t(s.chunk);
  if (!is_mag_bin(c) && s.upper + int64_t(tc.frees_left[c]) <= s.left) {
    s.chunk = tc.frees_left[c];
    return;
  }
  int64_t len = cached_count(tc, c);
  s.left -= s.upper - len;  // the pops since the last count
  HZ3_ASSERT(s.left >= 1);
  if (s.left < 1) s.left = 1;  // a miscount costs one early sample, not the class's samples
  sample_rebound(tc, c, len);
}

HZ3_NOINLINE void enter_sampling(ThreadCache& tc) {
  if (tc.sampling) return;
  tc.sampling = true;
  tc.sample_shift = 0;
  tc.pace_samples = 0;
  tc.pace_cpu_us = Pal::thread_cpu_us();
  tc.pace_judged_ms = Pal::now_ms();
  sample_start_bytes(tc);
  for (uint32_t c = 1; c < NUM_BINS; c++) {
    SampleClass& s = tc.samp[c];
    s.left = sample_draw_count(tc, CLASSES[c].size, &s.shift);
    s.parked = 0;  // parked[c] is empty outside sampling
    sample_rebound(tc, c, cached_count(tc, c));
  }
}

// The pacing changed the thread's mean: every class countdown but `busy`'s (which its caller
// draws itself) and the byte countdown start again from here with the new mean. A countdown is
// memoryless, so restarting it at any instant keeps every probability, and so the estimate; each
// class is counted now (a magazine's fill, a list walked) and bounded again.
HZ3_NOINLINE void sample_redraw(ThreadCache& tc, uint32_t busy) {
  sample_start_bytes(tc);
  for (uint32_t c = 1; c < NUM_BINS; c++) {
    if (c == busy) continue;
    SampleClass& s = tc.samp[c];
    s.left = sample_draw_count(tc, CLASSES[c].size, &s.shift);
    sample_rebound(tc, c, cached_count(tc, c));
  }
}

// The parked blocks go back: onto head[] for a list class; into the magazine as far as it has
// room for a magazine class, the rest to their spans.
HZ3_NOINLINE void leave_sampling(ThreadCache& tc) {
  if (!tc.sampling) return;
  for (uint32_t c = 1; c < NUM_BINS; c++) {
    void* p = tc.parked[c];
    if (!p) continue;
    tc.parked[c] = nullptr;
    if (is_mag_bin(c)) {
      uint64_t top = tc.mag_top[c];
      for (; p && top < tc.mag_end[c]; p = *static_cast<void**>(p)) tc.mag_slots[top++] = p;
      tc.mag_top[c] = top;
      if (p) {
        CacheReturnLock g(tc, tc.heap);
        return_list(tc.heap, c, p);
      }
      continue;
    }
    list_prepend(tc.head[c], p);
  }
  tc.sampling = false;
}

// Brings a LIVE thread's mode in line with the tracer; returns whether it now samples.
bool sync_sampling(ThreadCache& tc);

// The end of cache_overflow of class c while the thread samples or a tracer wants it to.
HZ3_NOINLINE void sampling_at_overflow(ThreadCache& tc, uint32_t c) {
  if (tc.sampling) sample_after_overflow(tc, c);
  sync_sampling(tc);
}

bool sync_sampling(ThreadCache& tc) {
  bool want = sampling_wanted();
  if (HZ3_UNLIKELY(want != tc.sampling)) {
    if (want)
      enter_sampling(tc);
    else
      leave_sampling(tc);
  }
  return tc.sampling;
}

// ---- spans of one heap (caller holds heap->lock) ----

void partial_push(Heap::BinSpans& b, Span* s) {
  s->prev = nullptr;
  s->next = b.partial;
  if (b.partial) b.partial->prev = s;
  b.partial = s;
  s->in_partial = true;
}

void partial_remove(Heap::BinSpans& b, Span* s) {
  if (s->prev)
    s->prev->next = s->next;
  else
    b.partial = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = nullptr;
  s->in_partial = false;
}

// One object back into its span. An empty span is kept (one per class) or given back.
void return_to_span(Heap* h, uint32_t bin, void* p) {
  Span* s = map_load(page_index(p));
  HZ3_ASSERT(s && s->state == SpanState::SMALL && tag_bin_field(s->tag) == bin);
  if (HZ3_UNLIKELY(s->tag != tag_encode(h->id, bin))) {  // adopted: its owner takes it back
    ThreadCache& tc = t_cache;
    *static_cast<void**>(p) = tc.set_aside;
    tc.set_aside = p;
    return;
  }
  Heap::BinSpans& b = h->bins[bin];
  *static_cast<void**>(p) = s->free_list;
  s->free_list = p;
  if (!s->in_partial) partial_push(b, s);
  if (--s->used == 0) {
    if (b.empties == 0) {
      b.empties = 1;
    } else {
      partial_remove(b, s);
      page_heap::free_span(s);
      h->spans_released++;
    }
  }
}

uint32_t return_list(Heap* h, uint32_t bin, void* list) {
  uint32_t n = 0;
  while (list) {
    void* next = *static_cast<void**>(list);
    return_to_span(h, bin, list);
    list = next;
    n++;
  }
  return n;
}

// Check variant: the bytes after the link word that check_on_alloc verifies (a freed block has
// them all poisoned by check_on_free; a carved one gets them here).
constexpr size_t CHECK_POISON_AT = sizeof(void*), CHECK_POISON_VERIFIED = 16;
constexpr uint8_t CHECK_POISON = 0xDF;
size_t check_poison_verified(size_t size) {
  return size - CHECK_POISON_AT < CHECK_POISON_VERIFIED ? size - CHECK_POISON_AT
                                                        : CHECK_POISON_VERIFIED;
}
void check_poison_carved(void* p, size_t size) {
  memset(static_cast<char*>(p) + CHECK_POISON_AT, CHECK_POISON, check_poison_verified(size));
}

// Hands out up to n objects of cls from the heap's spans into out[0 .. n); returns how many.
// Bump-carved blocks are not written (the hardened variant marks them free).
uint32_t take_from_spans_into(Heap* h, uint32_t cls, uint32_t n, void** out) {
  const ClassInfo& k = CLASSES[cls];
  Heap::BinSpans& b = h->bins[cls];
  uint32_t taken = 0;
  while (taken < n) {
    Span* s = b.partial;
    if (!s) {
      s = page_heap::alloc_small(k.span_pages, tag_encode(h->id, cls), k.size, k.span_objs);
      if (!s) break;
      if (h->spans_released) h->spans_released--;  // net releases only (see scavenge)
      partial_push(b, s);
    }
    if (s->used == 0 && b.empties > 0 && (s->free_list || s->bump != s->start)) b.empties--;
    while (taken < n && s->free_list) {
      void* p = s->free_list;
      s->free_list = *static_cast<void**>(p);
      out[taken++] = p;
      s->used++;
    }
    while (taken < n && s->bump < s->bump_end) {
      void* p = reinterpret_cast<void*>(s->bump);
      if constexpr (HARDENED) hard_mark_free(p, cls);  // never handed out: free from now on
      if constexpr (CHECK) check_poison_carved(p, k.size);
      __atomic_store_n(&s->bump, s->bump + k.size, __ATOMIC_RELAXED);
      out[taken++] = p;
      s->used++;
    }
    if (!s->free_list && s->bump >= s->bump_end) partial_remove(b, s);  // full
  }
  if constexpr (HARDENED) {
    // Hand the batch out in a random order (Fisher-Yates), so addresses are not predictable.
    for (uint32_t i = taken; i-- > 1;) {
      uint32_t j = uint32_t(hard_random() % (i + 1));
      void* t = out[i];
      out[i] = out[j];
      out[j] = t;
    }
  }
  return taken;
}

// The same as a linked list (n <= REFILL_BATCH_MAX), out[0] first; *got says how many.
void* take_from_spans(Heap* h, uint32_t cls, uint32_t n, uint32_t* got) {
  void* v[REFILL_BATCH_MAX];
  uint32_t m = take_from_spans_into(h, cls, n < REFILL_BATCH_MAX ? n : REFILL_BATCH_MAX, v);
  for (uint32_t i = 0; i < m; i++) *static_cast<void**>(v[i]) = i + 1 < m ? v[i + 1] : nullptr;
  *got = m;
  return m ? v[0] : nullptr;
}

// ---- magazines (heap.h) ----

// Gives all but the `keep` most recent blocks of bin's magazine back to their spans (the
// oldest: the ones least likely in cache). Caller holds the heap's lock.
void mag_flush_locked(ThreadCache& tc, Heap* h, uint32_t bin, uint64_t keep) {
  uint64_t n = mag_count(tc, bin);
  if (n <= keep) return;
  void** m = &tc.mag_slots[MAG_BASE[bin]];
  uint64_t out = n - keep;
  for (uint64_t i = 0; i < out; i++) return_to_span(h, bin, m[i]);
  for (uint64_t i = 0; i < keep; i++) m[i] = m[out + i];
  tc.mag_top[bin] = MAG_BASE[bin] + keep;
  sample_note_removed(tc, bin, out);  // gone without a pop
}

// Empties every magazine and puts its cap back at its start. Caller holds the heap's lock.
void mag_flush_all_locked(ThreadCache& tc, Heap* h) {
  for (uint32_t c = FIRST_MAG_BIN; c < NUM_BINS; c++) {
    mag_flush_locked(tc, h, c, 0);
    tc.mag_end[c] = MAG_START_END[c];
    tc.mag_hist[c] = MAG_NONE;
  }
}

}  // namespace

// A block start that is not live but holds the marker of a freed block: a second free. Size
// entry and marker are read only for a pointer aligned to its class (a block start, if any;
// word 1 is then on the same page).
void hard_bad_live(void* p, uint32_t bin, const char* fn, const char* freed) {
  const HardBin& b = g_hard_bins[bin];
  if ((uintptr_t(p) & b.mask) == 0) {
    if (*hard_live_entry(p, bin) != 0) fatal_pointer(fn, "heap overflow", p);
    if (static_cast<uint64_t*>(p)[1] == (g_hard.mark ^ uintptr_t(p))) fatal_pointer(fn, freed, p);
  }
  fatal_pointer(fn, "invalid pointer", p);
}

// Moves every block other threads pushed to this heap back into its spans.
//
// Bit b of remote_pending says "inbox[b] may be non-empty"; refills look at their class's bit
// and drains at the set bits only, so a bit must never read 0 while its inbox holds a block
// that no later take will see. The protocol is a store-then-load on each side: a freer pushes
// (inbox RMW) and then reads the bits, setting its class's bit if clear (RMW); a taker clears
// the bit (RMW) and then reads the inbox. Every one of those operations is seq_cst, so they
// fall in one total order that respects each thread's program order: either the taker's inbox
// read comes after the push (it sees and takes the block), or the freer's read of the bits
// comes after the clear (it sees the bit clear and sets it again). With relaxed operations the
// clear could still sit in the taker's store buffer while it reads the inbox (x86 reorders a
// store with a later load), and both sides would miss each other. On x86 this costs nothing
// extra: the push and the clear are locked instructions anyway and seq_cst loads are plain
// loads.
void drain_inboxes(Heap* h) {
  uint64_t m = h->remote_pending.exchange(0, std::memory_order_seq_cst);
  for (; m; m &= m - 1) {
    uint32_t bin = uint32_t(__builtin_ctzll(m));
    if (h->inbox[bin].load(std::memory_order_seq_cst) == nullptr) continue;
    void* list = h->inbox[bin].exchange(nullptr, std::memory_order_acquire);
    h->inbox_objs[bin].store(0, std::memory_order_relaxed);
    return_list(h, bin, list);
  }
}

// The inboxes of other classes are left alone: each is taken whole by its own class's next
// refill, instead of going back to the spans now and coming out of them again then.
void* take_inbox(Heap* h, uint32_t bin, uint32_t* objs) {
  const uint64_t bit = uint64_t{1} << bin;
  *objs = 0;
  if (!(h->remote_pending.load(std::memory_order_relaxed) & bit)) return nullptr;
  h->remote_pending.fetch_and(~bit, std::memory_order_seq_cst);
  if (h->inbox[bin].load(std::memory_order_seq_cst) == nullptr) return nullptr;
  void* list = h->inbox[bin].exchange(nullptr, std::memory_order_acquire);
  *objs = h->inbox_objs[bin].exchange(0, std::memory_order_relaxed);
  return list;
}

namespace {

// Gives every span of h with no object out back to the page heap; returns how many.
size_t release_empty_spans(Heap* h) {
  size_t n = 0;
  for (uint32_t bin = 1; bin < NUM_BINS; bin++) {
    Heap::BinSpans& b = h->bins[bin];
    for (Span* s = b.partial; s;) {
      Span* next = s->next;
      if (s->used == 0) {
        partial_remove(b, s);
        page_heap::free_span(s);
        n++;
      }
      s = next;
    }
    b.empties = 0;
  }
  return n;
}

// ---- remote frees ----
//
// A block freed by a thread that does not own its heap goes back to the owner's inbox for its
// class (an MPSC stack; the owner takes it at its refills). A LIVE freeing thread collects such
// blocks per destination (heap, class) in its cache's RemoteBucket table and hands each chain
// over with one CAS: when the chain reaches REMOTE_BATCH_BYTES (or REMOTE_BATCH_OBJS), when all
// its waiting blocks reach REMOTE_HOLD_BYTES, when a chain for another destination needs the
// slot, every REMOTE_FLUSH_SLOW_PATHS of its slow paths, and at thread exit and malloc_trim. So
// a producer/consumer pair pays one contended atomic per batch instead of one per block, and at
// most REMOTE_HOLD_BYTES + one block wait in a freeing thread. Threads without a LIVE cache
// deliver each block at once.
//
// The owner drains its inboxes at its own slow paths, but it may never allocate again (a
// consumer freeing a producer's blocks after the producer went idle). So each delivery also
// counts its bytes in the heap's idle_probe: once IDLE_DRAIN_KIB were delivered, by any
// threads, without a refill of the owner (its owner_epoch unchanged) — more than an owner's
// whole cache could be using up meanwhile — the owner is taken for idle and the delivering
// thread drains the heap (if nobody holds its lock), so memory returns to the
// spans and the OS without the owner's help. The probe lives in the heap, not in the freeing
// thread, so frees that rotate over several idle owners drain each of them. An active owner is
// left alone: its refills reuse the inbox blocks directly, which is cheaper than sending them
// back to spans (and spans back to the page heap).
constexpr uint64_t REMOTE_HOLD_BYTES = 256 * 1024;
constexpr uint32_t REMOTE_FLUSH_SLOW_PATHS = 16;
constexpr uint32_t IDLE_DRAIN_KIB = 1024;

// Hands the chain head..tail (count blocks of class bin) to h.
void remote_deliver(Heap* h, uint32_t bin, void* head, void* tail, uint32_t count) {
  uint64_t bytes = uint64_t(count) * CLASSES[bin].size;
  if (h->state.load(std::memory_order_acquire) != HeapState::LIVE) {
    LockGuard g(h->lock);
    // Still an orphan (not adopted meanwhile): nobody will refill from the inbox, so straight
    // back to the spans.
    if (h->state.load(std::memory_order_relaxed) == HeapState::ORPHAN) {
      drain_inboxes(h);
      return_list(h, bin, head);
      return;
    }
  }
  // The inbox holds a refill's worth already (the owner has not allocated the class since):
  // more would only go back to the spans at that refill, so these go there now, by this thread.
  // A magazine's worth is its starting cap (the owner's current one is in its TLS).
  const uint32_t refill_worth = is_mag_bin(bin) ? mag_start_cap(bin) : CLASSES[bin].cache_cap;
  if (h->inbox_objs[bin].load(std::memory_order_relaxed) >= refill_worth && h->lock.try_lock()) {
    return_list(h, bin, head);
    h->lock.unlock();
  } else {
    std::atomic<void*>& box = h->inbox[bin];
    void* old = box.load(std::memory_order_relaxed);
    do {
      *static_cast<void**>(tail) = old;
    } while (!box.compare_exchange_weak(old, head, std::memory_order_seq_cst,
                                        std::memory_order_relaxed));
    h->inbox_objs[bin].fetch_add(count, std::memory_order_relaxed);
    const uint64_t bit = uint64_t{1} << bin;  // see drain_inboxes for the protocol
    if (!(h->remote_pending.load(std::memory_order_seq_cst) & bit))
      h->remote_pending.fetch_or(bit, std::memory_order_seq_cst);
  }
  // Idle check: KiB delivered since the owner's last refill (low half of idle_probe), under
  // that refill's owner_epoch (high half). Races between deliverers only blur the count.
  uint64_t epoch = h->owner_epoch.load(std::memory_order_relaxed);
  uint64_t seen = h->idle_probe.load(std::memory_order_relaxed);
  uint64_t kib = (bytes + 1023) >> 10;
  if (seen >> 32 != epoch) {
    h->idle_probe.store(epoch << 32 | kib, std::memory_order_relaxed);
  } else if (uint32_t(seen) + kib < IDLE_DRAIN_KIB) {
    h->idle_probe.store(seen + kib, std::memory_order_relaxed);
  } else {
    h->idle_probe.store(epoch << 32, std::memory_order_relaxed);
    if (h->lock.try_lock()) {
      drain_inboxes(h);
      h->lock.unlock();
    }
  }
}

void bucket_flush(ThreadCache& tc, RemoteBucket& b) {
  uint32_t bin = tag_bin_field(b.tag);
  tc.remote_bytes -= uint64_t(b.count) * CLASSES[bin].size;
  void* head = b.head;
  void* tail = b.tail;
  uint32_t count = b.count;
  Heap* h = g_heaps[tag_owner_field(b.tag) - 1];
  b = RemoteBucket{};
  remote_deliver(h, bin, head, tail, count);
}

// Delivers every waiting remote free of this thread.
void remote_flush_all(ThreadCache& tc) {
  for (RemoteBucket& b : tc.remote)
    if (b.head) bucket_flush(tc, b);
  tc.remote_slow = 0;
}

// A slow path of a LIVE thread: deliver what waits, every REMOTE_FLUSH_SLOW_PATHS calls.
HZ3_FAST_PATH void remote_flush_paced(ThreadCache& tc) {
  if (tc.remote_bytes != 0 && ++tc.remote_slow >= REMOTE_FLUSH_SLOW_PATHS) remote_flush_all(tc);
}

// The bucket of a (heap, class) in the freeing thread's table.
constexpr uint32_t remote_bucket_index(uint32_t tag) {
  return (tag_bin_field(tag) + tag_owner_field(tag) * 7) & (REMOTE_BUCKETS - 1);
}

// Blocks a bucket of class c holds when it is delivered: REMOTE_BATCH_OBJS, or fewer once they
// reach REMOTE_BATCH_BYTES.
constexpr auto REMOTE_BATCH_LIMIT = [] {
  std::array<uint32_t, NUM_BINS> t{};
  for (uint32_t c = 1; c < NUM_BINS; c++) {
    uint64_t by_bytes = (REMOTE_BATCH_BYTES + CLASSES[c].size - 1) / CLASSES[c].size;
    t[c] = uint32_t(by_bytes < REMOTE_BATCH_OBJS ? by_bytes : REMOTE_BATCH_OBJS);
  }
  return t;
}();

// p (class bin) joins bucket b, which collects for p's heap and class; says whether a bound is
// reached (remote_bounds then delivers).
HZ3_FAST_PATH bool bucket_push(ThreadCache& tc, RemoteBucket& b, uint32_t bin, void* p) {
  *static_cast<void**>(p) = b.head;
  b.head = p;
  b.count++;
  tc.remote_bytes += CLASSES[bin].size;
  return (b.count >= REMOTE_BATCH_LIMIT[bin]) | (tc.remote_bytes > REMOTE_HOLD_BYTES);
}

// A bucket reached its batch (delivered), or the thread holds too much (all delivered).
void remote_bounds(ThreadCache& tc, RemoteBucket& b) {
  if (b.count >= REMOTE_BATCH_LIMIT[tag_bin_field(b.tag)])
    bucket_flush(tc, b);
  else if (tc.remote_bytes > REMOTE_HOLD_BYTES)
    remote_flush_all(tc);
}

// Block p of class bin, owned by heap h (tag = its page tag, sampled bit stripped), freed by
// this thread.
void remote_free(ThreadCache& tc, uint32_t tag, Heap* h, uint32_t bin, void* p) {
  if (tc.state != CacheState::LIVE) {
    *static_cast<void**>(p) = nullptr;
    remote_deliver(h, bin, p, p, 1);
    return;
  }
  RemoteBucket& b = tc.remote[remote_bucket_index(tag)];
  if (b.tag != tag) {
    if (b.head) bucket_flush(tc, b);
    b.tag = tag;
    b.tail = p;
  }
  if (bucket_push(tc, b, bin, p)) remote_bounds(tc, b);
}

// ---- adopted blocks ----
//
// A LIVE thread that refilled class c since its cache of c was last found full (bit c of
// tc.adopt) keeps the blocks of c it frees from other heaps in its own cache, as if they were
// its own: the next allocations of c reuse them, still in this core's cache, and nothing goes
// back to their owner. A block keeps its page's tag (its span stays its owner's, and counts it
// as handed out), so it reaches its owner again only when this cache gives it back: a bound
// check, a full magazine, a scavenge, thread exit or malloc_trim. return_to_span sets such
// blocks aside (tc.set_aside) while the caller holds its own heap's lock (CacheReturnLock),
// and releasing that lock hands them to their owners as remote frees (deliver_set_aside), so no
// thread holds two heap locks. A thread whose cache of c is full stops adopting (cache_bound,
// mag_full): a consumer that frees what others allocate and never allocates c itself never
// adopts, and its frees go back in batches (remote_free).

// Hands every block set aside by return_to_span back to its owner.
void deliver_set_aside(ThreadCache& tc) {
  while (void* p = tc.set_aside) {
    tc.set_aside = *static_cast<void**>(p);
    uint32_t tag = tag_strip(tag_load(page_index(p)));
    remote_free(tc, tag, g_heaps[tag_owner_field(tag) - 1], tag_bin_field(tag), p);
  }
}

// ---- thread start and exit ----

// free_keyed_slow's remote free reached a bucket bound or the hit batch.
HZ3_NOINLINE void remote_free_bounds(ThreadCache& tc, RemoteBucket& b) {
  remote_bounds(tc, b);
  if (tc.hits_pending >= HZ3_HIT_BATCH) report_hits(tc);
}

bool thread_init() {
  ThreadCache& tc = t_cache;
  if (!global_init()) return false;
  Heap* h = heap_acquire();
  if (!h) {  // MAX_HEAPS live threads: this one shares heap 0
    tc.state = CacheState::DEAD;
    return false;
  }
  tc.heap = h;
  for (uint32_t c = 1; c < NUM_BINS; c++)
    tc.frees_left[c] = tc.credit[c] = tc.walk_due[c] = CLASSES[c].check_every;
  tc.key = uint64_t(h->id + 1) << 16;
  tc.state = CacheState::LIVE;
  h->owner_cache.store(&tc, std::memory_order_release);
  __atomic_store_n(&h->owner_tid, int32_t(gettid()), __ATOMIC_RELAXED);
  // Any non-NULL value makes the destructor run at thread exit. May allocate (keys >= 32);
  // the cache is LIVE already, so that recursion is an ordinary malloc.
  pthread_setspecific(g_exit_key, &tc);
  return true;
}

// Flushes the cache into the heap's spans and leaves the thread DEAD (later calls use heap 0).
void cache_teardown(ThreadCache& tc) {
  Heap* h = tc.heap;
  remote_flush_all(tc);
  if (tc.sampling) leave_sampling(tc);
  for (uint32_t c = 1; c < NUM_BINS; c++) tc.hits_pending += tc.credit[c] - tc.frees_left[c];
  report_hits(tc);
  tc.key = KEY_NONE;
  tc.state = CacheState::DEAD;
  tc.heap = nullptr;
  {
    CacheReturnLock g(tc, h);  // DEAD now: what it sets aside goes to each owner at once
    for (uint32_t c = 1; c < NUM_BINS; c++) {
      void* list = tc.head[c];
      tc.head[c] = nullptr;
      if (list) return_list(h, c, list);
    }
    mag_flush_all_locked(tc, h);
    h->owner_cache.store(nullptr, std::memory_order_relaxed);
    h->state.store(HeapState::ORPHAN, std::memory_order_seq_cst);
    drain_inboxes(h);
    release_empty_spans(h);
  }
  heap_orphan_push(h);
}

Heap* shared_heap() { return g_heaps[0]; }

}  // namespace

void thread_exit(void*) {
  ThreadCache& tc = t_cache;
  if (tc.state == CacheState::LIVE) cache_teardown(tc);
}

void deliver_remote_frees() {
  ThreadCache& tc = t_cache;
  if (tc.state == CacheState::LIVE) remote_flush_all(tc);
}

void flush_hits_at_exit() {
  ThreadCache& tc = t_cache;
  if (tc.state != CacheState::LIVE) {
    report_hits(tc);
    return;
  }
  for (uint32_t c = 1; c < NUM_BINS; c++) collect_hits(tc, c);
  report_hits(tc);
}

// ---- slow paths ----

void* shared_alloc(uint32_t cls) {
  if (!global_init()) return nullptr;
  Heap* h = shared_heap();
  uint32_t got = 0;
  void* p;
  {
    LockGuard g(h->lock);
    drain_inboxes(h);
    p = take_from_spans(h, cls, 1, &got);
  }
  if (!got) return outside_alloc(cls);  // arena exhausted
  if constexpr (CHECK) check_on_alloc(p);
  return p;
}

namespace {

// The batch of a small class's refill from the spans, and one more refill counted towards its
// full batch (list_refill_batch: slow start).
uint32_t slow_start_batch(ThreadCache& tc, uint32_t cls) {
  uint32_t batch = list_refill_batch(cls, tc.list_refills[cls]);
  if (tc.list_refills[cls] < LIST_REFILLS_FULL) tc.list_refills[cls]++;
  return batch;
}

// Fills cls's magazine (empty) and returns one object from it: the whole inbox of the class
// when it fits the cap (the rest back to the spans), else a batch from the spans.
void* mag_refill(ThreadCache& tc, uint32_t cls) {
  Heap* h = tc.heap;
  const uint32_t cap = mag_cap(tc, cls);
  if ((tc.mag_hist[cls] & 3) != MAG_REFILL)  // refills in a row count as one: the magazine ran
    tc.mag_hist[cls] = mag_hist_push(tc.mag_hist[cls], MAG_REFILL);  // empty once
  void** m = &tc.mag_slots[MAG_BASE[cls]];
  uint32_t n = 0;
  {
    LockGuard g(h->lock);
    h->owner_epoch.store(h->owner_epoch.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);  // "the owner is active" (remote_free)
    uint32_t objs;
    void* list = take_inbox(h, cls, &objs);
    while (list && n < cap) {
      m[n++] = list;
      list = *static_cast<void**>(list);
    }
    if (list) return_list(h, cls, list);
    if (n == 0) {  // a small class's magazine (magall) does not grow: it starts slow as a list
      bool small = CLASSES[cls].size <= MAX_SMALL;
      n = take_from_spans_into(h, cls, small ? slow_start_batch(tc, cls) : refill_batch_of(cap), m);
    }
  }
  if (n == 0) return outside_alloc(cls);  // arena exhausted: slower, not failed
  tc.mag_top[cls] = MAG_BASE[cls] + n - 1;
  void* p = m[n - 1];
  if constexpr (CHECK) check_on_alloc(p);
  return p;
}

// Fills `slot` (the class's cache list, empty) and returns one object from it; *count (if
// asked) says how many blocks the list holds then.
void* refill_into(ThreadCache& tc, uint32_t cls, void*& slot, uint32_t* count = nullptr) {
  uint32_t got = 0;
  Heap* h = tc.heap;
  void* list = nullptr;
  {
    LockGuard g(h->lock);  // span state is shared with threads that drain our inboxes
    h->owner_epoch.store(h->owner_epoch.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);  // "the owner is active" (remote_free)
    // Blocks other threads freed to us of this class go straight into the cache (bounded by
    // its cap); other classes' inboxes wait for their own refills (take_inbox).
    uint32_t objs;
    list = take_inbox(h, cls, &objs);
    // A whole inbox that fits goes into the cache as it is; otherwise it is cut at the cap
    // (a walk, a cache miss per block: each was last written by the thread that freed it).
    // The count may be off by a delivery in flight, so the cache may exceed its cap by one
    // batch until its next bound check.
    if (list && objs > CLASSES[cls].cache_cap) {
      uint32_t cap = CLASSES[cls].cache_cap, n = 1;
      void* last = list;
      while (n < cap && *static_cast<void**>(last)) {
        last = *static_cast<void**>(last);
        n++;
      }
      void* rest = *static_cast<void**>(last);
      *static_cast<void**>(last) = nullptr;
      if (rest) return_list(h, cls, rest);
    }
    if (!list) {
      list = take_from_spans(h, cls, slow_start_batch(tc, cls), &got);
      if (!got) list = nullptr;
    }
  }
  if (count) *count = 0;
  if (!list) return outside_alloc(cls);  // arena exhausted: slower, not failed
  slot = *static_cast<void**>(list);
  if (count) *count = got ? got - 1 : list_len(slot);  // an inbox is walked
  if constexpr (CHECK) check_on_alloc(list);
  return list;
}

// A refill of a sampling thread (sync_sampling said so): the class's cache (head[cls] or its
// magazine) is empty, so every block the fast path could pop since the last count was popped.
// Counts them off, serves this allocation from parked[cls] or the heap (sampling it if the count
// reaches it), and bounds the fast path again.
HZ3_NOINLINE void* malloc_sampling(ThreadCache& tc, uint32_t cls) {
  SampleClass& s = tc.samp[cls];
  s.left -= s.upper + int64_t(s.chunk - tc.frees_left[cls]);
  HZ3_ASSERT(s.left >= 1);
  if (s.left < 1) s.left = 1;  // as in sample_after_overflow
  const bool mag = is_mag_bin(cls);
  void* p = tc.parked[cls];
  uint32_t len = 0;
  if (p) {  // up to a batch of what the bound cut off goes back into the cache
    void* q = *static_cast<void**>(p);
    uint32_t batch = cache_refill_batch(tc, cls);
    if (mag) {
      void** m = &tc.mag_slots[MAG_BASE[cls]];
      for (; q && len < batch; len++, q = *static_cast<void**>(q)) m[len] = q;
      tc.mag_top[cls] = MAG_BASE[cls] + len;
    } else {
      void* first = q;
      void* last = nullptr;
      for (; q && len < batch; len++) {
        last = q;
        q = *static_cast<void**>(q);
      }
      if (last) *static_cast<void**>(last) = nullptr;
      tc.head[cls] = len ? first : nullptr;
    }
    tc.parked[cls] = q;
    s.parked -= len + 1;
    if constexpr (CHECK) check_on_alloc(p);
  } else if (mag) {
    p = mag_refill(tc, cls);
    len = uint32_t(mag_count(tc, cls));
  } else {
    p = refill_into(tc, cls, tc.head[cls], &len);
  }
  if (--s.left == 0) {  // this allocation
    bool repaced = sample_take(tc, p, CLASSES[cls].size, s.shift);
    s.left = sample_draw_count(tc, CLASSES[cls].size, &s.shift);
    if (repaced) sample_redraw(tc, cls);
  }
  sample_rebound(tc, cls, len);
  return p;
}

}  // namespace

HZ3_NOINLINE void* malloc_refill(uint32_t cls) {
  page_heap::scavenger_poll();
  ThreadCache& tc = t_cache;
  if (HZ3_UNLIKELY(tc.state != CacheState::LIVE)) {
    if (tc.state == CacheState::UNINIT && thread_init()) return alloc_class(cls);
    return shared_alloc(cls);
  }
  remote_flush_paced(tc);
  if (HZ3_PROBE_ENABLED(hits)) report_hits_on_time(tc);
  bool was_sampling = tc.sampling;
  if (HZ3_UNLIKELY(sync_sampling(tc))) return malloc_sampling(tc, cls);
  if (HZ3_UNLIKELY(was_sampling)) return alloc_class(cls);         // parked blocks are back
  tc.adopt[cls] = ADOPT_PER_REFILL * cache_refill_batch(tc, cls);  // see "adopted blocks"
  if (is_mag_bin(cls)) return mag_refill(tc, cls);
  return refill_into(tc, cls, tc.head[cls]);
}

HZ3_NOINLINE void* hard_refill(uint32_t cls, size_t size) {
  void* p = malloc_refill(cls);
  if (HZ3_UNLIKELY(!in_arena(p))) return p;  // NULL, or the mmap fallback: no canary
  return hard_hand_out(p, cls, size);
}

// The heap is shrinking (it gave back 16 more spans than it took since the last scavenge): a
// mass free is under way. Steady churn, where spans come and go in equal numbers, never
// triggers it. Each object left
// in the cache can keep a whole span resident, and after a scattered free they sit in as many
// different spans, so give the whole cache back; the next allocations refill from the spans.
HZ3_NOINLINE void scavenge(ThreadCache& tc) {
  Heap* h = tc.heap;
  CacheReturnLock g(tc, h);
  for (uint32_t c = 1; c < NUM_BINS; c++) {
    void* list = tc.head[c];
    tc.head[c] = nullptr;
    if (list) sample_note_removed(tc, c, return_list(h, c, list));  // gone without a pop
    if (tc.parked[c]) return_list(h, c, tc.parked[c]);
    tc.parked[c] = nullptr;
    tc.samp[c].parked = 0;
  }
  mag_flush_all_locked(tc, h);
  h->spans_released = 0;
}

void cache_bound(ThreadCache& tc, uint32_t bin);

// cache_overflow's work. `watched`: a tracer is attached to hz3:hits, or the thread samples or
// a tracer wants it to; cache_overflow tests that once, so the common case carries none of the
// tests below.
template <bool watched>
HZ3_FAST_PATH void overflow_body(ThreadCache& tc, uint32_t bin) {
  collect_hits(tc, bin);
  const ClassInfo& k = CLASSES[bin];
  bool traced = watched && HZ3_PROBE_ENABLED(hits);
  if (tc.walk_due[bin] == 0) {
    if (!is_mag_bin(bin)) cache_bound(tc, bin);  // a magazine bounds itself
    tc.walk_due[bin] = k.check_every;
  }
  uint64_t next = tc.walk_due[bin];
  if (traced && next > HITS_TRACED_CHUNK) next = HITS_TRACED_CHUNK;
  tc.frees_left[bin] = tc.credit[bin] = next;
  remote_flush_paced(tc);
  if (traced)
    report_hits_on_time(tc);
  else if (tc.hits_pending >= HZ3_HIT_BATCH)
    report_hits(tc);
  if (HZ3_UNLIKELY(tc.heap->spans_released >= SCAVENGE_AFTER_RELEASES)) scavenge(tc);
  if constexpr (watched) {
    if (SAMPLING && (tc.sampling || sampling_wanted())) sampling_at_overflow(tc, bin);
  }
}

HZ3_NOINLINE void cache_overflow_watched(ThreadCache& tc, uint32_t bin) {
  overflow_body<true>(tc, bin);
}

// Every `credit` local frees: count them as hits, and every check_every of them check the
// class's bound (cache_bound). While the thread samples, also bound the pops until the class's
// next slow path (see "heap sampling").
HZ3_NOINLINE void cache_overflow(uint32_t bin) {
  ThreadCache& tc = t_cache;
  if (HZ3_UNLIKELY(HZ3_PROBE_ENABLED(hits) | (SAMPLING && (tc.sampling | sampling_wanted()))))
    return cache_overflow_watched(tc, bin);
  overflow_body<false>(tc, bin);
}

// Trims the class's list to half its cap if it is over the cap. Walks at most cache_cap + 1
// nodes, in two loops of a load, a test and a count each: to the keep-th node (where the list is
// cut if too long), then on to the (cache_cap + 1)-th.
void cache_bound(ThreadCache& tc, uint32_t bin) {
  const ClassInfo& k = CLASSES[bin];
  uint32_t keep = k.cache_cap / 2;  // >= 2: caps are >= 4
  void* cut = tc.head[bin];         // the head is not null: a free just pushed onto it
  for (uint32_t n = keep - 1; n; n--) {
    cut = *static_cast<void**>(cut);
    if (!cut) return;
  }
  void* q = cut;
  for (uint32_t n = k.cache_cap - keep + 1; n; n--) {
    q = *static_cast<void**>(q);
    if (!q) return;
  }
  tc.adopt[bin] = 0;  // full: see "adopted blocks"
  void* rest = *static_cast<void**>(cut);
  *static_cast<void**>(cut) = nullptr;
  Heap* h = tc.heap;
  CacheReturnLock g(tc, h);
  sample_note_removed(tc, bin, return_list(h, bin, rest));  // gone without a pop
}

// A local free of p (class bin) found the magazine full. Full, then empty (one refill or
// several in a row), now full again, and below the array's length: the fill swings across the
// whole magazine, so the cap doubles. Otherwise the older half goes back to the spans. Then p is
// cached and counted like any local free. A thread that allocates many blocks and then frees
// them has filled the magazine once (empty, full) and keeps its cap; one that repeats such
// bursts, or whose fill wanders from end to end, grows it.
HZ3_NOINLINE void mag_full(void* p, uint32_t bin) {
  ThreadCache& tc = t_cache;
  tc.adopt[bin] = 0;  // full: see "adopted blocks"
  uint64_t end = tc.mag_end[bin];
  if (tc.mag_hist[bin] == (MAG_FULL << 2 | MAG_REFILL) && end < MAG_END[bin]) {
    uint64_t grown = MAG_BASE[bin] + 2 * (end - MAG_BASE[bin]);
    tc.mag_end[bin] = grown < MAG_END[bin] ? grown : MAG_END[bin];
  } else {
    CacheReturnLock g(tc, tc.heap);
    mag_flush_locked(tc, tc.heap, bin, mag_cap(tc, bin) / 2);
  }
  tc.mag_hist[bin] = mag_hist_push(tc.mag_hist[bin], MAG_FULL);
  tc.mag_slots[tc.mag_top[bin]++] = p;
  if (--tc.frees_left[bin] == 0) cache_overflow(bin);
}

// The fast path's push of a block of class bin into the LIVE cache, for a free that came here.
HZ3_FAST_PATH void cache_push(ThreadCache& tc, void* p, uint32_t bin) {
  if (is_mag_bin(bin)) {
    uint64_t top = tc.mag_top[bin];
    if (top == tc.mag_end[bin]) return mag_full(p, bin);
    tc.mag_slots[top] = p;
    tc.mag_top[bin] = top + 1;
  } else {
    *static_cast<void**>(p) = tc.head[bin];
    tc.head[bin] = p;
  }
  if (--tc.frees_left[bin] == 0) cache_overflow(bin);
}

// A free that the fast path did not keep (x = tag ^ t_cache.key). Most are remote frees of a
// LIVE thread into a bucket already collecting for that heap and class: that case is done
// here with no call (the bucket's delivery aside); everything else goes to free_tagged_slow.
HZ3_NOINLINE void free_keyed_slow(void* p, uint64_t x) {
  ThreadCache& tc = t_cache;
  uint32_t tag = uint32_t(x ^ tc.key);
  if constexpr (!CHECK && !HARDENED) {
    // A decodable small tag that is not ours (ours would have been a fast-path push) and
    // carries no TAG_SAMPLED bit (it lies in the class field, so tag_is_small rejects it).
    if (HZ3_LIKELY(tag_is_small(tag) && tc.state == CacheState::LIVE)) {
      uint32_t bin = tag_bin_field(tag);
      RemoteBucket& b = tc.remote[remote_bucket_index(tag)];
      if (HZ3_LIKELY(b.tag ==
                     tag)) {  // a bucket collects for it: no adoption (see "adopted blocks")
        bool bound = bucket_push(tc, b, bin, p);
        if (HZ3_UNLIKELY(bound | (++tc.hits_pending >= HZ3_HIT_BATCH))) remote_free_bounds(tc, b);
        return;
      }
      if (tc.adopt[bin] != 0) {  // see "adopted blocks"
        tc.adopt[bin]--;
        return cache_push(tc, p, bin);
      }
    }
  }
  free_tagged_slow(p, tag);
}

HZ3_NOINLINE void free_tagged_slow(void* p, uint32_t tag) {
  ThreadCache& tc = t_cache;
  if (tag & TAG_SAMPLED) {  // the page holds the start of a sampled block: is p that block?
    sample_on_free(p);
    tag = tag_strip(tag);
  }
  if (HZ3_UNLIKELY(tag == 0)) {
    HZ3_PROBE(lookup_miss, (uint64_t)(uintptr_t)p, 1u);
    if constexpr (HARDENED) {
      if (page_heap::freed_large_marked(p, g_hard.mark ^ uintptr_t(p)))
        fatal_pointer("free()", "double free", p);
    }
    fatal_pointer("free()", "invalid pointer", p);
  }
  if (tag == TAG_LARGE) {
    count_hit(tc);
    large_free(p, "free()");
    return;
  }
  if (HZ3_UNLIKELY(!tag_is_small(tag))) {
    HZ3_PROBE(decode_fail, (uint64_t)(uintptr_t)p, tag);
    fatal_pointer("free()", "invalid pointer", p);
  }
  if (tc.state == CacheState::UNINIT && thread_init()) {
    free_fast(p);  // now classified against this thread's key
    return;
  }
  if constexpr (CHECK) check_on_free(p, tag);
  uint32_t bin = tag_bin_field(tag);
  if constexpr (HARDENED) hard_on_free(p, bin);  // local (sampling) and remote frees alike
  // Our own block, here because the page holds a sampled block, or one we adopt.
  if (tc.state == CacheState::LIVE &&
      (tag_owner_field(tag) == tc.heap->id + 1 || (tc.adopt[bin] != 0 && tc.adopt[bin]--)))
    return cache_push(tc, p, bin);
  count_hit(tc);
  remote_free(tc, tag, g_heaps[tag_owner_field(tag) - 1], bin, p);
}

void note_large_alloc(void* p, size_t size) {
  if constexpr (SAMPLING) {
    ThreadCache& tc = t_cache;
    if (tc.state != CacheState::LIVE) return;
    if (sync_sampling(tc) && sample_note_alloc(tc, p, size)) sample_redraw(tc, 0);
  }
}

void note_realloc(void* p, void* q, size_t size, bool was_sampled) {
  if constexpr (SAMPLING) {
    if (was_sampled && p == q) sample_on_free(p);  // moved blocks were freed by dealloc
    ThreadCache& tc = t_cache;
    if (p == q && tc.state == CacheState::LIVE && tc.sampling && sample_note_alloc(tc, q, size))
      sample_redraw(tc, 0);
  }
}

HZ3_NOINLINE void free_outside(void* p) {
  if (p == nullptr) return;
  HZ3_PROBE(lookup_miss, (uint64_t)(uintptr_t)p, 0u);
  if (sampled_outside_any()) sample_on_free(p);
  if (!huge_free(p) && !outside_free(p)) fatal_pointer("free()", "invalid pointer", p);
}

// ---- check variant ----

namespace {
Span* checked_span(void* p, uint32_t tag, const char* fn) {
  Span* s = map_load(page_index(p));
  uint32_t size = CLASSES[tag_bin_field(tag)].size;
  if (!s || s->state != SpanState::SMALL || (uintptr_t(p) - s->start) % size != 0 ||
      uintptr_t(p) >= s->bump_end)
    fatal_pointer(fn, "invalid pointer", p);
  return s;
}
}  // namespace

void check_on_alloc(void* p) {
  if constexpr (CHECK) {
    uint32_t tag = tag_strip(tag_load(page_index(p)));
    Span* s = checked_span(p, tag, "malloc()");
    size_t k = (uintptr_t(p) - s->start) / CLASSES[tag_bin_field(tag)].size;
    uint64_t bit = uint64_t{1} << (k & 63);
    uint64_t old = __atomic_fetch_or(&s->alloc_bits[k / 64], bit, __ATOMIC_RELAXED);
    if (old & bit) fatal_pointer("malloc()", "heap corruption: block handed out twice", p);
    // Write after free: the first poisoned bytes after the link word must be intact (a
    // magazine's block has no link a stray write could break, so nothing else would notice).
    static_assert(CHECK_POISON_VERIFIED == 16 && CHECK_POISON_AT == 8 && CLASSES[1].size == 16);
    constexpr uint64_t POISON8 = 0x0101010101010101ull * CHECK_POISON;
    const char* b = static_cast<const char*>(p) + CHECK_POISON_AT;
    bool two = CLASSES[tag_bin_field(tag)].size > 16;  // 8 verified bytes in a 16-byte block
    if (load8(b) != POISON8 || (two && load8(b + 8) != POISON8))
      fatal_pointer("malloc()", "write after free", p);
  }
}

void check_on_free(void* p, uint32_t tag) {
  if constexpr (CHECK) {
    Span* s = checked_span(p, tag, "free()");
    uint32_t size = CLASSES[tag_bin_field(tag)].size;
    size_t k = (uintptr_t(p) - s->start) / size;
    uint64_t bit = uint64_t{1} << (k & 63);
    uint64_t old = __atomic_fetch_and(&s->alloc_bits[k / 64], ~bit, __ATOMIC_RELAXED);
    if (!(old & bit)) fatal_pointer("free()", "double free", p);
    // Poison all but the link word: a use after free reads 0xDF bytes, not stale data.
    memset(static_cast<char*>(p) + CHECK_POISON_AT, CHECK_POISON, size - CHECK_POISON_AT);
  }
}

void check_live(void* p, uint32_t tag, const char* fn) {
  if constexpr (CHECK) {
    Span* s = checked_span(p, tag, fn);
    size_t k = (uintptr_t(p) - s->start) / CLASSES[tag_bin_field(tag)].size;
    if (!(__atomic_load_n(&s->alloc_bits[k / 64], __ATOMIC_RELAXED) & (uint64_t{1} << (k & 63))))
      fatal_pointer(fn, "use after free", p);
  }
}

// ---- malloc_trim ----

size_t trim_heaps() {
  if (!global_init_done()) return 0;
  ThreadCache& tc = t_cache;
  if (tc.state == CacheState::LIVE) {
    scavenge(tc);  // the caller's own cache: its blocks go back to their spans (adopted ones
                   // to their owners, through the remote buckets)
    remote_flush_all(tc);
  }
  size_t spans = 0;
  LockGuard r(g_reg_lock);
  for (uint32_t i = 0; i < g_heap_count; i++) {
    Heap* h = g_heaps[i];
    LockGuard g(h->lock);
    drain_inboxes(h);
    spans += release_empty_spans(h);
  }
  return spans;
}

}  // namespace hz3
