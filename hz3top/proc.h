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

// Root, or CAP_BPF + CAP_PERFMON (CAP_SYS_ADMIN also does). False with the reason otherwise.
bool have_trace_privileges(std::string* why);

}  // namespace hz3top
