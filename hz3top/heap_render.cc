// Text, JSON and folded renderings behind heap_render.h.
#include "heap_render.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "output.h"

namespace hz3top {

namespace {

using ordered_json = nlohmann::ordered_json;

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

ordered_json frame_json(const Frame& f, const HeapStack& s, size_t i) {
  ordered_json j;
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

ordered_json sums_json(const HeapSums& s) {
  ordered_json j;
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

ordered_json stack_json(const HeapStack& s) {
  ordered_json j = sums_json(s.sums);
  j["unwind"] = s.dwarf ? "dwarf" : "fp";
  ordered_json frames = ordered_json::array();
  for (size_t i = 0; i < s.frames.size(); i++) frames.push_back(frame_json(s.frames[i], s, i));
  j["frames"] = std::move(frames);
  return j;
}

}  // namespace

std::string render_heap_text(const HeapReport& r, size_t top) {
  std::string out;
  std::string clock = fmt_clock(r.wall);
  for (const HeapProc& p : r.procs) {
    out += fmt(
        "%s heap  pid %d %s%s  live ~%s ±%.0f%% (%+.1f MiB since last, %s/s since attach)  "
        "allocated ~%s (%s/s)  samples %llu (%llu live)\n",
        clock.c_str(), int(p.pid), p.comm.c_str(), p.alive ? "" : " (exited)",
        fmt_bytes(p.sums.live_bytes).c_str(), 100 * p.sums.live_rel_err(), p.live_delta / 1048576.0,
        fmt_bytes(p.growth_rate).c_str(), fmt_bytes(p.sums.alloc_bytes).c_str(),
        fmt_bytes(p.alloc_rate).c_str(), static_cast<unsigned long long>(p.sums.alloc_samples),
        static_cast<unsigned long long>(p.sums.live_samples));
    auto table = [&](const char* title, std::vector<const HeapSite*> rows) {
      size_t n = top && rows.size() > top ? top : rows.size();
      out += fmt("  %s\n  %11s %5s %11s %11s %9s %7s %11s %11s %7s  %s\n", title, "LIVE", "±",
                 "ΔLIVE", "GROWTH/s", "OBJECTS", "AGE", "ALLOC/s", "ALLOCATED", "SAMPLES", "SITE");
      for (size_t i = 0; i < n; i++) {
        const HeapSite& s = *rows[i];
        std::string where = s.site.where();
        out +=
            fmt("  %11s %4.0f%% %11s %11s %9.0f %7s %11s %11s %7llu  %s%s%s\n",
                fmt_bytes(s.sums.live_bytes).c_str(), 100 * s.sums.live_rel_err(),
                (s.live_delta >= 0 ? "+" + fmt_bytes(s.live_delta) : "-" + fmt_bytes(-s.live_delta))
                    .c_str(),
                fmt_bytes(s.growth_rate).c_str(), num(s.sums.live_objects),
                s.sums.live_samples ? fmt_duration(s.age_mean).c_str() : "-",
                fmt_bytes(s.alloc_rate).c_str(), fmt_bytes(s.sums.alloc_bytes).c_str(),
                static_cast<unsigned long long>(s.sums.alloc_samples), s.site.label().c_str(),
                where.empty() ? "" : " ", where.c_str());
      }
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
  ordered_json j;
  j["type"] = "heap";
  j["seq"] = r.seq;
  j["wall"] = std::round(r.wall * 1000) / 1000;
  j["dt"] = num(r.dt);
  j["elapsed"] = num(r.elapsed);
  j["final"] = r.final;
  j["samples"] = r.samples;
  j["frees"] = r.frees;
  j["free_unknown"] = r.free_unknown;
  j["alloc_dropped"] = r.alloc_dropped;
  j["free_dropped"] = r.free_dropped;
  j["stack_copy_failed"] = r.stack_copy_failed;
  ordered_json procs = ordered_json::array();
  for (const HeapProc& p : r.procs) {
    ordered_json jp;
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
    ordered_json sites = ordered_json::array();
    size_t n = top && p.sites.size() > top ? top : p.sites.size();
    for (size_t i = 0; i < n; i++) {
      const HeapSite& s = p.sites[i];
      ordered_json js;
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
      ordered_json heaviest = ordered_json::array();
      if (!s.stacks.empty())
        for (size_t k = 0; k < s.stacks[0].frames.size(); k++)
          heaviest.push_back(frame_json(s.stacks[0].frames[k], s.stacks[0], k));
      js["stack"] = std::move(heaviest);
      ordered_json stacks = ordered_json::array();
      for (const HeapStack& st : s.stacks) stacks.push_back(stack_json(st));
      js["stacks"] = std::move(stacks);
      sites.push_back(std::move(js));
    }
    jp["sites"] = std::move(sites);
    procs.push_back(std::move(jp));
  }
  j["procs"] = std::move(procs);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
