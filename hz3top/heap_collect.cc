// libbpf side of `hz3top heap` behind heap_collect.h.
#include "heap_collect.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "collect_bpf.h"
#include "heap.skel.h"
#include "heap_events.h"

namespace hz3top {

namespace {

int on_event(void* ctx, void* data, size_t size) {
  (*static_cast<HeapCollector::Handler*>(ctx))(data, size);
  return 0;
}

}  // namespace

HeapCollector::~HeapCollector() {
  detach();
  if (rb_) ring_buffer__free(rb_);
  if (skel_) heap_bpf__destroy(skel_);
}

bool HeapCollector::load(bool verbose, bool copy_stack, Handler handler, std::string* err) {
  handler_ = std::move(handler);
  route_libbpf_log(verbose);
  skel_ = heap_bpf__open();
  if (!skel_) {
    *err = std::string("failed to open BPF skeleton: ") + strerror(errno);
    return false;
  }
  skel_->rodata->copy_stack = copy_stack;
  if (int rc = heap_bpf__load(skel_)) {
    *err = bpf_load_error(rc, verbose, HEAP_PRIVILEGES_NEEDED, "hz3top heap");
    return false;
  }
  rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.heap_events), on_event, &handler_, nullptr);
  if (!rb_) {
    *err = std::string("failed to open the BPF ring buffer: ") + strerror(errno);
    return false;
  }
  return true;
}

bool HeapCollector::attach(pid_t pid, const Library& lib, std::string* err) {
  struct {
    bpf_program* prog;
    const char* name;
  } probes[] = {{skel_->progs.otel_alloc, "alloc"}, {skel_->progs.otel_free, "free"}};
  for (auto& p : probes) {
    bpf_link* l =
        bpf_program__attach_usdt(p.prog, pid, lib.path.c_str(), "otel_memory", p.name, nullptr);
    if (!l) {
      *err = attach_error("otel_memory", p.name, lib.maps_path, strerror(errno));
      return false;
    }
    links_.push_back(l);
  }
  return true;
}

void HeapCollector::detach() {
  for (bpf_link* l : links_) bpf_link__destroy(l);
  links_.clear();
}

void HeapCollector::poll(int timeout_ms) {
  if (!rb_) return;
  // The programs wake this only when the ring buffer is half full: what came without a wakeup
  // is drained here, after the wait.
  ring_buffer__poll(rb_, timeout_ms);
  ring_buffer__consume(rb_);
}

std::vector<uint64_t> HeapCollector::counters() const {
  static const int ncpu = std::max(1, libbpf_num_possible_cpus());
  std::vector<uint64_t> out(HZ3_HEAP_C_NR, 0);
  for (uint32_t i = 0; i < HZ3_HEAP_C_NR; i++) {
    std::vector<uint64_t> v(static_cast<size_t>(ncpu));
    if (bpf_map__lookup_elem(skel_->maps.heap_counts, &i, sizeof i, v.data(), v.size() * 8, 0))
      continue;
    for (uint64_t x : v) out[i] += x;
  }
  return out;
}

}  // namespace hz3top
