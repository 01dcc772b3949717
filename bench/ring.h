// A bounded single-producer single-consumer ring of pointers, used by the multi-threaded
// workloads to hand blocks from the thread that allocated them to the thread that frees them.
// It is deliberately the cheapest correct handoff (no locks, one release store per side, cached
// indices), so the time measured is the allocator's and not the queue's. Not a general queue:
// exactly one thread may push and exactly one may pop.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace hz3::bench {

class SpscRing {
 public:
  explicit SpscRing(size_t capacity_pow2)
      : mask_(capacity_pow2 - 1), buf_(new void*[capacity_pow2]) {}

  // Producer side. False when full; the caller decides whether to wait or to free locally.
  bool push(void* p) {
    uint64_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_cache_ > mask_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (t - head_cache_ > mask_) return false;
    }
    buf_[t & mask_] = p;
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // Consumer side. nullptr when empty.
  void* pop() {
    uint64_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (h == tail_cache_) return nullptr;
    }
    void* p = buf_[h & mask_];
    head_.store(h + 1, std::memory_order_release);
    return p;
  }

 private:
  const uint64_t mask_;
  std::unique_ptr<void*[]> buf_;
  // Producer and consumer state on separate cache lines: sharing one would make every push and pop
  // a cache-line transfer, and the benchmark would measure that instead of the allocator.
  alignas(64) std::atomic<uint64_t> tail_{0};
  uint64_t head_cache_ = 0;
  alignas(64) std::atomic<uint64_t> head_{0};
  uint64_t tail_cache_ = 0;
};

}  // namespace hz3::bench
