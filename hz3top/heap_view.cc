// The loop of `hz3top heap` behind heap_view.h: find the targets, attach, drain events into the
// per-process models, report every interval.
#include "heap_view.h"

#include <linux/types.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "heap_collect.h"
#include "heap_events.h"
#include "heap_model.h"
#include "heap_options.h"
#include "heap_render.h"
#include "heap_tui.h"
#include "pprof.h"
#include "proc.h"
#include "session.h"

namespace hz3top {

namespace {

// Why a -p target cannot be profiled, in the counting view's words (session.cc); "" when it can.
std::string check_target(pid_t pid, Library* lib) {
  std::string why;
  FindStatus st = find_libhz3(pid, lib, &why);
  std::string who = "process " + std::to_string(pid) + " (" + read_comm(pid) + ")";
  if (st == FindStatus::NO_PROCESS) return why + " (check the pid, e.g. with pidof NAME)";
  if (st == FindStatus::NO_LIBRARY)
    return who + " does not use libhz3: " + why + " (start it with LD_PRELOAD=/path/to/libhz3.so)";
  if (st == FindStatus::ERROR) return "failed to inspect " + who + ": " + why;
  if (!lib->elf.has_provider("otel_memory"))
    return lib->maps_path + " in process " + std::to_string(pid) +
           " has no otel_memory probes (a noprobes or noptag build, or a libhz3 older than heap "
           "sampling)";
  return "";
}

bool maps_libhz3_by_name(pid_t pid) {
  std::vector<Mapping> maps;
  std::string err;
  if (!read_maps(pid, &maps, &err)) return false;
  return std::any_of(maps.begin(), maps.end(), [](const Mapping& m) {
    size_t s = m.path.rfind('/');
    return s != std::string::npos && m.path.compare(s + 1, 6, "libhz3") == 0;
  });
}

class HeapRun {
 public:
  explicit HeapRun(const HeapOptions& o) : o_(o) {
    for (const std::string& w : o.wrappers) wrappers_.add(w);
    unwind_ = o.unwind == "fp" ? Unwind::FP : o.unwind == "dwarf" ? Unwind::DWARF : Unwind::AUTO;
  }

  int run(std::atomic<bool>& stop) {
    std::string err;
    if (!have_trace_privileges(TraceMode::HEAP, &err)) return fail(err);
    std::vector<std::pair<pid_t, Library>> found;
    for (pid_t pid : o_.pids) {
      Library lib;
      std::string why = check_target(pid, &lib);
      if (!why.empty()) return fail(why);
      found.push_back({pid, std::move(lib)});
    }
    if (!bpf_.load(
            o_.verbose, unwind_ != Unwind::FP, [this](const void* d, size_t n) { on_event(d, n); },
            &err))
      return fail(err);
    start_ = monotonic_seconds();
    for (auto& [pid, lib] : found) {
      if (!bpf_.attach(pid, lib, &err)) return fail(err);
      procs_.emplace(
          pid, std::make_unique<HeapProcess>(pid, std::move(lib), &wrappers_, unwind_, start_));
    }
    if (o_.all) {
      rescan();
      if (files_.empty())
        fprintf(stderr, "hz3top heap: no process maps libhz3 yet; waiting for one\n");
    }
    // On a terminal, the interactive view unless --plain or --json (as the counting view).
    std::unique_ptr<HeapTui> tui;
    bool user_quit = false;
    std::string final_text;  // the interactive view's last report, printed once it is closed
    if (!o_.json && !o_.plain && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO))
      tui = std::make_unique<HeapTui>();
    double next = start_ + o_.interval, last_t = start_;
    for (uint64_t seq = 1;; seq++) {
      bool last = o_.count && long(seq) >= o_.count, ended = false;
      double last_scan = monotonic_seconds();
      for (;;) {
        double now = monotonic_seconds();
        if (tui && !tui->keys()) {
          user_quit = true;
          stop.store(true);
        }
        if (stop.load() || (o_.duration > 0 && now >= start_ + o_.duration) || all_exited()) {
          ended = true;
          break;
        }
        if (now >= next) break;
        bpf_.poll(int(std::max(1.0, std::min(0.02, next - now) * 1000)));  // drains every 20 ms
        if (o_.all && now - last_scan >= 1) {
          rescan();
          last_scan = now;
        }
      }
      bpf_.poll(0);  // what the last instant queued
      HeapReport r;
      double now = monotonic_seconds();
      r.seq = seq;
      r.wall = wall_seconds();
      r.dt = now - last_t;
      r.elapsed = now - start_;
      last_t = now;
      r.final = last || ended;
      std::vector<uint64_t> c = bpf_.counters();
      r.samples = c[HZ3_HEAP_C_ALLOC];
      r.frees = c[HZ3_HEAP_C_FREE];
      r.alloc_dropped = c[HZ3_HEAP_C_ALLOC_DROPPED];
      r.free_dropped = c[HZ3_HEAP_C_FREE_DROPPED];
      r.stack_copy_failed = c[HZ3_HEAP_C_STACK_COPY_FAILED];
      r.free_unknown = free_unknown_;
      for (auto& [pid, p] : procs_) {
        if (p->alive() && !process_alive(pid)) p->set_alive(false);
        r.procs.push_back(p->report(now));
      }
      if (tui) {
        tui->show(r);
        if (r.final) final_text = render_heap_text(r, o_.top);
      } else {
        std::string text =
            o_.json ? render_heap_json(r, o_.top) + "\n" : render_heap_text(r, o_.top);
        if (fwrite(text.data(), 1, text.size(), stdout) != text.size() || fflush(stdout) != 0)
          break;
      }
      if (!o_.pprof.empty() && !write_heap_pprof(r, r.elapsed, o_.pprof, &err))
        fprintf(stderr, "hz3top heap: %s\n", err.c_str());
      if (!o_.folded.empty() &&
          !write_file_atomic(o_.folded, render_heap_folded(r, o_.folded_alloc), &err))
        fprintf(stderr, "hz3top heap: %s\n", err.c_str());
      // --all: an exited process is reported once with its final numbers, then dropped.
      if (o_.all)
        for (auto it = procs_.begin(); it != procs_.end();)
          it = it->second->alive() ? std::next(it) : procs_.erase(it);
      if (r.final) break;
      next += o_.interval;
    }
    bpf_.detach();
    tui.reset();
    // As the counting view: after the targets exited (not after q), their final numbers stay.
    if (!user_quit && !final_text.empty()) fputs(final_text.c_str(), stdout);
    return 0;
  }

