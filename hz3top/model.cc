// Formulas behind model.h.
#include "model.h"

#include <algorithm>

namespace hz3top {

uint64_t delta(uint64_t prev, uint64_t cur) { return cur >= prev ? cur - prev : 0; }

double rate(uint64_t prev, uint64_t cur, double dt) {
  if (!(dt > 0)) return 0;
  return double(delta(prev, cur)) / dt;
}

std::optional<double> ratio(uint64_t part, uint64_t whole) {
  if (whole == 0) return std::nullopt;
  return double(part) / double(whole);
}

std::optional<double> per_thousand(uint64_t events, uint64_t lookups) {
  if (lookups == 0) return std::nullopt;
  return 1000.0 * double(events) / double(lookups);
}

void apply_census(const Census& census, const std::map<uint64_t, uint64_t>& large_npages,
                  ProcSnapshot* s) {
  s->census_ok = true;
  s->live_pages.clear();
  s->live_bytes.clear();
  s->large_unsized = 0;
  for (auto& [tag, pages] : census.pages_by_tag) {
    s->live_pages[tag] += pages;
    if (HZ3_TAG_BIN(tag) != HZ3_TAG_BIN_LARGE) s->live_bytes[tag] += pages << HZ3_PAGE_SHIFT;
  }
  // Large: the census counted head pages only; size each head from its run record in the page
  // map (descriptor version 2), else from what tag_set reported since attach.
  for (uint64_t head : census.large_heads) {
    auto run = census.large_npages.find(head);
    auto it = large_npages.find(head);
    uint64_t npages = 1;
    if (run != census.large_npages.end() && run->second)
      npages = run->second;
    else if (it != large_npages.end() && it->second)
      npages = it->second;
    else
      s->large_unsized++;
    s->live_bytes[tag_key(HZ3_TAG_BIN_LARGE, HZ3_TAG_OWNER_LARGE)] += npages << HZ3_PAGE_SHIFT;
  }
  s->ledger_ok = census.runs_ok;
  s->ledger = census.runs_ok ? census.ledger : Ledger{};
}

void apply_probe_churn(ProcSnapshot* s) {
  s->census_ok = false;
  s->ledger_ok = false;
  s->ledger = Ledger{};
  s->live_pages.clear();
  s->live_bytes.clear();
  s->large_unsized = 0;
  for (auto& [key, b] : s->bins) {
    uint64_t pages = delta(b.clear_pages, b.set_pages);
    if (!pages) continue;
    s->live_pages[key] = pages;
    s->live_bytes[key] = pages << HZ3_PAGE_SHIFT;
  }
}

void apply_exit(ProcSnapshot* s) {
  bool had_ledger = s->ledger_ok, had_split = s->ledger.split;
  s->census_ok = true;
  s->live_pages.clear();
  s->live_bytes.clear();
  s->large_unsized = 0;
  s->ledger = Ledger{};
  s->ledger_ok = had_ledger;
  s->ledger.split = had_split;  // every line is known to be 0, the split ones too
}

Ledger& operator+=(Ledger& a, const Ledger& b) {
  a.small_used += b.small_used;
  // Split only if every process's ledger is: else the split lines would miss some small_used.
  a.split = a.split && b.split;
  a.app_small += b.app_small;
  a.thread_caches += b.thread_caches;
  a.inboxes += b.inboxes;
  a.remote_pending += b.remote_pending;
  a.cached_objs += b.cached_objs;
  a.inbox_objs += b.inbox_objs;
  a.remote_objs += b.remote_objs;
  a.app_large += b.app_large;
  a.span_free += b.span_free;
  a.span_waste += b.span_waste;
  a.pageheap_dirty += b.pageheap_dirty;
  a.pageheap_released += b.pageheap_released;
  a.unwalked += b.unwalked;
  a.arena += b.arena;
  a.committed += b.committed;
  a.reserved += b.reserved;
  a.huge += b.huge;
  a.small_spans += b.small_spans;
  a.large_blocks += b.large_blocks;
  a.huge_blocks += b.huge_blocks;
  a.free_runs += b.free_runs;
  return a;
}

Counts counts_of(const ProcCounts& c) {
  Counts r;
  r.hits = c[HZ3_C_HITS];
  r.hit_reports = c[HZ3_C_HIT_REPORTS];
  r.miss_outside = c[HZ3_C_MISS_OUTSIDE];
  r.miss_untagged = c[HZ3_C_MISS_UNTAGGED];
  r.miss_other = c[HZ3_C_MISS_OTHER];
  r.decode_fail = c[HZ3_C_DECODE_FAIL];
  r.tag_set = c[HZ3_C_TAG_SET];
  r.tag_clear = c[HZ3_C_TAG_CLEAR];
  r.set_pages = c[HZ3_C_TAG_SET_PAGES];
  r.clear_pages = c[HZ3_C_TAG_CLEAR_PAGES];
  r.dropped = c[HZ3_C_DROPPED];
  return r;
}

// Every field of Counts, for the field-by-field operators below.
#define HZ3_COUNT_FIELDS(X) \
  X(hits)                   \
  X(miss_outside)           \
  X(miss_untagged)          \
  X(miss_other)             \
  X(decode_fail)            \
  X(tag_set)                \
  X(tag_clear)              \
  X(set_pages)              \
  X(clear_pages)            \
  X(hit_reports)            \
  X(dropped)

Counts operator-(const Counts& a, const Counts& b) {
  Counts r;
#define X(f) r.f = delta(b.f, a.f);
  HZ3_COUNT_FIELDS(X)
#undef X
  return r;
}

Counts& operator+=(Counts& a, const Counts& b) {
#define X(f) a.f += b.f;
  HZ3_COUNT_FIELDS(X)
#undef X
  return a;
}

double counting_start(double attached, std::optional<double> started) {
  return started && *started > attached ? *started : attached;
}

namespace {

void fill_rates(ProcView* v) {
  double dt = v->dt;
  auto per_s = [dt](uint64_t d) { return dt > 0 ? double(d) / dt : 0.0; };
  v->hit_rate = per_s(v->delta.hits);
  v->miss_rate = per_s(v->delta.misses());
  v->decode_fail_rate = per_s(v->delta.decode_fail);
  v->tag_set_rate = per_s(v->delta.tag_set);
  v->tag_clear_rate = per_s(v->delta.tag_clear);
  v->lookup_rate = per_s(v->delta.lookups());
  v->perf.rate = per_s(v->perf.d_count);
  fill_ratios(v);
}

}  // namespace

void fill_ratios(ProcView* v) {
  v->hits_reported = v->delta.hit_reports > 0;
  v->hit_ratio =
      v->hits_reported ? ratio(v->delta.hits, v->delta.lookups()) : std::optional<double>();
  v->hit_ratio_total = ratio(v->total.hits, v->total.lookups());
  v->perf.per_kfree =
      v->perf.counting ? per_thousand(v->perf.d_count, v->delta.lookups()) : std::nullopt;
  uint64_t samples = v->perf.d_alloc + v->perf.d_user + v->perf.d_kernel;
  v->perf.alloc_share = v->perf.sampling ? ratio(v->perf.d_alloc, samples) : std::nullopt;
}

ProcView make_view(const ProcSnapshot* prev, const ProcSnapshot& cur, double first_dt) {
  ProcView v;
  v.pid = cur.pid;
  v.comm = cur.comm;
  v.lib = cur.lib;
  v.alive = cur.alive;
  v.dt = prev ? cur.t - prev->t : first_dt;
  v.total = counts_of(cur.counts);
  v.delta = prev ? v.total - counts_of(prev->counts) : v.total;

  v.census_ok = cur.census_ok;
  v.large_unsized = cur.large_unsized;
  v.ledger_ok = cur.ledger_ok;
  v.ledger = cur.ledger;
  v.exec = cur.exec;
  std::map<uint32_t, BinRow> bins;
  std::map<uint32_t, OwnerRow> owners;
  auto bin_row = [&](uint32_t bin) -> BinRow& {
    BinRow& r = bins[bin];
    r.bin = bin;
    r.size = bin < cur.class_size.size() ? cur.class_size[bin] : 0;
    return r;
  };
  for (auto& [key, pages] : cur.live_pages) {
    auto b = cur.live_bytes.find(key);
    uint64_t bytes = b == cur.live_bytes.end() ? 0 : b->second;
    BinRow& r = bin_row(key_bin(key));
    r.live_pages += pages;
    r.live_bytes += bytes;
    if (pages) r.owners++;
    OwnerRow& o = owners[key_owner(key)];
    o.owner = key_owner(key);
    o.live_pages += pages;
    o.live_bytes += bytes;
    v.live_pages += pages;
    v.live_bytes += bytes;
  }
  for (auto& [key, c] : cur.bins) {
    BinRow& r = bin_row(key_bin(key));
    r.sets += c.sets;
    r.clears += c.clears;
    r.set_pages += c.set_pages;
    r.clear_pages += c.clear_pages;
    BinCounts p;
    if (prev) {
      auto it = prev->bins.find(key);
      if (it != prev->bins.end()) p = it->second;
    }
    r.set_rate += rate(p.sets, c.sets, v.dt);
    r.clear_rate += rate(p.clears, c.clears, v.dt);
  }
  for (auto& [bin, r] : bins) v.bins.push_back(r);
  for (auto& [owner, o] : owners) v.owners.push_back(o);

  v.perf.counting = cur.perf.counting;
  v.perf.sampling = cur.perf.sampling;
  v.perf.count = cur.perf.count;
  v.perf.lost = cur.perf.lost;
  v.perf.alloc = cur.perf.samples_alloc;
  v.perf.user = cur.perf.samples_user;
  v.perf.kernel = cur.perf.samples_kernel;
  const PerfCounts zero;
  const PerfCounts& pp = prev ? prev->perf : zero;
  v.perf.d_count = delta(pp.count, cur.perf.count);
  v.perf.d_alloc = delta(pp.samples_alloc, cur.perf.samples_alloc);
  v.perf.d_user = delta(pp.samples_user, cur.perf.samples_user);
  v.perf.d_kernel = delta(pp.samples_kernel, cur.perf.samples_kernel);
  fill_rates(&v);
  return v;
}

ProcView sum_views(const std::vector<ProcView>& views) {
  ProcView s;
  s.comm = "total";
  s.census_ok = !views.empty();
  s.ledger_ok = !views.empty();
  s.ledger.split = !views.empty();  // and-ed with each process's below
  s.alive = false;
  std::map<uint32_t, BinRow> bins;
  std::map<uint32_t, OwnerRow> owners;
  for (const ProcView& v : views) {
    s.dt = std::max(s.dt, v.dt);
    s.hit_rate += v.hit_rate;
    s.miss_rate += v.miss_rate;
    s.decode_fail_rate += v.decode_fail_rate;
    s.tag_set_rate += v.tag_set_rate;
    s.tag_clear_rate += v.tag_clear_rate;
    s.lookup_rate += v.lookup_rate;
    s.perf.rate += v.perf.rate;
    s.alive = s.alive || v.alive;
    s.total += v.total;
    s.delta += v.delta;
    s.census_ok = s.census_ok && v.census_ok;
    s.ledger_ok = s.ledger_ok && v.ledger_ok;
    s.ledger += v.ledger;
    s.live_pages += v.live_pages;
    s.live_bytes += v.live_bytes;
    s.large_unsized += v.large_unsized;
    s.perf.counting = s.perf.counting || v.perf.counting;
    s.perf.sampling = s.perf.sampling || v.perf.sampling;
    s.perf.count += v.perf.count;
    s.perf.d_count += v.perf.d_count;
    s.perf.d_alloc += v.perf.d_alloc;
    s.perf.d_user += v.perf.d_user;
    s.perf.d_kernel += v.perf.d_kernel;
    s.perf.lost += v.perf.lost;
    s.perf.alloc += v.perf.alloc;
    s.perf.user += v.perf.user;
    s.perf.kernel += v.perf.kernel;
    for (const BinRow& b : v.bins) {
      BinRow& r = bins[b.bin];
      r.bin = b.bin;
      r.size = r.size ? r.size : b.size;
      r.live_pages += b.live_pages;
      r.live_bytes += b.live_bytes;
      r.sets += b.sets;
      r.clears += b.clears;
      r.set_pages += b.set_pages;
      r.clear_pages += b.clear_pages;
      r.set_rate += b.set_rate;
      r.clear_rate += b.clear_rate;
      r.owners += b.owners;
    }
    for (const OwnerRow& o : v.owners) {
      // Owner ids are per process; summing them across processes would mix different heaps,
      // but the large owner (HZ3_TAG_OWNER_LARGE) and the per-owner totals still add up as a
      // ledger.
      OwnerRow& r = owners[o.owner];
      r.owner = o.owner;
      r.live_pages += o.live_pages;
      r.live_bytes += o.live_bytes;
    }
  }
  for (auto& [bin, r] : bins) s.bins.push_back(r);
  for (auto& [owner, o] : owners) s.owners.push_back(o);
  fill_ratios(&s);
  return s;
}

}  // namespace hz3top
