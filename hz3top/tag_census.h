// Reads a live process's Arena PageTagMap from outside: the exported hz3_arena_desc (struct in
// libhz3/include/hz3/hz3.h) and the tag array it points to, with process_vm_readv, and counts
// the non-zero tags by (bin, owner). It needs no probe and no cooperation from the target; it is
// a snapshot, not a consistent one (the target keeps running while we read), and it never writes.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hz3/hz3.h"

namespace hz3top {

// Tagged pages of one process at one instant, by raw tag value (owner_field << 16 | bin_field).
struct Census {
  uint64_t hwm_pages = 0;
  uint64_t tagged_pages = 0;
  std::map<uint32_t, uint64_t> pages_by_tag;
  std::vector<uint64_t> large_heads;  // page indexes of large allocations' head pages
};

class ArenaReader {
 public:
  ArenaReader(pid_t pid, uint64_t desc_addr) : pid_(pid), desc_addr_(desc_addr) {}

  // Reads the descriptor and the class-size table. False with `err` when the process is gone,
  // the memory cannot be read, or the arena is not initialised yet (magic 0).
  bool read_desc(std::string* err);
  // Reads tags[0 … hwm_pages) and counts them. Calls read_desc() first when needed.
  bool census(Census* out, std::string* err);

  const struct hz3_arena_desc& desc() const { return desc_; }
  // Object size of small/medium bin `bin` (1 … nclasses); 0 for bins the table does not cover.
  uint32_t class_size(uint32_t bin) const {
    return bin < class_size_.size() ? class_size_[bin] : 0;
  }
  const std::vector<uint32_t>& class_sizes() const { return class_size_; }

 private:
  bool read_mem(uint64_t addr, void* buf, size_t len, std::string* err) const;

  pid_t pid_;
  uint64_t desc_addr_;
  bool have_desc_ = false;
  struct hz3_arena_desc desc_ {};
  std::vector<uint32_t> class_size_;
  std::vector<uint32_t> buf_;
};

}  // namespace hz3top
