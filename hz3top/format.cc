// Renderers behind format.h.
#include "format.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace hz3top {

namespace {

std::string printf_str(const char* fmt, double v) {
  char buf[64];
  snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// JSON numbers: integers stay integers; doubles get 6 significant digits; none becomes null.
std::string jnum(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}
std::string jnum(std::optional<double> v) { return v ? jnum(*v) : "null"; }
std::string jnum(uint64_t v) { return std::to_string(v); }

struct JsonObject {
  std::string s = "{";
  bool first = true;
  JsonObject& key(const char* k) {
    if (!first) s += ',';
    first = false;
    s += '"';
    s += k;
    s += "\":";
    return *this;
  }
  JsonObject& raw(const char* k, const std::string& v) {
    key(k);
    s += v;
    return *this;
  }
  JsonObject& num(const char* k, uint64_t v) { return raw(k, jnum(v)); }
  JsonObject& num(const char* k, double v) { return raw(k, jnum(v)); }
  JsonObject& num(const char* k, std::optional<double> v) { return raw(k, jnum(v)); }
  JsonObject& str(const char* k, const std::string& v) {
    return raw(k, "\"" + json_escape(v) + "\"");
  }
  JsonObject& boolean(const char* k, bool v) { return raw(k, v ? "true" : "false"); }
  std::string done() { return s + "}"; }
};

// The counters every level (process, total) carries under the same keys.
void counters_json(JsonObject& o, const ProcView& v) {
  o.num("ptag_hit", v.total.hits)
      .num("ptag_miss", v.total.misses())
      .num("ptag_miss_outside", v.total.miss_outside)
      .num("ptag_miss_untagged", v.total.miss_untagged)
      .num("decode_fail", v.total.decode_fail)
      .num("tag_set", v.total.tag_set)
      .num("tag_clear", v.total.tag_clear)
      .num("tag_set_pages", v.total.set_pages)
      .num("tag_clear_pages", v.total.clear_pages)
      .num("hit_reports", v.total.hit_reports)
      .num("live_pages", v.live_pages)
      .num("live_bytes", v.live_bytes)
      .num("large_unsized", v.large_unsized)
      .str("live_source", v.census_ok ? "tagmap" : "probes")
      .num("hit_ratio", v.hit_ratio_total);
  JsonObject d;
  d.num("ptag_hit", v.delta.hits)
      .num("ptag_miss", v.delta.misses())
      .num("decode_fail", v.delta.decode_fail)
      .num("tag_set", v.delta.tag_set)
      .num("tag_clear", v.delta.tag_clear)
      .num("hit_ratio", v.hit_ratio);
  o.raw("interval", d.done());
  JsonObject r;
  r.num("ptag_hit", v.hit_rate)
      .num("ptag_miss", v.miss_rate)
      .num("decode_fail", v.decode_fail_rate)
      .num("tag_set", v.tag_set_rate)
      .num("tag_clear", v.tag_clear_rate)
      .num("lookups", v.lookup_rate);
  o.raw("rate", r.done());
  JsonObject p;
  p.boolean("counting", v.perf.counting)
      .num("count", v.perf.count)
      .num("interval_count", v.perf.d_count)
      .num("rate", v.perf.rate)
      .num("per_kfree", v.perf.per_kfree)
      .boolean("sampling", v.perf.sampling)
      .num("samples_alloc", v.perf.d_alloc)
      .num("samples_user", v.perf.d_user)
      .num("samples_kernel", v.perf.d_kernel)
      .num("samples_lost", v.perf.lost)
      .num("alloc_share", v.perf.alloc_share);
  o.raw("perf", p.done());
  if (v.total.dropped) o.num("dropped", v.total.dropped);
}

std::string bins_json(const ProcView& v) {
  std::string s = "[";
  for (const BinRow& b : v.bins) {
    JsonObject o;
    o.num("bin", uint64_t(b.bin))
        .num("size", uint64_t(b.size))
        .num("live_pages", b.live_pages)
        .num("live_bytes", b.live_bytes)
        .num("owners", uint64_t(b.owners))
        .num("tag_set", b.sets)
        .num("tag_clear", b.clears)
        .num("tag_set_pages", b.set_pages)
        .num("tag_clear_pages", b.clear_pages)
        .num("tag_set_rate", b.set_rate)
        .num("tag_clear_rate", b.clear_rate);
    if (s.size() > 1) s += ',';
    s += o.done();
  }
  return s + "]";
}

std::string owners_json(const ProcView& v) {
  std::string s = "[";
  for (const OwnerRow& w : v.owners) {
    JsonObject o;
    o.num("owner", uint64_t(w.owner))
        .num("live_pages", w.live_pages)
        .num("live_bytes", w.live_bytes);
    if (s.size() > 1) s += ',';
    s += o.done();
  }
  return s + "]";
}

// The allocator's ledger (docs/hz3top.md): null when it could not be read.
std::string ledger_json(const ProcView& v) {
  if (!v.ledger_ok) return "null";
  const Ledger& g = v.ledger;
  JsonObject o;
  o.num("app_total", g.app_total())
      .num("small_used", g.small_used)
      .num("app_large", g.app_large)
      .num("span_free", g.span_free)
      .num("span_waste", g.span_waste)
      .num("pageheap_dirty", g.pageheap_dirty)
      .num("pageheap_released", g.pageheap_released)
      .num("unwalked", g.unwalked)
      .num("arena", g.arena)
      .num("huge", g.huge)
      .num("mapped", g.mapped())
      .num("arena_committed", g.committed)
      .num("arena_reserved", g.reserved)
      .num("small_spans", g.small_spans)
      .num("large_blocks", g.large_blocks)
      .num("huge_blocks", g.huge_blocks)
      .num("free_runs", g.free_runs);
  std::string heaps = "[";
  for (auto& [owner, h] : g.owners) {
    JsonObject x;
    x.num("heap", uint64_t(owner - 1))
        .num("spans", h.spans)
        .num("pages", h.pages)
        .num("used", h.used)
        .num("free", h.free);
    if (heaps.size() > 1) heaps += ',';
    heaps += x.done();
  }
  o.raw("heaps", heaps + "]");
  return o.done();
}

std::string clock_str(double wall) {
  time_t t = time_t(wall);
  tm tmv;
  localtime_r(&t, &tmv);
  char buf[16];
  strftime(buf, sizeof buf, "%H:%M:%S", &tmv);
  return buf;
}

std::string plain_line(const char* when, const ProcView& v, const std::string& comm) {
  char buf[512];
  snprintf(buf, sizeof buf, "%-8s %7d %-15.15s %6s %6s %7s %6s %6s %6s %9llu %9s %8s %6s\n", when,
           int(v.pid), comm.c_str(), fmt_si(v.hit_rate).c_str(), fmt_si(v.miss_rate).c_str(),
           fmt_pct(v.hit_ratio, 2).c_str(), fmt_si(double(v.delta.decode_fail)).c_str(),
           fmt_si(v.tag_set_rate).c_str(), fmt_si(v.tag_clear_rate).c_str(),
           (unsigned long long)v.live_pages, fmt_bytes(v.live_bytes).c_str(),
           fmt_per_kfree(v.perf.per_kfree).c_str(), fmt_pct(v.perf.alloc_share).c_str());
  return buf;
}

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

}  // namespace

std::string fmt_si(double v) {
  if (!std::isfinite(v)) return "-";
  if (v < 0) return "-" + fmt_si(-v);
  static const char* UNITS[] = {"", "k", "M", "G", "T", "P"};
  int u = 0;
  // Round first, so 999.96 prints as 1.00k rather than 1000.
  while (u < 5 && v >= 999.5) {
    v /= 1000;
    u++;
  }
  char buf[32];
  if (u == 0) {
    if (v == std::floor(v) || v >= 99.95)
      snprintf(buf, sizeof buf, "%.0f", v);
    else
      snprintf(buf, sizeof buf, "%.1f", v);
  } else if (v < 9.995) {
    snprintf(buf, sizeof buf, "%.2f%s", v, UNITS[u]);
  } else if (v < 99.95) {
    snprintf(buf, sizeof buf, "%.1f%s", v, UNITS[u]);
  } else {
    snprintf(buf, sizeof buf, "%.0f%s", v, UNITS[u]);
  }
  return buf;
}

std::string fmt_bytes(uint64_t bytes) {
  static const char* UNITS[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = double(bytes);
  int u = 0;
  while (u < 5 && v >= 1023.95) {
    v /= 1024;
    u++;
  }
  char buf[32];
  snprintf(buf, sizeof buf, v < 99.95 ? "%.1f %s" : "%.0f %s", v, UNITS[u]);
  return buf;
}

std::string fmt_pct(std::optional<double> r, int decimals) {
  if (!r || !std::isfinite(*r)) return "-";
  char buf[32];
  snprintf(buf, sizeof buf, "%.*f", decimals, *r * 100.0);
  return buf;
}

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

std::string json_escape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        o += "\\\"";
        break;
      case '\\':
        o += "\\\\";
        break;
      case '\n':
        o += "\\n";
        break;
      case '\t':
        o += "\\t";
        break;
      case '\r':
        o += "\\r";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o += char(c);
        }
    }
  }
  return o;
}

