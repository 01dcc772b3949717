// Small building blocks shared by every layer of libhz3: branch hints, fast/slow path markers,
// a futex mutex that never allocates, and the fatal-error printer. Nothing here knows about
// pages, classes or heaps.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "config.h"

#define HZ3_LIKELY(x) __builtin_expect(!!(x), 1)
#define HZ3_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HZ3_FAST_PATH inline __attribute__((always_inline))
#define HZ3_SLOW_PATH __attribute__((noinline, cold))
#define HZ3_NOINLINE __attribute__((noinline))

namespace hz3 {

// Fatal errors: one line on stderr, written without allocating, then abort().
[[noreturn]] void fatal_pointer(const char* fn, const char* what, const void* p);
[[noreturn]] void fatal(const char* msg);

// Assertions, in three levels (as mimalloc's mi_assert, mi_assert_internal, mi_assert_expensive).
// HZ3_ASSERT_LEVEL (config.h) says which are compiled in; the variant chooses it:
//   HZ3_ASSERT            level >= 1  cheap: O(1), a load and a compare (the span a freed block
//                                     belongs to is the one its tag names)
//   HZ3_ASSERT_INTERNAL   level >= 2  the allocator's own bookkeeping on slow paths, at most
//                                     O(objects the operation touches) (a span's counts after a
//                                     refill)
//   HZ3_ASSERT_EXPENSIVE  level >= 3  walks whole structures (every list of a heap, the page
//                                     heap's runs); for fuzzing and short test runs
// Release, noprobes, noptag and hardened build level 0, VARIANT=check level 2, the fuzzcheck
// build of libhz3/reliability level 3. A level not compiled in costs nothing: the condition is
// still compiled (so it cannot rot) but never evaluated. A failed assertion prints
// "hz3: assertion failed at FILE:LINE: CONDITION" on stderr without allocating, then aborts.
#define HZ3_STRINGIFY_(x) #x
#define HZ3_STRINGIFY(x) HZ3_STRINGIFY_(x)
#define HZ3_ASSERT_AT_LEVEL(level, cond)                                                    \
  do {                                                                                      \
    if (HZ3_ASSERT_LEVEL >= (level) && HZ3_UNLIKELY(!(cond)))                               \
      ::hz3::fatal("assertion failed at " __FILE__ ":" HZ3_STRINGIFY(__LINE__) ": " #cond); \
  } while (0)
#define HZ3_ASSERT(cond) HZ3_ASSERT_AT_LEVEL(1, cond)
#define HZ3_ASSERT_INTERNAL(cond) HZ3_ASSERT_AT_LEVEL(2, cond)
#define HZ3_ASSERT_EXPENSIVE(cond) HZ3_ASSERT_AT_LEVEL(3, cond)

// Three-state futex mutex (0 free, 1 locked, 2 locked with waiters). Used only on slow paths:
// page heap, heap adoption, huge-block table. Spins briefly because critical sections are short.
class Mutex {
 public:
  void lock() {
    uint32_t c = 0;
    if (HZ3_LIKELY(state_.compare_exchange_strong(c, 1, std::memory_order_acquire))) return;
    for (int i = 0; i < 100; i++) {
      __builtin_ia32_pause();
      c = 0;
      if (state_.load(std::memory_order_relaxed) == 0 &&
          state_.compare_exchange_strong(c, 1, std::memory_order_acquire))
        return;
    }
    if (c != 2) c = state_.exchange(2, std::memory_order_acquire);
    while (c != 0) {
      syscall(SYS_futex, &state_, FUTEX_WAIT_PRIVATE, 2, nullptr, nullptr, 0);
      c = state_.exchange(2, std::memory_order_acquire);
    }
  }
  bool try_lock() {
    uint32_t c = 0;
    return state_.compare_exchange_strong(c, 1, std::memory_order_acquire);
  }
  void unlock() {
    if (state_.exchange(0, std::memory_order_release) == 2)
      syscall(SYS_futex, &state_, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  }
  // After fork the child owns every lock its parent held across fork(); start them afresh.
  void reset_after_fork() { state_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<uint32_t> state_{0};
};

class LockGuard {
 public:
  explicit LockGuard(Mutex& m) : m_(m) { m_.lock(); }
  ~LockGuard() { m_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Mutex& m_;
};

}  // namespace hz3
