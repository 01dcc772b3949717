// The perf half of hz3top's collection: events named as perf names them ("cache-misses",
// "page-faults", "cpu-clock", or any libpfm4 name), encoded by libpfm4 and opened with
// perf_event_open. One counting event (cache misses by default), opened on every thread of a
// target and inherited by the threads they create; and one sampling event (cpu-clock by
// default), opened once per CPU, whose samples are kept only for the targets' pids and
// attributed to libhz3's code, the rest of user space, or the kernel. (Per-CPU because the
// kernel refuses to mmap an inherited per-thread event.) On a machine without a hardware PMU the
// counting event falls back, once and with a note saying why, to software page faults. It is
// not a profiler: no stacks, no symbols.
#pragma once

#include <linux/perf_event.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model.h"
#include "proc.h"

namespace hz3top {

struct PerfEventSpec {
  std::string name;
  perf_event_attr attr{};
  bool hardware = false;  // needs a PMU (anything but software and tracepoint events)
};

// libpfm4 encoding of `name`. False with `err` for a name libpfm4 does not know.
bool encode_perf_event(const std::string& name, PerfEventSpec* out, std::string* err);

class PerfCollector {
 public:
  PerfCollector() = default;
  ~PerfCollector();
  PerfCollector(const PerfCollector&) = delete;
  PerfCollector& operator=(const PerfCollector&) = delete;

  // Encodes both events; `sample_event` empty disables sampling. False on an unknown name.
  bool init(const std::string& count_event, const std::string& sample_event, int sample_hz,
            std::string* err);
  // Opens the events on every thread of `pid`. Never fatal: what cannot be opened is left out
  // and explained in a note.
  void add(pid_t pid, const Library& lib);
  void remove(pid_t pid);
  // Reads the sampling ring buffers; call often enough that they do not overflow.
  void drain();
  PerfCounts read(pid_t pid);

  const std::string& count_event() const { return count_.name; }
  std::string sample_event() const { return sampling_ ? sample_.name : ""; }
  // Messages to show once (fallbacks, failures); cleared by the call.
  std::vector<std::string> take_notes();

 private:
  struct Ring {
    int fd = -1;
    uint8_t* base = nullptr;  // metadata page, then the data pages
    size_t data_size = 0;
  };
  struct Proc {
    std::vector<int> count_fds;
    std::vector<std::pair<uint64_t, uint64_t>> text;
    PerfCounts counts;
  };
  void open_rings();
  void drain_ring(Ring& r);
  void close_proc(Proc& p);
  int open_event(perf_event_attr attr, pid_t tid, int* err);

  PerfEventSpec count_, sample_;
  bool counting_ = true, sampling_ = false, fallback_done_ = false;
  std::map<pid_t, Proc> procs_;
  std::vector<Ring> rings_;  // one per CPU, opened with the first target
  bool rings_tried_ = false;
  std::vector<std::string> notes_;
};

}  // namespace hz3top
