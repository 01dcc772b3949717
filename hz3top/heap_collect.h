// The BPF side of `hz3top heap`: loads probes/heap.bpf.c (heap.skel.h), attaches it to libhz3's
// otel_memory:alloc/free probes in one process or, with pid -1, in every process that maps a
// library file, drains its ring buffer into a handler and reads its per-CPU counters.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "proc.h"

struct heap_bpf;
struct bpf_link;
struct ring_buffer;

namespace hz3top {

class HeapCollector {
 public:
  // The handler gets each raw event (hz3_heap_alloc_event or hz3_heap_free_event).
  using Handler = std::function<void(const void* data, size_t size)>;
  HeapCollector() = default;
  ~HeapCollector();
  HeapCollector(const HeapCollector&) = delete;
  HeapCollector& operator=(const HeapCollector&) = delete;

  // copy_stack: copy the top of each sample's user stack, for DWARF unwinding (not with
  // --unwind fp).
  bool load(bool verbose, bool copy_stack, Handler handler, std::string* err);
  // pid -1: every process that maps lib.path, now and later.
  bool attach(pid_t pid, const Library& lib, std::string* err);
  void detach();
  // Waits timeout_ms (less when the ring buffer fills up to half), then hands every queued event
  // to the handler. Call it every 20 ms or so: events do not wake it.
  void poll(int timeout_ms);
  // Sums of heap_counts, indexed by hz3_heap_counter.
  std::vector<uint64_t> counters() const;

 private:
  heap_bpf* skel_ = nullptr;
  ring_buffer* rb_ = nullptr;
  Handler handler_;
  std::vector<bpf_link*> links_;
};

}  // namespace hz3top
