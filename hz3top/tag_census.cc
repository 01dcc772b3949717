// process_vm_readv-based tag-map census behind arena.h.
#include "tag_census.h"

#include <sys/uio.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace hz3top {

namespace {
// Tags read per process_vm_readv call: 1 MiB of tags covers 1 GiB of arena.
constexpr size_t CHUNK_TAGS = 256 * 1024;
// A class table longer than this is not a table we understand.
constexpr uint32_t MAX_CLASSES = 4096;
}  // namespace

bool ArenaReader::read_mem(uint64_t addr, void* buf, size_t len, std::string* err) const {
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  ssize_t n = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
  if (n == ssize_t(len)) return true;
  *err = std::string("failed to read memory of process ") + std::to_string(pid_) + ": " +
         (n < 0 ? strerror(errno) : "short read");
  return false;
}

bool ArenaReader::read_desc(std::string* err) {
  struct hz3_arena_desc d;
  if (!read_mem(desc_addr_, &d, sizeof d, err)) return false;
  if (d.magic != HZ3_DESC_MAGIC) {
    *err = "arena not initialised yet (hz3_arena_desc.magic is 0)";
    return false;
  }
  if (d.version != HZ3_DESC_VERSION || d.page_shift != HZ3_PAGE_SHIFT || d.nclasses > MAX_CLASSES) {
    *err = "unsupported hz3_arena_desc version " + std::to_string(d.version);
    return false;
  }
  desc_ = d;
  class_size_.assign(d.nclasses + 1, 0);
  if (d.class_size && d.nclasses &&
      !read_mem(d.class_size, class_size_.data(), class_size_.size() * sizeof(uint32_t), err))
    return false;
  have_desc_ = true;
  return true;
}

bool ArenaReader::census(Census* out, std::string* err) {
  *out = Census{};
  // The whole descriptor again (64 bytes): hwm_pages moves, and a process that exec'd since
  // has something else (or nothing) at this address; the magic tells.
  struct hz3_arena_desc d;
  if (!read_mem(desc_addr_, &d, sizeof d, err)) return false;
  if (d.magic != HZ3_DESC_MAGIC || (have_desc_ && (d.tags != desc_.tags || d.size != desc_.size))) {
    have_desc_ = false;
    if (!read_desc(err)) return false;
  } else if (!have_desc_ && !read_desc(err)) {
    return false;
  }
  uint64_t hwm = d.hwm_pages;
  uint64_t max_pages = desc_.size >> desc_.page_shift;
  if (hwm > max_pages) hwm = max_pages;
  out->hwm_pages = hwm;
  buf_.resize(CHUNK_TAGS);
  for (uint64_t first = 0; first < hwm; first += CHUNK_TAGS) {
    size_t n = size_t(hwm - first < CHUNK_TAGS ? hwm - first : CHUNK_TAGS);
    if (!read_mem(desc_.tags + first * sizeof(uint32_t), buf_.data(), n * sizeof(uint32_t), err))
      return false;
    // Runs of equal tags are the common case (a span tags all its pages alike).
    uint32_t run_tag = 0;
    uint64_t run_len = 0;
    for (size_t i = 0; i < n; i++) {
      uint32_t t = buf_[i];
      if (t == 0) continue;
      if (HZ3_TAG_BIN(t) == HZ3_TAG_BIN_LARGE) out->large_heads.push_back(first + i);
      if (t != run_tag) {
        if (run_len) out->pages_by_tag[run_tag] += run_len;
        run_tag = t;
        run_len = 0;
      }
      run_len++;
    }
    if (run_len) out->pages_by_tag[run_tag] += run_len;
  }
  for (auto& [tag, pages] : out->pages_by_tag) out->tagged_pages += pages;
  return true;
}

}  // namespace hz3top
