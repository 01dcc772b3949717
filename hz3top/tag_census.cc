// process_vm_readv-based tag-map census behind arena.h.
#include "tag_census.h"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>

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

namespace {
// Version 1's descriptor ends at max_heaps, version 2's at span; later versions only append.
constexpr size_t DESC_V1_BYTES = offsetof(struct hz3_arena_desc, map);
constexpr size_t DESC_V2_BYTES = offsetof(struct hz3_arena_desc, heaps);
static_assert(DESC_V1_BYTES == 64 && DESC_V2_BYTES == 120);
// The run-record fields hz3top reads, each inside the record.
bool layout_ok(const struct hz3_span_layout& l) {
  return l.size > 0 && l.size <= 4096 && l.off_start + 8u <= l.size &&
         l.off_npages + 4u <= l.size && l.off_tag + 4u <= l.size && l.off_state + 1u <= l.size &&
         l.off_used + 4u <= l.size;
}
}  // namespace

// Version 1's fields, and the rest when the descriptor is version 2 or later (fields of later
// versions than this reader knows are not read).
bool ArenaReader::read_desc_raw(struct hz3_arena_desc* d, std::string* err) const {
  *d = {};
  if (!read_mem(desc_addr_, d, DESC_V1_BYTES, err)) return false;
  if (d->magic != HZ3_DESC_MAGIC || d->version < 2) return true;
  size_t end = d->version == 2 ? DESC_V2_BYTES : sizeof *d;
  return read_mem(desc_addr_ + DESC_V1_BYTES, reinterpret_cast<char*>(d) + DESC_V1_BYTES,
                  end - DESC_V1_BYTES, err);
}

bool ArenaReader::same_image() const {
  if (!have_desc_) return true;
  struct hz3_arena_desc d;
  std::string err;
  if (!read_mem(desc_addr_, &d, DESC_V1_BYTES, &err)) return false;
  return d.magic == HZ3_DESC_MAGIC && d.base == desc_.base && d.size == desc_.size &&
         d.tags == desc_.tags;
}

bool ArenaReader::read_desc(std::string* err) {
  struct hz3_arena_desc d;
  not_initialised_ = false;
  if (!read_desc_raw(&d, err)) return false;
  if (d.magic != HZ3_DESC_MAGIC) {
    not_initialised_ = d.magic == 0;
    *err = "arena not initialised yet (hz3_arena_desc.magic is 0)";
    return false;
  }
  if (d.version < 1 || d.page_shift != HZ3_PAGE_SHIFT || d.nclasses > MAX_CLASSES) {
    *err = "unsupported hz3_arena_desc version " + std::to_string(d.version);
    return false;
  }
  if (d.version >= 2 && !layout_ok(d.span)) d.map = 0;  // a layout we cannot read: no walk
  desc_ = d;
  class_size_.assign(d.nclasses + 1, 0);
  if (d.class_size && d.nclasses &&
      !read_mem(d.class_size, class_size_.data(), class_size_.size() * sizeof(uint32_t), err))
    return false;
  class_objs_.assign(d.nclasses + 1, 0);
  if (d.version >= 2 && d.class_objs && d.nclasses &&
      !read_mem(d.class_objs, class_objs_.data(), class_objs_.size() * sizeof(uint32_t), err))
    d.map = desc_.map = 0;
  have_desc_ = true;
  return true;
}

