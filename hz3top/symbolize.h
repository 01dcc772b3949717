// Names for instruction addresses of a running process: the function (from the mapped file's
// .symtab, else .dynsym, demangled), the offset into it and the file's basename, the way
// `hz3top heap` shows allocation sites. It reads /proc/PID/maps and the mapped ELF files (through
// /proc/PID/root, so a process in another mount namespace works); it is not a DWARF reader, so
// there are no line numbers or inlined frames, and a stripped file gives only its dynamic symbols.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proc.h"

namespace hz3top {

struct Frame {
  uint64_t addr = 0;
  std::string func;  // demangled; empty when no symbol covers the address
  uint64_t off = 0;  // addr - start of func; without func, the link-time address in lib
  std::string lib;   // basename of the mapped file; empty when the address is in no file mapping
  // "func+0x1a (lib)"; "[lib 0x1234]" without a symbol (the link-time address in lib);
  // "[0x7f...]" outside any file mapping.
  std::string label() const;
};

// One symbol table, sorted by address. Separated from Symbolizer so unit tests can use it on a
// file without a process.
class SymbolTable {
 public:
  // Reads the function symbols of `path`. False with `err` when it is not a readable ELF file.
  bool load(const std::string& path, std::string* err);
  // The function containing link-time address `vaddr`, with its start; nullptr when none.
  const std::string* find(uint64_t vaddr, uint64_t* start) const;
  // Link-time address of file offset `off` (through the PT_LOAD segments); false if unmapped.
  bool offset_to_vaddr(uint64_t off, uint64_t* vaddr) const;
  size_t size() const { return syms_.size(); }

 private:
  struct Sym {
    uint64_t addr, size;
    std::string name;
  };
  std::vector<Sym> syms_;
  std::vector<LoadSegment> loads_;
};

class Symbolizer {
 public:
  explicit Symbolizer(pid_t pid) : pid_(pid) {}
  // Re-reads the process's mappings (after a dlopen). False when the process is gone.
  bool refresh(std::string* err);
  // `ret` says the address is a return address (every stack frame but the innermost): the call
  // is the byte before it, which matters when a noreturn call ends a function.
  Frame resolve(uint64_t addr, bool ret);

 private:
  pid_t pid_;
  std::vector<Mapping> maps_;
  std::map<std::string, std::unique_ptr<SymbolTable>> tables_;  // by path; null: unreadable
};

std::string demangle(const std::string& name);

}  // namespace hz3top
