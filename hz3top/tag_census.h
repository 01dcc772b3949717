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

// One owner heap's share of the small/medium spans (owner field = heap id + 1), and with a
// version 3 descriptor who owns the heap: the thread that took it last, its name from
// /proc/PID/task/TID/comm (empty when that thread is gone), or none (orphan; heap 0 always).
// With version 4 (split), `used` is split like the ledger's small_used.
struct OwnerLedger {
  uint64_t spans = 0, pages = 0;
  uint64_t used = 0;         // bytes of objects outside its spans: application, its cache, inboxes
  uint64_t free = 0;         // bytes of objects in its spans not handed out
  bool owner_known = false;  // the registry was read (descriptor version 3)
  bool orphan = false;
  int32_t tid = 0;
  std::string thread;
  bool split = false;           // the caches were read (descriptor version 4)
  uint64_t app = 0;             // of `used`: held by the application
  uint64_t cached = 0;          // in its owner's thread cache
  uint64_t inbox = 0;           // in its inboxes
  uint64_t remote_pending = 0;  // freed by other threads, waiting in their remote buckets
  uint64_t remote_held = 0;     // other heaps' blocks its owner freed and holds undelivered
};

// The allocator's ledger read from outside (descriptor version 2): every run of pages below the
// high-water mark, from the page map and the run records it points to (docs/probes.md). The
// lines add up as malloc_stats' do: small_used + app_large + span_free + span_waste +
// pageheap_dirty + pageheap_released + unwalked = arena. small_used is the objects out of spans.
// With version 4 (split) the live threads' caches, the heaps' inboxes and the remote buckets are
// read too, and small_used = app_small + thread_caches + inboxes + remote_pending, where
// malloc_stats' app_small is app_small + remote_pending (it counts other threads' undelivered
// frees as the application's). A snapshot of a running process, not a consistent one: a run
// that changed while it was read, and the objects of a cache list or inbox that changed while
// it was walked, are counted in unwalked.
struct Ledger {
  uint64_t small_used = 0, app_large = 0, span_free = 0, span_waste = 0;
  uint64_t pageheap_dirty = 0, pageheap_released = 0, unwalked = 0;
  uint64_t arena = 0, committed = 0, reserved = 0, huge = 0;
  uint64_t small_spans = 0, large_blocks = 0, huge_blocks = 0, free_runs = 0;
  bool split = false;  // the four lines below were read (descriptor version 4)
  uint64_t app_small = 0, thread_caches = 0, inboxes = 0, remote_pending = 0;
  uint64_t cached_objs = 0, inbox_objs = 0, remote_objs = 0;
  uint64_t app_total() const { return small_used + app_large + huge; }
  uint64_t mapped() const { return arena + huge; }  // without metadata (not exported)
  std::map<uint32_t, OwnerLedger> owners;           // by owner field
};

// Tagged pages of one process at one instant, by raw tag value (owner_field << 16 | bin_field).
struct Census {
  uint64_t hwm_pages = 0;
  uint64_t tagged_pages = 0;
  std::map<uint32_t, uint64_t> pages_by_tag;
  std::vector<uint64_t> large_heads;  // page indexes of large allocations' head pages
  // Descriptor version 2: the page map was walked. large_npages: head page -> pages of the run.
  bool runs_ok = false;
  std::map<uint64_t, uint64_t> large_npages;
  Ledger ledger;
};

class ArenaReader {
 public:
  ArenaReader(pid_t pid, uint64_t desc_addr) : pid_(pid), desc_addr_(desc_addr) {}

  // Reads the descriptor and the class-size table. False with `err` when the process is gone,
  // the memory cannot be read, or the arena is not initialised yet (magic 0).
  bool read_desc(std::string* err);
  // Reads tags[0 … hwm_pages) and counts them. Calls read_desc() first when needed.
  // With a version 2 descriptor it also walks the page map (runs_ok, large_npages, ledger);
  // a failed walk leaves runs_ok false and the tag census stands.
  bool census(Census* out, std::string* err);
  // False when the descriptor no longer reads as the one read before (unmapped, another arena):
  // the process exec'd. 64 bytes read; true before the first read_desc().
  bool same_image() const;
  // The last read found the descriptor with magic 0: libhz3 has not initialised its arena yet.
  bool not_initialised() const { return not_initialised_; }

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
  bool not_initialised_ = false;
  struct hz3_arena_desc desc_ {};
  bool read_desc_raw(struct hz3_arena_desc* d, std::string* err) const;
  bool walk_runs(uint64_t hwm, Census* out, std::string* err);
  // Version 3: names the owners of `g.owners` from the heap registry; false leaves them unnamed.
  bool read_owners(Ledger* g, std::string* err) const;
  // Version 4: splits small_used by reading the live threads' caches, the inboxes and the
  // remote buckets; false leaves the ledger unsplit.
  bool split_small(Ledger* g, std::string* err);
  // Blocks on the chain from `head`, each checked to be a block of a span tagged `want` before
  // its link is read; at most `bound`. *clean: it ended at a null link.
  uint64_t walk_chain(uint64_t head, uint32_t want, uint64_t bound, bool* clean);
  // A thread cache's chain of class `bin`: its blocks may belong to any heap (a cache keeps the
  // blocks it adopts from other heaps), so each is checked to be a block of class bin of some
  // heap and counted in `by_key` under its own tag (owner field << 16 | bin).
  uint64_t walk_cache_chain(uint64_t head, uint32_t bin, uint64_t bound, bool* clean,
                            std::map<uint32_t, uint64_t>* by_key);
  bool block_ok(uint64_t p, uint32_t want) const { return block_key(p, HZ3_TAG_BIN(want)) == want; }
  // The tag (owner field << 16 | bin, sampled bit aside) of the span whose block p starts, if p
  // is a block start of class bin as the tag map and the run records say; else 0.
  uint32_t block_key(uint64_t p, uint32_t bin) const;
  uint64_t rec_field(size_t rec, uint16_t off, size_t width) const;
  bool read_link(uint64_t p, uint64_t* next);

  std::vector<uint32_t> class_size_;
  std::vector<struct hz3_class_cache> class_cache_;  // version 4, read once heaps is published
  std::vector<uint32_t> tags_;                       // tags[0 … hwm) of the last census
  std::vector<uint64_t> rec_addr_;                   // run records read by walk_runs, sorted
  std::vector<bool> rec_got_;
  // (owner field << 16 | bin) -> objects outside the spans of that heap and class
  std::map<uint32_t, uint64_t> used_objs_;
  std::map<uint64_t, std::vector<uint8_t>> pages_;  // pages read while walking chains
  std::vector<uint32_t> class_objs_;
  std::vector<uint64_t> map_;
  std::vector<uint8_t> recs_;
};

}  // namespace hz3top
