// Unit tests of hz3top's pure parts: rate, ratio and delta formulas (model.h), the tag-map
// census arithmetic, the text renderings (format.h), the USDT argument parser (usdt_spec.h) and the
// symbolizer (symbolize.h, on this binary itself) and the OpenMetrics text (openmetrics.h). No
// BPF, no root, no target process: those paths are covered by the t_*.sh tests against real libhz3.
// Prints one PASS/FAIL line per case, in the format scripts/run-tests.sh counts.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "expect.h"
#include "format.h"
#include "model.h"
#include "openmetrics.h"
#include "sparkline.h"
#include "symbolize.h"
#include "usdt_spec.h"

using namespace hz3top;

namespace {

using test::g_ok;

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
  EXPECT(near(rate(100, 300, 2.0), 100.0));
  EXPECT(near(rate(0, 1, 0.5), 2.0));
  EXPECT(rate(300, 100, 1.0) == 0);  // map entry recreated: never a negative rate
  EXPECT(rate(0, 10, 0.0) == 0);     // no time measured
  EXPECT(rate(0, 10, -1.0) == 0);
  EXPECT(rate(0, 10, std::nan("")) == 0);
  EXPECT(delta(5, 3) == 0 && delta(3, 5) == 2);
}

void ratio_formula() {
  EXPECT(!ratio(0, 0));
  EXPECT(near(ratio(99, 100), 0.99));
  EXPECT(near(ratio(0, 7), 0.0));
  EXPECT(!per_thousand(5, 0));
  EXPECT(near(per_thousand(5, 1000), 5.0));
  EXPECT(near(per_thousand(3, 200), 15.0));
}

void view_deltas_over_measured_time() {
  ProcSnapshot a = snap(7, 10.0), b = snap(7, 12.5);
  set_counts(a, 1000, 10, 0, 4, 1);
  set_counts(b, 6000, 25, 5, 9, 6);
  ProcView v = make_view(&a, b, 99.0);
  EXPECT(near(v.dt, 2.5));  // measured, not the nominal interval
  EXPECT(v.total.hits == 6000 && v.total.misses() == 30);
  EXPECT(v.delta.hits == 5000 && v.delta.misses() == 20);
  EXPECT(near(v.hit_rate, 2000.0));
  EXPECT(near(v.miss_rate, 8.0));
  EXPECT(near(v.tag_set_rate, 2.0) && near(v.tag_clear_rate, 2.0));
  EXPECT(near(v.lookup_rate, 2008.0));
  EXPECT(near(v.hit_ratio, 5000.0 / 5020.0));
  EXPECT(near(v.hit_ratio_total, 6000.0 / 6030.0));
}

void view_first_snapshot_counts_since_attach() {
  ProcSnapshot b = snap(7, 3.0);
  set_counts(b, 500, 0, 0, 2, 0);
  ProcView v = make_view(nullptr, b, 0.5);
  EXPECT(near(v.dt, 0.5));
  EXPECT(v.delta.hits == 500);
  EXPECT(near(v.hit_rate, 1000.0));
  EXPECT(near(v.hit_ratio, 1.0));
}

void view_without_lookups_has_no_ratio() {
  ProcSnapshot a = snap(7, 1.0), b = snap(7, 2.0);
  set_counts(a, 10, 0, 0, 0, 0);
  set_counts(b, 10, 0, 0, 0, 0);
  ProcView v = make_view(&a, b, 1.0);
  EXPECT(!v.hit_ratio);
  EXPECT(near(v.hit_ratio_total, 1.0));
  EXPECT(!v.perf.per_kfree && !v.perf.alloc_share);
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
  EXPECT(r != nullptr);
  if (r) {
    EXPECT(r->size == 32);
    EXPECT(r->sets == 12 && r->clears == 3 && r->set_pages == 192);
    EXPECT(near(r->set_rate, (6 + 2) / 2.0));
    EXPECT(near(r->clear_rate, 1.0));
    EXPECT(r->live_pages == 144 && r->live_bytes == 144 * 4096 && r->owners == 2);
  }
  const BinRow* l = find_bin(v, HZ3_TAG_BIN_LARGE);
  EXPECT(l && l->sets == 1 && l->size == 0);
  EXPECT(v.live_pages == 144);
  EXPECT(v.owners.size() == 2 && v.owners[0].owner == 1 && v.owners[0].live_pages == 112);
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
  EXPECT(s.census_ok);
  EXPECT(s.live_pages[large] == 3);  // tagged pages: heads only
  EXPECT(s.live_bytes[large] == (256 + 17 + 1) * 4096ull);
  EXPECT(s.large_unsized == 1);  // head 900 was tagged before attach
  EXPECT(s.live_bytes[tag_key(1, 1)] == 16 * 4096ull);
  ProcView v = make_view(nullptr, s, 1.0);
  EXPECT(v.live_pages == 23 && v.live_bytes == (16 + 4 + 274) * 4096ull);
  EXPECT(v.large_unsized == 1);
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
  EXPECT(s.live_bytes[large] == 556 * 4096ull);
  EXPECT(s.large_unsized == 0);
  EXPECT(s.ledger_ok && s.ledger.app_large == 556 * 4096ull);
  apply_exit(&s);  // gone: nothing live, the ledger all zero but known
  EXPECT(s.census_ok && s.live_bytes.empty() && s.ledger_ok && s.ledger.app_total() == 0);
  ProcView v = make_view(nullptr, s, 1.0);
  EXPECT(v.live_bytes == 0 && v.ledger_ok);
}

