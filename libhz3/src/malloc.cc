// The C allocation API with glibc semantics, over the allocator in heap.h (small/medium),
// large.h (large/huge) and arena.h (pages, tags). What lives here: the size dispatch between
// small and large blocks (with the sampling note large blocks need), glibc's argument rules
// (overflow, ENOMEM, EINVAL, memalign's rounding of alignments, realloc(p, 0)), realloc's
// in-place-or-move decision and the validation of the pointer it is given, malloc_usable_size,
// malloc_trim, the __libc_* aliases, the process initialisation (at load and before the first
// large block) and the hits report at exit.
// Built with -fvisibility=hidden: these functions are the only exported code.
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "heap.h"
#include "internal_api.h"
#include "large.h"
#include "outside.h"
#include "probes.h"
#include "process.h"
#include "sample.h"

namespace hz3 {

// Larger requests cannot be served and would overflow page rounding (glibc: ENOMEM too).
constexpr size_t MAX_REQUEST = PTRDIFF_MAX;

// Large blocks bypass the thread cache, so a sampling thread counts them here. The process is
// initialised first (one load once it is): without the arena every block would be huge, and the
// hardened variant's secrets mark freed large blocks.
void* large_noted(size_t size, size_t align, bool* zeroed = nullptr) {
  global_init();
  void* p = large_alloc(size, align, zeroed);
  if (SAMPLING && p) note_large_alloc(p, size);
  return p;
}

void* alloc(size_t size) {
  if (HZ3_LIKELY(size <= SMALL_LIMIT)) return alloc_small(size);
  if (HZ3_UNLIKELY(size > MAX_REQUEST)) {
    errno = ENOMEM;
    return nullptr;
  }
  void* p = large_noted(size, 16);
  if (HZ3_UNLIKELY(!p)) errno = ENOMEM;
  return p;
}

// The class that serves `size` bytes aligned to `align` from the thread cache, or 0 when none
// does (size above SMALL_LIMIT, alignment 0 or above a page). Objects sit at span_start + k *
// size and spans are page aligned, so a class whose natural alignment covers `align` serves the
// request without any padding. align is a power of two (any value from `new` misuse is rounded
// up as one); 1 … 16 is every class's alignment.
HZ3_FAST_PATH uint32_t aligned_class(size_t align, size_t size) {
  if (HZ3_UNLIKELY(size > SMALL_LIMIT || align - 1 >= PAGE_SIZE)) return 0;
  // ceil(log2(max(align, 16))) - 4, from 0 (16 bytes) to 8 (4 KiB)
  uint32_t k = uint32_t(64 - __builtin_clzll((align - 1) | 15)) - ALIGN_LOG2_MIN;
  return ALIGNED_CLASS[class_of(size + HARD_ROOM)][k];
}

// An aligned request no class serves: a large block (or ENOMEM), or malloc's for an alignment
// of at most 16. Out of line, so the class path needs no stack frame.
HZ3_NOINLINE void* alloc_aligned_large(size_t align, size_t size) {
  if (align <= 16) return alloc(size);
  void* p =
      size > MAX_REQUEST || align > MAX_REQUEST ? nullptr : large_noted(size ? size : 1, align);
  if (HZ3_UNLIKELY(!p)) errno = ENOMEM;
  return p;
}

HZ3_FAST_PATH void* alloc_aligned_fast(size_t align, size_t size) {
  if (uint32_t c = aligned_class(align, size); HZ3_LIKELY(c != 0)) {
    if constexpr (HARDENED) return hard_alloc(c, size);
    return alloc_class(c);
  }
  return alloc_aligned_large(align, size);
}

void* alloc_aligned(size_t align, size_t size) { return alloc_aligned_fast(align, size); }

void dealloc(void* p) noexcept { free_fast(p); }

HZ3_NOINLINE void* malloc_refill_size(size_t size) { return malloc_refill(class_of(size)); }

// The free fast path missed its range: the arena of the dynamic layout (arena.h) is classified
// here, with the same code once the tag is known.
HZ3_NOINLINE void free_unfixed(void* p) {
  if (in_arena(p)) return free_tagged(p, lookup_tag(page_index(p)));
  free_outside(p);
}

// Usable size of a live block; aborts with `fn` in the message when p is not one.
size_t usable_size(void* p, const char* fn) {
  if (in_arena(p)) {
    uint32_t tag = tag_strip(lookup_tag(page_index(p)));
    if (tag_is_small(tag)) {
      if constexpr (CHECK) check_live(p, tag, fn);
      if constexpr (HARDENED) return hard_check_live(p, tag_bin_field(tag), fn, "use after free");
      return CLASSES[tag_bin_field(tag)].size;
    }
    if (tag == TAG_LARGE) return large_usable(p, fn);
    if (tag == 0)
      HZ3_PROBE(lookup_miss, (uint64_t)(uintptr_t)p, 1u);
    else
      HZ3_PROBE(decode_fail, (uint64_t)(uintptr_t)p, tag);
    fatal_pointer(fn, "invalid pointer", p);
  }
  HZ3_PROBE(lookup_miss, (uint64_t)(uintptr_t)p, 0u);
  size_t n;
  if (huge_usable(p, &n) || outside_usable(p, &n, fn)) return n;
  fatal_pointer(fn, "invalid pointer", p);
}

// Moves p's contents to a new block of `size` bytes (old is p's usable size).
HZ3_NOINLINE void* realloc_move(void* p, size_t old, size_t size) {
  void* q = alloc(size);
  if (HZ3_UNLIKELY(!q)) return nullptr;  // errno set; p untouched, as C requires
  memcpy(q, p, old < size ? old : size);
  dealloc(p);  // ends p's sample, if it had one
  return q;
}

void* reallocate(void* p, size_t size) {
  if (!p) return alloc(size);
  if (size == 0) {  // glibc: realloc(p, 0) frees p and returns NULL
    dealloc(p);
    return nullptr;
  }
  uint32_t raw = 0;
  bool inside = fixed_lookup(p, &raw);  // the free fast path's lookup; else the dynamic layout
  if (HZ3_UNLIKELY(!inside) && in_arena(p)) {
    raw = lookup_tag(page_index(p));
    inside = true;
  }
  if (HZ3_LIKELY(inside && size <= MAX_REQUEST)) {
    uint32_t tag = tag_strip(raw);
    bool sampled = SAMPLING && (raw & TAG_SAMPLED);
    if (HZ3_LIKELY(tag_is_small(tag))) {
      if constexpr (CHECK) check_live(p, tag, "realloc()");
      if constexpr (HARDENED) {  // in place while size + canary fits and the class is not 2x too
                                 // big
        uint32_t bin = tag_bin_field(tag), slot = CLASSES[bin].size;
        size_t old = hard_check_live(p, bin, "realloc()", "use after free");
        if (size + HARD_ROOM <= slot && (size + HARD_ROOM > slot / 2 || slot <= 128)) {
          hard_set_live(p, bin, size);
          if (HZ3_UNLIKELY(sampled)) sample_on_free(p);
          return p;
        }
        return realloc_move(p, old, size);
      }
      size_t old = CLASSES[tag_bin_field(tag)].size;
      // Stay in place while the class still fits and is not over twice too big.
      if (size <= old && (size > old / 2 || old <= 128)) {
        // Same block, same class: nothing is allocated, so a sampling thread counts nothing;
        // only a sampled block's sample ends (realloc is a free for the otel contract).
        if (HZ3_UNLIKELY(sampled)) sample_on_free(p);
        return p;
      }
      return realloc_move(p, old, size);
    }
    if (tag == TAG_LARGE && size > SMALL_LIMIT && large_resize_in_place(p, size)) {
      note_realloc(p, p, size, sampled);
      return p;
    }
  }
  size_t old = usable_size(p, "realloc()");  // validates p: an invalid p aborts here
  if (HZ3_UNLIKELY(size > MAX_REQUEST)) {
    errno = ENOMEM;
    return nullptr;  // p untouched
  }
  if (!in_arena(p) && size >= HUGE_THRESHOLD / 2) {
    if (sampled_outside_any()) sample_on_free(p);  // mremap may move it: its sample ends
    if (void* q = huge_realloc(p, size)) {
      note_large_alloc(q, size);
      return q;
    }
  }
  return realloc_move(p, old, size);
}

}  // namespace hz3

