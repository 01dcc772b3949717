// `hz3top heap` behind heap.h: options, the BPF side (heap.skel.h), the per-site sums, renderers.
#include "heap_view.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>

#include "format.h"
#include "heap.skel.h"
#include "heap_events.h"
#include "options.h"
#include "proc.h"
#include "session.h"

namespace hz3top {

namespace {

bool g_heap_verbose = false;

int heap_libbpf_log(enum libbpf_print_level, const char* fmt, va_list ap) {
  return g_heap_verbose ? vfprintf(stderr, fmt, ap) : 0;
}

struct HeapOptions {
  std::vector<pid_t> pids;
  double interval = 1.0;
  long count = 0;
  double duration = 0;
  bool json = false;
  bool verbose = false;
  size_t top = 10;
  bool top_given = false;
};

int parse_heap_options(int argc, char** argv, HeapOptions* o) {
  CLI::App app{
      "hz3top heap: allocation sites by estimated live bytes and allocation rate, from libhz3's\n"
      "sampled otel_memory:alloc/free USDT probes (counted by eBPF, stacks symbolized from the\n"
      "target's ELF files). Needs root or CAP_BPF+CAP_PERFMON.",
      "hz3top heap"};
  app.footer(
      "Examples:\n"
      "  sudo hz3top heap -p $(pidof redis-server)        top 10 sites every second\n"
      "  sudo hz3top heap -p 1234 --json 5 3 > heap.jsonl  three JSON reports, 5 s apart\n"
      "Manual: docs/heap-profiling.md");
  std::vector<int> pids;
  bool once = false;
  app.add_option("-p,--pid", pids, "process to profile (repeat for several)")
      ->allow_extra_args(false)
      ->required();
  app.add_flag("--json", o->json, "print one JSON object per interval");
  app.add_option("-n,--top", o->top, "sites per table (0: all; JSON lists all by default)");
  app.add_option("-d,--duration", o->duration, "stop after SECONDS")->check(CLI::PositiveNumber);
  app.add_flag("--once", once, "print one report after one interval, then exit");
  add_report_options(app, &o->verbose, &o->interval, &o->count);
  if (int rc = parse_cli(app, argc, argv, "hz3top heap"); rc >= 0) return rc;
  add_unique_pids(pids, &o->pids);
  o->top_given = app.count("--top") > 0;
  if (!o->top_given && o->json) o->top = 0;
  if (once) o->count = 1;
  return -1;
}

// The BPF side: load, attach per process, read the maps.
class HeapBpf {
 public:
  ~HeapBpf() {
    for (bpf_link* l : links_) bpf_link__destroy(l);
    if (skel_) heap_bpf__destroy(skel_);
  }
  bool load(std::string* err) {
    libbpf_set_print(heap_libbpf_log);
    skel_ = heap_bpf__open();
    if (!skel_) {
      *err = std::string("failed to open BPF skeleton: ") + strerror(errno);
      return false;
    }
    if (int rc = heap_bpf__load(skel_)) {
      *err = std::string("failed to load BPF programs: ") + strerror(-rc);
      if (rc == -EPERM) *err += " (needs root or CAP_BPF+CAP_PERFMON; run hz3top with sudo)";
      return false;
    }
    return true;
  }
  bool attach(pid_t pid, const Library& lib, std::string* err) {
    struct {
      bpf_program* prog;
      const char* name;
    } probes[] = {{skel_->progs.otel_alloc, "alloc"}, {skel_->progs.otel_free, "free"}};
    for (auto& p : probes) {
      bpf_link* l =
          bpf_program__attach_usdt(p.prog, pid, lib.path.c_str(), "otel_memory", p.name, nullptr);
      if (!l) {
        *err = "failed to attach otel_memory:" + std::string(p.name) + " in " + lib.maps_path +
               ": " + strerror(errno);
        return false;
      }
      links_.push_back(l);
    }
    return true;
  }
  void detach() {
    for (bpf_link* l : links_) bpf_link__destroy(l);
    links_.clear();
  }
  void counters(HeapReport* r) const {
    static const int ncpu = std::max(1, libbpf_num_possible_cpus());
    uint64_t* slots[HZ3_HEAP_C_NR] = {&r->samples,      &r->frees,        &r->free_unknown,
                                      &r->live_dropped, &r->site_dropped, &r->stack_lost};
    for (uint32_t i = 0; i < HZ3_HEAP_C_NR; i++) {
      std::vector<uint64_t> v(static_cast<size_t>(ncpu));
      *slots[i] = 0;
      if (bpf_map__lookup_elem(skel_->maps.heap_counts, &i, sizeof i, v.data(), v.size() * 8, 0))
        continue;
      for (uint64_t x : v) *slots[i] += x;
    }
  }
  std::map<std::pair<pid_t, int32_t>, hz3_heap_site> sites() const {
    std::map<std::pair<pid_t, int32_t>, hz3_heap_site> out;
    hz3_heap_site_key k{}, next{};
    const void* prev = nullptr;
    while (bpf_map__get_next_key(skel_->maps.heap_sites, prev, &next, sizeof next) == 0) {
      hz3_heap_site v;
      if (bpf_map__lookup_elem(skel_->maps.heap_sites, &next, sizeof next, &v, sizeof v, 0) == 0)
        out[{pid_t(next.tgid), next.stack_id}] = v;
      k = next;
      prev = &k;
    }
    return out;
  }
  std::vector<uint64_t> stack(int32_t id) const {
    std::vector<uint64_t> ips(HZ3_HEAP_STACK_DEPTH);
    uint32_t key = uint32_t(id);
    if (id < 0 || bpf_map__lookup_elem(skel_->maps.heap_stacks, &key, sizeof key, ips.data(),
                                       ips.size() * 8, 0))
      return {};
    while (!ips.empty() && ips.back() == 0) ips.pop_back();
    return ips;
  }

