// /proc readers behind proc.h.
#include "proc.h"

#include <dirent.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

#include "output.h"

namespace hz3top {

bool read_maps(pid_t pid, std::vector<Mapping>* out, std::string* err) {
  out->clear();
  std::string file = "/proc/" + std::to_string(pid) + "/maps";
  FILE* f = fopen(file.c_str(), "re");
  if (!f) {
    *err = "failed to open " + file + ": " + strerror(errno);
    return false;
  }
  char line[4096 + 256];
  while (fgets(line, sizeof line, f)) {
    Mapping m;
    unsigned long long start, end, off, ino;
    unsigned maj, min;
    char perms[8];
    int pos = 0;
    if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &off, &maj, &min,
               &ino, &pos) < 7)
      continue;
    m.start = start, m.end = end, m.offset = off, m.inode = ino;
    m.dev = makedev(maj, min);
    m.perms = perms;
    std::string path = line + pos;
    while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
    static const std::string DELETED = " (deleted)";
    if (path.size() > DELETED.size() &&
        path.compare(path.size() - DELETED.size(), DELETED.size(), DELETED) == 0) {
      path.resize(path.size() - DELETED.size());
      m.deleted = true;
    }
    m.path = path;
    out->push_back(std::move(m));
  }
  // An empty maps file that read fine means the process is a zombie or a kernel thread.
  bool ok = !ferror(f);
  if (!ok) *err = "failed to read " + file + ": " + strerror(errno);
  fclose(f);
  return ok;
}

bool process_exists(pid_t pid) {
  struct stat st;
  return pid > 0 && stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

bool process_alive(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(f, s)) return false;
  // "pid (comm) S …": the comm may contain spaces and parentheses, the state follows the last ')'.
  size_t r = s.rfind(')');
  if (r == std::string::npos || r + 2 >= s.size()) return false;
  char state = s[r + 2];
  return state != 'Z' && state != 'X' && state != 'x';
}

std::string read_comm(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string s;
  std::getline(f, s);
  return s;
}

std::optional<double> process_start_monotonic(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(f, s)) return std::nullopt;
  size_t r = s.rfind(')');
  if (r == std::string::npos) return std::nullopt;
  // Fields after "(comm)": state is field 3, starttime field 22 (clock ticks since boot).
  std::istringstream in(s.substr(r + 1));
  std::string field;
  for (int i = 3; i <= 22; i++)
    if (!(in >> field)) return std::nullopt;
  double started_boot = double(strtoull(field.c_str(), nullptr, 10)) / double(sysconf(_SC_CLK_TCK));
  // starttime counts from boot including suspend (CLOCK_BOOTTIME); move it to CLOCK_MONOTONIC.
  timespec mono, boot;
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_BOOTTIME, &boot);
  auto secs = [](const timespec& t) { return double(t.tv_sec) + double(t.tv_nsec) * 1e-9; };
  return secs(mono) - (secs(boot) - started_boot);
}

pid_t process_of(pid_t id) {
  std::ifstream f("/proc/" + std::to_string(id) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("Tgid:", 0) == 0) {
      long tgid = strtol(line.c_str() + 5, nullptr, 10);
      return tgid > 0 ? pid_t(tgid) : id;
    }
  return id;
}

namespace {

// The entries of `dir` whose names are positive numbers: pids in /proc, tids in a task folder.
std::vector<pid_t> numeric_entries(const std::string& dir) {
  std::vector<pid_t> ids;
  DIR* d = opendir(dir.c_str());
  if (!d) return ids;
  while (dirent* e = readdir(d)) {
    char* end;
    long v = strtol(e->d_name, &end, 10);
    if (*end == 0 && v > 0) ids.push_back(pid_t(v));
  }
  closedir(d);
  return ids;
}

}  // namespace

std::vector<pid_t> list_pids() { return numeric_entries("/proc"); }

std::vector<pid_t> list_threads(pid_t pid) {
  return numeric_entries("/proc/" + std::to_string(pid) + "/task");
}

bool compute_load_base(const std::vector<Mapping>& maps, uint64_t dev, uint64_t inode,
                       const ElfInfo& elf, uint64_t* base) {
  const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  for (const LoadSegment& seg : elf.loads) {
    uint64_t off = seg.offset & ~(page - 1);
    for (const Mapping& m : maps) {
      if (m.dev != dev || m.inode != inode || m.offset != off) continue;
      *base = m.start - (seg.vaddr & ~(page - 1));
      return true;
    }
  }
  return false;
}