using namespace hz3;

HZ3_EXPORT_C void* HZ3_API(malloc)(size_t size) {
  if constexpr (!HARDENED) {  // the common sizes first: one compare before the table load
    if (HZ3_LIKELY(size <= DIRECT_MAX))
      return alloc_class_for<kind_up_to(DIRECT_MAX)>(t_cache.class_of_direct[size], size);
    // The list classes before the medium limit: a small block pays no compare for magazines.
    if (HZ3_LIKELY(size <= MAX_SMALL))
      return alloc_class_for<kind_up_to(MAX_SMALL)>(class_of(size), size);
  }
  if (HZ3_LIKELY(size <= SMALL_LIMIT)) return alloc_small(size);
  return alloc(size);
}

HZ3_EXPORT_C void HZ3_API(free)(void* p) { free_fast(p); }

HZ3_EXPORT_C void* HZ3_API(calloc)(size_t n, size_t size) {
  size_t total;
  if (HZ3_UNLIKELY(__builtin_mul_overflow(n, size, &total))) {
    errno = ENOMEM;
    return nullptr;
  }
  if (total <= SMALL_LIMIT) {
    void* p = alloc_small(total);
    if (p) memset(p, 0, total);
    return p;
  }
  bool zeroed = false;
  void* p = total > MAX_REQUEST ? nullptr : large_noted(total, 16, &zeroed);
  if (!p) {
    errno = ENOMEM;
    return nullptr;
  }
  if (!zeroed) memset(p, 0, total);  // fresh and released pages already read as zero
  return p;
}