void hits_unknown_without_a_report() {
  ProcSnapshot a = snap(7, 1.0), b = snap(7, 2.0);
  a.counts.c[HZ3_C_HITS] = 100;
  a.counts.c[HZ3_C_HIT_REPORTS] = 1;
  b.counts = a.counts;
  b.counts.c[HZ3_C_MISS_OUTSIDE] = 5;  // misses came, the hits are still pending in threads
  ProcView v = make_view(&a, b, 1.0);
  EXPECT(!v.hits_reported && !v.hit_ratio);
  EXPECT(proc_table_row(v, "x").find(" - ") != std::string::npos);
  Report r;
  r.procs = {v};
  EXPECT(report_json(r)["procs"][0]["rate"]["ptag_hit"].is_null());
  b.counts.c[HZ3_C_HIT_REPORTS] = 2;
  b.counts.c[HZ3_C_HITS] = 150;
  v = make_view(&a, b, 1.0);
  EXPECT(v.hits_reported && v.hit_rate == 50 && v.hit_ratio && *v.hit_ratio == 50.0 / 55);
}

void sparkline_scales_to_peak() {
  EXPECT(sparkline({0.0, 50.0, 100.0, std::nullopt, 25.0}, false) == "_+@ -");
  EXPECT(sparkline({0.0, 0.0}, false) == "__");  // nothing to scale by: all at the bottom
  EXPECT(sparkline({1.0, 7.0}, true) == "\u2582\u2588");
  EXPECT(sparkline({}, true).empty());
}

void probe_churn_when_no_tag_map() {
  ProcSnapshot s = snap(7, 1.0);
  s.bins[tag_key(1, 1)] = {3, 1, 48, 16};
  s.bins[tag_key(2, 1)] = {1, 2, 16, 32};  // cleared pages tagged before attach: clamp at 0
  apply_probe_churn(&s);
  EXPECT(!s.census_ok);
  EXPECT(s.live_pages[tag_key(1, 1)] == 32);
  EXPECT(s.live_pages.count(tag_key(2, 1)) == 0);
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
  EXPECT(s.total.hits == 350 && s.delta.hits == 250);
  EXPECT(s.live_pages == 15);
  EXPECT(near(s.hit_ratio, 250.0 / 252.0));
  EXPECT(s.perf.d_count == 50);
  EXPECT(near(s.perf.per_kfree, 1000.0 * 50 / 252));
  EXPECT(near(s.perf.alloc_share, 0.3));
  const BinRow* r = find_bin(s, 1);
  EXPECT(r && r->live_pages == 15);
}

