// perf_event_open and libpfm4 calls behind collect_perf.h.
#include "collect_perf.h"

#include <perfmon/pfmlib_perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hz3top {

namespace {

// Data pages per sampling ring (a power of two): 64 KiB holds ~2700 samples, more than a busy
// thread produces at 1 kHz between two drains.
constexpr size_t RING_PAGES = 16;
// Threads per process we open events on; beyond that the numbers cover only the first ones.
constexpr size_t MAX_THREADS = 4096;

bool pfm_ready(std::string* err) {
  static int rc = pfm_initialize();
  if (rc != PFM_SUCCESS) {
    *err = std::string("failed to initialise libpfm4: ") + pfm_strerror(rc);
    return false;
  }
  return true;
}

}  // namespace

bool encode_perf_event(const std::string& name, PerfEventSpec* out, std::string* err) {
  if (!pfm_ready(err)) return false;
  perf_event_attr attr{};
  pfm_perf_encode_arg_t arg{};
  arg.attr = &attr;
  arg.size = sizeof arg;
  // User and kernel: page faults and allocator work done on the target's behalf in the kernel
  // (mmap, madvise) count too.
  int rc =
      pfm_get_os_event_encoding(name.c_str(), PFM_PLM0 | PFM_PLM3, PFM_OS_PERF_EVENT_EXT, &arg);
  if (rc != PFM_SUCCESS) {
    *err = "unknown perf event '" + name + "': " + pfm_strerror(rc);
    return false;
  }
  attr.size = sizeof attr;
  out->name = name;
  out->attr = attr;
  out->hardware = attr.type != PERF_TYPE_SOFTWARE && attr.type != PERF_TYPE_TRACEPOINT;
  return true;
}

PerfCollector::~PerfCollector() {
  for (auto& [pid, p] : procs_) close_proc(p);
  size_t page = size_t(sysconf(_SC_PAGESIZE));
  for (Ring& r : rings_) {
    munmap(r.base, r.data_size + page);
    close(r.fd);
  }
}

bool PerfCollector::init(const std::string& count_event, const std::string& sample_event,
                         int sample_hz, std::string* err) {
  if (!encode_perf_event(count_event, &count_, err)) return false;
  count_.attr.inherit = 1;
  count_.attr.disabled = 0;
  sampling_ = !sample_event.empty();
  if (sampling_) {
    if (!encode_perf_event(sample_event, &sample_, err)) return false;
    perf_event_attr& a = sample_.attr;
    a.freq = 1;
    a.sample_freq = uint64_t(sample_hz > 0 ? sample_hz : 1000);
    a.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID;
    a.disabled = 0;
  }
  return true;
}

int PerfCollector::open_event(perf_event_attr attr, pid_t tid, int* err) {
  int fd = int(syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC));
  *err = fd < 0 ? errno : 0;
  return fd;
}

