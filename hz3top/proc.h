// What hz3top learns about a target process from /proc: its mappings, whether it is still
// running, its name, where libhz3 is mapped (and which path reaches that very file), and
// whether we hold the privileges to trace it. Reads only /proc and the mapped files; it does not
// attach anything or read the target's memory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "elf_info.h"

namespace hz3top {

struct Mapping {
  uint64_t start = 0, end = 0, offset = 0;
  uint64_t dev = 0;  // makedev(major, minor) as /proc/PID/maps prints it
  uint64_t inode = 0;
  std::string perms;  // "r-xp"
  std::string path;   // without the " (deleted)" suffix
  bool deleted = false;
};

// Parses /proc/PID/maps. False with errno-style `err` when the process is gone or unreadable.
bool read_maps(pid_t pid, std::vector<Mapping>* out, std::string* err);

// True while the process exists and has not exited (a zombie counts as exited: its code ran).
bool process_alive(pid_t pid);
bool process_exists(pid_t pid);
std::string read_comm(pid_t pid);
// When the process started, on the CLOCK_MONOTONIC scale in seconds (from /proc/PID/stat's
// starttime, 10 ms resolution); none when /proc has no such process.
std::optional<double> process_start_monotonic(pid_t pid);
// The process (thread group) a thread id belongs to, from /proc/ID/status; a process id gives
// itself. `id` as it is when /proc has no such entry (the caller reports the missing process).
pid_t process_of(pid_t id);
// The processes in /proc, and the threads (task ids) of one process in /proc/PID/task.
std::vector<pid_t> list_pids();
std::vector<pid_t> list_threads(pid_t pid);

// libhz3 as one process maps it.
struct Library {
  std::string maps_path;  // as /proc/PID/maps names it
  std::string path;       // the path that reaches the mapped file: maps_path, or map_files/…
  bool via_map_files = false;
  uint64_t dev = 0, inode = 0;
  uint64_t load_base = 0;
  std::vector<std::pair<uint64_t, uint64_t>> text;  // executable [start, end) ranges
  ElfInfo elf;
  bool has_probes() const { return elf.has_provider("hz3"); }
  bool in_text(uint64_t ip) const {
    for (auto& r : text)
      if (ip >= r.first && ip < r.second) return true;
    return false;
  }
};

enum class FindStatus { FOUND, NO_PROCESS, NO_LIBRARY, ERROR };

// Looks for libhz3 in the process: mappings named libhz3* first, then any mapped ELF file that
// exports hz3_arena_desc (a renamed copy, or hz3 linked into the executable).
FindStatus find_libhz3(pid_t pid, Library* out, std::string* why);

// Load base of a module from its mappings: start of the mapping that holds the first PT_LOAD
// segment, minus that segment's page-aligned address. False when no mapping matches.
bool compute_load_base(const std::vector<Mapping>& maps, uint64_t dev, uint64_t inode,
                       const ElfInfo& elf, uint64_t* base);

// What a mode of hz3top attaches with, which decides the capabilities it needs (measured as an
// unprivileged user with setpriv, docs/hz3top.md "Privileges"):
//   COUNT: the counting view (-p, --all, perf counting and sampling). Its USDT probes are
//          attached as one uprobe_multi BPF link each, which CAP_BPF + CAP_PERFMON allow.
//   HEAP:  `hz3top heap`. libbpf attaches its probes through perf_event_open on the uprobe PMU,
//          which the kernel allows only with CAP_SYS_ADMIN (CAP_PERFMON is not enough).
enum class TraceMode { COUNT, HEAP };

// True when the effective capabilities allow MODE (CAP_SYS_ADMIN allows both). False otherwise,
// with `why` set to the whole error: what is needed, what is missing, and how to grant it
// ("... run with sudo, or grant CAP_BPF and CAP_PERFMON (e.g. setcap cap_bpf,cap_perfmon+ep
// hz3top)").
bool have_trace_privileges(TraceMode mode, std::string* why);

}  // namespace hz3top