 private:
  heap_bpf* skel_ = nullptr;
  std::vector<bpf_link*> links_;
};

struct HeapTarget {
  pid_t pid = 0;
  std::string comm;
  Library lib;
  std::unique_ptr<Symbolizer> sym;
  bool alive = true;
  std::map<int32_t, std::vector<Frame>> stacks;  // symbolized once, while the process lives
  std::map<std::string, uint64_t> prev_alloc;    // site key -> alloc bytes at the last report
  double prev_t = 0;
};

// Index of the site frame: the first one outside libhz3 (its own frames are the sampler's).
size_t site_index(const std::vector<Frame>& frames, const Library& lib) {
  for (size_t i = 0; i < frames.size(); i++)
    if (!lib.in_text(frames[i].addr)) return i;
  return frames.empty() ? 0 : frames.size() - 1;
}

std::string site_key(const Frame& f) {
  if (f.func.empty()) return f.label();
  return f.func + (f.lib.empty() ? "" : " (" + f.lib + ")");
}

HeapProc collect_proc(HeapTarget& t, const std::map<std::pair<pid_t, int32_t>, hz3_heap_site>& all,
                      const HeapBpf& bpf, double now) {
  HeapProc p;
  p.pid = t.pid;
  p.comm = t.comm;
  p.lib = t.lib.maps_path;
  p.alive = t.alive;
  bool refreshed = false;
  std::map<std::string, HeapSite> by_key;
  for (auto it = all.lower_bound({t.pid, INT32_MIN}); it != all.end() && it->first.first == t.pid;
       ++it) {
    int32_t id = it->first.second;
    const hz3_heap_site& v = it->second;
    auto s = t.stacks.find(id);
    if (s == t.stacks.end()) {
      std::vector<Frame> frames;
      if (t.alive && !refreshed) {
        // New stacks may run through a library loaded since the last look.
        std::string err;
        t.sym->refresh(&err);
        refreshed = true;
      }
      std::vector<uint64_t> ips = bpf.stack(id);
      for (size_t i = 0; i < ips.size(); i++) frames.push_back(t.sym->resolve(ips[i], i > 0));
      s = t.stacks.emplace(id, std::move(frames)).first;
    }
    const std::vector<Frame>& frames = s->second;
    Frame site;
    if (frames.empty())
      site.func = "[stack lost]";
    else
      site = frames[site_index(frames, t.lib)];
    std::string key = site_key(site);
    HeapSite& h = by_key[key];
    int64_t live = int64_t(v.alloc_weight - v.free_weight);
    h.key = key;
    h.live_bytes += live;
    h.alloc_bytes += v.alloc_weight;
    h.alloc_samples += v.alloc_samples;
    h.live_samples += v.alloc_samples - v.free_samples;
    h.stacks++;
    int64_t weight = live > 0 ? live : int64_t(v.alloc_weight) / 1000000;
    if (weight > h.heaviest) {
      h.heaviest = weight;
      h.site = site;
      h.stack = frames;
    }
  }
  double dt = now - t.prev_t;
  std::map<std::string, uint64_t> alloc_now;
  for (auto& [key, h] : by_key) {
    auto prev = t.prev_alloc.find(key);
    uint64_t before = prev == t.prev_alloc.end() ? 0 : prev->second;
    h.alloc_rate = dt > 0 && h.alloc_bytes >= before ? double(h.alloc_bytes - before) / dt : 0;
    alloc_now[key] = h.alloc_bytes;
    p.live_bytes += h.live_bytes;
    p.alloc_bytes += h.alloc_bytes;
    p.alloc_samples += h.alloc_samples;
    p.live_samples += h.live_samples;
    p.alloc_rate += h.alloc_rate;
    p.sites.push_back(std::move(h));
  }
  t.prev_alloc = std::move(alloc_now);
  t.prev_t = now;
  std::sort(p.sites.begin(), p.sites.end(), [](const HeapSite& a, const HeapSite& b) {
    if (a.live_bytes != b.live_bytes) return a.live_bytes > b.live_bytes;
    return a.alloc_bytes > b.alloc_bytes;
  });
  return p;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  double a = std::fabs(b);
  while (a >= 1024 && u < 4) a /= 1024, b /= 1024, u++;
  char buf[32];
  snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", b, units[u]);
  return buf;
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::string jstr(const std::string& s) { return "\"" + json_escape(s) + "\""; }
std::string jdouble(double v) { return std::isfinite(v) ? fmt("%.6g", v) : "null"; }

std::string frame_json(const Frame& f, bool hz3) {
  return fmt("{\"addr\":%llu,", static_cast<unsigned long long>(f.addr)) +
         "\"func\":" + jstr(f.func) +
         fmt(",\"off\":%llu,", static_cast<unsigned long long>(f.off)) + "\"lib\":" + jstr(f.lib) +
         ",\"hz3\":" + (hz3 ? "true" : "false") + "}";
}

}  // namespace

std::string render_heap_text(const HeapReport& r, size_t top) {
  std::string out;
  time_t secs = time_t(r.wall);
  struct tm tm;
  localtime_r(&secs, &tm);
  char clock[16];
  strftime(clock, sizeof clock, "%H:%M:%S", &tm);
  for (const HeapProc& p : r.procs) {
    out +=
        fmt("%s heap  pid %d %s%s  live ~%s  allocated ~%s (%s/s)  samples %llu (%llu live)\n",
            clock, int(p.pid), p.comm.c_str(), p.alive ? "" : " (exited)",
            human_bytes(double(p.live_bytes)).c_str(), human_bytes(double(p.alloc_bytes)).c_str(),
            human_bytes(p.alloc_rate).c_str(), static_cast<unsigned long long>(p.alloc_samples),
            static_cast<unsigned long long>(p.live_samples));
    auto table = [&](const char* title, std::vector<const HeapSite*> rows) {
      size_t n = top && rows.size() > top ? top : rows.size();
      out += fmt("  %s\n  %11s %11s %11s %8s  %s\n", title, "LIVE", "ALLOC/s", "ALLOCATED",
                 "SAMPLES", "SITE");
      for (size_t i = 0; i < n; i++) {
        const HeapSite& s = *rows[i];
        out += fmt("  %11s %11s %11s %8llu  %s\n", human_bytes(double(s.live_bytes)).c_str(),
                   human_bytes(s.alloc_rate).c_str(), human_bytes(double(s.alloc_bytes)).c_str(),
                   static_cast<unsigned long long>(s.alloc_samples), s.site.label().c_str());
      }
    };
    std::vector<const HeapSite*> rows;
    for (const HeapSite& s : p.sites) rows.push_back(&s);
    table("top sites by estimated live bytes", rows);
    std::stable_sort(rows.begin(), rows.end(), [](const HeapSite* a, const HeapSite* b) {
      return a->alloc_rate > b->alloc_rate;
    });
    table("top sites by estimated allocation rate", rows);
  }
  if (r.live_dropped || r.site_dropped)
    out += fmt("  note: %llu samples not tracked (BPF maps full); live bytes overstated\n",
               static_cast<unsigned long long>(r.live_dropped + r.site_dropped));
  return out;
}

std::string render_heap_json(const HeapReport& r, size_t top) {
  std::string out =
      fmt("{\"type\":\"heap\",\"seq\":%llu,\"wall\":%.3f,\"dt\":%.6g,\"final\":%s,\"samples\":%llu,"
          "\"frees\":%llu,\"free_unknown\":%llu,\"live_dropped\":%llu,\"site_dropped\":%llu,"
          "\"stack_lost\":%llu,\"procs\":[",
          static_cast<unsigned long long>(r.seq), r.wall, r.dt, r.final ? "true" : "false",
          static_cast<unsigned long long>(r.samples), static_cast<unsigned long long>(r.frees),
          static_cast<unsigned long long>(r.free_unknown),
          static_cast<unsigned long long>(r.live_dropped),
          static_cast<unsigned long long>(r.site_dropped),
          static_cast<unsigned long long>(r.stack_lost));
  for (size_t i = 0; i < r.procs.size(); i++) {
    const HeapProc& p = r.procs[i];
    out +=
        (i ? "," : "") + fmt("{\"pid\":%d,", int(p.pid)) + "\"comm\":" + jstr(p.comm) +
        ",\"lib\":" + jstr(p.lib) + ",\"alive\":" + (p.alive ? "true" : "false") +
        fmt(",\"live_bytes\":%lld,\"alloc_bytes\":%llu,\"alloc_rate\":",
            static_cast<long long>(p.live_bytes), static_cast<unsigned long long>(p.alloc_bytes)) +
        jdouble(p.alloc_rate) +
        fmt(",\"alloc_samples\":%llu,\"live_samples\":%llu,\"sites\":[",
            static_cast<unsigned long long>(p.alloc_samples),
            static_cast<unsigned long long>(p.live_samples));
    size_t n = top && p.sites.size() > top ? top : p.sites.size();
    for (size_t j = 0; j < n; j++) {
      const HeapSite& s = p.sites[j];
      out += (j ? "," : "") + std::string("{\"site\":") + jstr(s.site.label()) +
             ",\"func\":" + jstr(s.site.func) +
             fmt(",\"off\":%llu,\"addr\":%llu,", static_cast<unsigned long long>(s.site.off),
                 static_cast<unsigned long long>(s.site.addr)) +
             "\"lib\":" + jstr(s.site.lib) +
             fmt(",\"live_bytes\":%lld,\"alloc_bytes\":%llu,\"alloc_rate\":",
                 static_cast<long long>(s.live_bytes),
                 static_cast<unsigned long long>(s.alloc_bytes)) +
             jdouble(s.alloc_rate) +
             fmt(",\"alloc_samples\":%llu,\"live_samples\":%llu,\"stacks\":%llu,\"stack\":[",
                 static_cast<unsigned long long>(s.alloc_samples),
                 static_cast<unsigned long long>(s.live_samples),
                 static_cast<unsigned long long>(s.stacks));
      // Frames before the site frame are libhz3's own.
      size_t site_at = 0;
      while (site_at < s.stack.size() && s.stack[site_at].addr != s.site.addr) site_at++;
      for (size_t k = 0; k < s.stack.size(); k++)
        out += (k ? "," : "") + frame_json(s.stack[k], k < site_at);
      out += "]}";
    }
    out += "]}";
  }
  return out + "]}";
}

int run_heap(int argc, char** argv, std::atomic<bool>& stop) {
  HeapOptions o;
  if (int rc = parse_heap_options(argc, argv, &o); rc >= 0) return rc;
  g_heap_verbose = o.verbose;
  std::string err;
  if (!have_trace_privileges(&err)) {
    fprintf(stderr, "hz3top heap: %s\n", err.c_str());
    return 1;
  }
  std::vector<HeapTarget> targets;
  for (pid_t pid : o.pids) {
    HeapTarget t;
    t.pid = pid;
    std::string why;
    FindStatus st = find_libhz3(pid, &t.lib, &why);
    // The same wording as the counting view's (session.cc).
    std::string who = "process " + std::to_string(pid) + " (" + read_comm(pid) + ")";
    if (st == FindStatus::NO_PROCESS) why += " (check the pid, e.g. with pidof NAME)";
    if (st == FindStatus::NO_LIBRARY)
      why = who + " does not use libhz3: " + why + " (start it with LD_PRELOAD=/path/to/libhz3.so)";
    if (st == FindStatus::ERROR) why = "failed to inspect " + who + ": " + why;
    if (st != FindStatus::FOUND) {
      fprintf(stderr, "hz3top heap: %s\n", why.c_str());
      return 1;
    }
    if (!t.lib.elf.has_provider("otel_memory")) {
      fprintf(stderr,
              "hz3top heap: %s in process %d has no otel_memory probes (a noprobes or noptag "
              "build, or a libhz3 older than heap sampling)\n",
              t.lib.maps_path.c_str(), int(pid));
      return 1;
    }
    t.comm = read_comm(pid);
    t.sym = std::make_unique<Symbolizer>(pid);
    t.sym->refresh(&why);
    targets.push_back(std::move(t));
  }
  HeapBpf bpf;
  if (!bpf.load(&err)) {
    fprintf(stderr, "hz3top heap: %s\n", err.c_str());
    return 1;
  }
  for (HeapTarget& t : targets)
    if (!bpf.attach(t.pid, t.lib, &err)) {
      fprintf(stderr, "hz3top heap: %s\n", err.c_str());
      return 1;
    }
  const double start = monotonic_seconds();
  for (HeapTarget& t : targets) t.prev_t = start;
  double next = start + o.interval;
  double last_t = start;
  for (uint64_t seq = 1;; seq++) {
    bool last = o.count && long(seq) >= o.count, ended = false;
    for (;;) {
      double now = monotonic_seconds();
      bool any_alive = false;
      for (HeapTarget& t : targets) {
        if (t.alive && !process_alive(t.pid)) t.alive = false;
        any_alive |= t.alive;
      }
      if (stop.load() || !any_alive || (o.duration > 0 && now >= start + o.duration)) {
        ended = true;
        break;
      }
      if (now >= next) break;
      usleep(useconds_t(std::min(0.1, next - now) * 1e6));
    }
    HeapReport r;
    double now = monotonic_seconds();
    r.seq = seq;
    r.wall = wall_seconds();
    r.dt = now - last_t;
    last_t = now;
    r.final = last || ended;
    bpf.counters(&r);
    auto sites = bpf.sites();
    for (HeapTarget& t : targets) r.procs.push_back(collect_proc(t, sites, bpf, now));
    std::string text = o.json ? render_heap_json(r, o.top) + "\n" : render_heap_text(r, o.top);
    if (fwrite(text.data(), 1, text.size(), stdout) != text.size() || fflush(stdout) != 0) break;
    if (r.final) break;
    next += o.interval;
  }
  bpf.detach();
  return 0;
}

}  // namespace hz3top