// --all: a process found late has a shorter first interval; the all row adds rates, each over
// its own process's interval (1000 hits in 1 s and 500 in 0.5 s are 2000/s, not 1500/s).
void all_row_sums_rates_of_late_processes() {
  EXPECT(counting_start(10.0, std::nullopt) == 10.0);
  EXPECT(counting_start(10.0, 4.0) == 10.0);   // running before attach: counted from attach
  EXPECT(counting_start(10.0, 12.5) == 12.5);  // started later: counted from its start
  double now = 13.0;
  ProcSnapshot early = snap(1, now), late = snap(2, now);
  set_counts(early, 1000, 0, 0, 10, 0);
  set_counts(late, 500, 0, 0, 4, 0);
  early.perf = {true, 100, false, 0, 0, 0, 0};
  late.perf = {true, 100, false, 0, 0, 0, 0};
  ProcView a = make_view(nullptr, early, now - counting_start(12.0, 3.0));
  ProcView b = make_view(nullptr, late, now - counting_start(12.0, 12.5));
  EXPECT(near(a.dt, 1.0) && near(b.dt, 0.5));
  EXPECT(near(a.hit_rate, 1000.0) && near(b.hit_rate, 1000.0));
  ProcView all = sum_views({a, b});
  EXPECT(near(all.dt, 1.0));
  EXPECT(near(all.hit_rate, 2000.0));
  EXPECT(near(all.lookup_rate, 2000.0));
  EXPECT(near(all.tag_set_rate, 10.0 + 8.0));
  EXPECT(near(all.perf.rate, 100.0 + 200.0));
  EXPECT(near(all.hit_ratio, 1.0));
}

void perf_per_kfree_and_share() {
  ProcSnapshot a = snap(7, 0), b = snap(7, 1);
  set_counts(a, 0, 0, 0, 0, 0);
  set_counts(b, 2000, 0, 0, 0, 0);
  a.perf = {true, 100, true, 1, 1, 0, 0};
  b.perf = {true, 130, true, 26, 71, 5, 0};  // +25 alloc, +70 user, +5 kernel
  ProcView v = make_view(&a, b, 1);
  EXPECT(v.perf.d_count == 30);
  EXPECT(near(v.perf.per_kfree, 15.0));
  EXPECT(near(v.perf.alloc_share, 0.25));
  b.perf.sampling = false;
  b.perf.counting = false;
  v = make_view(&a, b, 1);
  EXPECT(!v.perf.alloc_share && !v.perf.per_kfree);
}

// ---- format.h ----

void si_numbers() {
  EXPECT_EQ_STR(fmt_si(0), "0");
  EXPECT_EQ_STR(fmt_si(12), "12");
  EXPECT_EQ_STR(fmt_si(3.5), "3.5");
  EXPECT_EQ_STR(fmt_si(999), "999");
  EXPECT_EQ_STR(fmt_si(999.6), "1.00k");
  EXPECT_EQ_STR(fmt_si(1234), "1.23k");
  EXPECT_EQ_STR(fmt_si(45600), "45.6k");
  EXPECT_EQ_STR(fmt_si(123456), "123k");
  EXPECT_EQ_STR(fmt_si(1.5e6), "1.50M");
  EXPECT_EQ_STR(fmt_si(7.891e9), "7.89G");
  EXPECT_EQ_STR(fmt_si(-2500), "-2.50k");
  EXPECT_EQ_STR(fmt_si(std::nan("")), "-");
}

void byte_sizes() {
  EXPECT_EQ_STR(fmt_bytes(0), "0 B");
  EXPECT_EQ_STR(fmt_bytes(512), "512 B");
  EXPECT_EQ_STR(fmt_bytes(1023), "1023 B");
  EXPECT_EQ_STR(fmt_bytes(1023.6), "1.0 KiB");  // rounds to 1024 B: the next unit
  EXPECT_EQ_STR(fmt_bytes(0.4), "0 B");         // a rate below one byte a second
  EXPECT_EQ_STR(fmt_bytes(4096), "4.0 KiB");
  EXPECT_EQ_STR(fmt_bytes(99.94 * 1024), "99.9 KiB");
  EXPECT_EQ_STR(fmt_bytes(99.96 * 1024), "100 KiB");
  EXPECT_EQ_STR(fmt_bytes((1 << 20) - 1), "1.0 MiB");  // not "1024.0 KiB"
  EXPECT_EQ_STR(fmt_bytes(96000000), "91.6 MiB");
  EXPECT_EQ_STR(fmt_bytes(1.2 * 1073741824.0), "1.2 GiB");
  EXPECT_EQ_STR(fmt_bytes(double(200ull << 20)), "200 MiB");
  EXPECT_EQ_STR(fmt_bytes(-1536), "-1.5 KiB");  // a shrinking heap's rate
  EXPECT_EQ_STR(fmt_bytes(-0.2), "0 B");
  EXPECT_EQ_STR(fmt_bytes(std::nan("")), "-");
}

