// maps_watch: runs a command with libhz3 preloaded (into the command only, never into the
// watcher) and samples /proc/PID/maps of the command and all its descendants while they run, to
// prove which processes libhz3 actually served. For each process seen it records whether the
// library path was mapped, whether an `[anon:hz3-arena]` region was named (where the kernel
// supports anonymous VMA names), and the exported `hz3_arena_desc` read from the live process
// with process_vm_readv: magic and high-water mark of pages handed out. Output is one line per
// process in the report file (arena=1: the descriptor's arena base lies in one of the process's
// own mappings, so the descriptor describes this process):
//   pid=123 comm=cc1plus lib=1 anon=0 desc=1 arena=1 hwm_pages=812 threads=1 samples=40
// preceded by `anon_names_supported=0|1`. Exit status is the command's (128+signal if killed).
// Usage: maps_watch --preload LIB --report FILE [--interval-ms N] -- CMD [ARG…]
// It is a test tool for t_realprog.sh and t_selfhost.sh, not a tracer: it proves presence, it
// does not count events (that is hz3top's job).
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "check.h"

namespace {

struct Seen {
  std::string comm;
  bool lib = false, anon = false, desc = false, arena = false;
  uint64_t hwm = 0;
  int threads = 0;
  int samples = 0;
};

std::string read_file(const std::string& path) {
  std::string s;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return s;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  close(fd);
  return s;
}

// Offset of hz3_arena_desc from the library's load bias: st_value of the dynamic symbol, and the
// page-aligned vaddr of the first PT_LOAD (the segment mapped at file offset 0).
struct LibInfo {
  bool ok = false;
  uint64_t sym = 0;
  uint64_t first_load = 0;
};

LibInfo read_lib(const std::string& path) {
  LibInfo li;
  std::string f = read_file(path);
  if (f.size() < sizeof(Elf64_Ehdr)) return li;
  const char* b = f.data();
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(b);
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64) return li;
  bool have_load = false;
  for (int i = 0; i < eh->e_phnum; i++) {
    size_t off = eh->e_phoff + static_cast<size_t>(i) * eh->e_phentsize;
    if (off + sizeof(Elf64_Phdr) > f.size()) return li;
    const auto* ph = reinterpret_cast<const Elf64_Phdr*>(b + off);
    if (ph->p_type == PT_LOAD && !have_load) {
      li.first_load = ph->p_vaddr & ~static_cast<uint64_t>(0xFFF);
      have_load = true;
    }
  }
  for (int i = 0; i < eh->e_shnum; i++) {
    size_t off = eh->e_shoff + static_cast<size_t>(i) * eh->e_shentsize;
    if (off + sizeof(Elf64_Shdr) > f.size()) return li;
    const auto* sh = reinterpret_cast<const Elf64_Shdr*>(b + off);
    if (sh->sh_type != SHT_DYNSYM || sh->sh_link >= eh->e_shnum) continue;
    const auto* strh = reinterpret_cast<const Elf64_Shdr*>(
        b + eh->e_shoff + static_cast<size_t>(sh->sh_link) * eh->e_shentsize);
    if (sh->sh_offset + sh->sh_size > f.size() || strh->sh_offset + strh->sh_size > f.size())
      return li;
    size_t n = sh->sh_size / sizeof(Elf64_Sym);
    for (size_t k = 0; k < n; k++) {
      const auto* sym = reinterpret_cast<const Elf64_Sym*>(b + sh->sh_offset) + k;
      if (sym->st_name >= strh->sh_size || sym->st_shndx == SHN_UNDEF) continue;
      if (strcmp(b + strh->sh_offset + sym->st_name, "hz3_arena_desc") == 0) {
        li.sym = sym->st_value;
        li.ok = have_load;
        return li;
      }
    }
  }
  return li;
}

// Whether this kernel names anonymous regions (CONFIG_ANON_VMA_NAME): try it on a scratch page.
bool anon_names_supported() {
  void* p = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  int rc = prctl(0x53564d41 /* PR_SET_VMA */, 0 /* PR_SET_VMA_ANON_NAME */,
                 reinterpret_cast<unsigned long>(p), 4096UL,
                 reinterpret_cast<unsigned long>("hz3-probe"));
  munmap(p, 4096);
  return rc == 0;
}

// Direct and indirect children of root, from the ppid field of every /proc/PID/stat.
std::vector<pid_t> descendants(pid_t root) {
  std::map<pid_t, std::vector<pid_t>> kids;
  DIR* d = opendir("/proc");
  if (d == nullptr) return {root};
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string st = read_file(std::string("/proc/") + e->d_name + "/stat");
    size_t rp = st.rfind(')');
    if (rp == std::string::npos || rp + 4 >= st.size()) continue;
    // after ") S " comes ppid
    pid_t ppid = static_cast<pid_t>(atoi(st.c_str() + rp + 4));
    kids[ppid].push_back(static_cast<pid_t>(atoi(e->d_name)));
  }
  closedir(d);
  std::vector<pid_t> out{root};
  for (size_t i = 0; i < out.size(); i++)
    for (pid_t k : kids[out[i]]) out.push_back(k);
  return out;
}

