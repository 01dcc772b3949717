// Sampled heap profiling through USDT, as the OpenTelemetry eBPF profiler's memory-profiling
// design expects: `otel_memory:alloc(ptr, size, weighted_bytes)` on sampled allocations and
// `otel_memory:free(ptr)` when a sampled block is freed or reallocated.
//
// Sampling is by bytes: each thread counts allocated bytes down from an exponentially
// distributed interval (mean HZ3_SAMPLE_MEAN_BYTES), and the allocation that crosses zero is
// sampled with the unbiased weight size / (1 - exp(-size / mean)) (jemalloc's estimator): summing
// weights of live samples estimates live bytes. A thread samples only while a tracer is attached
// to otel_memory:alloc (its USDT semaphore is raised): it notices at its next slow path, parks its
// cache lists and sends every malloc and free through the slow path until the tracer goes. So
// detached, the cost is nil on the fast paths and one load in slow paths.
//
// A sampled block's start page gets TAG_SAMPLED in its tag; a free on such a page misses the fast
// path and looks the pointer up in the sampled set here. No load is added to the common free.
// The noptag and noprobes variants do not sample. Not a profiler: tracers aggregate.
#pragma once

#include <cstddef>
#include <cstdint>

#include "config.h"

#ifndef HZ3_SAMPLE_MEAN_BYTES
#define HZ3_SAMPLE_MEAN_BYTES (512 * 1024)
#endif

namespace hz3 {

struct ThreadCache;

inline constexpr bool SAMPLING = HZ3_PROBES && PTAG;

// True while a tracer is attached to otel_memory:alloc.
bool sampling_wanted();
// Counts an allocation of the calling thread (in sampling mode) and samples it when due.
void sample_note_alloc(ThreadCache& tc, void* p, size_t size);
// p lies on a page tagged TAG_SAMPLED (or outside the arena while huge blocks are sampled): if
// p itself is sampled, fire otel_memory:free and forget it.
void sample_on_free(void* p);
// The countdown a thread starts from when it enters sampling mode.
int64_t sample_first_interval(ThreadCache& tc);
// Whether any huge (outside-arena) block is sampled: free_outside checks only then.
bool sampled_outside_any();

// fork(): the sampled-block table's lock is held across it, like every other allocator lock
// (a thread recording a sample in the parent would otherwise leave it locked in the child).
void sample_lock_for_fork();
void sample_unlock_after_fork(bool child);

}  // namespace hz3
