// Names and stacks for instruction addresses of a running process, through elfutils' libdwfl:
// the modules come from /proc/PID/maps; a frame's function comes from the module's symbol table
// (.symtab, else .dynsym or the MiniDebugInfo in .gnu_debugdata), demangled; its source file and
// line, and the functions inlined at the address, from DWARF, found in the file itself or as
// separate debug info by build id under /usr/lib/debug (Debian's -dbgsym packages).
// Symbolizer::unwind walks a copied slice of a thread's stack with DWARF CFI (.eh_frame or
// .debug_frame), the way `perf --call-graph dwarf` does, for code built without frame pointers.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "proc.h"

struct Dwfl;

namespace hz3top {

struct Frame {
  uint64_t addr = 0;
  std::string func;  // demangled; empty when no symbol covers the address
  uint64_t off = 0;  // addr - start of func; without func, the link-time address in lib
  std::string lib;   // basename of the mapped file; empty when the address is in no file mapping
  std::string file;  // source file (DWARF); empty without line information
  int line = 0;
  bool inlined = false;  // an inlined function at addr; the next frame is its caller at addr too
  // "func+0x1a (lib)"; "[lib 0x1234]" without a symbol (the link-time address in lib);
  // "[0x7f...]" outside any file mapping.
  std::string label() const;
  // "file.cc:42" (file's basename), or "" without line information.
  std::string where() const;
};

// A mapped ELF file as profile formats describe it (pprof's Mapping).
struct ModuleInfo {
  uint64_t start = 0, end = 0;  // run-time address range of the module
  uint64_t offset = 0;          // file offset of start
  std::string path;
  std::string build_id;  // hex; empty when the file has none
};

class Symbolizer {
 public:
  explicit Symbolizer(pid_t pid) : pid_(pid) {}
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;
  // Re-reads the process's mappings (after a dlopen). False when the process is gone.
  bool refresh(std::string* err);
  // `ret` says the address is a return address (every stack frame but the innermost): the call
  // is the byte before it, which matters when a noreturn call ends a function. The function
  // that contains the address (not an inlined one), with the source line of the address.
  Frame resolve(uint64_t addr, bool ret);
  // The same address with its inlined functions: innermost first, then the function that
  // contains them (the last entry is resolve()'s). Each inlined entry's caller gets the line of
  // the call site.
  std::vector<Frame> resolve_inlined(uint64_t addr, bool ret);
  // Unwinds a thread's stack from its registers (HZ3_HEAP_NREGS values, x86-64 DWARF order) and
  // a copy of its stack memory starting at user address `base`. Returns at most `max` program
  // counters, innermost first (later ones are return addresses). Reads outside the copy fail,
  // which ends the walk; where a module has no CFI, libdw falls back to the frame pointer.
  // `complete` (optional) says the walk reached the outermost frame (CFI marks the end of the
  // stack, as at _start or a thread's start) rather than stopping on an error.
  std::vector<uint64_t> unwind(pid_t tid, const uint64_t* regs, uint64_t base, const uint8_t* stack,
                               size_t len, size_t max, bool* complete = nullptr);
  // The executable file mappings, one per module, with build ids.
  std::vector<ModuleInfo> modules();

 private:
  bool ensure(std::string* err);
  pid_t pid_;
  Dwfl* dwfl_ = nullptr;
  bool attached_ = false;      // dwfl_attach_state done
  void* unwinding_ = nullptr;  // the walk in progress, for libdwfl's callbacks
  std::vector<Mapping> maps_;
};

std::string demangle(const std::string& name);

}  // namespace hz3top
