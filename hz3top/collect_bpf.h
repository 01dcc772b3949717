// The BPF half of hz3top's collection: loads probes/hz3.bpf.c (through its generated skeleton),
// attaches its five programs to a process's libhz3 USDT probes, reads and sums the per-CPU
// maps, and detaches. It knows nothing of rates or of the screen.
//
// Two ways to attach. Where the kernel has uprobe_multi links (6.6+, x86-64), each program gets
// one link covering every site of its probe in a library, filled in here (usdt_spec.h): such a
// link detaches in one grace period. Otherwise libbpf's bpf_program__attach_usdt makes one
// uprobe per site, and each of them takes ~90 ms to tear down.
#pragma once

#include <bpf/libbpf.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model.h"
#include "output.h"
#include "proc.h"

struct hz3_bpf;

namespace hz3top {

// libbpf's log goes to stderr with `verbose` (-v), else nowhere: its warnings repeat (less
// clearly) the one-line errors hz3top prints, and a non-root EPERM is blamed on RLIMIT_MEMLOCK,
// which misleads. Every view that loads BPF programs calls this before loading.
void route_libbpf_log(bool verbose);
// The one-line error for a failed skeleton load (`rc` as the skeleton's load returned it): on
// EPERM the privileges `needs` and that `cmd` runs with sudo, else where to look (-v for the
// verifier log).
std::string bpf_load_error(int rc, bool verbose, const char* needs = PRIVILEGES_NEEDED,
                           const char* cmd = "hz3top");

// The one-line error for a USDT probe that did not attach: "failed to attach PROVIDER:PROBE in
// PATH: WHY". Every view words it so (t_hz3top_caps matches it).
std::string attach_error(const char* provider, const std::string& probe, const std::string& path,
                         const std::string& why);

// Calls fn(key) for every key of `map`, walking it with bpf_map__get_next_key. A walk of a live
// hash map may miss or repeat keys added or deleted meanwhile; delete after the walk, not during.
template <typename Key, typename Fn>
void for_each_key(const bpf_map* map, Fn&& fn) {
  Key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map__get_next_key(map, prev, &next, sizeof next) == 0) {
    fn(next);
    key = next;
    prev = &key;
  }
}

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

  // Opens and loads the programs, for uprobe_multi links unless `legacy` or the kernel cannot.
  // `verbose` routes libbpf's own log to stderr. With `follow`, also the fork tracepoint (-f).
  bool load(bool verbose, bool legacy, bool follow, std::string* err);
  // -f: reports the processes `pid` forks (and theirs) through take_forks(). After load(follow).
  bool follow(pid_t pid, std::string* err);
  // The (child, parent) pairs forked since the last call, oldest unknown: each is reported once.
  std::vector<std::pair<pid_t, pid_t>> take_forks();
  // Attaches every hz3 probe of `lib` for process `pid` (-1: every process that maps that
  // file), through lib.path, which reaches the mapped file itself.
  bool attach(pid_t pid, const Library& lib, std::string* err);
  size_t links() const { return links_.size() + multi_fds_.size(); }
  bool multi() const { return multi_; }

  bool read(BpfSnapshot* out, std::string* err) const;
  // Drops a process's entries (it exited and was reported).
  void forget(pid_t pid);
  // Detaches every link. Each uprobe site waits for a grace period on teardown (~90 ms here),
  // which dominates hz3top's exit time; see docs/hz3top.md, "Costs".
  void detach();

 private:
  bool attach_multi(pid_t pid, const Library& lib, std::string* err);
  int spec_id(const std::string& args, std::string* err);

  hz3_bpf* skel_ = nullptr;
  bool multi_ = false;
  bpf_link* fork_link_ = nullptr;        // -f: the sched_process_fork program
  std::vector<bpf_link*> links_;         // libbpf USDT links (legacy)
  std::vector<int> multi_fds_;           // uprobe_multi link fds
  std::map<std::string, int> spec_ids_;  // argument string -> slot in __bpf_usdt_specs
};

// The probes hz3top attaches, in the order of docs/probes.md.
extern const char* const HZ3_PROBE_NAMES[5];

}  // namespace hz3top
