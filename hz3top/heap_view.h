// `hz3top heap`: the heap-profiling view (docs/heap-profiling.md). Attaches probes/heap.bpf.c to
// libhz3's otel_memory:alloc/free USDT probes in the given processes, and every interval prints
// the allocation sites with the most estimated live bytes and the highest estimated allocation
// rate, symbolized from the target's ELF files, as text or one JSON object per interval.
// The estimates are libhz3's (docs/probes.md, "The estimator"); this file only sums them by site.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "symbolize.h"

namespace hz3top {

// One allocation site: the first stack frame outside libhz3, summed over every stack through it.
struct HeapSite {
  std::string key;         // func (lib), or the frame's label when it has no symbol
  Frame site;              // the site frame of the heaviest stack
  int64_t live_bytes = 0;  // estimated: weights allocated minus weights freed
  uint64_t alloc_bytes = 0, alloc_samples = 0, live_samples = 0, stacks = 0;
  double alloc_rate = 0;     // estimated bytes per second over the last interval
  std::vector<Frame> stack;  // the heaviest stack, innermost first (libhz3's frames included)
  int64_t heaviest = -1;     // live bytes of that stack (allocated bytes when nothing is live)
};

struct HeapProc {
  pid_t pid = 0;
  std::string comm, lib;
  bool alive = true;
  int64_t live_bytes = 0;
  uint64_t alloc_bytes = 0, alloc_samples = 0, live_samples = 0;
  double alloc_rate = 0;
  std::vector<HeapSite> sites;  // sorted by live bytes, most first
};

struct HeapReport {
  uint64_t seq = 0;
  double wall = 0, dt = 0;
  bool final = false;
  uint64_t samples = 0, frees = 0, free_unknown = 0, live_dropped = 0, site_dropped = 0,
           stack_lost = 0;
  std::vector<HeapProc> procs;
};

// `top`: sites listed per process in each table (0: all).
std::string render_heap_text(const HeapReport& r, size_t top);
std::string render_heap_json(const HeapReport& r, size_t top);

// Entry point of `hz3top heap ARGS`; argv[0] is "heap". Returns the exit status.
int run_heap(int argc, char** argv, std::atomic<bool>& stop);

}  // namespace hz3top
