// Every C++ operator new/delete form, forwarding to the allocator. The only translation unit
// built with exceptions: operator new must throw std::bad_alloc (after giving the installed
// new_handler its chance); the allocator itself never throws.
#include <cstddef>
#include <new>

#include "heap.h"
#include "internal_api.h"

#define HZ3_EXPORT __attribute__((visibility("default")))

namespace {

// Slow path of a failed allocation: run the new_handler until it gives up (throws or is unset).
template <bool Nothrow>
__attribute__((noinline)) void* retry(std::size_t size, std::size_t align) {
  for (;;) {
    void* p = align ? hz3::alloc_aligned(align, size) : hz3::alloc(size);
    if (p) return p;
    std::new_handler h = std::get_new_handler();
    if (!h) {
      if constexpr (Nothrow) return nullptr;
      throw std::bad_alloc();
    }
    if constexpr (Nothrow) {
      try {
        h();
      } catch (...) {
        return nullptr;
      }
    } else {
      h();
    }
  }
}

__attribute__((noinline)) void* new_slow(std::size_t size) {
  void* p = hz3::alloc(size);
  return __builtin_expect(p != nullptr, 1) ? p : retry<false>(size, 0);
}

// The thread cache inline, everything else (refill, large, the new_handler) a tail call: no
// frame on the fast path.
inline void* new_impl(std::size_t size) {
  if (__builtin_expect(size <= hz3::DIRECT_MAX, 1))
    if (void* p = hz3::alloc_direct_cached(size)) return p;
  return new_slow(size);
}
inline void* new_aligned(std::size_t size, std::align_val_t a) {
  void* p = hz3::alloc_aligned(std::size_t(a), size);
  return __builtin_expect(p != nullptr, 1) ? p : retry<false>(size, std::size_t(a));
}
inline void* new_nothrow(std::size_t size, std::size_t a) {
  void* p = a ? hz3::alloc_aligned(a, size) : hz3::alloc(size);
  return __builtin_expect(p != nullptr, 1) ? p : retry<true>(size, a);
}

}  // namespace

HZ3_EXPORT void* operator new(std::size_t n) { return new_impl(n); }
HZ3_EXPORT void* operator new[](std::size_t n) { return new_impl(n); }
HZ3_EXPORT void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return new_nothrow(n, 0);
}
HZ3_EXPORT void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return new_nothrow(n, 0);
}
HZ3_EXPORT void* operator new(std::size_t n, std::align_val_t a) { return new_aligned(n, a); }
HZ3_EXPORT void* operator new[](std::size_t n, std::align_val_t a) { return new_aligned(n, a); }
HZ3_EXPORT void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(n, std::size_t(a));
}
HZ3_EXPORT void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(n, std::size_t(a));
}

HZ3_EXPORT void operator delete(void* p) noexcept { hz3::dealloc(p); }
HZ3_EXPORT void operator delete[](void* p) noexcept { hz3::dealloc(p); }
HZ3_EXPORT void operator delete(void* p, const std::nothrow_t&) noexcept { hz3::dealloc(p); }
HZ3_EXPORT void operator delete[](void* p, const std::nothrow_t&) noexcept { hz3::dealloc(p); }
HZ3_EXPORT void operator delete(void* p, std::size_t) noexcept { hz3::dealloc(p); }
HZ3_EXPORT void operator delete[](void* p, std::size_t) noexcept { hz3::dealloc(p); }
HZ3_EXPORT void operator delete(void* p, std::align_val_t) noexcept { hz3::dealloc(p); }
HZ3_EXPORT void operator delete[](void* p, std::align_val_t) noexcept { hz3::dealloc(p); }
HZ3_EXPORT void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  hz3::dealloc(p);
}
HZ3_EXPORT void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  hz3::dealloc(p);
}
HZ3_EXPORT void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  hz3::dealloc(p);
}
HZ3_EXPORT void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  hz3::dealloc(p);
}
