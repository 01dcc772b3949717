// Large blocks on the page heap, huge blocks on mmap (see large.h).
#include "large.h"

#include <errno.h>
#include <string.h>

#include "arena.h"
#include "heap.h"
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

// ---- huge blocks: open-addressing table keyed by the user pointer ----
struct HugeEntry {
  uintptr_t user;  // 0 empty, 1 tombstone
  uintptr_t base;
  size_t len;
};
constexpr uintptr_t TOMBSTONE = 1;

Mutex g_huge_lock;
HugeEntry* g_table;
size_t g_cap;   // power of two
size_t g_used;  // live + tombstones

size_t slot_of(uintptr_t user) { return (user >> PAGE_SHIFT) * 0x9E3779B97F4A7C15ull >> 20; }

HugeEntry* find(uintptr_t user) {
  if (!g_table) return nullptr;
  for (size_t i = slot_of(user) & (g_cap - 1);; i = (i + 1) & (g_cap - 1)) {
    if (g_table[i].user == user) return &g_table[i];
    if (g_table[i].user == 0) return nullptr;
  }
}

bool insert(uintptr_t user, uintptr_t base, size_t len) {
  if ((g_used + 1) * 2 > g_cap) {
    size_t ncap = g_cap ? g_cap * 2 : 256;
    auto* nt = static_cast<HugeEntry*>(Pal::map(ncap * sizeof(HugeEntry)));
    if (!nt) return false;
    size_t live = 0;
    for (size_t i = 0; i < g_cap; i++) {
      if (g_table[i].user <= TOMBSTONE) continue;
      size_t j = slot_of(g_table[i].user) & (ncap - 1);
      while (nt[j].user) j = (j + 1) & (ncap - 1);
      nt[j] = g_table[i];
      live++;
    }
    if (g_table) Pal::unmap(g_table, g_cap * sizeof(HugeEntry));
    g_table = nt;
    g_cap = ncap;
    g_used = live;
  }
  size_t i = slot_of(user) & (g_cap - 1);
  while (g_table[i].user > TOMBSTONE) i = (i + 1) & (g_cap - 1);
  if (g_table[i].user == 0) g_used++;
  g_table[i] = {user, base, len};
  return true;
}

}  // namespace

void* large_alloc(size_t size, size_t align, bool* zeroed) {
  if (HZ3_UNLIKELY(!global_init())) return huge_alloc(size, align);
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

void large_free(void* p, const char* fn) { page_heap::free_span(large_span(p, fn)); }

size_t large_usable(void* p, const char* fn) {
  return size_t(large_span(p, fn)->npages) << PAGE_SHIFT;
}

bool large_resize_in_place(void* p, size_t new_size) {
  Span* s = large_span(p, "realloc()");
  size_t want = pages_for(new_size);
  if (want == s->npages) return true;
  if (want < s->npages) {
    page_heap::shrink_large(s, want);
    return true;
  }
  return new_size < HUGE_THRESHOLD && page_heap::grow_large(s, want);
}

void* huge_alloc(size_t size, size_t align) {
  if (align < PAGE_SIZE) align = PAGE_SIZE;
  size_t len = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  size_t map_len = len + (align > PAGE_SIZE ? align : 0);
  if (size == 0 || len < size || map_len < len || map_len > (size_t{1} << 62)) {
    errno = ENOMEM;
    return nullptr;
  }
  char* base = static_cast<char*>(Pal::map(map_len));
  if (!base) {
    errno = ENOMEM;
    return nullptr;
  }
  uintptr_t user = (uintptr_t(base) + align - 1) & ~(align - 1);
  // Trim the alignment slack so the mapping is exactly [user, user + len).
  if (user > uintptr_t(base)) Pal::unmap(base, user - uintptr_t(base));
  size_t tail = uintptr_t(base) + map_len - (user + len);
  if (tail) Pal::unmap(reinterpret_cast<void*>(user + len), tail);
  LockGuard g(g_huge_lock);
  if (!insert(user, user, len)) {
    Pal::unmap(reinterpret_cast<void*>(user), len);
    errno = ENOMEM;
    return nullptr;
  }
  return reinterpret_cast<void*>(user);
}

bool huge_free(void* p) {
  uintptr_t base;
  size_t len;
  {
    LockGuard g(g_huge_lock);
    HugeEntry* e = find(uintptr_t(p));
    if (!e) return false;
    base = e->base;
    len = e->len;
    e->user = TOMBSTONE;
  }
  Pal::unmap(reinterpret_cast<void*>(base), len);
  return true;
}

bool huge_usable(void* p, size_t* usable) {
  LockGuard g(g_huge_lock);
  HugeEntry* e = find(uintptr_t(p));
  if (!e) return false;
  *usable = e->base + e->len - e->user;
  return true;
}

void* huge_realloc(void* p, size_t new_size) {
  size_t len = (new_size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  if (len < new_size) return nullptr;
  LockGuard g(g_huge_lock);
  HugeEntry* e = find(uintptr_t(p));
  if (!e || e->base != e->user) return nullptr;
  void* q = Pal::remap(reinterpret_cast<void*>(e->base), e->len, len);
  if (!q) return nullptr;
  e->user = TOMBSTONE;
  if (!insert(uintptr_t(q), uintptr_t(q), len)) fatal("out of metadata memory in realloc");
  return q;
}

void large_lock_for_fork() { g_huge_lock.lock(); }
void large_unlock_after_fork(bool child) {
  if (child) g_huge_lock.reset_after_fork(); else g_huge_lock.unlock();
}

}  // namespace hz3