void clock_times() {
  setenv("TZ", "UTC", 1);
  tzset();
  EXPECT_EQ_STR(fmt_clock(1700000000.25), "22:13:20");
  EXPECT_EQ_STR(fmt_clock(1700000000.25, true), "22:13:20.2");
  EXPECT_EQ_STR(fmt_clock(1700000000.99, true), "22:13:20.9");  // truncated, not 21.0
  EXPECT_EQ_STR(fmt_clock(1700000059.0, true), "22:14:19.0");
}

void durations() {
  EXPECT_EQ_STR(fmt_duration(0), "0.0s");
  EXPECT_EQ_STR(fmt_duration(12.34), "12.3s");
  EXPECT_EQ_STR(fmt_duration(59.97), "1m");  // not "60.0s"
  EXPECT_EQ_STR(fmt_duration(45 * 60 + 10), "45m");
  EXPECT_EQ_STR(fmt_duration(3569), "59m");
  EXPECT_EQ_STR(fmt_duration(3590), "1.0h");  // not "60m"
  EXPECT_EQ_STR(fmt_duration(5400), "1.5h");
  EXPECT_EQ_STR(fmt_duration(-1), "-");
  EXPECT_EQ_STR(fmt_duration(NAN), "-");
}

void percent_and_bins() {
  EXPECT_EQ_STR(fmt_pct(std::nullopt), "-");
  EXPECT_EQ_STR(fmt_pct(0.9995, 2), "99.95");
  EXPECT_EQ_STR(fmt_pct(1.0), "100.0");
  EXPECT_EQ_STR(fmt_bin(3, 48), "48 B");
  EXPECT_EQ_STR(fmt_bin(40, 32768), "32 KiB");
  EXPECT_EQ_STR(fmt_bin(HZ3_TAG_BIN_LARGE, 0), "large");
  EXPECT_EQ_STR(fmt_bin(77, 0), "bin 77");
  EXPECT_EQ_STR(fmt_per_kfree(std::nullopt), "-");
  EXPECT_EQ_STR(fmt_per_kfree(0.0), "0");
  EXPECT_EQ_STR(fmt_per_kfree(0.12345), "0.123");
  EXPECT_EQ_STR(fmt_per_kfree(42.71), "42.7");
  EXPECT_EQ_STR(fmt_per_kfree(0.000136), "1.4e-04");
  EXPECT_EQ_STR(fmt_per_kfree(123456.0), "1.2e+05");
  EXPECT_EQ_STR(perf_column("page-faults"), "PF/kfree");
  EXPECT_EQ_STR(perf_column("cache-misses"), "CM/kfree");
}

void json_strings() {
  EXPECT_EQ_STR(json_escape("a\"b\\c\n\t\x01"), "a\\\"b\\\\c\\n\\t\\u0001");
  EXPECT_EQ_STR(json_escape("plain"), "plain");
  EXPECT_EQ_STR(json_escape("caf\xc3\xa9"), "caf\xc3\xa9");  // valid UTF-8 passes as it is
  // Bytes that are not UTF-8 become U+FFFD (EF BF BD), so the document stays parseable.
  EXPECT_EQ_STR(json_escape("a\xff"
                            "b"),
                "a\xef\xbf\xbd"
                "b");
  EXPECT_EQ_STR(json_escape("\xc3"), "\xef\xbf\xbd");  // a sequence cut short
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
  EXPECT(j.find("\"comm\":\"bad\xef\xbf\xbd\xef\xbf\xbdname\"") != std::string::npos);
  EXPECT(j.find("\"lib\":\"/tmp/lib\xef\xbf\xbdhz3.so\"") != std::string::npos);
  EXPECT(j.find('\xff') == std::string::npos && j.find('\x80') == std::string::npos);
  // And it parses back.
  Json back = Json::parse(j, nullptr, false);
  EXPECT(!back.is_discarded() && back["procs"][0]["pid"] == 9);
}

