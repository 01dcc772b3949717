// Large blocks on the page heap, huge blocks on mmap (see large.h).
#include "large.h"

#include <errno.h>
#include <string.h>

#include "addr_map.h"
#include "arena.h"
#include "hz3/hz3.h"
#include "pal.h"
#include "probes.h"

namespace hz3 {

namespace {

size_t pages_for(size_t size) { return (size + PAGE_SIZE - 1) >> PAGE_SHIFT; }

Span* large_span(void* p, const char* fn) {
  Span* s = map_load(page_index(p));
  if (HZ3_UNLIKELY(!s || s->state != SpanState::LARGE || s->start != uintptr_t(p)))
    fatal_pointer(fn, "invalid pointer", p);
  return s;
}

// ---- huge blocks: user pointer -> the mapping that holds it ----
struct Mapping {
  uintptr_t base;
  size_t len;
};
Mutex g_huge_lock;
AddrMap<Mapping> g_huge;  // guarded by g_huge_lock

// The huge totals of the arena descriptor (include/hz3/hz3.h), for tracers; called with
// g_huge_lock held, so plain arithmetic on the published values is exact.
void huge_publish(int64_t blocks, int64_t bytes) {
  __atomic_store_n(&hz3_arena_desc.huge_blocks, hz3_arena_desc.huge_blocks + uint64_t(blocks),
                   __ATOMIC_RELAXED);
  __atomic_store_n(&hz3_arena_desc.huge_bytes, hz3_arena_desc.huge_bytes + uint64_t(bytes),
                   __ATOMIC_RELAXED);
}

}  // namespace

void* large_alloc(size_t size, size_t align, bool* zeroed) {
  page_heap::scavenger_poll();
  size_t npages = pages_for(size);
  if (size < HUGE_THRESHOLD && npages != 0) {
    size_t align_pages = align > PAGE_SIZE ? align >> PAGE_SHIFT : 1;
    if (Span* s = page_heap::alloc_large(npages, align_pages)) {
      if (zeroed) *zeroed = s->zeroed;
      return reinterpret_cast<void*>(s->start);
    }
  }
  if (zeroed) *zeroed = true;  // fresh mmap
  return huge_alloc(size, align);
}

void large_free(void* p, const char* fn) {
  Span* s = large_span(p, fn);
  // Hardened: a second free finds tag 0 and this marker (until the pages are reused or
  // released), and says "double free" rather than "invalid pointer".
  if constexpr (HARDENED) static_cast<uint64_t*>(p)[1] = g_hard.mark ^ uintptr_t(p);
  page_heap::free_span(s);
}

size_t large_usable(void* p, const char* fn) {
  return size_t(large_span(p, fn)->npages - LARGE_GUARD_PAGES) << PAGE_SHIFT;
}

bool large_resize_in_place(void* p, size_t new_size) {
  Span* s = large_span(p, "realloc()");
  size_t want = pages_for(new_size);
  size_t have = s->npages - LARGE_GUARD_PAGES;
  if (want == have) return true;
  if (want < have) {
    page_heap::shrink_large(s, want);
    return true;
  }
  return new_size < HUGE_THRESHOLD && page_heap::grow_large(s, want);
}

// Hardened: a PROT_NONE page before and after every huge block, inside its mapping.
constexpr size_t HUGE_GUARD = HARDENED ? PAGE_SIZE : 0;

void* huge_alloc(size_t size, size_t align) {
  if (align < PAGE_SIZE) align = PAGE_SIZE;
  size_t len = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  size_t map_len = len + (align > PAGE_SIZE ? align : 0) + 2 * HUGE_GUARD;
  if (size == 0 || len < size || map_len < len || map_len > (size_t{1} << 62)) {
    errno = ENOMEM;
    return nullptr;
  }
  char* base = static_cast<char*>(Pal::map(map_len));
  if (!base) {
    errno = ENOMEM;
    return nullptr;
  }
  uintptr_t user = (uintptr_t(base) + HUGE_GUARD + align - 1) & ~(align - 1);
  uintptr_t lo = user - HUGE_GUARD, hi = user + len + HUGE_GUARD;
  // Trim the alignment slack so the mapping is exactly [user, user + len) and its guards.
  if (lo > uintptr_t(base)) Pal::unmap(base, lo - uintptr_t(base));
  size_t tail = uintptr_t(base) + map_len - hi;
  if (tail) Pal::unmap(reinterpret_cast<void*>(hi), tail);
  if constexpr (HARDENED) {
    Pal::protect_none(reinterpret_cast<void*>(lo), HUGE_GUARD);
    Pal::protect_none(reinterpret_cast<void*>(user + len), HUGE_GUARD);
  }
  LockGuard g(g_huge_lock);
  if (!g_huge.insert(user, {lo, hi - lo})) {
    Pal::unmap(reinterpret_cast<void*>(lo), hi - lo);
    errno = ENOMEM;
    return nullptr;
  }
  huge_publish(1, int64_t(hi - lo));
  return reinterpret_cast<void*>(user);
}

bool huge_free(void* p) {
  uintptr_t base;
  size_t len;
  {
    LockGuard g(g_huge_lock);
    auto* e = g_huge.find(uintptr_t(p));
    if (!e) return false;
    base = e->value.base;
    len = e->value.len;
    g_huge.erase(e);
    huge_publish(-1, -int64_t(len));
  }
  Pal::unmap(reinterpret_cast<void*>(base), len);
  return true;
}

bool huge_usable(void* p, size_t* usable) {
  LockGuard g(g_huge_lock);
  auto* e = g_huge.find(uintptr_t(p));
  if (!e) return false;
  *usable = e->value.base + e->value.len - HUGE_GUARD - e->key;
  return true;
}

void* huge_realloc(void* p, size_t new_size) {
  if constexpr (HARDENED) return nullptr;  // mremap cannot carry the guards: the caller copies
  size_t len = (new_size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  if (len < new_size) return nullptr;
  LockGuard g(g_huge_lock);
  auto* e = g_huge.find(uintptr_t(p));
  if (!e || e->value.base != e->key) return nullptr;
  void* q = Pal::remap(reinterpret_cast<void*>(e->value.base), e->value.len, len);
  if (!q) return nullptr;
  huge_publish(0, int64_t(len) - int64_t(e->value.len));
  g_huge.erase(e);
  if (!g_huge.insert(uintptr_t(q), {uintptr_t(q), len})) fatal("out of metadata memory in realloc");
  return q;
}

void huge_totals(size_t* count, size_t* bytes, size_t* table_bytes) {
  LockGuard g(g_huge_lock);
  size_t n = 0, b = 0;
  g_huge.for_each([&](const AddrMap<Mapping>::Entry& e) {
    n++;
    b += e.value.len;
  });
  *count = n;
  *bytes = b;
  *table_bytes = g_huge.table_bytes();
}

void large_lock_for_fork() { g_huge_lock.lock(); }
void large_unlock_after_fork(bool child) {
  if (child)
    g_huge_lock.reset_after_fork();
  else
    g_huge_lock.unlock();
}

}  // namespace hz3