HZ3_EXPORT_C void* HZ3_API(realloc)(void* p, size_t size) {
  if constexpr (!CHECK && !HARDENED) {  // staying in place in its class: no frame, no call
    uint32_t tag;
    if (HZ3_LIKELY(fixed_lookup(p, &tag)) && HZ3_LIKELY(tag_is_small(tag))) {  // not sampled
      size_t old = CLASSES[tag_bin_field(tag)].size;
      if (HZ3_LIKELY(size - 1 < old) && (size > old / 2 || old <= 128)) return p;  // size != 0
    }
  }
  return reallocate(p, size);
}

HZ3_EXPORT_C void* HZ3_API(reallocarray)(void* p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return reallocate(p, total);
}

// glibc 2.36's memalign rules (`_mid_memalign`), which its aligned_alloc and valloc share:
// an alignment of at most 16 is plain malloc, one above 2^63 is EINVAL, and any other that is
// not a power of two is rounded up to the next one (memalign(24, n) is 32-aligned).
HZ3_FAST_PATH void* memalign_glibc(size_t align, size_t size) {
  if (HZ3_UNLIKELY(align > SIZE_MAX / 2 + 1)) {
    errno = EINVAL;
    return nullptr;
  }
  if (HZ3_UNLIKELY(align & (align - 1))) align = size_t{1} << (64 - __builtin_clzll(align));
  return alloc_aligned_fast(align, size);
}

HZ3_NOINLINE int posix_memalign_slow(void** out, size_t align, size_t size) {
  void* p = memalign_glibc(align, size);
  if (!p) {
    errno = ENOMEM;
    return ENOMEM;
  }
  *out = p;
  return 0;
}

