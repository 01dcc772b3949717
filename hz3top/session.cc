// Target discovery, attach and snapshot assembly behind session.h.
#include "session.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "output.h"

namespace hz3top {

double monotonic_seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

double wall_seconds() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

namespace {

std::string describe(pid_t pid) {
  std::string comm = read_comm(pid);
  return "process " + std::to_string(pid) + (comm.empty() ? "" : " (" + comm + ")");
}

}  // namespace

bool Session::start(std::string* err) {
  // Unknown event names are bad input whatever the privileges: check them first.
  if (opt_.perf && !opt_.list_probes) {
    if (!perf_.init(opt_.event, opt_.sample_event, opt_.sample_hz, err)) {
      *err += " (try cache-misses, page-faults, cpu-clock, or a name from `perf list`)";
      return false;
    }
    perf_ok_ = true;
  }
  std::string why;
  if (!have_trace_privileges(TraceMode::COUNT, err)) return false;

  // -p: every target must exist and map libhz3 before anything is attached.
  std::vector<std::pair<pid_t, Library>> found;
  for (pid_t pid : opt_.pids) {
    Library lib;
    switch (find_libhz3(pid, &lib, &why)) {
      case FindStatus::FOUND:
        found.emplace_back(pid, std::move(lib));
        break;
      case FindStatus::NO_PROCESS:
        *err = why + " (check the pid, e.g. with pidof NAME)";
        return false;
      case FindStatus::NO_LIBRARY:
        *err = describe(pid) + " does not use libhz3: " + why +
               " (start it with LD_PRELOAD=/path/to/libhz3.so)";
        return false;
      case FindStatus::ERROR:
        *err = "failed to inspect " + describe(pid) + ": " + why;
        return false;
    }
  }
  if (!opt_.lib.empty() && access(opt_.lib.c_str(), R_OK) != 0) {
    *err = "failed to open " + opt_.lib + ": " + strerror(errno) + " (--lib names a library file)";
    return false;
  }
  if (opt_.list_probes) {
    for (auto& [pid, lib] : found) add_target(pid, std::move(lib), err);
    if (opt_.all) rescan_all();
    return true;
  }

  if (!bpf_.load(opt_.verbose, opt_.legacy_attach, opt_.follow, err)) return false;
  double t0 = monotonic_seconds();
  for (auto& [pid, lib] : found) {
    if (opt_.follow && !bpf_.follow(pid, err)) return false;
    if (!add_target(pid, std::move(lib), err)) return false;
  }
  if (opt_.all) rescan_all();
  attach_t_ = monotonic_seconds();
  attach_seconds_ = attach_t_ - t0;
  if (perf_ok_) {
    perf_event_ = perf_.count_event();
    sample_event_ = perf_.sample_event();
  }
  return true;
}

bool Session::add_target(pid_t pid, Library lib, std::string* err) {
  Target t;
  t.pid = pid;
  t.comm = read_comm(pid);
  if (lib.elf.arena_desc)
    t.arena =
        std::make_unique<ArenaReader>(pid, ElfInfo::runtime(lib.load_base, *lib.elf.arena_desc));
  // Counting starts when the probes are attached (below) or, for a process that started after
  // its library was attached, when it started.
  double attached = monotonic_seconds();
  if (!opt_.list_probes) {
    if (!lib.has_probes()) {
      notes_.push_back("libhz3 of " + describe(pid) + " (" + lib.maps_path +
                       ") has no hz3 probes (built with VARIANT=noprobes?): showing live pages "
                       "from its tag map only");
    } else if (opt_.all) {
      // One attach per library file covers every process that maps it, now and later.
      auto file = std::make_pair(lib.dev, lib.inode);
      if (auto it = attached_files_.find(file); it != attached_files_.end()) {
        attached = it->second;
      } else {
        if (!bpf_.attach(-1, lib, err)) return false;
        attached = attached_files_[file] = monotonic_seconds();
      }
    } else {
      if (!bpf_.attach(pid, lib, err)) return false;
      attached = monotonic_seconds();
    }
    if (lib.via_map_files)
      notes_.push_back(lib.maps_path + " in " + describe(pid) +
                       " was replaced or deleted since it was loaded; attached through " +
                       lib.path);
    if (perf_ok_) perf_.add(pid, lib);
  }
  t.since = counting_start(attached, process_start_monotonic(pid));
  t.created = wall_seconds() - (monotonic_seconds() - t.since);
  t.lib = std::move(lib);
  // A process first seen only in the BPF maps keeps its last snapshot: its rates go on from it.
  if (auto old = targets_.find(pid); old != targets_.end() && old->second.has_prev) {
    t.has_prev = true;
    t.prev = std::move(old->second.prev);
  }
  targets_[pid] = std::move(t);
  return true;
}

void Session::rescan_all() {
  for (pid_t pid : list_pids()) {
    auto known = targets_.find(pid);
    // A process seen only in the BPF maps (it started after the last rescan) gets its library
    // looked up now, so its tag map and perf events join in.
    if ((known != targets_.end() && known->second.discovered) || pid == getpid()) continue;
    std::vector<Mapping> maps;
    std::string err;
    if (!read_maps(pid, &maps, &err)) continue;
    // --all looks only at files named libhz3*: reading every mapped ELF of every process each
    // interval would cost more than the numbers are worth.
    bool named = std::any_of(maps.begin(), maps.end(), [](const Mapping& m) {
      size_t s = m.path.rfind('/');
      return s != std::string::npos && m.path.compare(s + 1, 6, "libhz3") == 0;
    });
    if (!named) continue;
    Library lib;
    if (find_libhz3(pid, &lib, &err) != FindStatus::FOUND) continue;
    if (!opt_.lib.empty()) {
      struct stat st;
      if (stat(opt_.lib.c_str(), &st) != 0 || st.st_dev != lib.dev || st.st_ino != lib.inode)
        continue;
    }
    if (!add_target(pid, std::move(lib), &err)) notes_.push_back(err);
  }
}

bool Session::list_probes(std::string* out, std::string* err) {
  for (auto& [pid, t] : targets_) {
    char line[512];
    snprintf(line, sizeof line, "pid %d (%s) %s%s load_base=0x%" PRIx64 "\n", int(pid),
             t.comm.c_str(), t.lib.maps_path.c_str(), t.lib.via_map_files ? " (replaced)" : "",
             t.lib.load_base);
    *out += line;
    // One line per semaphore (all sites of a probe share it), then the site count.
    std::map<std::string, std::pair<uint64_t, int>> probes;
    for (const SdtNote& n : t.lib.elf.notes) {
      if (n.provider != "hz3") continue;
      auto& p = probes[n.name];
      p.first = t.lib.elf.semaphore_vaddr(n);
      p.second++;
    }
    for (auto& [name, p] : probes) {
      std::string value = "-";
      if (p.first) {
        uint16_t sem = 0;
        std::string mem = "/proc/" + std::to_string(pid) + "/mem";
        FILE* f = fopen(mem.c_str(), "re");
        uint64_t addr = ElfInfo::runtime(t.lib.load_base, p.first);
        if (f && fseeko(f, off_t(addr), SEEK_SET) == 0 && fread(&sem, sizeof sem, 1, f) == 1)
          value = std::to_string(sem);
        else
          value = "unreadable";
        if (f) fclose(f);
      }
      snprintf(line, sizeof line, "  hz3:%-12s sites=%d semaphore=0x%" PRIx64 " value=%s\n",
               name.c_str(), p.second,
               p.first ? ElfInfo::runtime(t.lib.load_base, p.first) : uint64_t(0), value.c_str());
      *out += line;
    }
    if (probes.empty()) *out += "  no hz3 probes (built with VARIANT=noprobes?)\n";
  }
  (void)err;
  return true;
}

void Session::follow_forks() {
  for (auto& [child, parent] : bpf_.take_forks()) {
    if (targets_.count(child)) continue;
    Library lib;
    std::string why, err;
    // A child that has already exec'd a program without libhz3 has nothing to count.
    if (find_libhz3(child, &lib, &why) != FindStatus::FOUND) continue;
    if (!add_target(child, std::move(lib), &err)) {
      notes_.push_back("cannot follow " + describe(child) + ", forked by " +
                       std::to_string(parent) + ": " + err);
      continue;
    }
    notes_.push_back("following " + describe(child) + ", forked by " + std::to_string(parent));
  }
}

void Session::tick() {
  if (opt_.follow) follow_forks();
  if (perf_ok_) perf_.drain();
  for (auto& [pid, t] : targets_)
    if (t.alive && !process_alive(pid)) {
      t.alive = false;
      t.exited_at = monotonic_seconds();
    }
}

void Session::check_exec(pid_t pid, Target& t) {
  std::string comm = read_comm(pid);
  Library lib;
  std::string why;
  FindStatus st = find_libhz3(pid, &lib, &why);
  if (st == FindStatus::NO_PROCESS) return;  // exited: the exit path reports it
  bool same_lib = st == FindStatus::FOUND && lib.dev == t.lib.dev && lib.inode == t.lib.inode &&
                  lib.load_base == t.lib.load_base;
  if (same_lib && comm == t.comm) return;
  std::string old = "process " + std::to_string(pid) + " (" + t.comm + ")";
  t.exec_seen = true;
  t.comm = comm;
  t.census_noted = false;
  if (st != FindStatus::FOUND) {
    notes_.push_back(old + " exec'd " + (comm.empty() ? "" : comm + " ") +
                     "without libhz3: no more counts from it (" + why + ")");
    t.arena.reset();
    t.lib_gone = true;
    return;
  }
  t.lib_gone = false;
  bool new_file = lib.dev != t.lib.dev || lib.inode != t.lib.inode;
  if (new_file && !opt_.list_probes && lib.has_probes()) {
    std::string err;
    if (opt_.all) {
      auto file = std::make_pair(lib.dev, lib.inode);
      if (!attached_files_.count(file) && bpf_.attach(-1, lib, &err))
        attached_files_[file] = monotonic_seconds();
    } else {
      bpf_.attach(pid, lib, &err);
    }
    if (!err.empty()) notes_.push_back(old + " exec'd: " + err);
  }
  if (perf_ok_ && !opt_.list_probes) {
    perf_.remove(pid);
    perf_.add(pid, lib);
  }
  t.arena = lib.elf.arena_desc ? std::make_unique<ArenaReader>(
                                     pid, ElfInfo::runtime(lib.load_base, *lib.elf.arena_desc))
                               : nullptr;
  notes_.push_back(old + " exec'd " + comm + " (" + lib.maps_path +
                   "): live memory is the new image's; hits its old image's other threads had "
                   "not reported yet are lost (the exec'ing thread reports its own)");
  t.lib = std::move(lib);
}

bool Session::all_exited() const {
  if (opt_.all || targets_.empty()) return false;
  for (auto& [pid, t] : targets_)
    if (t.alive) return false;
  return true;
}

Report Session::sample(bool final) {
  if (opt_.all && !final) rescan_all();
  BpfSnapshot snap;
  std::string err;
  bpf_.read(&snap, &err);
  double now = monotonic_seconds();
  // --all: a process that came and went between two rescans still shows, from the maps alone.
  if (opt_.all)
    for (auto& [pid, c] : snap.procs)
      if (!targets_.count(pid)) {
        Target t;
        t.pid = pid;
        t.comm = read_comm(pid);
        t.alive = process_alive(pid);
        t.discovered = false;
        // Its counts began when it started (its library was attached before, or it would not
        // be in the maps).
        t.since = counting_start(attach_t_, process_start_monotonic(pid));
        t.created = wall_seconds() - (monotonic_seconds() - t.since);
        targets_[pid] = std::move(t);
      }

  Report r;
  r.wall = wall_seconds();
  r.final = final;
  r.seq = ++seq_;
  if (perf_ok_) {
    // The counting event may have fallen back to page faults when a later target was added.
    perf_event_ = perf_.count_event();
    sample_event_ = perf_.sample_event();
  }
  r.perf_event = perf_event_;
  r.sample_event = sample_event_;
  std::vector<pid_t> gone;
  for (auto& [pid, t] : targets_) {
    if (t.alive && !process_alive(pid)) {
      t.alive = false;
      t.exited_at = now;
    }
    // Reported once after its exit (longer with --openmetrics, so a scrape sees it), then
    // dropped.
    if (!t.alive && t.has_prev && !t.prev.alive) {
      double linger = opt_.openmetrics.empty() ? 0 : EXIT_LINGER_METRICS_S;
      // The final report lists every process watched, with its totals.
      if (now - t.exited_at >= linger && !final) {
        if (!opt_.all) continue;  // --all: erased below
      }
    }
    // A cheap exec check each report: the name (an exec usually changes it) and whether the
    // descriptor still reads; a full look at the mappings only when either says so.
    if (t.alive && t.discovered && t.has_prev) {
      bool suspect = read_comm(pid) != t.comm;
      if (!suspect && t.arena) suspect = !t.arena->same_image();
      if (suspect) check_exec(pid, t);
    }
    ProcSnapshot s;
    s.pid = pid;
    s.comm = t.comm;
    s.lib = t.lib.maps_path;
    s.alive = t.alive;
    s.exec = t.exec_seen;
    t.exec_seen = false;
    s.t = now;
    if (auto it = snap.procs.find(pid); it != snap.procs.end()) s.counts = it->second;
    if (auto it = snap.bins.find(pid); it != snap.bins.end()) s.bins = it->second;
    if (t.arena) s.class_size = t.arena->class_sizes();
    Census census;
    if (t.alive && t.arena && t.arena->census(&census, &err)) {
      static const std::map<uint64_t, uint64_t> NONE;
      auto it = snap.large_live.find(pid);
      apply_census(census, it == snap.large_live.end() ? NONE : it->second, &s);
      if (s.class_size.empty()) s.class_size = t.arena->class_sizes();
    } else if (!t.alive) {
      // The process is gone, and its memory with it.
      s.ledger_ok = t.has_prev && t.prev.ledger_ok;
      s.ledger.split = t.has_prev && t.prev.ledger.split;
      apply_exit(&s);
    } else if ((t.arena && t.arena->not_initialised()) || t.lib_gone) {
      // No malloc yet (a fresh process, or a new image after exec): nothing is live. Probe churn
      // would still count an old image's pages.
      apply_exit(&s);
      s.ledger_ok = false;
    } else {
      if (t.alive && t.arena && !t.census_noted) {
        notes_.push_back("cannot read the tag map of " + describe(pid) + ": " + err +
                         "; live pages come from probe churn since attach");
        t.census_noted = true;
      }
      apply_probe_churn(&s);
    }
    if (perf_ok_) s.perf = perf_.read(pid);
    r.procs.push_back(make_view(t.has_prev ? &t.prev : nullptr, s, now - t.since));
    r.procs.back().created = t.created;
    t.prev = std::move(s);
    t.has_prev = true;
    if (auto it = snap.last_decode_fail.find(pid);
        it != snap.last_decode_fail.end() && r.procs.back().delta.decode_fail) {
      char buf[160];
      snprintf(buf, sizeof buf, "%s: decode failure at ptr 0x%" PRIx64 " (tag 0x%08x)",
               describe(pid).c_str(), it->second.first, it->second.second);
      notes_.push_back(buf);
    }
    if (opt_.all && !t.alive) gone.push_back(pid);
  }
  // --all: an exited process is reported once with its final numbers, then dropped.
  for (pid_t pid : gone) {
    bpf_.forget(pid);
    perf_.remove(pid);
    targets_.erase(pid);
  }
  r.total = sum_views(r.procs);
  for (auto& v : r.procs) r.dt = std::max(r.dt, v.dt);
  return r;
}

void Session::stop() {
  if (stopped_) return;
  stopped_ = true;
  bpf_.detach();
}

std::vector<std::string> Session::take_notes() {
  std::vector<std::string> n;
  n.swap(notes_);
  if (perf_ok_)
    for (auto& x : perf_.take_notes()) n.push_back(std::move(x));
  return n;
}

}  // namespace hz3top