std::string render_json(const Report& r) {
  JsonObject o;
  char wall[32];
  snprintf(wall, sizeof wall, "%.3f", r.wall);  // %g would round a unix time to 6 digits
  o.raw("time", wall).num("seq", r.seq).num("interval_s", r.dt).boolean("final", r.final);
  o.str("perf_event", r.perf_event).str("sample_event", r.sample_event);
  o.num("processes", uint64_t(r.procs.size()));
  counters_json(o, r.total);
  std::string procs = "[";
  for (const ProcView& v : r.procs) {
    JsonObject p;
    p.num("pid", uint64_t(v.pid)).str("comm", v.comm).str("lib", v.lib).boolean("alive", v.alive);
    p.num("interval_s", v.dt).boolean("exec", v.exec);
    counters_json(p, v);
    p.raw("bins", bins_json(v)).raw("owners", owners_json(v)).raw("ledger", ledger_json(v));
    if (procs.size() > 1) procs += ',';
    procs += p.done();
  }
  o.raw("procs", procs + "]");
  return o.done();
}

std::string plain_header(const std::string& perf_event) {
  char buf[512];
  snprintf(buf, sizeof buf, "%-8s %7s %-15s %6s %6s %7s %6s %6s %6s %9s %9s %8s %6s\n", "TIME",
           "PID", "COMM", "HIT/s", "MISS/s", "HIT%", "DFAIL", "SET/s", "CLR/s", "LIVE_PG", "LIVE",
           perf_column(perf_event).c_str(), "ALLOC%");
  return buf;
}

std::string plain_lines(const Report& r) {
  std::string out;
  std::string when = r.final ? "final" : clock_str(r.wall);
  for (const ProcView& v : r.procs)
    out += plain_line(when.c_str(), v, v.alive ? v.comm : v.comm + " (exited)");
  if (r.procs.size() > 1) out += plain_line(when.c_str(), r.total, "all");
  if (r.final)
    for (const ProcView& v : r.procs) out += totals_line(v);
  return out;
}

}  // namespace hz3top
