// Unit tests of hz3top's arena reader (tag_census.h) on a fake target: a descriptor and an arena
// laid out in this process's own memory, read back through process_vm_readv(getpid()) as
// hz3top reads a real target. No root, no libhz3: the descriptor gives every offset, so the
// records here have shapes of their own. Covers what a live process cannot show on demand:
// older descriptors that end at an unreadable page, and cache chains that are not what a cache
// holds (they count as changing while read, and the ledger still adds up). One PASS/FAIL line
// per case (libhz3/tests/check.h).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "check.h"
#include "hz3/hz3.h"
#include "ledger_view.h"
#include "tag_census.h"

using namespace hz3top;

namespace {

// A descriptor of `version` whose fields end exactly at a page that cannot be read: the reader
// must read no more than that version's fields.
void read_desc_at_page_end(uint32_t version, size_t bytes) {
  long page = sysconf(_SC_PAGESIZE);
  char* m = static_cast<char*>(
      mmap(nullptr, size_t(page) * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(m != MAP_FAILED);
  mprotect(m + page, size_t(page), PROT_NONE);
  char* at = m + page - bytes;
  struct hz3_arena_desc d {};
  d.magic = HZ3_DESC_MAGIC;
  d.version = version;
  d.page_shift = HZ3_PAGE_SHIFT;
  d.base = 1 << 30;
  d.size = 1 << 20;
  memcpy(at, &d, bytes);
  ArenaReader r(getpid(), uint64_t(uintptr_t(at)));
  std::string err;
  if (CHECKF(r.read_desc(&err), "version %u at a page end: %s", version, err.c_str()))
    CHECK_EQ(r.desc().version, version);
  munmap(m, size_t(page) * 2);
}

void reads_older_descriptors_only_up_to_their_fields() {
  read_desc_at_page_end(2, offsetof(struct hz3_arena_desc, heaps));
  read_desc_at_page_end(3, offsetof(struct hz3_arena_desc, class_cache));
  read_desc_at_page_end(4, sizeof(struct hz3_arena_desc));
}

// A version 4 arena of 8 pages laid out with records of this test's own shape (the descriptor
// gives every offset): page 0 a span of 64 B objects (bin 1, a list class), page 1 a span of
// 128 B objects (bin 2, a magazine class), pages 2-7 a free run; one heap (id 0), owned by this
// thread, whose cache holds a list and a magazine, with an inbox and a remote bucket.
struct FakeArena {
  struct Rec {
    uint64_t start;
    uint32_t npages, tag;
    uint8_t state;
    uint32_t used;
  };
  struct Heap {
    uint32_t id;
    int32_t owner_tid;
    uint32_t state;
    uint64_t owner_cache;
    uint64_t inbox[3];
    uint32_t inbox_objs[3];
  };
  struct Bucket {
    uint64_t head, tail;
    uint32_t tag, count;
  };
  struct Cache {
    uint32_t state;
    uint64_t heap;
    uint64_t head[3], parked[3], mag_top[3], mag_slots[8];
    Bucket remote[2];
  };
  static constexpr uint32_t T1 = (1u << 16) | 1, T2 = (1u << 16) | 2;  // owner field 1: heap 0
  char* base = nullptr;
  uint32_t tags[8] = {};
  uint64_t map[8] = {};
  Rec recs[3] = {};
  uint32_t class_size[3] = {0, 64, 128}, class_objs[3] = {0, 64, 32};
  struct hz3_class_cache cc[3] = {{}, {HZ3_CACHE_LIST, 0, 10, 0}, {HZ3_CACHE_MAGAZINE, 1, 8, 0}};
  Heap heap{};
  uint64_t heaps[1] = {};
  uint32_t heap_count = 1;
  Cache tc{};
  struct hz3_arena_desc d {};

  FakeArena() {
    base = static_cast<char*>(mmap(nullptr, 8 * HZ3_PAGE_SIZE, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    uint64_t b = uint64_t(uintptr_t(base));
    recs[0] = {b, 1, T1, HZ3_SPAN_SMALL, 40};
    recs[1] = {b + HZ3_PAGE_SIZE, 1, T2, HZ3_SPAN_SMALL, 20};
    recs[2] = {b + 2 * HZ3_PAGE_SIZE, 6, 0, HZ3_SPAN_FREE_DIRTY, 0};
    tags[0] = T1;
    tags[1] = T2 | 0x8000;  // a sampled page: the bit is not part of the class
    map[0] = uint64_t(uintptr_t(&recs[0]));
    map[1] = uint64_t(uintptr_t(&recs[1]));
    map[2] = map[7] = uint64_t(uintptr_t(&recs[2]));
    heap = {0, int32_t(gettid()), 1, uint64_t(uintptr_t(&tc)), {}, {}};
    heaps[0] = uint64_t(uintptr_t(&heap));
    tc.state = 1;
    tc.heap = heaps[0];
    tc.head[1] = chain({0, 1, 2, 3, 4});  // 5 cached 64 B blocks
    tc.mag_top[2] = 1 + 3;                // 3 cached 128 B blocks
    tc.mag_top[1] = 0;
    heap.inbox[1] = chain({10, 11, 12, 13});  // 4 in the inbox
    tc.remote[1] = {chain({20, 21}), block(21), T1, 2};
    d.magic = HZ3_DESC_MAGIC;
    d.version = 4;
    d.page_shift = HZ3_PAGE_SHIFT;
    d.base = b;
    d.size = 8 * HZ3_PAGE_SIZE;
    d.tags = uint64_t(uintptr_t(tags));
    d.hwm_pages = 8;
    d.class_size = uint64_t(uintptr_t(class_size));
    d.nclasses = 2;
    d.max_heaps = 4;
    d.map = uint64_t(uintptr_t(map));
    d.class_objs = uint64_t(uintptr_t(class_objs));
    d.committed_pages = 8;
    d.span = {uint16_t(sizeof(Rec)),
              uint16_t(offsetof(Rec, start)),
              uint16_t(offsetof(Rec, npages)),
              uint16_t(offsetof(Rec, tag)),
              uint16_t(offsetof(Rec, state)),
              uint16_t(offsetof(Rec, used)),
              0,
              0};
    d.heaps = uint64_t(uintptr_t(heaps));
    d.heap_count = uint64_t(uintptr_t(&heap_count));
    d.heap = {uint16_t(sizeof(Heap)), uint16_t(offsetof(Heap, id)),
              uint16_t(offsetof(Heap, owner_tid)), uint16_t(offsetof(Heap, state))};
    d.class_cache = uint64_t(uintptr_t(cc));
    d.cache = {uint32_t(sizeof(Cache)),
               uint32_t(offsetof(Cache, state)),
               uint32_t(offsetof(Cache, heap)),
               uint32_t(offsetof(Cache, head)),
               uint32_t(offsetof(Cache, parked)),
               uint32_t(offsetof(Cache, mag_top)),
               uint32_t(offsetof(Cache, mag_slots)),
               uint32_t(offsetof(Cache, remote)),
               2,
               uint32_t(sizeof(Bucket)),
               uint32_t(offsetof(Bucket, head)),
               uint32_t(offsetof(Bucket, tag)),
               uint32_t(offsetof(Bucket, count)),
               uint32_t(offsetof(Heap, owner_cache)),
               uint32_t(offsetof(Heap, inbox)),
               uint32_t(offsetof(Heap, inbox_objs))};
  }
  ~FakeArena() { munmap(base, 8 * HZ3_PAGE_SIZE); }
  uint64_t block(int i) const { return uint64_t(uintptr_t(base)) + uint64_t(i) * 64; }
  // Links 64 B blocks i0 → i1 → … → 0 through word 0; returns the first.
  uint64_t chain(std::vector<int> idx) {
    for (size_t k = 0; k < idx.size(); k++) {
      uint64_t next = k + 1 < idx.size() ? block(idx[k + 1]) : 0;
      memcpy(base + idx[k] * 64, &next, 8);
    }
    return block(idx[0]);
  }
  void set_link(int i, uint64_t next) { memcpy(base + i * 64, &next, 8); }
  Ledger read(ArenaReader* reader = nullptr) {
    ArenaReader own(getpid(), uint64_t(uintptr_t(&d)));
    ArenaReader& r = reader ? *reader : own;
    Census c;
    std::string err;
    if (CHECKF(r.census(&c, &err), "census: %s", err.c_str())) CHECK(c.runs_ok);
    return c.ledger;
  }
};

bool adds_up(const Ledger& g) {
  return g.app_small + g.remote_pending + g.thread_caches + g.inboxes == g.small_used &&
         g.small_used + g.app_large + g.span_free + g.span_waste + g.pageheap_dirty +
                 g.pageheap_released + g.unwalked ==
             g.arena;
}

void ledger_split_reads_caches_inboxes_and_buckets() {
  FakeArena a;
  Ledger g = a.read();
  CHECK(g.split);
  CHECK_EQ(g.thread_caches, 5 * 64 + 3 * 128);
  CHECK_EQ(g.cached_objs, 8);
  CHECK_EQ(g.inboxes, 4 * 64);
  CHECK_EQ(g.inbox_objs, 4);
  CHECK_EQ(g.remote_pending, 2 * 64);
  CHECK_EQ(g.remote_objs, 2);
  CHECK_EQ(g.app_small, (40 - 5 - 4 - 2) * 64 + (20 - 3) * 128);
  CHECK_EQ(g.unwalked, 0);
  CHECK_EQ(g.pageheap_dirty, 6 * HZ3_PAGE_SIZE);
  CHECK(adds_up(g));
  const OwnerLedger& o = g.owners[1];
  CHECK(o.split);
  CHECK_EQ(o.cached, g.thread_caches);
  CHECK_EQ(o.inbox, g.inboxes);
  CHECK_EQ(o.remote_pending, g.remote_pending);
  CHECK_EQ(o.remote_held, g.remote_pending);
  CHECK_EQ(o.app, g.app_small);
  CHECK(o.owner_known && !o.orphan);
  CHECK_EQ(o.tid, gettid());
  std::vector<LedgerLine> lines = ledger_lines(g);
  REQUIRE(lines.size() >= 4);
  CHECK_EQ(lines[0].bytes, g.app_small);
  CHECK_EQ(lines[1].bytes, g.remote_pending);
  CHECK_EQ(lines[2].bytes, g.thread_caches);
  CHECK_EQ(lines[3].bytes, g.inboxes);
  // An unsplit ledger (an older descriptor) shows small_used alone.
  Ledger old = g;
  old.split = false;
  CHECK_EQ(ledger_lines(old)[0].bytes, g.small_used);
}

// Chains that cannot be what the cache holds go to unwalked, and the ledger still adds up.
void ledger_split_refuses_bad_chains() {
  {
    FakeArena a;  // the list's third link points out of the arena
    a.set_link(2, uint64_t(uintptr_t(&a)));
    Ledger g = a.read();
    CHECK_EQ(g.thread_caches, 3 * 128);
    CHECK_EQ(g.unwalked, 3 * 64);
    CHECK(adds_up(g));
  }
  {
    FakeArena a;  // a cycle: the walk stops at the class's bound (10)
    a.set_link(4, a.block(0));
    Ledger g = a.read();
    CHECK_EQ(g.thread_caches, 3 * 128);
    CHECK_EQ(g.unwalked, 10 * 64);
    CHECK(adds_up(g));
  }
  {
    FakeArena a;  // a link into the 128 B span: tagged with another class
    a.set_link(1, uint64_t(uintptr_t(a.base)) + HZ3_PAGE_SIZE);
    Ledger g = a.read();
    CHECK_EQ(g.thread_caches, 3 * 128);
    CHECK_EQ(g.unwalked, 2 * 64);
    CHECK(adds_up(g));
  }
  {
    FakeArena a;  // a link between two object boundaries
    a.set_link(0, a.block(1) + 16);
    Ledger g = a.read();
    CHECK_EQ(g.thread_caches, 3 * 128);
    CHECK_EQ(g.unwalked, 1 * 64);
    CHECK(adds_up(g));
  }
  {
    FakeArena a;  // an inbox longer than the span's objects outside it: clamped to them
    a.recs[0].used = 6;
    Ledger g = a.read();
    CHECK_EQ(g.inboxes, 4 * 64);
    CHECK_EQ(g.thread_caches, 2 * 64 + 3 * 128);
    CHECK_EQ(g.remote_pending, 0);
    CHECK_EQ(g.unwalked, 0);
    CHECK(adds_up(g));
  }
  {
    FakeArena a;  // a block of the same class but another heap's span: not a bad chain (a cache
                  // keeps the blocks it adopts), counted in that heap's share
    FakeArena::Rec other = {uint64_t(uintptr_t(a.base)) + 7 * HZ3_PAGE_SIZE, 1, (2u << 16) | 1,
                            HZ3_SPAN_SMALL, 3};
    a.recs[2].npages = 5;
    a.map[7] = uint64_t(uintptr_t(&other));
    a.tags[7] = other.tag;
    a.set_link(4, other.start);  // the list's last block links to it; its own link is null
    Ledger g = a.read();
    CHECK_EQ(g.unwalked, 0);
    CHECK_EQ(g.thread_caches, 6 * 64 + 3 * 128);
    CHECK_EQ(g.owners[2].cached, 64);
    CHECK_EQ(g.owners[2].app, 2 * 64);
    CHECK_EQ(g.owners[1].cached, 5 * 64 + 3 * 128);
    CHECK(adds_up(g));
  }
  {
    FakeArena a;  // a cache that is not this heap's: not read
    a.tc.heap = 0;
    Ledger g = a.read();
    CHECK(g.split);
    CHECK_EQ(g.thread_caches, 0);
    CHECK_EQ(g.remote_pending, 0);
    CHECK_EQ(g.inboxes, 4 * 64);
    CHECK(adds_up(g));
  }
}

// The same reader after the target exec'd (a new image: another tag map, another class table):
// the new image's cache kinds are used, not the ones read before.
void ledger_split_rereads_the_class_table_after_exec() {
  FakeArena a;
  ArenaReader r(getpid(), uint64_t(uintptr_t(&a.d)));
  Ledger g = a.read(&r);
  CHECK_EQ(g.thread_caches, 5 * 64 + 3 * 128);
  uint32_t tags2[8];
  memcpy(tags2, a.tags, sizeof tags2);
  struct hz3_class_cache cc2[3] = {{}, {HZ3_CACHE_LIST, 0, 10, 0}, {HZ3_CACHE_LIST, 0, 10, 0}};
  a.d.tags = uint64_t(uintptr_t(tags2));
  a.d.class_cache = uint64_t(uintptr_t(cc2));
  g = a.read(&r);  // bin 2 is a list now, and its list is empty: its magazine fill is not read
  CHECK(g.split);
  CHECK_EQ(g.thread_caches, 5 * 64);
  CHECK(adds_up(g));
}

}  // namespace

int main(int argc, char** argv) {
  hz3::test::init("hz3top_reader_unit", argc, argv);
  const std::pair<const char*, void (*)()> cases[] = {
      {"reads_older_descriptors_only_up_to_their_fields",
       reads_older_descriptors_only_up_to_their_fields},
      {"ledger_split_reads_caches_inboxes_and_buckets",
       ledger_split_reads_caches_inboxes_and_buckets},
      {"ledger_split_refuses_bad_chains", ledger_split_refuses_bad_chains},
      {"ledger_split_rereads_the_class_table_after_exec",
       ledger_split_rereads_the_class_table_after_exec},
  };
  for (auto& [name, fn] : cases) hz3::test::run_case(name, fn);
  return hz3::test::finish();
}
