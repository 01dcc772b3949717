// libbpf calls behind collect_bpf.h.
#include "collect_bpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <thread>

#include "hz3.skel.h"
#include "output.h"
#include "usdt_spec.h"

namespace hz3top {

const char* const HZ3_PROBE_NAMES[5] = {"tag_set", "tag_clear", "lookup_miss", "decode_fail",
                                        "hits"};

namespace {

// BPF_TRACE_UPROBE_MULTI in kernel 6.6+ UAPI (enum bpf_attach_type); not in Debian 12's headers.
constexpr int BPF_TRACE_UPROBE_MULTI_VALUE = 48;

bool g_libbpf_verbose = false;

int libbpf_log(enum libbpf_print_level, const char* fmt, va_list ap) {
  return g_libbpf_verbose ? vfprintf(stderr, fmt, ap) : 0;
}

bpf_program* program_for(hz3_bpf* s, const char* probe) {
  if (!strcmp(probe, "tag_set")) return s->progs.hz3_tag_set;
  if (!strcmp(probe, "tag_clear")) return s->progs.hz3_tag_clear;
  if (!strcmp(probe, "lookup_miss")) return s->progs.hz3_lookup_miss;
  if (!strcmp(probe, "decode_fail")) return s->progs.hz3_decode_fail;
  return s->progs.hz3_hits;
}

// Per-CPU values come back as one 8-byte-aligned slot per possible CPU. Every value type here
// is a struct of u64 fields; they are summed as words and copied out with memcpy (a cast to
// uint64_t* would break strict aliasing: __u64 is unsigned long long, uint64_t unsigned long).
template <typename T>
bool sum_percpu(const bpf_map* map, const void* key, size_t key_size, T* out) {
  static_assert(sizeof(T) % 8 == 0, "per-CPU values here are arrays of u64");
  static const int ncpu = std::max(1, libbpf_num_possible_cpus());
  constexpr size_t words = sizeof(T) / 8;
  std::vector<uint64_t> buf(words * size_t(ncpu));
  if (bpf_map__lookup_elem(map, key, key_size, buf.data(), buf.size() * 8, 0) != 0) return false;
  uint64_t sum[words] = {};
  for (int cpu = 0; cpu < ncpu; cpu++)
    for (size_t w = 0; w < words; w++) sum[w] += buf[size_t(cpu) * words + w];
  memcpy(out, sum, sizeof sum);
  return true;
}

}  // namespace

void route_libbpf_log(bool verbose) {
  g_libbpf_verbose = verbose;
  libbpf_set_print(libbpf_log);
}

std::string bpf_load_error(int rc, bool verbose, const char* needs, const char* cmd) {
  std::string err = std::string("failed to load BPF programs: ") + strerror(-rc);
  if (rc == -EPERM)
    err += std::string(" (") + needs + "; run " + cmd + " with sudo)";
  else if (!verbose)
    err += " (run with -v for the verifier log)";
  return err;
}

std::string attach_error(const char* provider, const std::string& probe, const std::string& path,
                         const std::string& why) {
  return std::string("failed to attach ") + provider + ":" + probe + " in " + path + ": " + why;
}

BpfCollector::~BpfCollector() {
  detach();
  if (skel_) hz3_bpf__destroy(skel_);
}

namespace {

// -f: the fork tracepoint is loaded and attached only when asked for.
bool attach_fork_program(hz3_bpf* skel, bool follow, bpf_link** link, std::string* err) {
  if (!follow) return true;
  *link = bpf_program__attach(skel->progs.follow_fork);
  if (!*link) {
    *err = std::string("failed to attach the fork tracepoint (-f): ") + strerror(errno);
    return false;
  }
  return true;
}

}  // namespace

bool BpfCollector::load(bool verbose, bool legacy, bool follow, std::string* err) {
  route_libbpf_log(verbose);
#if defined(__x86_64__)
  if (!legacy) {
    // Programs for uprobe_multi links are verified as such at load; a kernel without them
    // rejects the load, and the programs are loaded again for plain uprobes.
    skel_ = hz3_bpf__open();
    if (skel_) {
      bpf_program* progs[] = {skel_->progs.hz3_tag_set, skel_->progs.hz3_tag_clear,
                              skel_->progs.hz3_lookup_miss, skel_->progs.hz3_decode_fail,
                              skel_->progs.hz3_hits};
      for (bpf_program* p : progs)
        bpf_program__set_expected_attach_type(p, bpf_attach_type(BPF_TRACE_UPROBE_MULTI_VALUE));
      bpf_program__set_autoload(skel_->progs.follow_fork, follow);
      if (hz3_bpf__load(skel_) == 0) {
        multi_ = true;
        return attach_fork_program(skel_, follow, &fork_link_, err);
      }
      if (verbose) fprintf(stderr, "hz3top: no uprobe_multi links here; one uprobe per site\n");
      hz3_bpf__destroy(skel_);
      skel_ = nullptr;
    }
  }
#else
  (void)legacy;
#endif
  skel_ = hz3_bpf__open();
  if (!skel_) {
    *err = std::string("failed to open BPF skeleton: ") + strerror(errno);
    return false;
  }
  bpf_program__set_autoload(skel_->progs.follow_fork, follow);
  if (int rc = hz3_bpf__load(skel_)) {
    *err = bpf_load_error(rc, verbose);
    return false;
  }
  return attach_fork_program(skel_, follow, &fork_link_, err);
}

bool BpfCollector::follow(pid_t pid, std::string* err) {
  uint32_t tgid = uint32_t(pid), zero = 0;
  if (bpf_map__update_elem(skel_->maps.followed, &tgid, sizeof tgid, &zero, sizeof zero, 0)) {
    *err = "failed to follow the forks of process " + std::to_string(pid) + ": " + strerror(errno);
    return false;
  }
  return true;
}

std::vector<std::pair<pid_t, pid_t>> BpfCollector::take_forks() {
  std::vector<std::pair<pid_t, pid_t>> out;
  if (!fork_link_) return out;
  const bpf_map* m = skel_->maps.forked;
  for_each_key<uint32_t>(m, [&](const uint32_t& child) {
    uint32_t parent = 0;
    if (bpf_map__lookup_elem(m, &child, sizeof child, &parent, sizeof parent, 0) == 0)
      out.emplace_back(pid_t(child), pid_t(parent));
  });
  for (auto& [child, parent] : out) {
    uint32_t k = uint32_t(child);
    bpf_map__delete_elem(m, &k, sizeof k, 0);
  }
  return out;
}

int BpfCollector::spec_id(const std::string& args, std::string* err) {
  // Sites with the same argument string share one spec: the map has room for 1024.
  if (auto it = spec_ids_.find(args); it != spec_ids_.end()) return it->second;
  UsdtSpec spec;
  if (!parse_usdt_args(args, &spec, err)) return -1;
  int id = int(spec_ids_.size());
  if (bpf_map__update_elem(skel_->maps.__bpf_usdt_specs, &id, sizeof id, &spec, sizeof spec, 0)) {
    *err = std::string("failed to store a USDT argument spec: ") + strerror(errno);
    return -1;
  }
  spec_ids_[args] = id;
  return id;
}

// The link_create part of union bpf_attr for uprobe_multi (kernel 6.6 UAPI); Debian 12's
// <linux/bpf.h> predates it. The kernel wants the rest of the attr zeroed.
struct UprobeMultiAttr {
  uint32_t prog_fd, target_fd, attach_type, flags;
  uint64_t path, offsets, ref_ctr_offsets, cookies;
  uint32_t cnt, multi_flags, pid;
  uint8_t zero[144 - 60];
};
static_assert(sizeof(UprobeMultiAttr) >= 144, "at least sizeof(union bpf_attr)");

bool BpfCollector::attach_multi(pid_t pid, const Library& lib, std::string* err) {
  const ElfInfo& elf = lib.elf;
  for (const char* probe : HZ3_PROBE_NAMES) {
    std::vector<uint64_t> offsets, ref_ctrs, cookies;
    for (const SdtNote& n : elf.notes) {
      if (n.provider != "hz3" || n.name != probe) continue;
      // prelink moves .stapsdt.base; the note's addresses move with it.
      uint64_t pc = n.pc;
      if (elf.stapsdt_base && n.base) pc += *elf.stapsdt_base - n.base;
      uint64_t off = 0, sem = 0;
      if (!vaddr_to_offset(elf, pc, &off)) {
        *err = "failed to place hz3:" + std::string(probe) + " in " + lib.path;
        return false;
      }
      if (uint64_t sv = elf.semaphore_vaddr(n); sv && !vaddr_to_offset(elf, sv, &sem)) {
        *err = "failed to place the semaphore of hz3:" + std::string(probe) + " in " + lib.path;
        return false;
      }
      int id = spec_id(n.args, err);
      if (id < 0) return false;
      offsets.push_back(off);
      ref_ctrs.push_back(sem);
      cookies.push_back(uint64_t(id));
    }
    if (offsets.empty()) {
      *err = attach_error("hz3", probe, lib.path, "no such probe (library built without it?)");
      return false;
    }
    UprobeMultiAttr a{};
    a.prog_fd = uint32_t(bpf_program__fd(program_for(skel_, probe)));
    a.attach_type = BPF_TRACE_UPROBE_MULTI_VALUE;
    a.path = uint64_t(uintptr_t(lib.path.c_str()));
    a.offsets = uint64_t(uintptr_t(offsets.data()));
    a.ref_ctr_offsets = uint64_t(uintptr_t(ref_ctrs.data()));
    a.cookies = uint64_t(uintptr_t(cookies.data()));
    a.cnt = uint32_t(offsets.size());
    a.pid = pid > 0 ? uint32_t(pid) : 0;  // 0: every process that maps the file
    int fd = int(syscall(SYS_bpf, BPF_LINK_CREATE, &a, sizeof a));
    if (fd < 0) {
      *err = attach_error("hz3", probe, lib.path, strerror(errno));
      return false;
    }
    multi_fds_.push_back(fd);
  }
  return true;
}

bool BpfCollector::attach(pid_t pid, const Library& lib, std::string* err) {
  if (multi_) return attach_multi(pid, lib, err);
  const std::string& path = lib.path;
  for (const char* probe : HZ3_PROBE_NAMES) {
    bpf_link* link = bpf_program__attach_usdt(program_for(skel_, probe), pid, path.c_str(), "hz3",
                                              probe, nullptr);
    if (!link) {
      int e = errno;
      *err = attach_error("hz3", probe, path, strerror(e));
      if (e == ENOENT) *err += " (library built without that probe?)";
      return false;
    }
    links_.push_back(link);
  }
  return true;
}

bool BpfCollector::read(BpfSnapshot* out, std::string* err) const {
  *out = BpfSnapshot{};
  const bpf_map* pc = skel_->maps.proc_counts;
  for_each_key<uint32_t>(pc, [&](const uint32_t& tgid) {
    ProcCounts c;
    if (sum_percpu(pc, &tgid, sizeof tgid, &c.c)) out->procs[pid_t(tgid)] = c;
  });

  const bpf_map* bc = skel_->maps.bin_counts;
  for_each_key<hz3_bin_key>(bc, [&](const hz3_bin_key& k) {
    hz3_bin_counts v;
    if (!sum_percpu(bc, &k, sizeof k, &v)) return;
    BinCounts& b = out->bins[pid_t(k.tgid)][tag_key(k.bin, k.owner)];
    b.sets = v.sets, b.clears = v.clears, b.set_pages = v.set_pages, b.clear_pages = v.clear_pages;
  });

  // The BPF side counts tag churn per bin only; the process totals are the sums.
  for (auto& [pid, bins] : out->bins) {
    ProcCounts& c = out->procs[pid];
    for (auto& [key, b] : bins) {
      c.c[HZ3_C_TAG_SET] += b.sets;
      c.c[HZ3_C_TAG_CLEAR] += b.clears;
      c.c[HZ3_C_TAG_SET_PAGES] += b.set_pages;
      c.c[HZ3_C_TAG_CLEAR_PAGES] += b.clear_pages;
    }
  }

  const bpf_map* ll = skel_->maps.large_live;
  for_each_key<hz3_large_key>(ll, [&](const hz3_large_key& k) {
    uint64_t npages = 0;
    if (bpf_map__lookup_elem(ll, &k, sizeof k, &npages, sizeof npages, 0) == 0)
      out->large_live[pid_t(k.tgid)][k.page_idx] = npages;
  });

  const bpf_map* df = skel_->maps.last_decode_fail;
  for_each_key<uint32_t>(df, [&](const uint32_t& tgid) {
    hz3_decode_fail v;
    if (bpf_map__lookup_elem(df, &tgid, sizeof tgid, &v, sizeof v, 0) == 0)
      out->last_decode_fail[pid_t(tgid)] = {v.ptr, v.tag};
  });
  (void)err;
  return true;
}

void BpfCollector::forget(pid_t pid) {
  uint32_t tgid = uint32_t(pid);
  bpf_map__delete_elem(skel_->maps.followed, &tgid, sizeof tgid, 0);
  bpf_map__delete_elem(skel_->maps.proc_counts, &tgid, sizeof tgid, 0);
  bpf_map__delete_elem(skel_->maps.last_decode_fail, &tgid, sizeof tgid, 0);
  // Keys per (process, …): collected first, deleted after the walk.
  std::vector<hz3_bin_key> bins;
  for_each_key<hz3_bin_key>(skel_->maps.bin_counts, [&](const hz3_bin_key& k) {
    if (k.tgid == tgid) bins.push_back(k);
  });
  for (auto& k : bins) bpf_map__delete_elem(skel_->maps.bin_counts, &k, sizeof k, 0);
  std::vector<hz3_large_key> large;
  for_each_key<hz3_large_key>(skel_->maps.large_live, [&](const hz3_large_key& k) {
    if (k.tgid == tgid) large.push_back(k);
  });
  for (auto& k : large) bpf_map__delete_elem(skel_->maps.large_live, &k, sizeof k, 0);
}

void BpfCollector::detach() {
  if (fork_link_) {
    bpf_link__destroy(fork_link_);
    fork_link_ = nullptr;
  }
  // Closing a link waits for its grace periods. Up to MAX_THREADS threads close links in turn:
  // uprobe_multi links (one per probe) overlap their waits; plain uprobes, on the 6.x kernels
  // measured here, are mostly serialised by the kernel (~90 ms per site), so threads gain ~10 %.
  constexpr size_t MAX_THREADS = 32;
  size_t total = multi_fds_.size() + links_.size();
  if (total == 0) return;
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < std::min(MAX_THREADS, total); i++)
    threads.emplace_back([&] {
      for (size_t j; (j = next.fetch_add(1)) < total;) {
        if (j < multi_fds_.size())
          close(multi_fds_[j]);
        else
          bpf_link__destroy(links_[j - multi_fds_.size()]);
      }
    });
  for (auto& t : threads) t.join();
  multi_fds_.clear();
  links_.clear();
}

}  // namespace hz3top
