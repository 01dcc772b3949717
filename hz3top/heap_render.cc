// Text, JSON and folded renderings behind heap_render.h.
#include "heap_render.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>

#include "output.h"

namespace hz3top {

namespace {

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

double num(double v) { return std::isfinite(v) ? v : 0; }
long long round_ll(double v) { return std::llround(num(v)); }

Json frame_json(const Frame& f, const HeapStack& s, size_t i) {
  Json j;
  j["addr"] = f.addr;
  j["func"] = f.func;
  j["off"] = f.off;
  j["lib"] = f.lib;
  j["file"] = f.file;
  j["line"] = f.line;
  j["inlined"] = f.inlined;
  j["hz3"] = i < s.hz3_frames;
  j["wrapper"] = i >= s.hz3_frames && i < s.site_at;
  return j;
}

Json sums_json(const HeapSums& s) {
  Json j;
  j["live_bytes"] = round_ll(s.live_bytes);
  j["alloc_bytes"] = round_ll(s.alloc_bytes);
  j["live_objects"] = round_ll(s.live_objects);
  j["alloc_objects"] = round_ll(s.alloc_objects);
  j["live_samples"] = s.live_samples;
  j["alloc_samples"] = s.alloc_samples;
  j["live_err"] = round_ll(s.live_err());
  j["alloc_err"] = round_ll(s.alloc_err());
  return j;
}

Json stack_json(const HeapStack& s) {
  Json j = sums_json(s.sums);
  j["unwind"] = s.dwarf ? "dwarf" : "fp";
  Json frames = Json::array();
  for (size_t i = 0; i < s.frames.size(); i++) frames.push_back(frame_json(s.frames[i], s, i));
  j["frames"] = std::move(frames);
  return j;
}

}  // namespace

namespace {

// The columns of the site table, in order, each cell at most `width` columns and right-aligned;
// SITE (label and source line) follows them, unpadded.
struct SiteColumn {
  const char* title;
  int width;
  std::string (*cell)(const HeapSite& s);
};

const SiteColumn SITE_COLUMNS[] = {
    {"LIVE", 11, [](const HeapSite& s) { return fmt_bytes(s.sums.live_bytes); }},
    {"±", 5, [](const HeapSite& s) { return fmt("%.0f%%", 100 * s.sums.live_rel_err()); }},
    {"ΔLIVE", 11, [](const HeapSite& s) { return fmt_bytes_delta(s.live_delta); }},
    {"GROWTH/s", 11, [](const HeapSite& s) { return fmt_bytes(s.growth_rate); }},
    {"OBJECTS", 9, [](const HeapSite& s) { return fmt("%.0f", num(s.sums.live_objects)); }},
    {"AGE", 7,
     [](const HeapSite& s) {
       return s.sums.live_samples ? fmt_duration(s.age_mean) : std::string("-");
     }},
    {"ALLOC/s", 11, [](const HeapSite& s) { return fmt_bytes(s.alloc_rate); }},
    {"ALLOCATED", 11, [](const HeapSite& s) { return fmt_bytes(s.sums.alloc_bytes); }},
    {"SAMPLES", 7,
     [](const HeapSite& s) {
       return std::to_string(static_cast<unsigned long long>(s.sums.alloc_samples));
     }},
};

constexpr int PID_WIDTH = 7;

}  // namespace

std::string heap_site_header(bool pid) {
  std::string out = pid ? pad_cell("PID", PID_WIDTH, false) + " " : "";
  for (const SiteColumn& c : SITE_COLUMNS) out += pad_cell(c.title, c.width, false) + " ";
  return out + " SITE";
}

std::string heap_site_row(const HeapProc& p, const HeapSite& s, bool pid) {
  std::string out = pid ? pad_cell(std::to_string(p.pid), PID_WIDTH, false) + " " : "";
  for (const SiteColumn& c : SITE_COLUMNS) out += pad_cell(c.cell(s), c.width, false) + " ";
  std::string where = s.site.where();
  return out + " " + s.site.label() + (where.empty() ? "" : " " + where);
}

std::string heap_proc_summary(const HeapProc& p) {
  return fmt(
      "pid %d %s%s  live ~%s ±%.0f%% (%s since last, %s/s since attach)  allocated ~%s "
      "(%s/s)  samples %llu (%llu live)",
      int(p.pid), p.comm.c_str(), p.alive ? "" : " (exited)", fmt_bytes(p.sums.live_bytes).c_str(),
      100 * p.sums.live_rel_err(), fmt_bytes_delta(p.live_delta).c_str(),
      fmt_bytes(p.growth_rate).c_str(), fmt_bytes(p.sums.alloc_bytes).c_str(),
      fmt_bytes(p.alloc_rate).c_str(), static_cast<unsigned long long>(p.sums.alloc_samples),
      static_cast<unsigned long long>(p.sums.live_samples));
}

std::string render_heap_text(const HeapReport& r, size_t top) {
  std::string out;
  std::string clock = fmt_clock(r.wall);
  for (const HeapProc& p : r.procs) {
    out += clock + " heap  " + heap_proc_summary(p) + "\n";
    auto table = [&](const char* title, std::vector<const HeapSite*> rows) {
      size_t n = top && rows.size() > top ? top : rows.size();
      out += "  " + std::string(title) + "\n  " + heap_site_header(false) + "\n";
      for (size_t i = 0; i < n; i++) out += "  " + heap_site_row(p, *rows[i], false) + "\n";
    };
    std::vector<const HeapSite*> rows;
    for (const HeapSite& s : p.sites) rows.push_back(&s);
    table("top sites by estimated live bytes", rows);
    std::stable_sort(rows.begin(), rows.end(), [](const HeapSite* a, const HeapSite* b) {
      return a->alloc_rate > b->alloc_rate;
    });
    table("top sites by estimated allocation rate", rows);
  }
  if (r.alloc_dropped || r.free_dropped)
    out += fmt("  note: %llu events lost (ring buffer full); live bytes may be overstated\n",
               static_cast<unsigned long long>(r.alloc_dropped + r.free_dropped));
  return out;
}

std::string render_heap_json(const HeapReport& r, size_t top) {
  Json j;
  j["type"] = "heap";
  j["seq"] = r.seq;
  j["wall"] = json_time(r.wall);
  j["dt"] = num(r.dt);
  j["elapsed"] = num(r.elapsed);
  j["final"] = r.final;
  j["samples"] = r.samples;
  j["frees"] = r.frees;
  j["free_unknown"] = r.free_unknown;
  j["alloc_dropped"] = r.alloc_dropped;
  j["free_dropped"] = r.free_dropped;
  j["stack_copy_failed"] = r.stack_copy_failed;
  Json procs = Json::array();
  for (const HeapProc& p : r.procs) {
    Json jp;
    jp["pid"] = p.pid;
    jp["comm"] = p.comm;
    jp["lib"] = p.lib;
    jp["alive"] = p.alive;
    jp.update(sums_json(p.sums));
    jp["alloc_rate"] = num(p.alloc_rate);
    jp["live_delta"] = round_ll(p.live_delta);
    jp["growth_rate"] = num(p.growth_rate);
    jp["dwarf_stacks"] = p.dwarf_stacks;
    jp["fp_stacks"] = p.fp_stacks;
    jp["sample_mean"] = num(p.sample_mean);
    jp["sample_mean_max"] = num(p.sample_mean_max);
    Json sites = Json::array();
    size_t n = top && p.sites.size() > top ? top : p.sites.size();
    for (size_t i = 0; i < n; i++) {
      const HeapSite& s = p.sites[i];
      Json js;
      js["site"] = s.site.label();
      js["func"] = s.site.func;
      js["off"] = s.site.off;
      js["addr"] = s.site.addr;
      js["lib"] = s.site.lib;
      js["file"] = s.site.file;
      js["line"] = s.site.line;
      js.update(sums_json(s.sums));
      js["alloc_rate"] = num(s.alloc_rate);
      js["live_delta"] = round_ll(s.live_delta);
      js["growth_rate"] = num(s.growth_rate);
      js["age_mean"] = num(s.age_mean);
      js["age_max"] = num(s.age_max);
      // The heaviest stack's frames, as before, and then every stack with its own sums.
      Json heaviest = Json::array();
      if (!s.stacks.empty())
        for (size_t k = 0; k < s.stacks[0].frames.size(); k++)
          heaviest.push_back(frame_json(s.stacks[0].frames[k], s.stacks[0], k));
      js["stack"] = std::move(heaviest);
      Json stacks = Json::array();
      for (const HeapStack& st : s.stacks) stacks.push_back(stack_json(st));
      js["stacks"] = std::move(stacks);
      sites.push_back(std::move(js));
    }
    jp["sites"] = std::move(sites);
    procs.push_back(std::move(jp));
  }
  j["procs"] = std::move(procs);
  return json_dump(j);
}

std::string render_heap_folded(const HeapReport& r, bool alloc) {
  std::string out;
  for (const HeapProc& p : r.procs)
    for (const HeapSite& s : p.sites)
      for (const HeapStack& st : s.stacks) {
        long long v = round_ll(alloc ? st.sums.alloc_bytes : st.sums.live_bytes);
        if (v <= 0) continue;
        std::string line = p.comm.empty() ? std::to_string(p.pid) : p.comm;
        for (size_t i = st.frames.size(); i-- > st.hz3_frames;) {
          const Frame& f = st.frames[i];
          std::string name = f.func.empty() ? f.label() : f.func;
          // ';' separates frames and the last ' ' the value: keep both out of names.
          std::replace(name.begin(), name.end(), ';', ':');
          std::replace(name.begin(), name.end(), '\n', ' ');
          line += ";" + name;
        }
        out += line + " " + std::to_string(v) + "\n";
      }
  return out;
}

}  // namespace hz3top
