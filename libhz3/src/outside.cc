// Small and medium classes outside the arena (see outside.h).
#include "outside.h"

#include "addr_map.h"
#include "large.h"
#include "pal.h"
#include "sizeclass.h"
#include "util.h"

namespace hz3 {

namespace {

// 1 MiB chunks hold 16 of the largest medium objects and 65,536 of the smallest; aligned to
// their size, so p & ~(CHUNK_BYTES - 1) is the base of p's chunk.
constexpr size_t CHUNK_BYTES = size_t{1} << 20;

// One chunk's objects, with the same bookkeeping as an arena span: handed out from the free
// list, then from the never-touched bump range. Invariant:
// used + |free_list| + (bump_end - bump) / size == capacity.
struct Chunk {
  uintptr_t base;
  uint32_t cls;
  uint32_t used;
  void* free_list;
  uintptr_t bump, bump_end;
  Chunk* next;  // the class's chunks with objects to hand out
  Chunk* prev;
  bool in_partial;
};

// All guarded by g_lock.
Mutex g_lock;
AddrMap<Chunk*> g_chunks;    // chunk base -> record
Chunk* g_partial[NUM_BINS];  // per class: chunks with free objects
uint32_t g_empty[NUM_BINS];  // per class: empty chunks kept (at most one)
Chunk* g_record_pool;        // recycled records
char* g_meta_cur;
char* g_meta_end;
size_t g_nchunks, g_used_bytes;

Chunk* record_new() {
  Chunk* c = g_record_pool;
  if (c) {
    g_record_pool = c->next;
  } else {
    if (size_t(g_meta_end - g_meta_cur) < sizeof(Chunk)) {
      char* m = static_cast<char*>(Pal::map(64 * 1024));
      if (!m) return nullptr;
      g_meta_cur = m;
      g_meta_end = m + 64 * 1024;
    }
    c = reinterpret_cast<Chunk*>(g_meta_cur);
    g_meta_cur += sizeof(Chunk);
  }
  *c = Chunk{};
  return c;
}

void partial_push(uint32_t cls, Chunk* c) {
  c->prev = nullptr;
  c->next = g_partial[cls];
  if (c->next) c->next->prev = c;
  g_partial[cls] = c;
  c->in_partial = true;
}

void partial_remove(uint32_t cls, Chunk* c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    g_partial[cls] = c->next;
  if (c->next) c->next->prev = c->prev;
  c->next = c->prev = nullptr;
  c->in_partial = false;
}

// Maps a CHUNK_BYTES-aligned chunk: over-map by one chunk and trim both ends.
Chunk* chunk_new(uint32_t cls) {
  char* raw = static_cast<char*>(Pal::map(2 * CHUNK_BYTES));
  if (!raw) return nullptr;
  uintptr_t base = (uintptr_t(raw) + CHUNK_BYTES - 1) & ~(CHUNK_BYTES - 1);
  if (base > uintptr_t(raw)) Pal::unmap(raw, base - uintptr_t(raw));
  uintptr_t end = uintptr_t(raw) + 2 * CHUNK_BYTES;
  if (end > base + CHUNK_BYTES)
    Pal::unmap(reinterpret_cast<void*>(base + CHUNK_BYTES), end - base - CHUNK_BYTES);
  Chunk* c = record_new();
  if (!c || !g_chunks.insert(base, c)) {
    Pal::unmap(reinterpret_cast<void*>(base), CHUNK_BYTES);
    if (c) {
      c->next = g_record_pool;
      g_record_pool = c;
    }
    return nullptr;
  }
  Pal::name(reinterpret_cast<void*>(base), CHUNK_BYTES, "hz3-outside");
  uint32_t size = CLASSES[cls].size;
  c->base = base;
  c->cls = cls;
  c->bump = base;
  c->bump_end = base + CHUNK_BYTES / size * size;
  g_nchunks++;
  return c;
}

void chunk_delete(Chunk* c) {
  g_chunks.erase(g_chunks.find(c->base));
  Pal::unmap(reinterpret_cast<void*>(c->base), CHUNK_BYTES);
  c->next = g_record_pool;
  g_record_pool = c;
  g_nchunks--;
}

Chunk* chunk_of(const void* p) {
  auto* e = g_chunks.find(uintptr_t(p) & ~(CHUNK_BYTES - 1));
  return e ? e->value : nullptr;
}

}  // namespace

void* outside_alloc(uint32_t cls) {
  {
    LockGuard g(g_lock);
    Chunk* c = g_partial[cls];
    if (!c) {
      c = chunk_new(cls);
      if (c) partial_push(cls, c);
    } else if (c->used == 0) {
      g_empty[cls]--;  // the kept empty chunk is in use again
    }
    if (c) {
      void* p;
      if (c->free_list) {
        p = c->free_list;
        c->free_list = *static_cast<void**>(p);
      } else {
        p = reinterpret_cast<void*>(c->bump);
        c->bump += CLASSES[cls].size;
      }
      c->used++;
      g_used_bytes += CLASSES[cls].size;
      if (!c->free_list && c->bump >= c->bump_end) partial_remove(cls, c);  // full
      return p;
    }
  }
  // Not even 2 MiB of address space for a new chunk: a mapping of the object's own size may
  // still fit (a huge block, which sets errno = ENOMEM when it does not).
  return huge_alloc(CLASSES[cls].size, 16);
}

bool outside_free(void* p) {
  LockGuard g(g_lock);
  Chunk* c = chunk_of(p);
  if (!c) return false;
  uint32_t size = CLASSES[c->cls].size;
  if ((uintptr_t(p) - c->base) % size != 0 || uintptr_t(p) >= c->bump)
    fatal_pointer("free()", "invalid pointer", p);
  *static_cast<void**>(p) = c->free_list;
  c->free_list = p;
  c->used--;
  g_used_bytes -= size;
  if (!c->in_partial) partial_push(c->cls, c);
  if (c->used == 0) {
    // Keep one empty chunk per class against churn at the boundary; unmap the others.
    if (g_empty[c->cls] == 0) {
      g_empty[c->cls] = 1;
    } else {
      partial_remove(c->cls, c);
      chunk_delete(c);
    }
  }
  return true;
}

bool outside_usable(void* p, size_t* usable, const char* fn) {
  LockGuard g(g_lock);
  Chunk* c = chunk_of(p);
  if (!c) return false;
  uint32_t size = CLASSES[c->cls].size;
  if ((uintptr_t(p) - c->base) % size != 0 || uintptr_t(p) >= c->bump)
    fatal_pointer(fn, "invalid pointer", p);
  *usable = size;
  return true;
}

OutsideStats outside_stats() {
  LockGuard g(g_lock);
  return {g_nchunks, g_nchunks * CHUNK_BYTES, g_used_bytes};
}

void outside_lock_for_fork() { g_lock.lock(); }
void outside_unlock_after_fork(bool child) {
  if (child)
    g_lock.reset_after_fork();
  else
    g_lock.unlock();
}

}  // namespace hz3