bool ArenaReader::walk_runs(uint64_t hwm, Census* out, std::string* err) {
  const struct hz3_span_layout& L = desc_.span;
  const uint64_t page = uint64_t(1) << desc_.page_shift;
  map_.resize(hwm);
  for (uint64_t first = 0; first < hwm; first += CHUNK_TAGS) {
    size_t n = size_t(hwm - first < CHUNK_TAGS ? hwm - first : CHUNK_TAGS);
    if (!read_mem(desc_.map + first * sizeof(uint64_t), map_.data() + first, n * sizeof(uint64_t),
                  err))
      return false;
  }
  // Every distinct record address, read once (a small span maps every page to its record).
  std::vector<uint64_t> recs;
  uint64_t last = 0;
  for (uint64_t p : map_)
    if (p && p != last) recs.push_back(last = p);
  std::sort(recs.begin(), recs.end());
  recs.erase(std::unique(recs.begin(), recs.end()), recs.end());
  recs_.assign(recs.size() * L.size, 0);
  std::vector<bool> got(recs.size(), false);
  constexpr size_t BATCH = 1024;  // IOV_MAX
  std::vector<iovec> remote(BATCH);
  for (size_t b = 0; b < recs.size(); b += BATCH) {
    size_t n = std::min(BATCH, recs.size() - b);
    for (size_t i = 0; i < n; i++) remote[i] = {reinterpret_cast<void*>(recs[b + i]), L.size};
    iovec local{recs_.data() + b * L.size, n * L.size};
    ssize_t r = process_vm_readv(pid_, &local, 1, remote.data(), n, 0);
    if (r < 0) {
      *err = std::string("failed to read run records of process ") + std::to_string(pid_) + ": " +
             strerror(errno);
      return false;
    }
    for (size_t i = 0; i < n && (i + 1) * L.size <= size_t(r); i++) got[b + i] = true;
  }
  auto field = [&](size_t rec, uint16_t off, size_t width) {
    uint64_t v = 0;
    memcpy(&v, recs_.data() + rec * L.size + off, width);
    return v;
  };
  Ledger& g = out->ledger;
  g.arena = hwm * page;
  g.committed = desc_.committed_pages * page;
  g.reserved = desc_.size;
  g.huge = desc_.huge_bytes;
  g.huge_blocks = desc_.huge_blocks;
  for (uint64_t i = 0; i < hwm;) {
    uint64_t p = map_[i];
    size_t rec = size_t(std::lower_bound(recs.begin(), recs.end(), p) - recs.begin());
    if (!p || rec >= recs.size() || recs[rec] != p || !got[rec] ||
        field(rec, L.off_start, 8) != desc_.base + i * page) {
      g.unwalked += page;  // a page in no run we could read, or a run that moved meanwhile
      i++;
      continue;
    }
    uint64_t np = field(rec, L.off_npages, 4);
    if (np == 0 || np > hwm - i) {
      g.unwalked += page;
      i++;
      continue;
    }
    uint64_t bytes = np * page;
    switch (field(rec, L.off_state, 1)) {
      case HZ3_SPAN_FREE_DIRTY:
        g.pageheap_dirty += bytes;
        g.free_runs++;
        break;
      case HZ3_SPAN_FREE_RELEASED:
        g.pageheap_released += bytes;
        g.free_runs++;
        break;
      case HZ3_SPAN_LARGE:
        g.app_large += bytes;
        g.large_blocks++;
        out->large_npages[i] = np;
        break;
      case HZ3_SPAN_SMALL: {
        uint32_t tag = uint32_t(field(rec, L.off_tag, 4));
        uint32_t bin = HZ3_TAG_BIN(tag), owner = HZ3_TAG_OWNER(tag);
        uint64_t size = class_size(bin), objs = bin < class_objs_.size() ? class_objs_[bin] : 0;
        if (!size || !objs || objs * size > bytes) {
          g.unwalked += bytes;
          break;
        }
        uint64_t used = std::min<uint64_t>(field(rec, L.off_used, 4), objs);
        g.small_spans++;
        g.small_used += used * size;
        g.span_free += (objs - used) * size;
        g.span_waste += bytes - objs * size;
        OwnerLedger& o = g.owners[owner];
        o.spans++;
        o.pages += np;
        o.used += used * size;
        o.free += (objs - used) * size;
        break;
      }
      default:
        g.unwalked += bytes;
    }
    i += np;
  }
  out->runs_ok = true;
  return true;
}

bool ArenaReader::read_owners(Ledger* g, std::string* err) const {
  const struct hz3_heap_layout& L = desc_.heap;
  if (!desc_.heaps || !desc_.heap_count || L.size == 0 || L.off_owner_tid + 4u > L.size ||
      L.off_state + 4u > L.size || L.off_id + 4u > L.size)
    return false;
  uint32_t count = 0;
  if (!read_mem(desc_.heap_count, &count, sizeof count, err)) return false;
  count = std::min(count, desc_.max_heaps);
  std::vector<uint64_t> heaps(count);
  if (count && !read_mem(desc_.heaps, heaps.data(), count * sizeof(uint64_t), err)) return false;
  for (auto& [owner, o] : g->owners) {
    uint32_t id = owner - 1;
    if (owner == 0 || id >= count || !heaps[id]) continue;
    uint32_t got_id = 0;
    int32_t tid = 0;
    uint32_t state = 0;
    if (!read_mem(heaps[id] + L.off_id, &got_id, 4, err) ||
        !read_mem(heaps[id] + L.off_owner_tid, &tid, 4, err) ||
        !read_mem(heaps[id] + L.off_state, &state, 4, err))
      return false;
    if (got_id != id) continue;  // not a heap we can read
    o.owner_known = true;
    o.orphan = state != 1;  // hz3.h: 1 while a thread owns the heap
    o.tid = tid;
    o.thread.clear();
    if (tid > 0 && !o.orphan) {
      std::ifstream f("/proc/" + std::to_string(pid_) + "/task/" + std::to_string(tid) + "/comm");
      std::getline(f, o.thread);
    }
  }
  return true;
}

bool ArenaReader::census(Census* out, std::string* err) {
  *out = Census{};
  not_initialised_ = false;
  // The whole descriptor again (64 bytes): hwm_pages moves, and a process that exec'd since
  // has something else (or nothing) at this address; the magic tells.
  struct hz3_arena_desc d;
  if (!read_desc_raw(&d, err)) return false;
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
  if (desc_.version >= 2 && desc_.map) {
    // The moving fields of this read, not of the first one.
    desc_.committed_pages = d.committed_pages;
    desc_.huge_bytes = d.huge_bytes;
    desc_.huge_blocks = d.huge_blocks;
    if (desc_.version >= 3) {  // published after the arena, with heap 0
      desc_.heaps = d.heaps;
      desc_.heap_count = d.heap_count;
      desc_.heap = d.heap;
    }
    std::string why;
    if (!walk_runs(hwm, out, &why)) {
      out->runs_ok = false;
      out->large_npages.clear();
      out->ledger = Ledger{};
    } else if (desc_.version >= 3 && !read_owners(&out->ledger, &why)) {
      for (auto& [owner, o] : out->ledger.owners) o.owner_known = false;
    }
  }
  return true;
}

}  // namespace hz3top