void json_numbers() {
  EXPECT(json_dump(json_number(1.0 / 3)) == "0.333333");
  EXPECT(json_dump(json_number(123456789.0)) == "123457000.0");
  EXPECT(json_dump(json_number(std::nan(""))) == "null");
  EXPECT(json_dump(json_number(std::optional<double>())) == "null");
  EXPECT(json_dump(json_time(1700000000.1234)) == "1700000000.123");
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
  EXPECT(j.front() == '{' && j.back() == '}');
  EXPECT(j.find('\n') == std::string::npos);
  for (const char* key :
       {"\"ptag_hit\":8192", "\"ptag_miss\":3", "\"ptag_miss_outside\":2",
        "\"ptag_miss_untagged\":1", "\"decode_fail\":0", "\"tag_set\":5", "\"tag_clear\":4",
        "\"live_pages\":16", "\"live_bytes\":65536", "\"hit_ratio\":", "\"final\":true",
        "\"time\":1700000000.25,", "\"rate\":{", "\"perf\":{", "\"procs\":[", "\"bins\":[",
        "\"owners\":[", "\"pid\":100", "\"live_source\":\"tagmap\""})
    if (j.find(key) == std::string::npos) {
      fprintf(stderr, "  missing %s in %s\n", key, j.c_str());
      g_ok = false;
    }
  // No lookups in the interval: the ratio is null, not NaN or 0.
  Report r = sample_report(false, 1);
  r.procs[0].hit_ratio.reset();
  EXPECT(render_json(r).find("\"interval\":{\"ptag_hit\":8192,\"ptag_miss\":3,\"decode_fail\":0,"
                             "\"tag_set\":5,\"tag_clear\":4,\"hit_ratio\":") != std::string::npos);
  r.total.hit_ratio.reset();
  EXPECT(render_json(r).find("\"hit_ratio\":null") != std::string::npos);
}

void plain_lines_and_totals() {
  std::string one = plain_lines(sample_report(false, 1));
  EXPECT(std::count(one.begin(), one.end(), '\n') == 1);
  EXPECT(one.find("# totals") == std::string::npos);
  EXPECT(one.find("8.19k") != std::string::npos);
  std::string two = plain_lines(sample_report(true, 2));
  EXPECT(two.find(" all ") != std::string::npos);
  EXPECT(two.rfind("final", 0) == 0);
  EXPECT(two.find("# totals pid=100 comm=w100 ptag_hit=8192 ptag_miss=3 (outside=2 untagged=1) "
                  "decode_fail=0 tag_set=5 tag_clear=4 live_pages=16") != std::string::npos);
  EXPECT(std::count(two.begin(), two.end(), '\n') == 5);  // 2 procs + all + 2 totals
  std::string h = plain_header("page-faults");
  EXPECT(h.find("PF/kfree") != std::string::npos && h.find("HIT/s") != std::string::npos);
}

// The plain format and the interactive view draw the same table: same header, same cells.
void proc_table_shared() {
  Report r = sample_report(false, 2);
  std::string h = proc_table_header("page-faults");
  std::string row = proc_table_row(r.procs[0], "w100");
  EXPECT(h.size() == row.size());
  EXPECT(h.find("PF/kfree") != std::string::npos);
  std::string plain = plain_lines(r);
  EXPECT(plain.find(row + "\n") != std::string::npos);
  EXPECT(plain.find(proc_table_row(r.total, "all") + "\n") != std::string::npos);
  EXPECT_EQ_STR(plain_header("page-faults"), "TIME     " + h + "\n");
  // The all row has no pid; a long name is cut at the column's 15 bytes.
  EXPECT(proc_table_row(r.total, "all").compare(0, 12, "        all ") == 0);
  EXPECT(proc_table_row(r.procs[0], "a-very-long-process-name").find("a-very-long-pro ") !=
         std::string::npos);
  r.procs[1].alive = false;
  EXPECT_EQ_STR(proc_name(r.procs[1]), "w101 (exited)");
}

// ---- usdt_spec.h ----

