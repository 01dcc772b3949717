// The heap view's model: the sampled allocations of each traced process, from the events of
// probes/heap.bpf.c. HeapProcess keeps the live samples and per-stack sums, unwinds and
// symbolizes each new stack once, and builds a HeapProc per report: sites (the first frame
// outside allocation wrappers), their stacks, estimates with error bars, growth and ages.
// Pure bookkeeping: no BPF calls and no output (heap_collect.h reads the events, heap_render.h
// and pprof.h write them out). The estimates are libhz3's (docs/probes.md, "The estimator").
#pragma once

#include <linux/types.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "heap_events.h"
#include "proc.h"
#include "symbolize.h"

namespace hz3top {

// Sums over the samples of one stack (or a site, or a process). Objects are estimated as the
// sum of weight / size: a sample of a block of s bytes with weight w stands for w / s blocks.
// live_var and alloc_var estimate the variance of live_bytes and alloc_bytes: the sum of
// w (w - s) over the samples (Horvitz-Thompson's estimator of its own variance, with the
// sampling probability s / w), right whatever mean each sample was drawn with.
struct HeapSums {
  double live_bytes = 0, alloc_bytes = 0, live_objects = 0, alloc_objects = 0;
  double live_var = 0, alloc_var = 0;
  uint64_t live_samples = 0, alloc_samples = 0;
  void add(const HeapSums& o);
  // One standard error of live_bytes (alloc_bytes), in bytes and relative to the estimate (0
  // without samples): sqrt(live_var) and sqrt(live_var) / live_bytes. Where every sample weighs
  // alike and far more than its block, that is 1 / sqrt(samples); samples drawn with a mean the
  // pacing raised weigh more and widen it.
  double live_err() const;
  double alloc_err() const;
  double live_rel_err() const;
  double alloc_rel_err() const;
};

struct HeapStack {
  std::vector<Frame> frames;  // innermost first, inlined functions expanded
  size_t site_at = 0;         // index of the site frame; frames before it are wrappers
  size_t hz3_frames = 0;      // leading frames in libhz3 (the sampler's own)
  bool dwarf = false;         // unwound with DWARF CFI (else frame pointers)
  HeapSums sums;
};

struct HeapSite {
  std::string key;  // func (lib), or the frame's label when it has no symbol
  Frame site;       // the site frame of the heaviest stack
  HeapSums sums;
  double alloc_rate = 0;             // estimated bytes per second over the last interval
  double live_delta = 0;             // live bytes now minus at the previous report
  double growth_rate = 0;            // live bytes per second since attach (live / time attached)
  double age_mean = 0, age_max = 0;  // seconds since allocation of the live samples
  std::vector<HeapStack> stacks;     // every stack through the site, heaviest first
};

struct HeapProc {
  pid_t pid = 0;
  std::string comm, lib;
  bool alive = true;
  HeapSums sums;
  double alloc_rate = 0, live_delta = 0, growth_rate = 0;
  uint64_t dwarf_stacks = 0, fp_stacks = 0;  // distinct stacks by how they were unwound
  // The sampling means the samples were drawn with (bytes; libhz3's base mean, raised by powers
  // of two by the pacing), recovered from each sample's size and weight: the one most samples
  // were drawn with, how many were, and the largest; 0 while no sample tells (only blocks far
  // larger than the mean, sampled for sure, were seen).
  double sample_mean = 0, sample_mean_max = 0;
  uint64_t sample_mean_samples = 0;
  std::vector<HeapSite> sites;      // sorted by live bytes, most first
  std::vector<ModuleInfo> modules;  // for pprof's mappings
};

struct HeapReport {
  uint64_t seq = 0;
  double wall = 0, dt = 0, elapsed = 0;  // elapsed: seconds since attach
  bool final = false;
  // Counters of the BPF side (heap_counts) and of the bookkeeping here.
  uint64_t samples = 0, frees = 0, free_unknown = 0, alloc_dropped = 0, free_dropped = 0,
           stack_copy_failed = 0;
  std::vector<HeapProc> procs;
};

// Allocation wrappers: frames skipped, after libhz3's own, to find the site. Names are matched
// on the demangled function name up to its parameter list; a trailing '*' matches a prefix.
struct Wrappers {
  std::vector<std::string> names;
  Wrappers();  // the built-in list: libc's allocation API, operator new, zmalloc, PyMem_*, …
  void add(const std::string& pattern) { names.push_back(pattern); }
  bool match(const std::string& func) const;
};

// The mean a sample of a `size`-byte block with `weight` was drawn with: weight = size / (1 -
// exp(-size / mean)) solved for mean; 0 where the weight cannot tell it to a byte (weight under
// twice the size: the block was sampled almost for sure).
double sample_mean_of(double size, double weight);

// Which stack to keep for a sample: DWARF when its walk reached the outermost frame, or got at
// least as far as the frame-pointer walk; else the frame pointers.
bool prefer_dwarf(size_t dwarf_len, bool dwarf_complete, size_t fp_len);

// How stacks are unwound: DWARF with frame pointers as fallback, or only one of them.
enum class Unwind { AUTO, DWARF, FP };

class HeapProcess {
 public:
  HeapProcess(pid_t pid, Library lib, const Wrappers* wrappers, Unwind unwind, double attach_t);
  pid_t pid() const { return pid_; }
  const Library& lib() const { return lib_; }
  bool alive() const { return alive_; }
  void set_alive(bool a) { alive_ = a; }
  // Event handlers. `ts` are CLOCK_MONOTONIC seconds.
  void on_alloc(const hz3_heap_alloc_event& e);
  // False when the block was not sampled while we watched (sampled before attach).
  bool on_free(const hz3_heap_free_event& e);
  HeapProc report(double now);

 private:
  struct Live {
    uint32_t stack;
    double weight, size;
    double t;
  };
  struct Stack {
    std::vector<uint64_t> pcs;
    std::vector<Frame> frames;
    bool dwarf = false;
    double alloc_bytes = 0, alloc_objects = 0, freed_bytes = 0, freed_objects = 0;
    double alloc_var = 0, freed_var = 0;  // sums of w (w - s) (HeapSums)
    uint64_t alloc_samples = 0, freed_samples = 0;
  };
  uint32_t intern(std::vector<uint64_t> pcs, bool dwarf);
  void note_mean(double size, double weight);

  pid_t pid_;
  std::string comm_;
  Library lib_;
  const Wrappers* wrappers_;
  Unwind unwind_;
  std::unique_ptr<Symbolizer> sym_;
  bool alive_ = true;
  double attach_t_, prev_t_;
  std::map<std::vector<uint64_t>, uint32_t> ids_;
  std::vector<Stack> stacks_;
  std::vector<ModuleInfo> modules_;
  std::unordered_map<uint64_t, Live> live_;  // by block address
  std::map<long, std::pair<uint64_t, double>>
      means_;  // round(log2 mean) -> (samples, sum of means)
  std::map<std::string, std::pair<double, double>>
      prev_;  // site key -> (alloc, live) at last report
};

}  // namespace hz3top
