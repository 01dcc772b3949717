// The BPF half of hz3top's collection: loads probes/hz3.bpf.c (through its generated skeleton),
// attaches its five programs to a process's libhz3 USDT probes, reads and sums the per-CPU
// maps, and detaches. It knows nothing of rates or of the screen.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model.h"

struct hz3_bpf;
struct bpf_link;

namespace hz3 {

struct BpfSnapshot {
  std::map<pid_t, ProcCounts> procs;
  std::map<pid_t, std::map<uint32_t, BinCounts>> bins;              // by tag_key(bin, owner)
  std::map<pid_t, std::map<uint64_t, uint64_t>> large_live;         // head page -> npages
  std::map<pid_t, std::pair<uint64_t, uint32_t>> last_decode_fail;  // ptr, tag
};

class BpfCollector {
 public:
  BpfCollector() = default;
  ~BpfCollector();
  BpfCollector(const BpfCollector&) = delete;
  BpfCollector& operator=(const BpfCollector&) = delete;

  // Opens and loads the programs. `verbose` routes libbpf's own log to stderr.
  bool load(bool verbose, std::string* err);
  // Attaches every hz3 probe of the library at `path` for process `pid` (-1: every process that
  // maps that file). `path` must reach the mapped file itself (see proc.h, Library::path).
  bool attach(pid_t pid, const std::string& path, std::string* err);
  size_t links() const { return links_.size(); }

  bool read(BpfSnapshot* out, std::string* err) const;
  // Drops a process's entries (it exited and was reported).
  void forget(pid_t pid);
  // Detaches every link. Each uprobe site waits for a grace period on teardown (~90 ms here),
  // which dominates hz3top's exit time; see docs/hz3top.md, "Costs".
  void detach();

 private:
  hz3_bpf* skel_ = nullptr;
  std::vector<bpf_link*> links_;
};

// The probes hz3top attaches, in the order of docs/probes.md.
extern const char* const HZ3_PROBE_NAMES[5];

}  // namespace hz3