namespace {

std::string basename_of(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

// The mapped file may have been replaced (a rebuild writes a new inode at the same path) or
// deleted; then only /proc/PID/map_files/START-END still reaches it.
std::string reachable_path(pid_t pid, const Mapping& m, bool* via_map_files) {
  struct stat st;
  if (!m.deleted && stat(m.path.c_str(), &st) == 0 && st.st_ino == m.inode && st.st_dev == m.dev) {
    *via_map_files = false;
    return m.path;
  }
  char buf[128];
  snprintf(buf, sizeof buf, "/proc/%d/map_files/%llx-%llx", int(pid), (unsigned long long)m.start,
           (unsigned long long)m.end);
  *via_map_files = true;
  return buf;
}

}  // namespace

FindStatus find_libhz3(pid_t pid, Library* out, std::string* why) {
  std::vector<Mapping> maps;
  std::string err;
  if (!process_alive(pid)) {
    // A zombie still has a /proc entry, but nothing left to trace.
    *why = process_exists(pid) ? "process " + std::to_string(pid) + " has exited"
                               : "no process with pid " + std::to_string(pid);
    return FindStatus::NO_PROCESS;
  }
  if (!read_maps(pid, &maps, &err)) {
    *why = err;
    return process_exists(pid) ? FindStatus::ERROR : FindStatus::NO_PROCESS;
  }
  // One candidate per mapped file (dev, inode), libhz3* names first.
  std::vector<const Mapping*> named, others;
  std::map<std::pair<uint64_t, uint64_t>, bool> seen;
  for (const Mapping& m : maps) {
    if (m.path.empty() || m.path[0] != '/' || m.inode == 0) continue;
    if (!seen.emplace(std::make_pair(m.dev, m.inode), true).second) continue;
    (basename_of(m.path).rfind("libhz3", 0) == 0 ? named : others).push_back(&m);
  }
  std::string last_err;
  for (auto* list : {&named, &others}) {
    for (const Mapping* m : *list) {
      Library lib;
      lib.maps_path = m->path;
      lib.path = reachable_path(pid, *m, &lib.via_map_files);
      lib.dev = m->dev;
      lib.inode = m->inode;
      if (!read_elf(lib.path, &lib.elf, &err)) {
        if (list == &named) last_err = err;
        continue;
      }
      if (!lib.elf.arena_desc && !lib.has_probes()) continue;
      if (!compute_load_base(maps, lib.dev, lib.inode, lib.elf, &lib.load_base)) {
        last_err = "failed to find the load address of " + lib.maps_path;
        continue;
      }
      for (const Mapping& x : maps)
        if (x.dev == lib.dev && x.inode == lib.inode && x.perms.size() > 2 && x.perms[2] == 'x')
          lib.text.emplace_back(x.start, x.end);
      *out = std::move(lib);
      return FindStatus::FOUND;
    }
  }
  if (!last_err.empty()) {
    *why = last_err;
    return FindStatus::ERROR;
  }
  *why = "no libhz3 mapped in /proc/" + std::to_string(pid) + "/maps";
  return FindStatus::NO_LIBRARY;
}

bool have_trace_privileges(TraceMode mode, std::string* why) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) {
    *why = std::string("failed to read capabilities: ") + strerror(errno);
    return false;
  }
  auto has = [&](int cap) { return (data[cap / 32].effective >> (cap % 32)) & 1u; };
  if (has(CAP_SYS_ADMIN)) return true;
  if (mode == TraceMode::HEAP) {
    *why = std::string(HEAP_PRIVILEGES_NEEDED) +
           " (missing CAP_SYS_ADMIN; the kernel attaches its probes through perf events only "
           "with it): run with sudo, or grant CAP_SYS_ADMIN (e.g. setcap cap_sys_admin+ep hz3top)";
    return false;
  }
  if (has(CAP_BPF) && has(CAP_PERFMON)) return true;
  std::string missing;
  if (!has(CAP_BPF)) missing += "CAP_BPF";
  if (!has(CAP_PERFMON)) missing += missing.empty() ? "CAP_PERFMON" : " and CAP_PERFMON";
  *why = std::string(PRIVILEGES_NEEDED) + " (missing " + missing +
         "): run with sudo, or grant CAP_BPF and CAP_PERFMON (e.g. setcap "
         "cap_bpf,cap_perfmon+ep hz3top; add cap_sys_ptrace to read the tag map of other "
         "users' processes)";
  return false;
}

}  // namespace hz3top