void usdt_args_as_gcc_writes_them() {
  UsdtSpec sp;
  std::string err;
  EXPECT(parse_usdt_args("8@%rsi 4@%r13d 4@%eax 4@%ebp", &sp, &err));
  EXPECT(sp.arg_cnt == 4);
  EXPECT(sp.args[0].arg_type == USDT_ARG_REG && sp.args[0].reg_off == 104 &&
         sp.args[0].arg_bitshift == 0 && !sp.args[0].arg_signed);
  EXPECT(sp.args[1].reg_off == 16 && sp.args[1].arg_bitshift == 32);
  EXPECT(sp.args[2].reg_off == 80 && sp.args[3].reg_off == 32);
  EXPECT(parse_usdt_args("8@%rcx 4@%ebp 4@$32767 4@$65535", &sp, &err));
  EXPECT(sp.args[2].arg_type == USDT_ARG_CONST && sp.args[2].val_off == 32767);
  EXPECT(sp.args[3].val_off == 65535);
  EXPECT(parse_usdt_args("8@%rax 4@8(%rbx)", &sp, &err));
  EXPECT(sp.arg_cnt == 2 && sp.args[1].arg_type == USDT_ARG_REG_DEREF && sp.args[1].reg_off == 40 &&
         sp.args[1].val_off == 8);
  EXPECT(parse_usdt_args("-4@-8(%rbp) 2@(%rsp) -1@%dil 8@%r15", &sp, &err));
  EXPECT(sp.args[0].arg_signed && sp.args[0].val_off == uint64_t(-8) && sp.args[0].reg_off == 32);
  EXPECT(sp.args[1].val_off == 0 && sp.args[1].reg_off == 152 && sp.args[1].arg_bitshift == 48);
  EXPECT(sp.args[2].arg_signed && sp.args[2].reg_off == 112 && sp.args[2].arg_bitshift == 56);
  EXPECT(sp.args[3].reg_off == 0);
  EXPECT(parse_usdt_args("", &sp, &err) && sp.arg_cnt == 0);
}

void usdt_args_rejected() {
  UsdtSpec sp;
  std::string err;
  for (const char* bad : {"3@%rax", "8@%xmm0", "8@sym(%rip)", "8rax", "8@$x", "8@(%nope)"}) {
    err.clear();
    if (parse_usdt_args(bad, &sp, &err) || err.empty()) {
      fprintf(stderr, "  accepted '%s'\n", bad);
      g_ok = false;
    }
  }
}

void vaddr_to_file_offset() {
  ElfInfo e;
  e.loads = {{0x0, 0x0, 0x1000, 0x1000, 4},
             {0x2000, 0x1000, 0x1000, 0x1000, 5},
             {0x4dc8, 0x3dc8, 0x300, 0x900, 6}};
  uint64_t off = 0;
  EXPECT(vaddr_to_offset(e, 0x2e4e, &off) && off == 0x1e4e);
  EXPECT(vaddr_to_offset(e, 0x5010, &off) && off == 0x4010);
  EXPECT(!vaddr_to_offset(e, 0x5200, &off));  // past filesz: .bss has no file bytes
  EXPECT(!vaddr_to_offset(e, 0x9000, &off));
}

// A function of this very binary, found by address through /proc/self/maps and its .symtab.
__attribute__((noinline)) int symbolize_me(int x) { return x * 3 + 1; }

void symbolizes_own_function() {
  Symbolizer sym(getpid());
  std::string err;
  EXPECT(sym.refresh(&err));
  uint64_t addr = uint64_t(reinterpret_cast<uintptr_t>(&symbolize_me));
  Frame f = sym.resolve(addr + 2, false);
  EXPECT_EQ_STR(f.func, "(anonymous namespace)::symbolize_me(int)");
  EXPECT(f.off == 2);
  EXPECT_EQ_STR(f.lib, "hz3top_unit");
  // A return address just past the function's end still names it (the call is the byte before).
  Frame r = sym.resolve(addr + 1, true);
  EXPECT(r.func == f.func && r.off == 1);
  EXPECT_EQ_STR((Frame{0x1234, "", 0, "", "", 0, false}.label()), "[0x1234]");
  EXPECT_EQ_STR((Frame{0x1234, "f", 0x1a, "a.so", "", 0, false}.label()), "f+0x1a (a.so)");
  EXPECT_EQ_STR((Frame{0x7f0000001234, "", 0x1234, "a.so", "", 0, false}.label()), "[a.so 0x1234]");
  EXPECT_EQ_STR(demangle("_ZN3hz35allocEm"), "hz3::alloc(unsigned long)");
  EXPECT_EQ_STR(demangle("malloc"), "malloc");
}