int count_threads(pid_t pid) {
  std::string s = read_file("/proc/" + std::to_string(pid) + "/status");
  size_t t = s.find("\nThreads:");
  return t == std::string::npos ? 0 : atoi(s.c_str() + t + 9);
}

void sample(pid_t pid, const std::string& lib, const LibInfo& li, Seen& s) {
  std::string maps = read_file("/proc/" + std::to_string(pid) + "/maps");
  if (maps.empty()) return;  // exited or a zombie
  std::string comm = read_file("/proc/" + std::to_string(pid) + "/comm");
  while (!comm.empty() && comm.back() == '\n') comm.pop_back();
  if (!comm.empty()) s.comm = comm;  // the last name wins (exec changes it)
  s.samples++;
  int th = count_threads(pid);
  if (th > s.threads) s.threads = th;
  uint64_t base = 0;
  bool mapped = false;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  size_t pos = 0;
  while (pos < maps.size()) {
    size_t eol = maps.find('\n', pos);
    if (eol == std::string::npos) eol = maps.size();
    std::string line = maps.substr(pos, eol - pos);
    pos = eol + 1;
    unsigned long long lo = 0, hi = 0;
    if (sscanf(line.c_str(), "%llx-%llx", &lo, &hi) == 2) ranges.push_back({lo, hi});
    if (line.find("[anon:hz3-arena]") != std::string::npos) s.anon = true;
    size_t slash = line.find('/');
    if (slash == std::string::npos || line.compare(slash, std::string::npos, lib) != 0) continue;
    mapped = true;
    // start-end perms offset …: the mapping at offset 0 gives the load address
    unsigned long long start = 0, offset = 0;
    char perms[8];
    if (sscanf(line.c_str(), "%llx-%*llx %7s %llx", &start, perms, &offset) == 3 && offset == 0 &&
        base == 0)
      base = start;
  }
  if (!mapped) return;
  s.lib = true;
  if (!li.ok || base == 0) return;
  hz3::test::ArenaDesc d{};
  iovec local{&d, sizeof d};
  iovec remote{reinterpret_cast<void*>(base - li.first_load + li.sym), sizeof d};
  if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof d)) return;
  if (d.magic == HZ3_DESC_MAGIC && d.version == HZ3_DESC_VERSION) {
    s.desc = true;
    if (d.hwm_pages > s.hwm) s.hwm = d.hwm_pages;
    // The descriptor must describe this process: its arena base lies in a mapping here.
    for (auto& [lo, hi] : ranges)
      if (d.base >= lo && d.base < hi) s.arena = true;
  }
}

int usage() {
  fprintf(stderr,
          "usage: maps_watch --preload LIB --report FILE [--interval-ms N] -- CMD [ARG...]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const char* preload = nullptr;
  const char* report = nullptr;
  unsigned interval_ms = 20;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (i + 1 >= argc) return usage();
    if (strcmp(argv[i], "--preload") == 0)
      preload = argv[++i];
    else if (strcmp(argv[i], "--report") == 0)
      report = argv[++i];
    else if (strcmp(argv[i], "--interval-ms") == 0)
      interval_ms = static_cast<unsigned>(atoi(argv[++i]));
    else
      return usage();
  }
  if (preload == nullptr || report == nullptr || i >= argc) return usage();
  char real[PATH_MAX];
  if (realpath(preload, real) == nullptr) {
    fprintf(stderr, "maps_watch: failed to resolve %s: %s\n", preload, strerror(errno));
    return 2;
  }
  const std::string lib = real;
  const LibInfo li = read_lib(lib);
  const bool anon_ok = anon_names_supported();

  pid_t child = fork();
  if (child < 0) {
    fprintf(stderr, "maps_watch: failed to fork: %s\n", strerror(errno));
    return 2;
  }
  if (child == 0) {
    setenv("LD_PRELOAD", lib.c_str(), 1);
    execvp(argv[i], argv + i);
    fprintf(stderr, "maps_watch: failed to exec %s: %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  std::map<pid_t, Seen> seen;
  int status = 0;
  while (true) {
    pid_t r = waitpid(child, &status, WNOHANG);
    if (r == child) break;
    for (pid_t p : descendants(child)) sample(p, lib, li, seen[p]);
    hz3::test::sleep_ms(interval_ms);
  }
  FILE* out = fopen(report, "w");
  if (out == nullptr) {
    fprintf(stderr, "maps_watch: failed to open %s: %s\n", report, strerror(errno));
    return 2;
  }
  fprintf(out, "anon_names_supported=%d desc_symbol=%d\n", anon_ok ? 1 : 0, li.ok ? 1 : 0);
  for (auto& [pid, s] : seen) {
    if (s.samples == 0) continue;
    fprintf(out,
            "pid=%d comm=%s lib=%d anon=%d desc=%d arena=%d hwm_pages=%llu threads=%d "
            "samples=%d\n",
            pid, s.comm.c_str(), s.lib, s.anon, s.desc, s.arena,
            static_cast<unsigned long long>(s.hwm), s.threads, s.samples);
  }
  fclose(out);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