 private:
  int fail(const std::string& why) {
    fprintf(stderr, "hz3top heap: %s\n", why.c_str());
    return 1;
  }

  bool all_exited() {
    if (o_.all) return false;  // --all waits for processes to come
    bool any = false;
    for (auto& [pid, p] : procs_) {
      if (p->alive() && !process_alive(pid)) p->set_alive(false);
      any |= p->alive();
    }
    return !any;
  }

  // --all --lib: is this the library file asked for?
  bool wanted(const Library& lib) const {
    if (o_.lib.empty()) return true;
    struct stat st;
    return stat(o_.lib.c_str(), &st) == 0 && st.st_dev == lib.dev && st.st_ino == lib.inode;
  }

  // --all: attach once per libhz3 file (pid -1 covers every process that maps it, later ones
  // too), and know each process that maps one.
  void rescan() {
    for (pid_t pid : list_pids()) {
      if (pid == getpid() || procs_.count(pid) || !maps_libhz3_by_name(pid)) continue;
      Library lib;
      if (!check_target(pid, &lib).empty() || !wanted(lib)) continue;
      std::string err;
      auto file = std::make_pair(lib.dev, lib.inode);
      if (!files_.count(file)) {
        if (!bpf_.attach(-1, lib, &err)) {
          fprintf(stderr, "hz3top heap: %s\n", err.c_str());
          continue;
        }
        files_.insert(file);
      }
      procs_.emplace(pid, std::make_unique<HeapProcess>(pid, std::move(lib), &wrappers_, unwind_,
                                                        monotonic_seconds()));
    }
  }

  HeapProcess* process_of(pid_t pid) {
    auto it = procs_.find(pid);
    if (it != procs_.end()) return it->second.get();
    if (!o_.all || rejected_.count(pid)) return nullptr;
    // A process that started since the last rescan, reached through an attached file.
    Library lib;
    if (!check_target(pid, &lib).empty() || !wanted(lib)) {
      rejected_.insert(pid);  // gone already, or unreadable: do not look again at every event
      return nullptr;
    }
    auto p = std::make_unique<HeapProcess>(pid, std::move(lib), &wrappers_, unwind_,
                                           monotonic_seconds());
    return procs_.emplace(pid, std::move(p)).first->second.get();
  }

  void on_event(const void* data, size_t size) {
    if (size < sizeof(uint32_t) * 2) return;
    uint32_t type, tgid;
    memcpy(&type, data, sizeof type);
    memcpy(&tgid, static_cast<const char*>(data) + 4, sizeof tgid);
    HeapProcess* p = process_of(pid_t(tgid));
    if (type == HZ3_HEAP_EV_ALLOC && size >= sizeof(hz3_heap_alloc_event)) {
      if (p) p->on_alloc(*static_cast<const hz3_heap_alloc_event*>(data));
    } else if (type == HZ3_HEAP_EV_FREE && size >= sizeof(hz3_heap_free_event)) {
      if (!p || !p->on_free(*static_cast<const hz3_heap_free_event*>(data))) free_unknown_++;
    }
  }

  HeapOptions o_;
  Wrappers wrappers_;
  Unwind unwind_ = Unwind::AUTO;
  HeapCollector bpf_;
  double start_ = 0;
  std::map<pid_t, std::unique_ptr<HeapProcess>> procs_;
  std::set<std::pair<uint64_t, uint64_t>> files_;
  std::set<pid_t> rejected_;
  uint64_t free_unknown_ = 0;
};

}  // namespace

int run_heap(int argc, char** argv, std::atomic<bool>& stop) {
  HeapOptions o;
  if (int rc = parse_heap_options(argc, argv, &o); rc >= 0) return rc;
  return HeapRun(o).run(stop);
}

}  // namespace hz3top