// EINVAL (errno untouched) unless the alignment is a power-of-two multiple of sizeof(void*).
// On ENOMEM glibc 2.36 leaves ENOMEM in errno too (its memalign sets it); so does hz3. A block
// the thread cache holds is stored without a call, so the fast path needs no stack frame.
HZ3_EXPORT_C int HZ3_API(posix_memalign)(void** out, size_t align, size_t size) {
  if (align == 0 || (align & (align - 1)) != 0 || align % sizeof(void*) != 0) return EINVAL;
  if constexpr (!HARDENED) {
    if (uint32_t c = aligned_class(align, size); HZ3_LIKELY(c != 0)) {
      if (void* p = cache_pop(t_cache, c); HZ3_LIKELY(p != nullptr)) {
        *out = p;
        return 0;
      }
    }
  }
  return posix_memalign_slow(out, align, size);
}

// glibc 2.36: the same as memalign (2.38 started rejecting alignments that are not powers of 2).
HZ3_EXPORT_C void* HZ3_API(aligned_alloc)(size_t align, size_t size) {
  return memalign_glibc(align, size);
}

HZ3_EXPORT_C void* HZ3_API(memalign)(size_t align, size_t size) {
  return memalign_glibc(align, size);
}

HZ3_EXPORT_C void* HZ3_API(valloc)(size_t size) { return alloc_aligned(PAGE_SIZE, size); }

HZ3_EXPORT_C void* HZ3_API(pvalloc)(size_t size) {
  size_t rounded = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  if (rounded < size) {
    errno = ENOMEM;
    return nullptr;
  }
  return alloc_aligned(PAGE_SIZE, rounded ? rounded : PAGE_SIZE);
}

HZ3_EXPORT_C size_t HZ3_API(malloc_usable_size)(void* p) {
  if (!p) return 0;
  return usable_size(p, "malloc_usable_size()");
}

// Gives every free page back to the OS now. Returns 1 if memory was released (glibc meaning).
// Gives back everything free: remote frees waiting in inboxes go back to their spans, every
// empty span to the page heap, and every free page to the OS. Returns 1 if any memory was
// released, as glibc does. The pad argument is ignored (hz3 keeps no heap top to pad).
HZ3_EXPORT_C int HZ3_API(malloc_trim)(size_t) {
  size_t spans = trim_heaps();
  return (page_heap::release_all() > 0 || spans > 0) ? 1 : 0;
}

// glibc's own names for its entry points. Programs and libraries that call them directly (to
// reach "the real malloc" under an interposer, as some profilers and language runtimes do) must
// get hz3's, or their blocks would reach hz3's free (an invalid-pointer abort) and hz3's blocks
// glibc's. Aliases, not wrappers: the same code at a second name (mimalloc and tcmalloc do this).
#ifndef HZ3_API_PREFIX
#if __has_attribute(copy)
#define HZ3_COPY_ATTRS(target) __attribute__((copy(target)))  // malloc, alloc_size, nothrow
#else
#define HZ3_COPY_ATTRS(target)
#endif
#define HZ3_LIBC_ALIAS(name, target, ret, args)                                            \
  extern "C" __attribute__((alias(#target), visibility("default"))) HZ3_COPY_ATTRS(target) \
      ret name args;
HZ3_LIBC_ALIAS(__libc_malloc, malloc, void*, (size_t))
HZ3_LIBC_ALIAS(__libc_free, free, void, (void*))
HZ3_LIBC_ALIAS(__libc_calloc, calloc, void*, (size_t, size_t))
HZ3_LIBC_ALIAS(__libc_realloc, realloc, void*, (void*, size_t))
HZ3_LIBC_ALIAS(__libc_memalign, memalign, void*, (size_t, size_t))
HZ3_LIBC_ALIAS(__libc_valloc, valloc, void*, (size_t))
HZ3_LIBC_ALIAS(__libc_pvalloc, pvalloc, void*, (size_t))
#undef HZ3_LIBC_ALIAS
#undef HZ3_COPY_ATTRS
#endif

// Reports the exiting main thread's pending hits, so hz3:hits totals are exact at exit.
__attribute__((destructor)) static void hz3_at_exit() { flush_hits_at_exit(); }
// Initialises the process at load, so its arena and fork handlers are in place before main (an
// allocation before this runs initialises it as well, from its slow path).
__attribute__((constructor)) static void hz3_at_start() { global_init(); }