void PerfCollector::open_rings() {
  rings_tried_ = true;
  int ncpu = int(sysconf(_SC_NPROCESSORS_CONF));
  size_t page = size_t(sysconf(_SC_PAGESIZE));
  for (int cpu = 0; cpu < ncpu; cpu++) {
    int fd = int(syscall(SYS_perf_event_open, &sample_.attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
    if (fd < 0) {
      if (errno == ENODEV || errno == ENOENT) continue;  // an offline CPU
      notes_.push_back("failed to open sampling event " + sample_.name + " on CPU " +
                       std::to_string(cpu) + ": " + strerror(errno) + "; sampling disabled");
      break;
    }
    void* m = mmap(nullptr, (RING_PAGES + 1) * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
      notes_.push_back(std::string("failed to map the perf sampling buffer: ") + strerror(errno) +
                       "; sampling disabled");
      close(fd);
      break;
    }
    rings_.push_back({fd, static_cast<uint8_t*>(m), RING_PAGES * page});
  }
  if (rings_.empty() || int(rings_.size()) < 1) sampling_ = false;
}

void PerfCollector::add(pid_t pid, const Library& lib) {
  if (procs_.count(pid)) return;
  if (sampling_ && !rings_tried_) open_rings();
  Proc& p = procs_[pid];
  p.text = lib.text;
  std::vector<pid_t> tids = list_threads(pid);
  if (tids.size() > MAX_THREADS) {
    notes_.push_back("process " + std::to_string(pid) + " has " + std::to_string(tids.size()) +
                     " threads; perf counts cover the first " + std::to_string(MAX_THREADS));
    tids.resize(MAX_THREADS);
  }
  for (pid_t tid : tids) {
    if (!counting_) break;
    int e = 0;
    int fd = open_event(count_.attr, tid, &e);
    // No PMU (a VM): hardware events encode but cannot be opened. Say so once, count page
    // faults instead, and retry this thread.
    if (fd < 0 && count_.hardware && !fallback_done_ &&
        (e == ENOENT || e == EOPNOTSUPP || e == ENODEV || e == EINVAL)) {
      std::string why = strerror(e);
      std::string ignore;
      PerfEventSpec pf;
      fallback_done_ = true;
      if (encode_perf_event("page-faults", &pf, &ignore)) {
        notes_.push_back("hardware event " + count_.name +
                         " is unavailable: perf_event_open failed: " + why +
                         " (no hardware PMU, as in most VMs); counting page-faults instead");
        pf.attr.inherit = 1;
        count_ = pf;
        fd = open_event(count_.attr, tid, &e);
      }
    }
    if (fd >= 0) {
      p.count_fds.push_back(fd);
    } else if (e != ESRCH) {  // ESRCH: the thread exited meanwhile
      notes_.push_back("failed to open perf event " + count_.name + " for thread " +
                       std::to_string(tid) + ": " + strerror(e) + "; not counting it");
      counting_ = false;
    }
  }
  p.counts.counting = counting_ && !p.count_fds.empty();
  p.counts.sampling = sampling_;
}

void PerfCollector::close_proc(Proc& p) {
  for (int fd : p.count_fds) close(fd);
  p.count_fds.clear();
}

void PerfCollector::remove(pid_t pid) {
  auto it = procs_.find(pid);
  if (it == procs_.end()) return;
  close_proc(it->second);
  procs_.erase(it);
}

void PerfCollector::drain_ring(Ring& r) {
  auto* meta = reinterpret_cast<perf_event_mmap_page*>(r.base);
  const uint8_t* data = r.base + size_t(sysconf(_SC_PAGESIZE));
  uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
  uint64_t tail = meta->data_tail;
  uint8_t rec[256];
  while (tail < head) {
    perf_event_header h;
    size_t off = size_t(tail % r.data_size);
    // A record may wrap around the end of the ring; copy it out in two pieces then.
    auto copy = [&](void* dst, size_t len) {
      size_t first = std::min(len, r.data_size - off);
      memcpy(dst, data + off, first);
      memcpy(static_cast<uint8_t*>(dst) + first, data, len - first);
    };
    copy(&h, sizeof h);
    if (h.size < sizeof h) break;  // corrupt: give up on this batch
    // PERF_SAMPLE_IP | PERF_SAMPLE_TID: header, u64 ip, u32 pid, u32 tid.
    if (h.type == PERF_RECORD_SAMPLE && h.size >= sizeof h + 16 && h.size <= sizeof rec) {
      copy(rec, h.size);
      uint64_t ip;
      uint32_t pid;
      memcpy(&ip, rec + sizeof h, sizeof ip);
      memcpy(&pid, rec + sizeof h + 8, sizeof pid);
      auto it = procs_.find(pid_t(pid));
      if (it != procs_.end()) {
        Proc& p = it->second;
        unsigned mode = h.misc & PERF_RECORD_MISC_CPUMODE_MASK;
        if (mode == PERF_RECORD_MISC_KERNEL || mode == PERF_RECORD_MISC_GUEST_KERNEL) {
          p.counts.samples_kernel++;
        } else {
          bool alloc = false;
          for (auto& t : p.text) alloc = alloc || (ip >= t.first && ip < t.second);
          (alloc ? p.counts.samples_alloc : p.counts.samples_user)++;
        }
      }
    } else if (h.type == PERF_RECORD_LOST && h.size >= sizeof h + 16) {
      // Lost samples carry no pid: charge them to every target, the honest upper bound.
      copy(rec, sizeof h + 16);
      uint64_t lost;
      memcpy(&lost, rec + sizeof h + 8, sizeof lost);
      for (auto& [pid, p] : procs_) p.counts.lost += lost;
    }
    tail += h.size;
  }
  __atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
}

void PerfCollector::drain() {
  for (Ring& r : rings_) drain_ring(r);
}

PerfCounts PerfCollector::read(pid_t pid) {
  drain();
  auto it = procs_.find(pid);
  if (it == procs_.end()) return {};
  Proc& p = it->second;
  uint64_t total = 0;
  for (int fd : p.count_fds) {
    uint64_t v = 0;
    if (::read(fd, &v, sizeof v) == ssize_t(sizeof v)) total += v;
  }
  // Counters only grow; a read that failed must not make the total go backwards.
  if (total > p.counts.count) p.counts.count = total;
  return p.counts;
}

std::vector<std::string> PerfCollector::take_notes() {
  std::vector<std::string> n;
  n.swap(notes_);
  return n;
}

}  // namespace hz3top
