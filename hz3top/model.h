// The numbers hz3top shows, as pure functions of two snapshots: totals since attach, deltas and
// per-second rates over the *measured* time between the snapshots, the hit ratio, live pages
// and bytes per bin and owner, cache misses (or page faults) per thousand frees and the share
// of samples in allocator code. No I/O here — collectors fill ProcSnapshot, renderers print
// ProcView — so every formula is unit-tested (hz3top/tests/unit.cc).
#pragma once

#include <linux/types.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hz3_events.h"
#include "tag_census.h"

namespace hz3top {

// The BPF programs spell the large-block marker with hz3_events.h's names; hz3top's C++ uses
// hz3.h's. One value.
static_assert(HZ3_EV_BIN_LARGE == HZ3_TAG_BIN_LARGE && HZ3_EV_OWNER_LARGE == HZ3_TAG_OWNER_LARGE,
              "probes/hz3_events.h and hz3/hz3.h disagree on the large-block tag fields");

// Key of per-(bin, owner) maps: the tag layout itself, owner_field << 16 | bin_field.
inline uint32_t tag_key(uint32_t bin, uint32_t owner) { return (owner << 16) | (bin & 0xFFFFu); }
inline uint32_t key_bin(uint32_t key) { return HZ3_TAG_BIN(key); }
inline uint32_t key_owner(uint32_t key) { return HZ3_TAG_OWNER(key); }

struct ProcCounts {
  std::array<uint64_t, HZ3_C_NR> c{};
  uint64_t operator[](int i) const { return c[size_t(i)]; }
};

struct BinCounts {
  uint64_t sets = 0, clears = 0, set_pages = 0, clear_pages = 0;
};

// Perf values of one process, cumulative since hz3top opened its events.
struct PerfCounts {
  bool counting = false;  // the counting event is open
  uint64_t count = 0;     // occurrences of the counting event (cache misses or page faults)
  bool sampling = false;
  uint64_t samples_alloc = 0;   // sampled IPs inside libhz3's code
  uint64_t samples_user = 0;    // sampled IPs in the rest of user space
  uint64_t samples_kernel = 0;  // sampled IPs in the kernel
  uint64_t lost = 0;            // samples the ring buffer dropped
};

// Everything collected about one process at one instant.
struct ProcSnapshot {
  pid_t pid = 0;
  std::string comm, lib;
  bool alive = true;
  bool exec = false;                   // exec'd since the previous snapshot
  double t = 0;                        // CLOCK_MONOTONIC seconds when the snapshot was taken
  ProcCounts counts;                   // probe counts since attach
  std::map<uint32_t, BinCounts> bins;  // tag churn since attach, by tag_key
  // Live memory by tag_key: from the tag map when census_ok, else from probe churn.
  bool census_ok = false;
  std::map<uint32_t, uint64_t> live_pages;
  std::map<uint32_t, uint64_t> live_bytes;
  uint64_t large_unsized = 0;  // large heads of unknown size, counted as one page
  bool ledger_ok = false;      // the page map was walked (descriptor version 2)
  Ledger ledger;
  std::vector<uint32_t> class_size;  // [bin] -> object size; [0] unused
  PerfCounts perf;
};

// Fills live_pages/live_bytes (and the ledger) from a tag-map census. Small and medium spans tag
// every page, so their bytes are pages x 4 KiB; a large allocation tags only its head page, so
// its bytes come from its run record (census.large_npages, descriptor version 2), else from
// `large_npages` (head page index -> npages, from tag_set seen since attach), else count as one
// page (large_unsized says how many).
void apply_census(const Census& census, const std::map<uint64_t, uint64_t>& large_npages,
                  ProcSnapshot* s);
// Without a readable tag map: live = pages set minus pages cleared since attach (a lower bound
// of churn, not of the absolute live set).
void apply_probe_churn(ProcSnapshot* s);
// An exited process holds no memory: live 0, every ledger line 0 (census_ok: that is known).
void apply_exit(ProcSnapshot* s);
// Ledgers of several processes added line by line (owners are per process: not added).
Ledger& operator+=(Ledger& a, const Ledger& b);

// Counters as the views carry them (both "since attach" and "this interval").
struct Counts {
  uint64_t hits = 0, miss_outside = 0, miss_untagged = 0, miss_other = 0, decode_fail = 0;
  uint64_t tag_set = 0, tag_clear = 0, set_pages = 0, clear_pages = 0;
  uint64_t hit_reports = 0, dropped = 0;
  uint64_t misses() const { return miss_outside + miss_untagged + miss_other; }
  // Every free (and realloc / malloc_usable_size) does one lookup that either hits or misses.
  uint64_t lookups() const { return hits + misses(); }
};

struct BinRow {
  uint32_t bin = 0;
  uint32_t size = 0;  // object size; 0 for large
  uint64_t live_pages = 0, live_bytes = 0;
  uint64_t sets = 0, clears = 0, set_pages = 0, clear_pages = 0;  // since attach
  double set_rate = 0, clear_rate = 0;                            // per second
  uint32_t owners = 0;                                            // owners with live pages
};

struct OwnerRow {
  uint32_t owner = 0;  // raw owner field: heap id + 1, HZ3_TAG_OWNER_LARGE = large
  uint64_t live_pages = 0, live_bytes = 0;
};

struct PerfView {
  bool counting = false, sampling = false;
  uint64_t count = 0, d_count = 0;
  double rate = 0;
  std::optional<double> per_kfree;  // events per 1000 lookups this interval
  uint64_t d_alloc = 0, d_user = 0, d_kernel = 0, lost = 0;  // samples this interval; lost total
  uint64_t alloc = 0, user = 0, kernel = 0;                  // samples since attach
  std::optional<double> alloc_share;                         // d_alloc / all samples this interval
};

struct ProcView {
  pid_t pid = 0;
  std::string comm, lib;
  bool alive = true;
  double dt = 0;       // measured seconds since the previous snapshot
  double created = 0;  // unix time from which the counters in `total` run (0: unknown)
  Counts total, delta;
  double hit_rate = 0, miss_rate = 0, decode_fail_rate = 0, tag_set_rate = 0, tag_clear_rate = 0,
         lookup_rate = 0;
  // A hits report (hz3:hits) arrived this interval. Threads report hits in batches, so without
  // one the interval's hits are not known yet (not 0): hit rate and ratio show "-".
  bool hits_reported = false;
  std::optional<double> hit_ratio;        // this interval; none without lookups or hits report
  std::optional<double> hit_ratio_total;  // since attach
  bool census_ok = false;
  uint64_t live_pages = 0, live_bytes = 0, large_unsized = 0;
  bool ledger_ok = false;  // the allocator's ledger was read (descriptor version 2)
  Ledger ledger;
  // The process exec'd since the previous report (a new image: counts start again from it).
  bool exec = false;
  PerfView perf;
  std::vector<BinRow> bins;      // sorted by bin
  std::vector<OwnerRow> owners;  // sorted by owner
};

// Per-second rate of a counter that went from `prev` to `cur` in `dt` seconds. Counters only
// grow; a smaller `cur` (map entry recreated) or a non-positive dt gives 0.
double rate(uint64_t prev, uint64_t cur, double dt);
uint64_t delta(uint64_t prev, uint64_t cur);
// hits / (hits + misses); none when there were no lookups.
std::optional<double> ratio(uint64_t part, uint64_t whole);
// events per 1000 lookups; none when there were no lookups.
std::optional<double> per_thousand(uint64_t events, uint64_t lookups);

Counts counts_of(const ProcCounts& c);
Counts operator-(const Counts& a, const Counts& b);  // saturating, field by field
Counts& operator+=(Counts& a, const Counts& b);

// When a process's counts began: when its probes were attached (`attached`, monotonic seconds),
// or when it started (`started`) if that was later: a process that starts after hz3top attached
// to its library is counted from its start. Its first interval runs from here, not from
// hz3top's own start.
double counting_start(double attached, std::optional<double> started);

// The view of `cur`, with deltas against `prev` (nullptr: the first snapshot, deltas against 0
// over `first_dt` seconds, the time since counting_start).
ProcView make_view(const ProcSnapshot* prev, const ProcSnapshot& cur, double first_dt);
// The ratios of a view from its counts: hit ratios (interval, since attach), perf per_kfree and
// alloc_share.
void fill_ratios(ProcView* v);
// All processes together: sums of counts, deltas, live memory and rates (each process's rate is
// over its own interval, so the all row's rate is the sum of the rows' rates, not the summed
// deltas over the longest interval); ratios from the summed deltas; dt the longest interval.
ProcView sum_views(const std::vector<ProcView>& views);

struct Report {
  double wall = 0;  // unix time of the snapshot
  double dt = 0;    // interval actually measured (the longest of the processes')
  bool final = false;
  uint64_t seq = 0;
  std::string perf_event, sample_event;
  std::vector<ProcView> procs;
  ProcView total;
};

}  // namespace hz3top
