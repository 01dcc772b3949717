// One hz3top run: the targets (processes and their libhz3), the BPF and perf collectors attached
// to them, and the snapshots from which each Report is computed. main.cc and tui.cc drive it;
// it prints nothing itself (errors and notes come back as strings).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "collect_bpf.h"
#include "collect_perf.h"
#include "model.h"
#include "options.h"
#include "proc.h"
#include "tag_census.h"

namespace hz3top {

double monotonic_seconds();
double wall_seconds();

class Session {
 public:
  explicit Session(const Options& o) : opt_(o) {}
  ~Session() { stop(); }

  // Checks privileges, finds the targets, loads and attaches the probes and opens perf events.
  // False with a one-line `err` (what went wrong and what to do) on bad input.
  bool start(std::string* err);
  // Prints the probes and semaphore values of each -p target (for --list-probes).
  bool list_probes(std::string* out, std::string* err);
  // Called every ~100 ms between reports: drains perf buffers and notices exits.
  void tick();
  // True with -p once every target has exited (their last events are then in the maps).
  bool all_exited() const;
  Report sample(bool final);
  // Detaches the probes (in parallel) and closes perf events.
  void stop();

  std::vector<std::string> take_notes();
  double attach_seconds() const { return attach_seconds_; }
  size_t probe_links() const { return bpf_.links(); }
  bool multi_links() const { return bpf_.multi(); }
  const std::string& perf_event() const { return perf_event_; }

 private:
  struct Target {
    pid_t pid = 0;
    std::string comm;
    Library lib;
    std::unique_ptr<ArenaReader> arena;
    bool alive = true;
    bool discovered = true;  // false: seen only in the BPF maps (exited before a rescan)
    double since = 0;        // monotonic seconds from which its counts run (counting_start)
    double created = 0;      // the same instant as unix time, computed once (OpenMetrics _created)
    bool has_prev = false;
    ProcSnapshot prev;
    bool census_noted = false;
    double exited_at = 0;    // CLOCK_MONOTONIC when its exit was first seen; 0 while alive
    bool exec_seen = false;  // exec'd since the previous report
    bool lib_gone = false;   // exec'd a program without libhz3: nothing of hz3 is live
  };
  // The process replaced its image (exec): a new libhz3 mapping, or a new name. Re-reads the
  // library, its descriptor and tag map, re-attaches when the library file changed, and notes it.
  void check_exec(pid_t pid, Target& t);
  bool add_target(pid_t pid, Library lib, std::string* err);
  void rescan_all();
  // -f: attaches to the processes the targets forked since the last tick (within 0.1 s).
  void follow_forks();

  Options opt_;
  BpfCollector bpf_;
  PerfCollector perf_;
  bool perf_ok_ = false;
  std::string perf_event_, sample_event_;
  std::map<pid_t, Target> targets_;
  // --all: (dev, inode) of each library file attached, with the monotonic time of the attach.
  std::map<std::pair<uint64_t, uint64_t>, double> attached_files_;
  double attach_t_ = 0;
  double attach_seconds_ = 0;
  uint64_t seq_ = 0;
  std::vector<std::string> notes_;
  bool stopped_ = false;
};

// How long an exited process stays in the reports (with live memory 0) after the report that
// first shows its exit: with --openmetrics long enough for a scrape to see it (Prometheus scrapes
// every 15-60 s), else not at all.
constexpr double EXIT_LINGER_METRICS_S = 60;

}  // namespace hz3top
