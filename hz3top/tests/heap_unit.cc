// Unit tests of the heap view's parts that need no BPF and no root (t_hz3top_heap_unit.sh): the
// protobuf encoder against hand-encoded bytes, gzip against zlib's inflate, the allocation
// wrapper list, the choice between DWARF and frame-pointer stacks, the folded and pprof outputs
// of a hand-built report, the model's variance sums and standard errors (against the exact
// variance of the sampling scheme), and the symbolizer's source lines and
// inlined frames on this binary.
#include <linux/types.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "check.h"
#include "heap_model.h"
#include "heap_render.h"
#include "pprof.h"
#include "symbolize.h"

using namespace hz3top;

namespace {

std::string hex(const std::string& b) {
  std::string out;
  char buf[4];
  for (unsigned char c : b) {
    snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

void proto_wire_format() {
  ProtoWriter a;
  a.varint(1, 300);  // the protobuf documentation's example: 08 ac 02
  CHECK_EQ_STR(hex(a.data()), "08ac02");
  ProtoWriter b;
  b.bytes(2, "ab");
  CHECK_EQ_STR(hex(b.data()), "12026162");
  ProtoWriter c;
  c.packed(4, {3, 270, 86942});  // the documentation's packed example: 22 06 03 8e 02 9e a7 05
  CHECK_EQ_STR(hex(c.data()), "2206038e029ea705");
  ProtoWriter d;
  d.varint(15, 0);
  d.varint(16, 1);  // field 16 needs a two-byte tag
  CHECK(hex(d.data()) ==
        "78008001"
        "01");
  ProtoWriter e;
  e.svarint(1, -1);  // int64 -1: ten bytes, not zigzag
  CHECK_EQ_STR(hex(e.data()), "08ffffffffffffffffff01");
}

void gzip_round_trip() {
  std::string in;
  for (int i = 0; i < 10000; i++) in += std::to_string(i * 7919) + ";";
  std::string gz, err;
  CHECK(gzip(in, &gz, &err));
  CHECK(gz.size() > 18 && uint8_t(gz[0]) == 0x1f && uint8_t(gz[1]) == 0x8b);
  z_stream z;
  memset(&z, 0, sizeof z);
  CHECK(inflateInit2(&z, 15 + 16) == Z_OK);
  std::string out(in.size() + 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(&gz[0]);
  z.avail_in = uInt(gz.size());
  z.next_out = reinterpret_cast<Bytef*>(&out[0]);
  z.avail_out = uInt(out.size());
  CHECK(inflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  inflateEnd(&z);
  CHECK(out == in);
}

void wrappers_match() {
  Wrappers w;
  for (const char* yes :
       {"malloc", "free", "zmalloc(unsigned long)", "zmalloc_usable(unsigned long, unsigned long*)",
        "ztrymalloc_usable", "operator new(unsigned long)",
        "operator new[](unsigned long, std::nothrow_t const&)", "PyMem_Malloc", "_PyMem_RawMalloc",
        "g_malloc0", "__libc_malloc",
        "std::__new_allocator<void*>::allocate(unsigned long, void const*)"})
    CHECKF(w.match(yes), "not a wrapper: %s", yes);
  for (const char* no : {"", "site_keep_half()", "(anonymous namespace)::site_keep_half()",
                         "malloc_sampling", "freelist_push", "mallocx", "PyList_New"})
    CHECKF(!w.match(no), "taken for a wrapper: %s", no);
  CHECK(!w.match("my_alloc(int)"));
  w.add("my_alloc*");
  CHECK(w.match("my_alloc(int)") && w.match("my_alloc_zeroed"));
}

void dwarf_or_frame_pointers() {
  CHECK(!prefer_dwarf(0, false, 3));  // no DWARF stack at all
  CHECK(!prefer_dwarf(0, true, 0));
  CHECK(prefer_dwarf(5, false, 5));   // a tie goes to DWARF
  CHECK(!prefer_dwarf(4, false, 9));  // an incomplete walk that got less far
  CHECK(prefer_dwarf(4, true, 9));    // a complete walk beats a longer frame-pointer chain
}

Frame frame(uint64_t addr, const char* func, const char* lib, bool inlined = false) {
  Frame f;
  f.addr = addr;
  f.func = func;
  f.lib = lib;
  f.inlined = inlined;
  return f;
}

HeapReport sample_report() {
  HeapReport r;
  r.wall = 1.5e9;
  HeapProc p;
  p.pid = 42;
  p.comm = "svc";
  p.modules.push_back({0x1000, 0x9000, 0, "/usr/bin/svc", "abcd"});
  p.sample_mean = 524288;
  p.sample_mean_max = 4194304;
  p.sample_mean_samples = 7;
  HeapSite s;
  s.key = "leak";
  HeapStack st;
  st.frames = {frame(0x7000, "hz3::sample_note_alloc", "libhz3.so"),
               frame(0x1100, "zmalloc", "svc"), frame(0x1200, "node;new", "svc", true),
               frame(0x1200, "leak", "svc"), frame(0x1300, "main", "svc")};
  st.hz3_frames = 1;
  st.site_at = 2;
  st.sums.live_bytes = 1000.4;
  st.sums.alloc_bytes = 3000;
  st.sums.live_objects = 10;
  st.sums.alloc_objects = 30;
  s.stacks.push_back(st);
  HeapStack freed = st;
  freed.frames.erase(freed.frames.begin() + 3);
  freed.sums.live_bytes = 0;
  freed.sums.live_objects = 0;
  freed.sums.alloc_bytes = 500;
  freed.sums.alloc_objects = 5;
  s.stacks.push_back(freed);
  p.sites.push_back(s);
  r.procs.push_back(p);
  return r;
}

void folded_lines() {
  HeapReport r = sample_report();
  // Root first, libhz3's frame dropped, ';' in a name replaced, the all-freed stack left out.
  CHECK_EQ_STR(render_heap_folded(r, false), "svc;main;leak;node:new;zmalloc 1000\n");
  CHECK(render_heap_folded(r, true) ==
        "svc;main;leak;node:new;zmalloc 3000\nsvc;main;node:new;zmalloc 500\n");
}

void pprof_message() {
  std::string m = heap_pprof_profile(sample_report(), 2.0);
  // The first field is the first sample type: tag 0x0a (field 1, length-delimited).
  CHECK(!m.empty() && uint8_t(m[0]) == 0x0a);
  for (const char* s :
       {"inuse_space", "inuse_objects", "alloc_space", "alloc_objects", "bytes", "count", "zmalloc",
        "node;new", "leak", "main", "/usr/bin/svc", "abcd", "pid"})
    CHECKF(m.find(s) != std::string::npos, "missing %s", s);
  // libhz3's own frame is not a location.
  CHECK(m.find("hz3::sample_note_alloc") == std::string::npos);
  // Sample values as one packed field: 1000, 10, 3000, 30.
  ProtoWriter v;
  v.packed(2, {1000, 10, 3000, 30});
  CHECK(m.find(v.data()) != std::string::npos);
  // The period: the mean most samples were drawn with, and a comment on the raised one.
  ProtoWriter period;
  period.svarint(12, 524288);
  CHECK(m.find(period.data()) != std::string::npos);
  CHECK(m.find("space") != std::string::npos);
  CHECK(m.find("raised by the pacing up to 4194304") != std::string::npos);
}

// An inlined function and its caller, in this binary built with -O2 -g.
int g_sink;
__attribute__((always_inline)) inline void bump(int x) {
  g_sink += x * 3;  // the line the test expects for the inlined frame
  asm volatile("" ::: "memory");
}
__attribute__((noinline)) void bumper(int x) {
  bump(x);
  g_sink ^= x;
}

void source_lines_and_inlines() {
  Symbolizer sym(getpid());
  std::string err;
  CHECK(sym.refresh(&err));
  // Search bumper's code for an address inside the inlined bump().
  uint64_t start = uint64_t(reinterpret_cast<uintptr_t>(&bumper));
  bool found = false;
  for (uint64_t a = start; a < start + 64 && !found; a++) {
    std::vector<Frame> fs = sym.resolve_inlined(a, false);
    if (fs.size() >= 2 && fs[0].inlined && fs[0].func.find("bump") != std::string::npos) {
      found = true;
      CHECK(fs[0].where().find("heap_unit.cc:") == 0);
      CHECK(fs.back().func.find("bumper") != std::string::npos && !fs.back().inlined);
      CHECK(fs.back().line > fs[0].line);  // the call in bumper is below bump's body
    }
  }
  CHECK(found);
  Frame f = sym.resolve(start, false);
  CHECK(f.func.find("bumper") != std::string::npos && f.off == 0 && f.lib == "hz3top_heap_unit");
  bool has_self = false;
  for (const ModuleInfo& m : sym.modules())
    if (m.path.find("hz3top_heap_unit") != std::string::npos) has_self = !m.build_id.empty();
  CHECK(has_self);
  bumper(1);
}

// The variance sums: each sample adds w (w - s) to alloc_var (and live_var while its block
// lives), so a sample drawn with a raised mean (a larger weight) counts for more; a block
// sampled for sure (w = s) adds nothing; a free takes its term off live_var only.
void variance_sums() {
  Wrappers wrappers;
  HeapProcess hp(getpid(), Library{}, &wrappers, Unwind::FP, 0);
  auto alloc = [&](uint64_t ptr, uint64_t size, uint64_t weight) {
    static hz3_heap_alloc_event e;  // large: not on the stack
    memset(&e, 0, sizeof e);
    e.type = HZ3_HEAP_EV_ALLOC;
    e.ptr = ptr;
    e.size = size;
    e.weight = weight;
    hp.on_alloc(e);
  };
  alloc(0x1000, 64, 1000);
  alloc(0x2000, 64, 4000);  // the same site with a mean four times as large
  alloc(0x3000, 100, 100);  // p = 1
  hz3_heap_free_event f = {HZ3_HEAP_EV_FREE, 0, 0x1000, 0};
  CHECK(hp.on_free(f));
  HeapProc p = hp.report(1.0);
  if (!CHECK(p.sites.size() == 1)) return;
  const HeapSums& s = p.sites[0].sums;
  CHECK(s.alloc_samples == 3 && s.live_samples == 2);
  CHECK(s.alloc_var == 1000.0 * 936 + 4000.0 * 3936);
  CHECK(s.live_var == 4000.0 * 3936);
  CHECK(p.sums.alloc_var == s.alloc_var && p.sums.live_var == s.live_var);
  // The standard errors are their square roots: sqrt(16680000) over 5100 bytes allocated, not
  // 1 / sqrt(3 samples); sqrt(15744000) over 4100 bytes live.
  CHECK(std::fabs(s.alloc_err() - std::sqrt(16680000.0)) < 1e-6);
  CHECK(std::fabs(s.alloc_rel_err() - std::sqrt(16680000.0) / 5100) < 1e-9);
  CHECK(std::fabs(s.live_rel_err() - std::sqrt(15744000.0) / 4100) < 1e-9);
  CHECK(HeapSums{}.live_rel_err() == 0 && HeapSums{}.alloc_err() == 0);
}

// The sampling mean recovered from a sample's size and weight (libhz3 rounds the weight to a
// byte): within a byte of the mean it was drawn with while the weight is at least twice the size;
// 0 below. A process's report names the mean most samples were drawn with and the largest.
void sample_means() {
  for (double mean : {524288.0, 4194304.0, 65536.0})
    for (double size : {16.0, 64.0, 4096.0, 32768.0}) {
      double w = std::round(size / -std::expm1(-size / mean));
      CHECKF(std::fabs(sample_mean_of(size, w) - mean) <= 1, "size %.0f mean %.0f: %.3f", size,
             mean, sample_mean_of(size, w));
    }
  CHECK(sample_mean_of(1 << 20, 1 << 20) == 0);  // sampled for sure: no mean to tell
  CHECK(sample_mean_of(64, 100) == 0);
  Wrappers wrappers;
  HeapProcess hp(getpid(), Library{}, &wrappers, Unwind::FP, 0);
  static hz3_heap_alloc_event e;
  auto alloc = [&](uint64_t ptr, double size, double mean) {
    memset(&e, 0, sizeof e);
    e.type = HZ3_HEAP_EV_ALLOC;
    e.ptr = ptr;
    e.size = uint64_t(size);
    e.weight = uint64_t(std::llround(size / -std::expm1(-size / mean)));
    hp.on_alloc(e);
  };
  for (int i = 0; i < 5; i++) alloc(0x1000 + i * 64, 64 + 16 * i, 524288);
  for (int i = 0; i < 3; i++) alloc(0x9000 + i * 64, 512, 8 * 524288.0);
  alloc(0x20000, 64 << 20, 524288);  // sampled for sure: not counted
  HeapProc p = hp.report(1.0);
  CHECK(p.sample_mean == 524288 && p.sample_mean_samples == 5);
  CHECK(p.sample_mean_max == 8 * 524288);
}

// The standard error against the truth of the sampling scheme (sample.h): each allocation of s
// bytes sampled on its own with q = 1 - exp(-s / mean), weighing s / q rounded, half of a site's
// allocations drawn at the base mean and half at 8 times it (as the pacing raises it), every
// other block freed. The estimator's exact variance over the N blocks is sum s^2 (1 - q) / q;
// over 400 sites (one per trial, each its own stack) the estimates must scatter by it and the
// reported live_err^2 and alloc_err^2 must average to it (within 15 %, where 400 trials leave
// ~7 %). (live_bytes)^2 / samples, the 1 / sqrt(samples) error, averages to under 0.6 of it
// here: checked too, so the case tells the two apart.
void standard_error_known_answer() {
  Wrappers wrappers;
  HeapProcess hp(getpid(), Library{}, &wrappers, Unwind::FP, 0);
  const double size = 4096, base = 512 * 1024;
  const int trials = 400, blocks = 12800;  // per trial: the first half at the base mean
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<double> u(0, 1);
  static hz3_heap_alloc_event e;  // large: not on the stack
  double var_alloc = 0, var_live = 0;
  for (int i = 0; i < blocks; i++) {
    double q = -std::expm1(-size / (i < blocks / 2 ? base : 8 * base));
    double v = size * size * (1 - q) / q;
    var_alloc += v;
    if (i % 2) var_live += v;
  }
  uint64_t ptr = 0x10000;
  for (int t = 0; t < trials; t++)
    for (int i = 0; i < blocks; i++) {
      double q = -std::expm1(-size / (i < blocks / 2 ? base : 8 * base));
      if (u(rng) >= q) continue;
      memset(&e, 0, sizeof e);
      e.type = HZ3_HEAP_EV_ALLOC;
      e.ptr = ptr += 16;
      e.size = uint64_t(size);
      e.weight = uint64_t(size / q + 0.5);
      e.nips = 1;
      e.ips[0] = 0x1000 + uint64_t(t) * 16;  // one site per trial
      hp.on_alloc(e);
      if (i % 2 == 0) {
        hz3_heap_free_event f = {HZ3_HEAP_EV_FREE, 0, e.ptr, 0};
        CHECK(hp.on_free(f));
      }
    }
  HeapProc p = hp.report(1.0);
  if (!CHECKF(p.sites.size() == size_t(trials), "%zu sites", p.sites.size())) return;
  struct Moments {
    double n = 0, sum = 0, sq = 0, err2 = 0, naive2 = 0;
    void add(double est, double truth, double err, uint64_t samples) {
      n++;
      sum += est;
      sq += (est - truth) * (est - truth);
      err2 += err * err;
      if (samples) naive2 += est * est / double(samples);
    }
  } alloc, live;
  const double alloc_truth = blocks * size, live_truth = alloc_truth / 2;
  for (const HeapSite& s : p.sites) {
    alloc.add(s.sums.alloc_bytes, alloc_truth, s.sums.alloc_err(), s.sums.alloc_samples);
    live.add(s.sums.live_bytes, live_truth, s.sums.live_err(), s.sums.live_samples);
  }
  for (auto [m, truth, var, what] : {std::make_tuple(&alloc, alloc_truth, var_alloc, "alloc"),
                                     std::make_tuple(&live, live_truth, var_live, "live")}) {
    double mean = m->sum / m->n, scatter = m->sq / m->n, err2 = m->err2 / m->n;
    double naive2 = m->naive2 / m->n;
    printf(
        "  %s: exact sd %.0f (%.1f %%), scatter %.0f, reported err %.0f (rms), "
        "1/sqrt(samples) %.0f (rms)\n",
        what, std::sqrt(var), 100 * std::sqrt(var) / truth, std::sqrt(scatter), std::sqrt(err2),
        std::sqrt(naive2));
    // The mean of 400 estimates has a standard error of sd / 20.
    CHECKF(std::fabs(mean - truth) < 4 * std::sqrt(var) / 20, "%s: mean %.0f vs %.0f", what, mean,
           truth);
    CHECKF(scatter > 0.8 * var && scatter < 1.25 * var, "%s: scatter %.3g vs exact %.3g", what,
           scatter, var);
    CHECKF(err2 > 0.85 * var && err2 < 1.15 * var, "%s: mean err^2 %.3g vs exact %.3g", what, err2,
           var);
    CHECKF(naive2 < 0.6 * var,
           "%s: 1/sqrt(samples) gives %.3g vs exact %.3g: the case does not "
           "tell the two apart",
           what, naive2, var);
  }
}

}  // namespace

int main(int argc, char** argv) {
  hz3::test::init("hz3top_heap_unit", argc, argv);
  const std::pair<const char*, void (*)()> cases[] = {
      {"proto_wire_format", proto_wire_format},
      {"gzip_round_trip", gzip_round_trip},
      {"wrappers_match", wrappers_match},
      {"dwarf_or_frame_pointers", dwarf_or_frame_pointers},
      {"folded_lines", folded_lines},
      {"pprof_message", pprof_message},
      {"source_lines_and_inlines", source_lines_and_inlines},
      {"variance_sums", variance_sums},
      {"sample_means", sample_means},
      {"standard_error_known_answer", standard_error_known_answer},
  };
  for (auto& [name, fn] : cases) hz3::test::run_case(name, fn);
  return hz3::test::finish();
}
