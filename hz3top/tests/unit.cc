// Unit tests of hz3top's pure parts: rate, ratio and delta formulas (model.h), the tag-map
// census arithmetic, the text renderings (format.h), the USDT argument parser (usdt_spec.h) and the
// symbolizer (symbolize.h, on this binary itself) and the OpenMetrics text (openmetrics.h). No
// BPF, no root, no target process: those paths are covered by the t_*.sh tests against real libhz3.
// Prints one PASS/FAIL line per case, in the format scripts/run-tests.sh counts.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "check.h"
#include "format.h"
#include "model.h"
#include "openmetrics.h"
#include "sparkline.h"
#include "symbolize.h"
#include "usdt_spec.h"

using namespace hz3top;

namespace {

bool near(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(1.0, std::fabs(b)); }
bool near(std::optional<double> a, double b) { return a && near(*a, b); }

ProcSnapshot snap(pid_t pid, double t) {
  ProcSnapshot s;
  s.pid = pid;
  s.comm = "w" + std::to_string(pid);
  s.t = t;
  s.class_size = {0, 16, 32, 48};
  return s;
}

void set_counts(ProcSnapshot& s, uint64_t hits, uint64_t outside, uint64_t untagged, uint64_t sets,
                uint64_t clears) {
  s.counts.c[HZ3_C_HITS] = hits;
  s.counts.c[HZ3_C_HIT_REPORTS] = hits;  // here every hit came in a report of its own
  s.counts.c[HZ3_C_MISS_OUTSIDE] = outside;
  s.counts.c[HZ3_C_MISS_UNTAGGED] = untagged;
  s.counts.c[HZ3_C_TAG_SET] = sets;
  s.counts.c[HZ3_C_TAG_CLEAR] = clears;
}

const BinRow* find_bin(const ProcView& v, uint32_t bin) {
  for (const BinRow& b : v.bins)
    if (b.bin == bin) return &b;
  return nullptr;
}

// ---- model.h ----

void rate_formula() {
  CHECK(near(rate(100, 300, 2.0), 100.0));
  CHECK(near(rate(0, 1, 0.5), 2.0));
  CHECK(rate(300, 100, 1.0) == 0);  // map entry recreated: never a negative rate
  CHECK(rate(0, 10, 0.0) == 0);     // no time measured
  CHECK(rate(0, 10, -1.0) == 0);
  CHECK(rate(0, 10, std::nan("")) == 0);
  CHECK(delta(5, 3) == 0 && delta(3, 5) == 2);
}

void ratio_formula() {
  CHECK(!ratio(0, 0));
  CHECK(near(ratio(99, 100), 0.99));
  CHECK(near(ratio(0, 7), 0.0));
  CHECK(!per_thousand(5, 0));
  CHECK(near(per_thousand(5, 1000), 5.0));
  CHECK(near(per_thousand(3, 200), 15.0));
}

void view_deltas_over_measured_time() {
  ProcSnapshot a = snap(7, 10.0), b = snap(7, 12.5);
  set_counts(a, 1000, 10, 0, 4, 1);
  set_counts(b, 6000, 25, 5, 9, 6);
  ProcView v = make_view(&a, b, 99.0);
  CHECK(near(v.dt, 2.5));  // measured, not the nominal interval
  CHECK(v.total.hits == 6000 && v.total.misses() == 30);
  CHECK(v.delta.hits == 5000 && v.delta.misses() == 20);
  CHECK(near(v.hit_rate, 2000.0));
  CHECK(near(v.miss_rate, 8.0));
  CHECK(near(v.tag_set_rate, 2.0) && near(v.tag_clear_rate, 2.0));
  CHECK(near(v.lookup_rate, 2008.0));
  CHECK(near(v.hit_ratio, 5000.0 / 5020.0));
  CHECK(near(v.hit_ratio_total, 6000.0 / 6030.0));
}

void view_first_snapshot_counts_since_attach() {
  ProcSnapshot b = snap(7, 3.0);
  set_counts(b, 500, 0, 0, 2, 0);
  ProcView v = make_view(nullptr, b, 0.5);
  CHECK(near(v.dt, 0.5));
  CHECK(v.delta.hits == 500);
  CHECK(near(v.hit_rate, 1000.0));
  CHECK(near(v.hit_ratio, 1.0));
}

void view_without_lookups_has_no_ratio() {
  ProcSnapshot a = snap(7, 1.0), b = snap(7, 2.0);
  set_counts(a, 10, 0, 0, 0, 0);
  set_counts(b, 10, 0, 0, 0, 0);
  ProcView v = make_view(&a, b, 1.0);
  CHECK(!v.hit_ratio);
  CHECK(near(v.hit_ratio_total, 1.0));
  CHECK(!v.perf.per_kfree && !v.perf.alloc_share);
}

void view_bins_merge_owners() {
  ProcSnapshot a = snap(7, 0.0), b = snap(7, 2.0);
  a.bins[tag_key(2, 1)] = {4, 1, 64, 16};
  b.bins[tag_key(2, 1)] = {10, 3, 160, 48};
  b.bins[tag_key(2, 2)] = {2, 0, 32, 0};  // new owner: rate from zero
  b.bins[tag_key(HZ3_TAG_BIN_LARGE, HZ3_TAG_OWNER_LARGE)] = {1, 0, 256, 0};
  b.live_pages[tag_key(2, 1)] = 112;
  b.live_pages[tag_key(2, 2)] = 32;
  b.live_bytes[tag_key(2, 1)] = 112 * 4096;
  b.live_bytes[tag_key(2, 2)] = 32 * 4096;
  ProcView v = make_view(&a, b, 1.0);
  const BinRow* r = find_bin(v, 2);
  CHECK(r != nullptr);
  if (r) {
    CHECK(r->size == 32);
    CHECK(r->sets == 12 && r->clears == 3 && r->set_pages == 192);
    CHECK(near(r->set_rate, (6 + 2) / 2.0));
    CHECK(near(r->clear_rate, 1.0));
    CHECK(r->live_pages == 144 && r->live_bytes == 144 * 4096 && r->owners == 2);
  }
  const BinRow* l = find_bin(v, HZ3_TAG_BIN_LARGE);
  CHECK(l && l->sets == 1 && l->size == 0);
  CHECK(v.live_pages == 144);
  CHECK(v.owners.size() == 2 && v.owners[0].owner == 1 && v.owners[0].live_pages == 112);
}

void census_sizes_large_heads() {
  Census c;
  c.hwm_pages = 1000;
  c.pages_by_tag[tag_key(1, 1)] = 16;
  c.pages_by_tag[tag_key(3, 2)] = 4;
  uint32_t large = tag_key(HZ3_TAG_BIN_LARGE, HZ3_TAG_OWNER_LARGE);
  c.pages_by_tag[large] = 3;
  c.large_heads = {100, 400, 900};
  std::map<uint64_t, uint64_t> sizes = {{100, 256}, {400, 17}, {555, 9}};  // 555: freed since
  ProcSnapshot s = snap(7, 1.0);
  apply_census(c, sizes, &s);
  CHECK(s.census_ok);
  CHECK(s.live_pages[large] == 3);  // tagged pages: heads only
  CHECK(s.live_bytes[large] == (256 + 17 + 1) * 4096ull);
  CHECK(s.large_unsized == 1);  // head 900 was tagged before attach
  CHECK(s.live_bytes[tag_key(1, 1)] == 16 * 4096ull);
  ProcView v = make_view(nullptr, s, 1.0);
  CHECK(v.live_pages == 23 && v.live_bytes == (16 + 4 + 274) * 4096ull);
  CHECK(v.large_unsized == 1);
}

void census_sizes_large_heads_from_page_map() {
  Census c;
  c.hwm_pages = 1000;
  uint32_t large = tag_key(HZ3_TAG_BIN_LARGE, HZ3_TAG_OWNER_LARGE);
  c.pages_by_tag[large] = 2;
  c.large_heads = {100, 400};
  c.runs_ok = true;
  c.large_npages = {{100, 256}, {400, 300}};  // the page map wins over tag_set's sizes
  c.ledger.app_large = 556 * 4096ull;
  std::map<uint64_t, uint64_t> sizes = {{400, 17}};
  ProcSnapshot s = snap(7, 1.0);
  apply_census(c, sizes, &s);
  CHECK(s.live_bytes[large] == 556 * 4096ull);
  CHECK(s.large_unsized == 0);
  CHECK(s.ledger_ok && s.ledger.app_large == 556 * 4096ull);
  apply_exit(&s);  // gone: nothing live, the ledger all zero but known
  CHECK(s.census_ok && s.live_bytes.empty() && s.ledger_ok && s.ledger.app_total() == 0);
  ProcView v = make_view(nullptr, s, 1.0);
  CHECK(v.live_bytes == 0 && v.ledger_ok);
}

void hits_unknown_without_a_report() {
  ProcSnapshot a = snap(7, 1.0), b = snap(7, 2.0);
  a.counts.c[HZ3_C_HITS] = 100;
  a.counts.c[HZ3_C_HIT_REPORTS] = 1;
  b.counts = a.counts;
  b.counts.c[HZ3_C_MISS_OUTSIDE] = 5;  // misses came, the hits are still pending in threads
  ProcView v = make_view(&a, b, 1.0);
  CHECK(!v.hits_reported && !v.hit_ratio);
  CHECK(proc_table_row(v, "x").find(" - ") != std::string::npos);
  Report r;
  r.procs = {v};
  CHECK(report_json(r)["procs"][0]["rate"]["ptag_hit"].is_null());
  b.counts.c[HZ3_C_HIT_REPORTS] = 2;
  b.counts.c[HZ3_C_HITS] = 150;
  v = make_view(&a, b, 1.0);
  CHECK(v.hits_reported && v.hit_rate == 50 && v.hit_ratio && *v.hit_ratio == 50.0 / 55);
}

void sparkline_scales_to_peak() {
  CHECK_EQ_STR(sparkline({0.0, 50.0, 100.0, std::nullopt, 25.0}, false), "_+@ -");
  CHECK_EQ_STR(sparkline({0.0, 0.0}, false), "__");  // nothing to scale by: all at the bottom
  CHECK_EQ_STR(sparkline({1.0, 7.0}, true), "\u2582\u2588");
  CHECK(sparkline({}, true).empty());
}

void probe_churn_when_no_tag_map() {
  ProcSnapshot s = snap(7, 1.0);
  s.bins[tag_key(1, 1)] = {3, 1, 48, 16};
  s.bins[tag_key(2, 1)] = {1, 2, 16, 32};  // cleared pages tagged before attach: clamp at 0
  apply_probe_churn(&s);
  CHECK(!s.census_ok);
  CHECK(s.live_pages[tag_key(1, 1)] == 32);
  CHECK(s.live_pages.count(tag_key(2, 1)) == 0);
}

void sums_add_up_like_a_ledger() {
  ProcSnapshot a0 = snap(1, 0), a1 = snap(1, 1), b1 = snap(2, 1);
  set_counts(a0, 100, 0, 0, 0, 0);
  set_counts(a1, 300, 1, 1, 1, 0);
  set_counts(b1, 50, 0, 0, 0, 0);
  a1.live_pages[tag_key(1, 1)] = 10;
  b1.live_pages[tag_key(1, 1)] = 5;
  a1.perf = {true, 40, true, 3, 6, 1, 0};
  b1.perf = {true, 10, true, 0, 0, 0, 0};
  std::vector<ProcView> vs = {make_view(&a0, a1, 1), make_view(nullptr, b1, 1)};
  ProcView s = sum_views(vs);
  CHECK(s.total.hits == 350 && s.delta.hits == 250);
  CHECK(s.live_pages == 15);
  CHECK(near(s.hit_ratio, 250.0 / 252.0));
  CHECK(s.perf.d_count == 50);
  CHECK(near(s.perf.per_kfree, 1000.0 * 50 / 252));
  CHECK(near(s.perf.alloc_share, 0.3));
  const BinRow* r = find_bin(s, 1);
  CHECK(r && r->live_pages == 15);
}

// --all: a process found late has a shorter first interval; the all row adds rates, each over
// its own process's interval (1000 hits in 1 s and 500 in 0.5 s are 2000/s, not 1500/s).
void all_row_sums_rates_of_late_processes() {
  CHECK(counting_start(10.0, std::nullopt) == 10.0);
  CHECK(counting_start(10.0, 4.0) == 10.0);   // running before attach: counted from attach
  CHECK(counting_start(10.0, 12.5) == 12.5);  // started later: counted from its start
  double now = 13.0;
  ProcSnapshot early = snap(1, now), late = snap(2, now);
  set_counts(early, 1000, 0, 0, 10, 0);
  set_counts(late, 500, 0, 0, 4, 0);
  early.perf = {true, 100, false, 0, 0, 0, 0};
  late.perf = {true, 100, false, 0, 0, 0, 0};
  ProcView a = make_view(nullptr, early, now - counting_start(12.0, 3.0));
  ProcView b = make_view(nullptr, late, now - counting_start(12.0, 12.5));
  CHECK(near(a.dt, 1.0) && near(b.dt, 0.5));
  CHECK(near(a.hit_rate, 1000.0) && near(b.hit_rate, 1000.0));
  ProcView all = sum_views({a, b});
  CHECK(near(all.dt, 1.0));
  CHECK(near(all.hit_rate, 2000.0));
  CHECK(near(all.lookup_rate, 2000.0));
  CHECK(near(all.tag_set_rate, 10.0 + 8.0));
  CHECK(near(all.perf.rate, 100.0 + 200.0));
  CHECK(near(all.hit_ratio, 1.0));
}

void perf_per_kfree_and_share() {
  ProcSnapshot a = snap(7, 0), b = snap(7, 1);
  set_counts(a, 0, 0, 0, 0, 0);
  set_counts(b, 2000, 0, 0, 0, 0);
  a.perf = {true, 100, true, 1, 1, 0, 0};
  b.perf = {true, 130, true, 26, 71, 5, 0};  // +25 alloc, +70 user, +5 kernel
  ProcView v = make_view(&a, b, 1);
  CHECK(v.perf.d_count == 30);
  CHECK(near(v.perf.per_kfree, 15.0));
  CHECK(near(v.perf.alloc_share, 0.25));
  b.perf.sampling = false;
  b.perf.counting = false;
  v = make_view(&a, b, 1);
  CHECK(!v.perf.alloc_share && !v.perf.per_kfree);
}

// ---- format.h ----

void si_numbers() {
  CHECK_EQ_STR(fmt_si(0), "0");
  CHECK_EQ_STR(fmt_si(12), "12");
  CHECK_EQ_STR(fmt_si(3.5), "3.5");
  CHECK_EQ_STR(fmt_si(999), "999");
  CHECK_EQ_STR(fmt_si(999.6), "1.00k");
  CHECK_EQ_STR(fmt_si(1234), "1.23k");
  CHECK_EQ_STR(fmt_si(45600), "45.6k");
  CHECK_EQ_STR(fmt_si(123456), "123k");
  CHECK_EQ_STR(fmt_si(1.5e6), "1.50M");
  CHECK_EQ_STR(fmt_si(7.891e9), "7.89G");
  CHECK_EQ_STR(fmt_si(-2500), "-2.50k");
  CHECK_EQ_STR(fmt_si(std::nan("")), "-");
}

void byte_sizes() {
  CHECK_EQ_STR(fmt_bytes(0), "0 B");
  CHECK_EQ_STR(fmt_bytes(512), "512 B");
  CHECK_EQ_STR(fmt_bytes(1023), "1023 B");
  CHECK_EQ_STR(fmt_bytes(1023.6), "1.0 KiB");  // rounds to 1024 B: the next unit
  CHECK_EQ_STR(fmt_bytes(0.4), "0 B");         // a rate below one byte a second
  CHECK_EQ_STR(fmt_bytes(4096), "4.0 KiB");
  CHECK_EQ_STR(fmt_bytes(99.94 * 1024), "99.9 KiB");
  CHECK_EQ_STR(fmt_bytes(99.96 * 1024), "100 KiB");
  CHECK_EQ_STR(fmt_bytes((1 << 20) - 1), "1.0 MiB");  // not "1024.0 KiB"
  CHECK_EQ_STR(fmt_bytes(96000000), "91.6 MiB");
  CHECK_EQ_STR(fmt_bytes(1.2 * 1073741824.0), "1.2 GiB");
  CHECK_EQ_STR(fmt_bytes(double(200ull << 20)), "200 MiB");
  CHECK_EQ_STR(fmt_bytes(-1536), "-1.5 KiB");  // a shrinking heap's rate
  CHECK_EQ_STR(fmt_bytes(-0.2), "0 B");
  CHECK_EQ_STR(fmt_bytes(std::nan("")), "-");
}

void byte_deltas() {
  CHECK_EQ_STR(fmt_bytes_delta(1536), "+1.5 KiB");
  CHECK_EQ_STR(fmt_bytes_delta(-1536), "-1.5 KiB");
  CHECK_EQ_STR(fmt_bytes_delta(0), "+0 B");
  CHECK_EQ_STR(fmt_bytes_delta(-0.2), "+0 B");  // rounds to no change: no minus sign
  CHECK_EQ_STR(fmt_bytes_delta(-200.0 * 1048576), "-200 MiB");
  CHECK_EQ_STR(fmt_bytes_delta(std::nan("")), "-");
}

// Cells are padded and cut by UTF-8 code points, not bytes: "±" (2 bytes) takes one column.
void cells_pad_by_columns() {
  CHECK_EQ_STR(pad_cell("7%", 5, false), "   7%");
  CHECK_EQ_STR(pad_cell("\xc2\xb1", 5, false), "    \xc2\xb1");
  CHECK_EQ_STR(pad_cell("\xce\x94LIVE", 7, false), "  \xce\x94LIVE");
  CHECK_EQ_STR(pad_cell("ab", 4, true), "ab  ");
  CHECK_EQ_STR(pad_cell("caf\xc3\xa9 au lait", 4, true), "caf\xc3\xa9");  // cut after the é
  CHECK_EQ_STR(pad_cell("toolong", 3, false), "toolong");  // right-aligned cells are not cut
}

void clock_times() {
  setenv("TZ", "UTC", 1);
  tzset();
  CHECK_EQ_STR(fmt_clock(1700000000.25), "22:13:20");
  CHECK_EQ_STR(fmt_clock(1700000000.25, true), "22:13:20.2");
  CHECK_EQ_STR(fmt_clock(1700000000.99, true), "22:13:20.9");  // truncated, not 21.0
  CHECK_EQ_STR(fmt_clock(1700000059.0, true), "22:14:19.0");
}

void durations() {
  CHECK_EQ_STR(fmt_duration(0), "0.0s");
  CHECK_EQ_STR(fmt_duration(12.34), "12.3s");
  CHECK_EQ_STR(fmt_duration(59.97), "1m");  // not "60.0s"
  CHECK_EQ_STR(fmt_duration(45 * 60 + 10), "45m");
  CHECK_EQ_STR(fmt_duration(3569), "59m");
  CHECK_EQ_STR(fmt_duration(3590), "1.0h");  // not "60m"
  CHECK_EQ_STR(fmt_duration(5400), "1.5h");
  CHECK_EQ_STR(fmt_duration(-1), "-");
  CHECK_EQ_STR(fmt_duration(NAN), "-");
}

void percent_and_bins() {
  CHECK_EQ_STR(fmt_pct(std::nullopt), "-");
  CHECK_EQ_STR(fmt_pct(0.9995, 2), "99.95");
  CHECK_EQ_STR(fmt_pct(1.0), "100.0");
  CHECK_EQ_STR(fmt_bin(3, 48), "48 B");
  CHECK_EQ_STR(fmt_bin(40, 32768), "32 KiB");
  CHECK_EQ_STR(fmt_bin(HZ3_TAG_BIN_LARGE, 0), "large");
  CHECK_EQ_STR(fmt_bin(77, 0), "bin 77");
  CHECK_EQ_STR(fmt_per_kfree(std::nullopt), "-");
  CHECK_EQ_STR(fmt_per_kfree(0.0), "0");
  CHECK_EQ_STR(fmt_per_kfree(0.12345), "0.123");
  CHECK_EQ_STR(fmt_per_kfree(42.71), "42.7");
  CHECK_EQ_STR(fmt_per_kfree(0.000136), "1.4e-04");
  CHECK_EQ_STR(fmt_per_kfree(123456.0), "1.2e+05");
  CHECK_EQ_STR(perf_column("page-faults"), "PF/kfree");
  CHECK_EQ_STR(perf_column("cache-misses"), "CM/kfree");
}

void json_strings() {
  CHECK_EQ_STR(json_escape("a\"b\\c\n\t\x01"), "a\\\"b\\\\c\\n\\t\\u0001");
  CHECK_EQ_STR(json_escape("plain"), "plain");
  CHECK_EQ_STR(json_escape("caf\xc3\xa9"), "caf\xc3\xa9");  // valid UTF-8 passes as it is
  // Bytes that are not UTF-8 become U+FFFD (EF BF BD), so the document stays parseable.
  CHECK_EQ_STR(json_escape("a\xff"
                           "b"),
               "a\xef\xbf\xbd"
               "b");
  CHECK_EQ_STR(json_escape("\xc3"), "\xef\xbf\xbd");  // a sequence cut short
}

// A process name that is not UTF-8 (comm is whatever bytes prctl(PR_SET_NAME) was given).
void json_replaces_invalid_utf8_in_comm() {
  Report r;
  ProcView v;
  v.pid = 9;
  v.comm =
      "bad\xff\xfe"
      "name";
  v.lib = "/tmp/lib\x80hz3.so";
  r.procs.push_back(v);
  r.total = sum_views(r.procs);
  std::string j = render_json(r);
  CHECK(j.find("\"comm\":\"bad\xef\xbf\xbd\xef\xbf\xbdname\"") != std::string::npos);
  CHECK(j.find("\"lib\":\"/tmp/lib\xef\xbf\xbdhz3.so\"") != std::string::npos);
  CHECK(j.find('\xff') == std::string::npos && j.find('\x80') == std::string::npos);
  // And it parses back.
  Json back = Json::parse(j, nullptr, false);
  CHECK(!back.is_discarded() && back["procs"][0]["pid"] == 9);
}

void json_numbers() {
  CHECK_EQ_STR(json_dump(json_number(1.0 / 3)), "0.333333");
  CHECK_EQ_STR(json_dump(json_number(123456789.0)), "123457000.0");
  CHECK_EQ_STR(json_dump(json_number(std::nan(""))), "null");
  CHECK_EQ_STR(json_dump(json_number(std::optional<double>())), "null");
  CHECK_EQ_STR(json_dump(json_time(1700000000.1234)), "1700000000.123");
}

Report sample_report(bool final, int nprocs) {
  Report r;
  r.wall = 1700000000.25;
  r.final = final;
  r.seq = 3;
  r.perf_event = "page-faults";
  r.sample_event = "cpu-clock";
  for (int i = 0; i < nprocs; i++) {
    ProcSnapshot a = snap(100 + i, 0), b = snap(100 + i, 1);
    set_counts(b, 8192, 2, 1, 5, 4);
    b.live_pages[tag_key(1, 1)] = 16;
    b.live_bytes[tag_key(1, 1)] = 65536;
    b.census_ok = true;
    r.procs.push_back(make_view(&a, b, 1));
  }
  r.total = sum_views(r.procs);
  r.dt = 1;
  return r;
}

void json_has_stable_keys() {
  std::string j = render_json(sample_report(true, 1));
  CHECK(j.front() == '{' && j.back() == '}');
  CHECK(j.find('\n') == std::string::npos);
  for (const char* key :
       {"\"ptag_hit\":8192", "\"ptag_miss\":3", "\"ptag_miss_outside\":2",
        "\"ptag_miss_untagged\":1", "\"decode_fail\":0", "\"tag_set\":5", "\"tag_clear\":4",
        "\"live_pages\":16", "\"live_bytes\":65536", "\"hit_ratio\":", "\"final\":true",
        "\"time\":1700000000.25,", "\"rate\":{", "\"perf\":{", "\"procs\":[", "\"bins\":[",
        "\"owners\":[", "\"pid\":100", "\"live_source\":\"tagmap\""})
    CHECKF(j.find(key) != std::string::npos, "missing %s in %s", key, j.c_str());
  // No lookups in the interval: the ratio is null, not NaN or 0.
  Report r = sample_report(false, 1);
  r.procs[0].hit_ratio.reset();
  CHECK(render_json(r).find("\"interval\":{\"ptag_hit\":8192,\"ptag_miss\":3,\"decode_fail\":0,"
                            "\"tag_set\":5,\"tag_clear\":4,\"hit_ratio\":") != std::string::npos);
  r.total.hit_ratio.reset();
  CHECK(render_json(r).find("\"hit_ratio\":null") != std::string::npos);
}

void plain_lines_and_totals() {
  std::string one = plain_lines(sample_report(false, 1));
  CHECK(std::count(one.begin(), one.end(), '\n') == 1);
  CHECK(one.find("# totals") == std::string::npos);
  CHECK(one.find("8.19k") != std::string::npos);
  std::string two = plain_lines(sample_report(true, 2));
  CHECK(two.find(" all ") != std::string::npos);
  CHECK(two.rfind("final", 0) == 0);
  CHECK(two.find("# totals pid=100 comm=w100 ptag_hit=8192 ptag_miss=3 (outside=2 untagged=1) "
                 "decode_fail=0 tag_set=5 tag_clear=4 live_pages=16") != std::string::npos);
  CHECK(std::count(two.begin(), two.end(), '\n') == 5);  // 2 procs + all + 2 totals
  std::string h = plain_header("page-faults");
  CHECK(h.find("PF/kfree") != std::string::npos && h.find("HIT/s") != std::string::npos);
}

// The plain format and the interactive view draw the same table: same header, same cells.
void proc_table_shared() {
  Report r = sample_report(false, 2);
  std::string h = proc_table_header("page-faults");
  std::string row = proc_table_row(r.procs[0], "w100");
  CHECK(h.size() == row.size());
  CHECK(h.find("PF/kfree") != std::string::npos);
  std::string plain = plain_lines(r);
  CHECK(plain.find(row + "\n") != std::string::npos);
  CHECK(plain.find(proc_table_row(r.total, "all") + "\n") != std::string::npos);
  CHECK_EQ_STR(plain_header("page-faults"), "TIME     " + h + "\n");
  // The all row has no pid; a long name is cut at the column's 15 bytes.
  CHECK(proc_table_row(r.total, "all").compare(0, 12, "        all ") == 0);
  CHECK(proc_table_row(r.procs[0], "a-very-long-process-name").find("a-very-long-pro ") !=
        std::string::npos);
  r.procs[1].alive = false;
  CHECK_EQ_STR(proc_name(r.procs[1]), "w101 (exited)");
}

// ---- usdt_spec.h ----

void usdt_args_as_gcc_writes_them() {
  UsdtSpec sp;
  std::string err;
  CHECK(parse_usdt_args("8@%rsi 4@%r13d 4@%eax 4@%ebp", &sp, &err));
  CHECK(sp.arg_cnt == 4);
  CHECK(sp.args[0].arg_type == USDT_ARG_REG && sp.args[0].reg_off == 104 &&
        sp.args[0].arg_bitshift == 0 && !sp.args[0].arg_signed);
  CHECK(sp.args[1].reg_off == 16 && sp.args[1].arg_bitshift == 32);
  CHECK(sp.args[2].reg_off == 80 && sp.args[3].reg_off == 32);
  CHECK(parse_usdt_args("8@%rcx 4@%ebp 4@$32767 4@$65535", &sp, &err));
  CHECK(sp.args[2].arg_type == USDT_ARG_CONST && sp.args[2].val_off == 32767);
  CHECK(sp.args[3].val_off == 65535);
  CHECK(parse_usdt_args("8@%rax 4@8(%rbx)", &sp, &err));
  CHECK(sp.arg_cnt == 2 && sp.args[1].arg_type == USDT_ARG_REG_DEREF && sp.args[1].reg_off == 40 &&
        sp.args[1].val_off == 8);
  CHECK(parse_usdt_args("-4@-8(%rbp) 2@(%rsp) -1@%dil 8@%r15", &sp, &err));
  CHECK(sp.args[0].arg_signed && sp.args[0].val_off == uint64_t(-8) && sp.args[0].reg_off == 32);
  CHECK(sp.args[1].val_off == 0 && sp.args[1].reg_off == 152 && sp.args[1].arg_bitshift == 48);
  CHECK(sp.args[2].arg_signed && sp.args[2].reg_off == 112 && sp.args[2].arg_bitshift == 56);
  CHECK(sp.args[3].reg_off == 0);
  CHECK(parse_usdt_args("", &sp, &err) && sp.arg_cnt == 0);
}

void usdt_args_rejected() {
  UsdtSpec sp;
  std::string err;
  for (const char* bad : {"3@%rax", "8@%xmm0", "8@sym(%rip)", "8rax", "8@$x", "8@(%nope)"}) {
    err.clear();
    CHECKF(!parse_usdt_args(bad, &sp, &err) && !err.empty(), "accepted '%s'", bad);
  }
}

void vaddr_to_file_offset() {
  ElfInfo e;
  e.loads = {{0x0, 0x0, 0x1000, 0x1000, 4},
             {0x2000, 0x1000, 0x1000, 0x1000, 5},
             {0x4dc8, 0x3dc8, 0x300, 0x900, 6}};
  uint64_t off = 0;
  CHECK(vaddr_to_offset(e, 0x2e4e, &off) && off == 0x1e4e);
  CHECK(vaddr_to_offset(e, 0x5010, &off) && off == 0x4010);
  CHECK(!vaddr_to_offset(e, 0x5200, &off));  // past filesz: .bss has no file bytes
  CHECK(!vaddr_to_offset(e, 0x9000, &off));
}

// A function of this very binary, found by address through /proc/self/maps and its .symtab.
__attribute__((noinline)) int symbolize_me(int x) { return x * 3 + 1; }

void symbolizes_own_function() {
  Symbolizer sym(getpid());
  std::string err;
  CHECK(sym.refresh(&err));
  uint64_t addr = uint64_t(reinterpret_cast<uintptr_t>(&symbolize_me));
  Frame f = sym.resolve(addr + 2, false);
  CHECK_EQ_STR(f.func, "(anonymous namespace)::symbolize_me(int)");
  CHECK(f.off == 2);
  CHECK_EQ_STR(f.lib, "hz3top_unit");
  // A return address just past the function's end still names it (the call is the byte before).
  Frame r = sym.resolve(addr + 1, true);
  CHECK(r.func == f.func && r.off == 1);
  CHECK_EQ_STR((Frame{0x1234, "", 0, "", "", 0, false}.label()), "[0x1234]");
  CHECK_EQ_STR((Frame{0x1234, "f", 0x1a, "a.so", "", 0, false}.label()), "f+0x1a (a.so)");
  CHECK_EQ_STR((Frame{0x7f0000001234, "", 0x1234, "a.so", "", 0, false}.label()), "[a.so 0x1234]");
  CHECK_EQ_STR(demangle("_ZN3hz35allocEm"), "hz3::alloc(unsigned long)");
  CHECK_EQ_STR(demangle("malloc"), "malloc");
}

void openmetrics_text() {
  CHECK_EQ_STR(openmetrics_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  // The exposition is UTF-8: a comm that is not has its bad bytes replaced (U+FFFD), as in JSON.
  CHECK_EQ_STR(openmetrics_escape("bad\xff\"x"), "bad\xef\xbf\xbd\\\"x");
  CHECK_EQ_STR(openmetrics_escape("caf\xc3\xa9\xc3"), "caf\xc3\xa9\xef\xbf\xbd");
  std::string empty = render_openmetrics(nullptr, 0);
  CHECK(empty.size() > 6 && empty.compare(empty.size() - 6, 6, "# EOF\n") == 0);
  CHECK(empty.find("hz3top_reports_total 0\n") != std::string::npos);
  Report r;
  r.dt = 0.5;
  ProcView v;
  v.pid = 42;
  v.comm = "we\"ird";
  v.total.hits = 7;
  v.total.miss_outside = 3;
  v.hit_ratio = 0.7;
  r.procs.push_back(v);
  r.procs[0].created = 1700000000.5;
  r.procs[0].alive = false;
  std::string t = render_openmetrics(&r, 2);
  CHECK(t.find("# TYPE hz3_ptag_hits counter\n") != std::string::npos);
  CHECK(t.find("hz3_ptag_hits_total{pid=\"42\",comm=\"we\\\"ird\"} 7\n") != std::string::npos);
  // Counters that start at attach say when (_created); no label changes over a series' life.
  CHECK(t.find("hz3_ptag_hits_created{pid=\"42\",comm=\"we\\\"ird\"} 1700000000.5\n") !=
        std::string::npos);
  CHECK(t.find("alive=") == std::string::npos);
  CHECK(t.find("hz3_process_alive{pid=\"42\",comm=\"we\\\"ird\"} 0\n") != std::string::npos);
  // No pages unit, no gauge duplicating rate() of a counter.
  CHECK(t.find("_pages") == std::string::npos && t.find(" pages\n") == std::string::npos);
  CHECK(t.find("_rate{") == std::string::npos && t.find("_rate ") == std::string::npos);
  CHECK(t.find("# UNIT hz3_tag_set_bytes bytes\n") != std::string::npos);
  CHECK(t.find("# TYPE hz3top_events_dropped counter\n") != std::string::npos);
  CHECK(t.find("# TYPE hz3top_perf_samples_lost counter\n") != std::string::npos);
  // The Prometheus text format: metric names in # TYPE, no UNIT, no _created, no # EOF.
  std::string pt = render_metrics(&r, 2, 1700000000.0, MetricsFormat::PROMETHEUS);
  CHECK(pt.find("# TYPE hz3_ptag_hits_total counter\n") != std::string::npos);
  CHECK(pt.find("# TYPE hz3_process_info gauge\n") != std::string::npos);
  CHECK(pt.find("# UNIT") == std::string::npos && pt.find("_created") == std::string::npos);
  CHECK(pt.find("# EOF") == std::string::npos);
  CHECK(negotiate_format("text/plain;version=0.0.4") == MetricsFormat::PROMETHEUS);
  CHECK(negotiate_format("") == MetricsFormat::OPENMETRICS);
  CHECK(negotiate_format("*/*") == MetricsFormat::OPENMETRICS);
  // Prometheus 2.42's own header prefers OpenMetrics.
  CHECK(negotiate_format("application/openmetrics-text;version=1.0.0,application/"
                         "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,"
                         "*/*;q=0.1") == MetricsFormat::OPENMETRICS);
  CHECK(t.find("hz3_ptag_misses_total{pid=\"42\",comm=\"we\\\"ird\",kind=\"outside\"} 3\n") !=
        std::string::npos);
  CHECK(t.find("# UNIT hz3_live_bytes bytes\n") != std::string::npos);
  CHECK(t.find("# EOF\n") == t.size() - 6);
  std::string host, err;
  int port = -1;
  CHECK(parse_listen_addr("127.0.0.1:9464", &host, &port, &err) && host == "127.0.0.1" &&
        port == 9464);
  CHECK(parse_listen_addr("[::1]:0", &host, &port, &err) && host == "::1" && port == 0);
  CHECK(!parse_listen_addr("9464", &host, &port, &err));
  CHECK(!parse_listen_addr("127.0.0.1:99999", &host, &port, &err));
  CHECK(!parse_listen_addr("127.0.0.1:", &host, &port, &err));
  CHECK(parse_listen_addr(":9464", &host, &port, &err) && host.empty() && port == 9464);
  CHECK(parse_listen_addr("localhost:0", &host, &port, &err) && host == "localhost");
  CHECK(!parse_listen_addr("::1:9464", &host, &port, &err));  // IPv6 needs brackets
  CHECK(!parse_listen_addr("[]:9464", &host, &port, &err));
  // Every form binds for real: a name, every interface, IPv4 and IPv6 loopback.
  for (const char* a : {"localhost:0", ":0", "127.0.0.1:0", "[::1]:0"}) {
    MetricsServer m;
    CHECKF(m.listen(a, &err), "listen(%s): %s", a, err.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  hz3::test::init("hz3top_unit", argc, argv);
  const std::pair<const char*, void (*)()> cases[] = {
      {"rate_formula", rate_formula},
      {"ratio_formula", ratio_formula},
      {"view_deltas_over_measured_time", view_deltas_over_measured_time},
      {"view_first_snapshot_counts_since_attach", view_first_snapshot_counts_since_attach},
      {"view_without_lookups_has_no_ratio", view_without_lookups_has_no_ratio},
      {"view_bins_merge_owners", view_bins_merge_owners},
      {"census_sizes_large_heads", census_sizes_large_heads},
      {"census_sizes_large_heads_from_page_map", census_sizes_large_heads_from_page_map},
      {"hits_unknown_without_a_report", hits_unknown_without_a_report},
      {"sparkline_scales_to_peak", sparkline_scales_to_peak},
      {"probe_churn_when_no_tag_map", probe_churn_when_no_tag_map},
      {"sums_add_up_like_a_ledger", sums_add_up_like_a_ledger},
      {"all_row_sums_rates_of_late_processes", all_row_sums_rates_of_late_processes},
      {"perf_per_kfree_and_share", perf_per_kfree_and_share},
      {"si_numbers", si_numbers},
      {"byte_sizes", byte_sizes},
      {"byte_deltas", byte_deltas},
      {"cells_pad_by_columns", cells_pad_by_columns},
      {"percent_and_bins", percent_and_bins},
      {"clock_times", clock_times},
      {"durations", durations},
      {"json_strings", json_strings},
      {"json_replaces_invalid_utf8_in_comm", json_replaces_invalid_utf8_in_comm},
      {"json_numbers", json_numbers},
      {"proc_table_shared", proc_table_shared},
      {"json_has_stable_keys", json_has_stable_keys},
      {"plain_lines_and_totals", plain_lines_and_totals},
      {"usdt_args_as_gcc_writes_them", usdt_args_as_gcc_writes_them},
      {"usdt_args_rejected", usdt_args_rejected},
      {"vaddr_to_file_offset", vaddr_to_file_offset},
      {"symbolizes_own_function", symbolizes_own_function},
      {"openmetrics_text", openmetrics_text},
  };
  for (auto& [name, fn] : cases) hz3::test::run_case(name, fn);
  return hz3::test::finish();
}
