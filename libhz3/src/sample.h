// Sampled heap profiling through USDT, as the OpenTelemetry eBPF profiler's memory-profiling
// design expects: `otel_memory:alloc(ptr, size, weighted_bytes)` on sampled allocations and
// `otel_memory:free(ptr)` when a sampled block is freed or reallocated.
//
// Sampling is by bytes: every allocated byte starts a sample with the same small probability,
// so an allocation of s bytes is sampled with probability q = 1 - exp(-s / mean) and weighs
// s / q (jemalloc's estimator): summing weights of live samples estimates live bytes. For a size
// class that is the same as counting its allocations down from K = ceil(Exp(mean) / s), a
// geometric number (heap.cc keeps one such countdown per class, so the fast path counts
// nothing); large blocks count their bytes down from an exponential interval on their own slow
// path. A thread samples only while a tracer is attached to otel_memory:alloc (its USDT
// semaphore is raised), from its next slow path on. Detached, nothing of this runs and the fast
// paths are the same instructions as in the noprobes build.
//
// Pacing: each sample costs the traced thread a uprobe trap and a copy of its registers and stack
// (a few us) and the tracer an unwind, so a thread's samples are held near HZ3_SAMPLE_MAX_RATE
// per second of the thread's own CPU time (what its slowdown is made of: a thread that runs half
// the time pays for its samples out of that half). Every HZ3_SAMPLE_PACE_EVERY samples, and at
// a sample 250 ms of wall time after the last judgement, the rate since the pacing window began
// is judged: at sqrt(2) times the target or more the mean grows at once by the power of two
// nearest rate / target (the rate then lies within 0.71 and 1.41 times the target); after a
// window of at least 250 ms of CPU time below 40 % of the target it shrinks, by as many halvings
// as keep the rate under 80 % of the target. A change of mean
// redraws every countdown of the thread (heap.cc), so it takes effect at once and the pacing
// settles within a window; each sample weighs what the mean of its own countdown gives, so the
// estimate stays unbiased (a countdown is memoryless: redrawing it at any instant changes no
// probability, and a judgement looks only at samples already taken, so every allocation's
// probability is set before it is made, as Horvitz-Thompson's estimator needs). A raised mean
// leaves fewer samples, each weighing more: the estimate's variance, sum of w (w - s) over the
// samples, grows with it (hz3top heap's ± and live_err / alloc_err; the heap tests bound by it).
// JFR throttles its allocation samples the same way.
//
// A sampled block's start page gets TAG_SAMPLED in its tag; a free on such a page misses the fast
// path and looks the pointer up in the sampled set here. No load is added to the common free.
// The noptag and noprobes variants do not sample. Not a profiler: tracers aggregate.
#pragma once

#include <cstddef>
#include <cstdint>

#include "config.h"
#include "probes.h"

#ifndef HZ3_SAMPLE_MEAN_BYTES
#define HZ3_SAMPLE_MEAN_BYTES (512 * 1024)
#endif
#ifndef HZ3_SAMPLE_MAX_RATE
#define HZ3_SAMPLE_MAX_RATE 2000  // samples per second of a thread's CPU time (the pacing target)
#endif
#ifndef HZ3_SAMPLE_PACE_EVERY
#define HZ3_SAMPLE_PACE_EVERY 32  // samples between two judgements of the pacing
#endif
#ifndef HZ3_SAMPLE_MAX_SHIFT
#define HZ3_SAMPLE_MAX_SHIFT 12  // the mean grows to at most HZ3_SAMPLE_MEAN_BYTES << 12 (2 GiB)
#endif

namespace hz3 {

struct ThreadCache;

inline constexpr bool SAMPLING = HZ3_PROBES && PTAG;

// True while a tracer is attached to otel_memory:alloc. The kernel writes the semaphore when a
// tracer attaches or leaves, at any instant: an atomic load says so (and is one plain load).
inline bool sampling_wanted() {
#if HZ3_PROBES
  return SAMPLING && __atomic_load_n(&otel_memory_alloc_semaphore, __ATOMIC_RELAXED) != 0;
#else
  return false;
#endif
}
// Allocations of a class of `size` bytes until the next sampled one (>= 1), drawn with the
// thread's current mean; *shift says which.
int64_t sample_draw_count(ThreadCache& tc, uint32_t size, uint32_t* shift);
// Samples p (a block of `size` usable bytes) drawn with mean HZ3_SAMPLE_MEAN_BYTES << shift: fires
// otel_memory:alloc with its weight, and paces the thread. True when the pacing changed the
// thread's mean: the caller then redraws the class countdowns (heap.cc).
[[nodiscard]] bool sample_take(ThreadCache& tc, void* p, size_t size, uint32_t shift);
// Counts a large allocation of the calling thread (in sampling mode) down from the byte interval
// and samples it when due; true as sample_take says (the byte countdown is redrawn already).
[[nodiscard]] bool sample_note_alloc(ThreadCache& tc, void* p, size_t size);
// p lies on a page tagged TAG_SAMPLED (or outside the arena while huge blocks are sampled): if
// p itself is sampled, fire otel_memory:free and forget it.
void sample_on_free(void* p);
// The pacing's verdict on a window of `samples` samples over `cpu_us` of the thread's CPU time:
// how many doublings (> 0) or halvings (< 0) of the mean it calls for, within [0, max_shift]
// from `shift`; `closes` says whether the window ends here (a change, or a full window at a
// rate the pacing accepts). Pure, for the unit tests.
struct PaceVerdict {
  int delta;
  bool closes;
};
PaceVerdict pace_verdict(uint64_t samples, uint64_t cpu_us, uint32_t shift);
// Starts (or restarts, at the thread's current mean) the large-block byte countdown.
void sample_start_bytes(ThreadCache& tc);
// Whether any huge (outside-arena) block is sampled: free_outside checks only then.
bool sampled_outside_any();

// fork(): the sampled-block table's lock is held across it, like every other allocator lock
// (a thread recording a sample in the parent would otherwise leave it locked in the child).
void sample_lock_for_fork();
void sample_unlock_after_fork(bool child);

}  // namespace hz3