void openmetrics_text() {
  EXPECT_EQ_STR(openmetrics_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  std::string empty = render_openmetrics(nullptr, 0);
  EXPECT(empty.size() > 6 && empty.compare(empty.size() - 6, 6, "# EOF\n") == 0);
  EXPECT(empty.find("hz3top_reports_total 0\n") != std::string::npos);
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
  EXPECT(t.find("# TYPE hz3_ptag_hits counter\n") != std::string::npos);
  EXPECT(t.find("hz3_ptag_hits_total{pid=\"42\",comm=\"we\\\"ird\"} 7\n") != std::string::npos);
  // Counters that start at attach say when (_created); no label changes over a series' life.
  EXPECT(t.find("hz3_ptag_hits_created{pid=\"42\",comm=\"we\\\"ird\"} 1700000000.5\n") !=
         std::string::npos);
  EXPECT(t.find("alive=") == std::string::npos);
  EXPECT(t.find("hz3_process_alive{pid=\"42\",comm=\"we\\\"ird\"} 0\n") != std::string::npos);
  // No pages unit, no gauge duplicating rate() of a counter.
  EXPECT(t.find("_pages") == std::string::npos && t.find(" pages\n") == std::string::npos);
  EXPECT(t.find("_rate{") == std::string::npos && t.find("_rate ") == std::string::npos);
  EXPECT(t.find("# UNIT hz3_tag_set_bytes bytes\n") != std::string::npos);
  EXPECT(t.find("# TYPE hz3top_events_dropped counter\n") != std::string::npos);
  EXPECT(t.find("# TYPE hz3top_perf_samples_lost counter\n") != std::string::npos);
  // The Prometheus text format: metric names in # TYPE, no UNIT, no _created, no # EOF.
  std::string pt = render_metrics(&r, 2, 1700000000.0, MetricsFormat::PROMETHEUS);
  EXPECT(pt.find("# TYPE hz3_ptag_hits_total counter\n") != std::string::npos);
  EXPECT(pt.find("# TYPE hz3_process_info gauge\n") != std::string::npos);
  EXPECT(pt.find("# UNIT") == std::string::npos && pt.find("_created") == std::string::npos);
  EXPECT(pt.find("# EOF") == std::string::npos);
  EXPECT(negotiate_format("text/plain;version=0.0.4") == MetricsFormat::PROMETHEUS);
  EXPECT(negotiate_format("") == MetricsFormat::OPENMETRICS);
  EXPECT(negotiate_format("*/*") == MetricsFormat::OPENMETRICS);
  // Prometheus 2.42's own header prefers OpenMetrics.
  EXPECT(negotiate_format("application/openmetrics-text;version=1.0.0,application/"
                          "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,"
                          "*/*;q=0.1") == MetricsFormat::OPENMETRICS);
  EXPECT(t.find("hz3_ptag_misses_total{pid=\"42\",comm=\"we\\\"ird\",kind=\"outside\"} 3\n") !=
         std::string::npos);
  EXPECT(t.find("# UNIT hz3_live_bytes bytes\n") != std::string::npos);
  EXPECT(t.find("# EOF\n") == t.size() - 6);
  std::string host, err;
  int port = -1;
  EXPECT(parse_listen_addr("127.0.0.1:9464", &host, &port, &err) && host == "127.0.0.1" &&
         port == 9464);
  EXPECT(parse_listen_addr("[::1]:0", &host, &port, &err) && host == "::1" && port == 0);
  EXPECT(!parse_listen_addr("9464", &host, &port, &err));
  EXPECT(!parse_listen_addr("127.0.0.1:99999", &host, &port, &err));
  EXPECT(!parse_listen_addr("127.0.0.1:", &host, &port, &err));
  EXPECT(parse_listen_addr(":9464", &host, &port, &err) && host.empty() && port == 9464);
  EXPECT(parse_listen_addr("localhost:0", &host, &port, &err) && host == "localhost");
  EXPECT(!parse_listen_addr("::1:9464", &host, &port, &err));  // IPv6 needs brackets
  EXPECT(!parse_listen_addr("[]:9464", &host, &port, &err));
  // Every form binds for real: a name, every interface, IPv4 and IPv6 loopback.
  for (const char* a : {"localhost:0", ":0", "127.0.0.1:0", "[::1]:0"}) {
    MetricsServer m;
    if (!m.listen(a, &err)) {
      fprintf(stderr, "  listen(%s): %s\n", a, err.c_str());
      g_ok = false;
    }
  }
}

}  // namespace

int main() {
  const test::Cases cases = {
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
  return test::run_cases("hz3top_unit", cases);
}
