// `hz3top heap`: the heap-profiling view (docs/heap-profiling.md). Attaches probes/heap.bpf.c to
// libhz3's otel_memory:alloc/free USDT probes in the given processes (or every process that maps
// libhz3), and every interval reports the allocation sites with the most estimated live bytes,
// their growth and the highest allocation rates, as text or one JSON object per interval, and
// optionally as a pprof profile and folded stacks. The parts: heap_options.h (command line),
// heap_collect.h (BPF), heap_model.h (bookkeeping), heap_render.h and pprof.h (output); this
// file is the loop that ties them together.
#pragma once

#include <atomic>

namespace hz3top {

// Entry point of `hz3top heap ARGS`; argv[0] is "heap". Returns the exit status.
int run_heap(int argc, char** argv, std::atomic<bool>& stop);

}  // namespace hz3top
