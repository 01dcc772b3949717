// Renderers behind format.h.
#include "format.h"

#include <cmath>
#include <cstdio>

#include "ledger_view.h"

namespace hz3top {

namespace {

std::string printf_str(const char* fmt, double v) {
  char buf[64];
  snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// The counters every level (process, total) carries under the same keys.
void counters_json(Json& o, const ProcView& v) {
  o["ptag_hit"] = v.total.hits;
  o["ptag_miss"] = v.total.misses();
  o["ptag_miss_outside"] = v.total.miss_outside;
  o["ptag_miss_untagged"] = v.total.miss_untagged;
  o["decode_fail"] = v.total.decode_fail;
  o["tag_set"] = v.total.tag_set;
  o["tag_clear"] = v.total.tag_clear;
  o["tag_set_pages"] = v.total.set_pages;
  o["tag_clear_pages"] = v.total.clear_pages;
  o["hit_reports"] = v.total.hit_reports;
  o["live_pages"] = v.live_pages;
  o["live_bytes"] = v.live_bytes;
  o["large_unsized"] = v.large_unsized;
  o["live_source"] = v.census_ok ? "tagmap" : "probes";
  o["hit_ratio"] = json_number(v.hit_ratio_total);
  Json& d = o["interval"] = Json::object();
  d["ptag_hit"] = v.delta.hits;
  d["ptag_miss"] = v.delta.misses();
  d["decode_fail"] = v.delta.decode_fail;
  d["tag_set"] = v.delta.tag_set;
  d["tag_clear"] = v.delta.tag_clear;
  d["hit_ratio"] = json_number(v.hit_ratio);
  Json& r = o["rate"] = Json::object();
  r["ptag_hit"] = v.hits_reported ? json_number(v.hit_rate) : Json(nullptr);
  r["ptag_miss"] = json_number(v.miss_rate);
  r["decode_fail"] = json_number(v.decode_fail_rate);
  r["tag_set"] = json_number(v.tag_set_rate);
  r["tag_clear"] = json_number(v.tag_clear_rate);
  r["lookups"] = json_number(v.lookup_rate);
  Json& p = o["perf"] = Json::object();
  p["counting"] = v.perf.counting;
  p["count"] = v.perf.count;
  p["interval_count"] = v.perf.d_count;
  p["rate"] = json_number(v.perf.rate);
  p["per_kfree"] = json_number(v.perf.per_kfree);
  p["sampling"] = v.perf.sampling;
  p["samples_alloc"] = v.perf.d_alloc;
  p["samples_user"] = v.perf.d_user;
  p["samples_kernel"] = v.perf.d_kernel;
  p["samples_lost"] = v.perf.lost;
  p["alloc_share"] = json_number(v.perf.alloc_share);
  if (v.total.dropped) o["dropped"] = v.total.dropped;
}

Json bins_json(const ProcView& v) {
  Json a = Json::array();
  for (const BinRow& b : v.bins) {
    Json o;
    o["bin"] = b.bin;
    o["size"] = b.size;
    o["live_pages"] = b.live_pages;
    o["live_bytes"] = b.live_bytes;
    o["owners"] = b.owners;
    o["tag_set"] = b.sets;
    o["tag_clear"] = b.clears;
    o["tag_set_pages"] = b.set_pages;
    o["tag_clear_pages"] = b.clear_pages;
    o["tag_set_rate"] = json_number(b.set_rate);
    o["tag_clear_rate"] = json_number(b.clear_rate);
    a.push_back(std::move(o));
  }
  return a;
}

Json owners_json(const ProcView& v) {
  Json a = Json::array();
  for (const OwnerRow& w : v.owners) {
    Json o;
    o["owner"] = w.owner;
    o["live_pages"] = w.live_pages;
    o["live_bytes"] = w.live_bytes;
    a.push_back(std::move(o));
  }
  return a;
}

// The columns of the process table, in order. A cell is at most `width` characters; COMM is
// the only left-aligned one, and is cut at its width.
struct Column {
  const char* title;  // nullptr: the perf column, named after the counted event
  int width;
  bool left;
  std::string (*cell)(const ProcView& v, const std::string& name);
};

const Column PROC_COLUMNS[] = {
    {"PID", 7, false,
     [](const ProcView& v, const std::string&) { return v.pid ? std::to_string(v.pid) : ""; }},
    {"COMM", 15, true, [](const ProcView&, const std::string& name) { return name; }},
    {"HIT/s", 6, false,
     [](const ProcView& v, const std::string&) {
       return v.hits_reported ? fmt_si(v.hit_rate) : std::string("-");
     }},
    {"MISS/s", 6, false, [](const ProcView& v, const std::string&) { return fmt_si(v.miss_rate); }},
    {"HIT%", 7, false,
     [](const ProcView& v, const std::string&) { return fmt_pct(v.hit_ratio, 2); }},
    {"DFAIL", 6, false,
     [](const ProcView& v, const std::string&) { return fmt_si(double(v.delta.decode_fail)); }},
    {"SET/s", 6, false,
     [](const ProcView& v, const std::string&) { return fmt_si(v.tag_set_rate); }},
    {"CLR/s", 6, false,
     [](const ProcView& v, const std::string&) { return fmt_si(v.tag_clear_rate); }},
    {"LIVE_PG", 9, false,
     [](const ProcView& v, const std::string&) { return std::to_string(v.live_pages); }},
    {"LIVE", 9, false,
     [](const ProcView& v, const std::string&) { return fmt_bytes(double(v.live_bytes)); }},
    {nullptr, 8, false,
     [](const ProcView& v, const std::string&) { return fmt_per_kfree(v.perf.per_kfree); }},
    {"ALLOC%", 6, false,
     [](const ProcView& v, const std::string&) { return fmt_pct(v.perf.alloc_share); }},
};

std::string totals_line(const ProcView& v) {
  char buf[512];
  snprintf(buf, sizeof buf,
           "# totals pid=%d comm=%s ptag_hit=%llu ptag_miss=%llu (outside=%llu untagged=%llu) "
           "decode_fail=%llu tag_set=%llu tag_clear=%llu live_pages=%llu live_bytes=%llu "
           "hit_ratio=%s%%\n",
           int(v.pid), v.comm.c_str(), (unsigned long long)v.total.hits,
           (unsigned long long)v.total.misses(), (unsigned long long)v.total.miss_outside,
           (unsigned long long)v.total.miss_untagged, (unsigned long long)v.total.decode_fail,
           (unsigned long long)v.total.tag_set, (unsigned long long)v.total.tag_clear,
           (unsigned long long)v.live_pages, (unsigned long long)v.live_bytes,
           fmt_pct(v.hit_ratio_total, 3).c_str());
  return buf;
}

constexpr int TIME_WIDTH = 8;  // "HH:MM:SS" or "final"

}  // namespace

std::string fmt_per_kfree(std::optional<double> v) {
  if (!v || !std::isfinite(*v)) return "-";
  // At most 7 characters: tiny and huge values in exponent form.
  if (*v != 0 && (*v < 0.01 || *v >= 1e5)) return printf_str("%.1e", *v);
  return printf_str("%.3g", *v);
}

std::string fmt_bin(uint32_t bin, uint32_t size) {
  if (bin == HZ3_TAG_BIN_LARGE) return "large";
  if (size == 0) return "bin " + std::to_string(bin);
  if (size >= 1024 && size % 1024 == 0) return std::to_string(size / 1024) + " KiB";
  return std::to_string(size) + " B";
}

std::string perf_column(const std::string& event) {
  if (event == "page-faults" || event == "faults") return "PF/kfree";
  if (event == "cache-misses") return "CM/kfree";
  return "EV/kfree";
}

std::string proc_table_header(const std::string& perf_event) {
  std::string s;
  for (const Column& c : PROC_COLUMNS) {
    if (!s.empty()) s += ' ';
    s += pad_cell(c.title ? c.title : perf_column(perf_event), c.width, c.left);
  }
  return s;
}

std::string proc_table_row(const ProcView& v, const std::string& name) {
  std::string s;
  for (const Column& c : PROC_COLUMNS) {
    if (!s.empty()) s += ' ';
    s += pad_cell(c.cell(v, name), c.width, c.left);
  }
  return s;
}

std::string proc_name(const ProcView& v) { return v.alive ? v.comm : v.comm + " (exited)"; }

Json report_json(const Report& r) {
  Json o;
  o["time"] = json_time(r.wall);
  o["seq"] = r.seq;
  o["interval_s"] = json_number(r.dt);
  o["final"] = r.final;
  o["perf_event"] = r.perf_event;
  o["sample_event"] = r.sample_event;
  o["processes"] = r.procs.size();
  counters_json(o, r.total);
  Json procs = Json::array();
  for (const ProcView& v : r.procs) {
    Json p;
    p["pid"] = v.pid;
    p["comm"] = v.comm;
    p["lib"] = v.lib;
    p["alive"] = v.alive;
    p["interval_s"] = json_number(v.dt);
    p["exec"] = v.exec;
    counters_json(p, v);
    p["bins"] = bins_json(v);
    p["owners"] = owners_json(v);
    p["ledger"] = ledger_json(v);
    procs.push_back(std::move(p));
  }
  o["procs"] = std::move(procs);
  return o;
}

std::string render_json(const Report& r) { return json_dump(report_json(r)); }

std::string plain_header(const std::string& perf_event) {
  return pad_cell("TIME", TIME_WIDTH, true) + " " + proc_table_header(perf_event) + "\n";
}

std::string plain_lines(const Report& r) {
  std::string out;
  std::string when = pad_cell(r.final ? "final" : fmt_clock(r.wall), TIME_WIDTH, true) + " ";
  for (const ProcView& v : r.procs) out += when + proc_table_row(v, proc_name(v)) + "\n";
  if (r.procs.size() > 1) out += when + proc_table_row(r.total, "all") + "\n";
  if (r.final)
    for (const ProcView& v : r.procs) out += totals_line(v) + ledger_plain(v);
  return out;
}

}  // namespace hz3top
