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
// Version 1's descriptor ends at max_heaps, version 2's at span, version 3's at heap; later
// versions only append.
constexpr size_t DESC_V1_BYTES = offsetof(struct hz3_arena_desc, map);
constexpr size_t DESC_V2_BYTES = offsetof(struct hz3_arena_desc, heaps);
constexpr size_t DESC_V3_BYTES = offsetof(struct hz3_arena_desc, class_cache);
static_assert(DESC_V1_BYTES == 64 && DESC_V2_BYTES == 120 && DESC_V3_BYTES == 144 &&
              sizeof(struct hz3_arena_desc) == 216);
// The run-record fields hz3top reads, each inside the record.
bool layout_ok(const struct hz3_span_layout& l) {
  return l.size > 0 && l.size <= 4096 && l.off_start + 8u <= l.size &&
         l.off_npages + 4u <= l.size && l.off_tag + 4u <= l.size && l.off_state + 1u <= l.size &&
         l.off_used + 4u <= l.size;
}
}  // namespace

// Version 1's fields, and the rest when the descriptor is version 2 or later: up to the end of
// that version's fields (an older library's descriptor is shorter; fields of later versions than
// this reader knows are not read).
bool ArenaReader::read_desc_raw(struct hz3_arena_desc* d, std::string* err) const {
  *d = {};
  if (!read_mem(desc_addr_, d, DESC_V1_BYTES, err)) return false;
  if (d->magic != HZ3_DESC_MAGIC || d->version < 2) return true;
  size_t end = d->version == 2 ? DESC_V2_BYTES : d->version == 3 ? DESC_V3_BYTES : sizeof *d;
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
  class_cache_.clear();  // version 4: read again once heaps is published (split_small)
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
  std::vector<uint64_t>& recs = rec_addr_;
  recs.clear();
  used_objs_.clear();
  uint64_t last = 0;
  for (uint64_t p : map_)
    if (p && p != last) recs.push_back(last = p);
  std::sort(recs.begin(), recs.end());
  recs.erase(std::unique(recs.begin(), recs.end()), recs.end());
  recs_.assign(recs.size() * L.size, 0);
  std::vector<bool>& got = rec_got_;
  got.assign(recs.size(), false);
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
  auto field = [&](size_t rec, uint16_t off, size_t width) { return rec_field(rec, off, width); };
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
        used_objs_[(owner << 16) | bin] += used;
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

uint64_t ArenaReader::rec_field(size_t rec, uint16_t off, size_t width) const {
  uint64_t v = 0;
  memcpy(&v, recs_.data() + rec * desc_.span.size + off, width);
  return v;
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
  tags_.resize(hwm);
  for (uint64_t first = 0; first < hwm; first += CHUNK_TAGS) {
    size_t n = size_t(hwm - first < CHUNK_TAGS ? hwm - first : CHUNK_TAGS);
    const uint32_t* buf = tags_.data() + first;
    if (!read_mem(desc_.tags + first * sizeof(uint32_t), tags_.data() + first, n * sizeof(uint32_t),
                  err))
      return false;
    // Runs of equal tags are the common case (a span tags all its pages alike).
    uint32_t run_tag = 0;
    uint64_t run_len = 0;
    for (size_t i = 0; i < n; i++) {
      uint32_t t = buf[i];
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
    if (desc_.version >= 4) {  // published with heaps
      desc_.class_cache = d.class_cache;
      desc_.cache = d.cache;
    }
    std::string why;
    if (!walk_runs(hwm, out, &why)) {
      out->runs_ok = false;
      out->large_npages.clear();
      out->ledger = Ledger{};
    } else if (desc_.version >= 3) {
      // The split first: it may add the heaps of threads that only hold remote frees.
      if (desc_.version >= 4 && !split_small(&out->ledger, &why)) {
        out->ledger.split = false;
        for (auto& [owner, o] : out->ledger.owners) o.split = false;
      }
      if (!read_owners(&out->ledger, &why))
        for (auto& [owner, o] : out->ledger.owners) o.owner_known = false;
    }
  }
  return true;
}

namespace {
// (owner field << 16) | bin of a tag, without the sampled bit (the key of used_objs_).
uint32_t tag_key_of(uint32_t tag) { return (HZ3_TAG_OWNER(tag) << 16) | HZ3_TAG_BIN(tag); }
uint64_t get64(const std::vector<uint8_t>& b, size_t off) {
  uint64_t v;
  memcpy(&v, b.data() + off, 8);
  return v;
}
uint32_t get32(const std::vector<uint8_t>& b, size_t off) {
  uint32_t v;
  memcpy(&v, b.data() + off, 4);
  return v;
}
// `n` fields of `width` bytes from `off` lie inside a record of `size` bytes.
bool fits(uint64_t off, uint64_t width, uint64_t n, uint64_t size) {
  return off + width * n <= size;
}
}  // namespace

// A block p whose key is nonzero is a block start of a small/medium span of class bin: its link
// word can be read.
uint32_t ArenaReader::block_key(uint64_t p, uint32_t bin) const {
  if (p < desc_.base || p % 16 != 0) return 0;
  uint64_t idx = (p - desc_.base) >> desc_.page_shift;
  if (idx >= tags_.size() || idx >= map_.size()) return 0;
  const uint32_t key = tag_key_of(tags_[idx]);
  if (HZ3_TAG_BIN(key) != bin || HZ3_TAG_OWNER(key) == 0) return 0;
  uint64_t r = map_[idx];
  auto it = std::lower_bound(rec_addr_.begin(), rec_addr_.end(), r);
  if (!r || it == rec_addr_.end() || *it != r) return 0;
  size_t rec = size_t(it - rec_addr_.begin());
  const struct hz3_span_layout& L = desc_.span;
  if (!rec_got_[rec] || rec_field(rec, L.off_state, 1) != HZ3_SPAN_SMALL ||
      tag_key_of(uint32_t(rec_field(rec, L.off_tag, 4))) != key)
    return 0;
  uint64_t size = class_size(bin), objs = bin < class_objs_.size() ? class_objs_[bin] : 0;
  uint64_t start = rec_field(rec, L.off_start, 8);
  return size && p >= start && (p - start) % size == 0 && p < start + objs * size ? key : 0;
}

// Word 0 of block p, through a copy of its page read once per census.
bool ArenaReader::read_link(uint64_t p, uint64_t* next) {
  uint64_t page = uint64_t(1) << desc_.page_shift;
  uint64_t first = p & ~(page - 1);
  auto it = pages_.find(first);
  if (it == pages_.end()) {
    std::vector<uint8_t> buf(page);
    std::string err;
    if (!read_mem(first, buf.data(), page, &err)) return false;
    it = pages_.emplace(first, std::move(buf)).first;
  }
  memcpy(next, it->second.data() + (p - first), 8);
  return true;
}

uint64_t ArenaReader::walk_chain(uint64_t head, uint32_t want, uint64_t bound, bool* clean) {
  uint64_t n = 0;
  *clean = false;
  for (uint64_t p = head; p; n++) {
    if (n >= bound || !block_ok(p, want) || !read_link(p, &p)) return n;
  }
  *clean = true;
  return n;
}

uint64_t ArenaReader::walk_cache_chain(uint64_t head, uint32_t bin, uint64_t bound, bool* clean,
                                       std::map<uint32_t, uint64_t>* by_key) {
  uint64_t n = 0;
  *clean = false;
  for (uint64_t p = head; p; n++) {
    uint32_t key = n < bound ? block_key(p, bin) : 0;
    if (!key || !read_link(p, &p)) return n;
    (*by_key)[key]++;
  }
  *clean = true;
  return n;
}

// Reads every heap's inboxes and, for heaps a thread owns, that thread's cache (lists walked,
// magazines by their fill) and remote buckets (their counts). Magazine fills and bucket counts
// are single words of one copy of the cache. Chains are changing while read when their head
// differs after the walk (an inbox's re-read; a cache's list heads in a second copy of the
// cache), or when the walk does not end cleanly (a link that is not a block of that heap and
// class, or more blocks than the bound): their blocks go to unwalked. The counts of each (heap,
// class) are then clamped to the objects outside its spans, in the order inboxes, caches, remote
// buckets, changing, so that the ledger adds up whatever the target did meanwhile.
bool ArenaReader::split_small(Ledger* g, std::string* err) {
  const struct hz3_cache_layout& C = desc_.cache;
  const struct hz3_heap_layout& H = desc_.heap;
  const uint32_t nb = desc_.nclasses + 1;
  if (!desc_.class_cache || !desc_.heaps || !desc_.heap_count || C.size == 0 ||
      C.size > (1u << 20) || !fits(C.off_state, 4, 1, C.size) || !fits(C.off_heap, 8, 1, C.size) ||
      !fits(C.off_head, 8, nb, C.size) || !fits(C.off_parked, 8, nb, C.size) ||
      !fits(C.off_mag_top, 8, nb, C.size) || !fits(C.off_mag_slots, 8, 1, C.size) ||
      C.remote_size == 0 || C.remote_buckets > 4096 ||
      !fits(C.off_remote, C.remote_size, C.remote_buckets, C.size) ||
      !fits(C.off_rb_head, 8, 1, C.remote_size) || !fits(C.off_rb_tag, 4, 1, C.remote_size) ||
      !fits(C.off_rb_count, 4, 1, C.remote_size) || H.size == 0 ||
      !fits(C.off_owner_cache, 8, 1, H.size) || !fits(C.off_inbox, 8, nb, H.size) ||
      !fits(H.off_id, 4, 1, H.size) || !fits(H.off_state, 4, 1, H.size))
    return false;
  if (class_cache_.size() != nb) {
    std::vector<struct hz3_class_cache> t(nb);
    if (!read_mem(desc_.class_cache, t.data(), nb * sizeof t[0], err)) return false;
    class_cache_ = std::move(t);
  }
  uint32_t count = 0;
  if (!read_mem(desc_.heap_count, &count, sizeof count, err)) return false;
  count = std::min(count, desc_.max_heaps);
  std::vector<uint64_t> heaps(count);
  if (count && !read_mem(desc_.heaps, heaps.data(), count * sizeof(uint64_t), err)) return false;
  pages_.clear();
  // By (owner field << 16 | bin): blocks in inboxes, caches, remote buckets, changing.
  std::map<uint32_t, uint64_t> inbox, cached, remote, changing;
  std::map<uint32_t, uint64_t> held;  // by owner field of the holding thread's heap: bytes
  std::vector<uint8_t> hb(H.size), tc(C.size), tc2(C.size);
  for (uint32_t id = 0; id < count; id++) {
    if (!heaps[id]) continue;
    if (!read_mem(heaps[id], hb.data(), H.size, err)) return false;
    if (get32(hb, H.off_id) != id) continue;  // not a heap we can read
    const uint32_t owner = id + 1;
    for (uint32_t bin = 1; bin < nb; bin++) {
      uint64_t head = get64(hb, C.off_inbox + 8 * bin);
      if (!head) continue;
      const uint32_t key = (owner << 16) | bin;
      auto u = used_objs_.find(key);
      bool clean;
      uint64_t n = walk_chain(head, key, u == used_objs_.end() ? 0 : u->second, &clean);
      uint64_t again = 0;
      std::string why;
      bool same = read_mem(heaps[id] + C.off_inbox + 8 * bin, &again, 8, &why) && again == head;
      (clean && same ? inbox : changing)[key] += n;
    }
    uint64_t tca = get64(hb, C.off_owner_cache);
    if (get32(hb, H.off_state) != 1 || !tca) continue;
    std::string why;
    if (!read_mem(tca, tc.data(), C.size, &why) || get32(tc, C.off_state) != 1 ||
        get64(tc, C.off_heap) != heaps[id])
      continue;  // a thread starting or exiting: its cache is not this heap's now
    // First pass: the counts of this read, by the key of each block (a cache holds the blocks
    // it adopted from other heaps too); the second read says which lists held still. A
    // magazine's blocks are its slots below its fill, one copy of the cache, each checked.
    std::vector<std::map<uint32_t, uint64_t>> n_head(nb), n_parked(nb);
    std::vector<bool> ok_head(nb, true), ok_parked(nb, true);
    for (uint32_t bin = 1; bin < nb; bin++) {
      const struct hz3_class_cache& k = class_cache_[bin];
      if (k.kind == HZ3_CACHE_MAGAZINE) {
        uint64_t top = get64(tc, C.off_mag_top + 8 * bin);
        if (top >= k.mag_base && top - k.mag_base <= k.max_blocks &&
            fits(C.off_mag_slots, 8, top, C.size)) {  // else not a fill we can read
          // One copy, read at one instant: a slot that is no block of the class (never, in an
          // idle target) still counts, as this heap's.
          for (uint64_t i = k.mag_base; i < top; i++) {
            uint32_t key = block_key(get64(tc, C.off_mag_slots + 8 * i), bin);
            cached[key ? key : (owner << 16) | bin]++;
          }
        }
      }
      bool clean;
      if (uint64_t p = get64(tc, C.off_head + 8 * bin)) {
        walk_cache_chain(p, bin, k.max_blocks, &clean, &n_head[bin]);
        ok_head[bin] = clean;
      }
      if (uint64_t p = get64(tc, C.off_parked + 8 * bin)) {
        walk_cache_chain(p, bin, k.max_blocks, &clean, &n_parked[bin]);
        ok_parked[bin] = clean;
      }
    }
    if (!read_mem(tca, tc2.data(), C.size, &why)) tc2.assign(C.size, 0);
    for (uint32_t bin = 1; bin < nb; bin++) {
      size_t h = C.off_head + 8 * bin, pk = C.off_parked + 8 * bin;
      auto& to_h = ok_head[bin] && get64(tc, h) == get64(tc2, h) ? cached : changing;
      for (auto& [key, n] : n_head[bin]) to_h[key] += n;
      auto& to_p = ok_parked[bin] && get64(tc, pk) == get64(tc2, pk) ? cached : changing;
      for (auto& [key, n] : n_parked[bin]) to_p[key] += n;
    }
    for (uint32_t b = 0; b < C.remote_buckets; b++) {
      size_t at = C.off_remote + size_t(b) * C.remote_size;
      uint32_t tag = get32(tc, at + C.off_rb_tag), n = get32(tc, at + C.off_rb_count);
      if (!tag || !n || !get64(tc, at + C.off_rb_head)) continue;
      remote[tag_key_of(tag)] += n;
      held[owner] += n * uint64_t(class_size(HZ3_TAG_BIN(tag)));
    }
  }
  pages_.clear();
  auto take = [](std::map<uint32_t, uint64_t>& m, uint32_t key, uint64_t* left) {
    auto it = m.find(key);
    uint64_t n = it == m.end() ? 0 : std::min(it->second, *left);
    *left -= n;
    return n;
  };
  uint64_t small = 0;
  g->app_small = g->thread_caches = g->inboxes = g->remote_pending = 0;
  g->cached_objs = g->inbox_objs = g->remote_objs = 0;
  for (auto& [owner, o] : g->owners) {
    o.split = true;
    o.app = o.cached = o.inbox = o.remote_pending = 0;
  }
  for (auto& [key, used] : used_objs_) {
    uint64_t left = used, size = class_size(HZ3_TAG_BIN(key));
    uint64_t i = take(inbox, key, &left), c = take(cached, key, &left);
    uint64_t r = take(remote, key, &left), x = take(changing, key, &left);
    OwnerLedger& o = g->owners[HZ3_TAG_OWNER(key)];
    o.app += left * size;
    o.cached += c * size;
    o.inbox += i * size;
    o.remote_pending += r * size;
    g->app_small += left * size;
    g->thread_caches += c * size;
    g->inboxes += i * size;
    g->remote_pending += r * size;
    g->cached_objs += c;
    g->inbox_objs += i;
    g->remote_objs += r;
    g->unwalked += x * size;
    small += (left + c + i + r) * size;
  }
  for (auto& [owner, bytes] : held) {
    OwnerLedger& o = g->owners[owner];
    o.split = true;
    o.remote_held = bytes;
  }
  g->small_used = small;
  g->split = true;
  return true;
}

}  // namespace hz3top
