// ELF facts hz3top needs from a mapped library: its load segments (to turn link-time addresses
// into run-time ones), one dynamic symbol (hz3_arena_desc) and its USDT notes (probe sites and
// semaphores). A thin reader over libelf; not a general ELF library and not a symbolizer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hz3top {

struct LoadSegment {
  uint64_t vaddr = 0;
  uint64_t offset = 0;
  uint64_t filesz = 0;
  uint64_t memsz = 0;
  uint32_t flags = 0;  // PF_R | PF_W | PF_X
};

// One NT_STAPSDT note: a probe site. Addresses are link-time (see ElfInfo::sdt_runtime).
struct SdtNote {
  std::string provider;
  std::string name;
  std::string args;  // e.g. "8@%rdi -4@%esi"
  uint64_t pc = 0;
  uint64_t base = 0;       // .stapsdt.base as the note was written (prelink adjusts it)
  uint64_t semaphore = 0;  // 0: the site has no semaphore
};

struct ElfInfo {
  std::vector<LoadSegment> loads;
  std::vector<SdtNote> notes;
  std::optional<uint64_t> stapsdt_base;  // actual address of the .stapsdt.base section
  std::optional<uint64_t> arena_desc;    // value of the dynamic symbol hz3_arena_desc

  // The run-time address of link-time address `vaddr` for a module loaded at `load_base`.
  static uint64_t runtime(uint64_t load_base, uint64_t vaddr) { return load_base + vaddr; }
  // Link-time address of a note's semaphore, corrected the way systemtap does for prelink.
  uint64_t semaphore_vaddr(const SdtNote& n) const {
    if (n.semaphore == 0 || !stapsdt_base || n.base == 0) return n.semaphore;
    return n.semaphore + (*stapsdt_base - n.base);
  }
  bool has_provider(const std::string& provider) const;
};

// Reads `path`. False with `err` set ("failed to open ELF file …: …") when it is not a readable
// ELF file.
bool read_elf(const std::string& path, ElfInfo* out, std::string* err);

}  // namespace hz3top
