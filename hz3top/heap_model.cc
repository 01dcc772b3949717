// Per-process bookkeeping of sampled allocations behind heap_model.h.
#include "heap_model.h"

#include <algorithm>
#include <cmath>

namespace hz3top {

void HeapSums::add(const HeapSums& o) {
  live_bytes += o.live_bytes;
  alloc_bytes += o.alloc_bytes;
  live_objects += o.live_objects;
  alloc_objects += o.alloc_objects;
  live_var += o.live_var;
  alloc_var += o.alloc_var;
  live_samples += o.live_samples;
  alloc_samples += o.alloc_samples;
}

double HeapSums::live_err() const { return std::sqrt(std::max(0.0, live_var)); }
double HeapSums::alloc_err() const { return std::sqrt(std::max(0.0, alloc_var)); }
double HeapSums::live_rel_err() const { return live_bytes > 0 ? live_err() / live_bytes : 0; }
double HeapSums::alloc_rel_err() const { return alloc_bytes > 0 ? alloc_err() / alloc_bytes : 0; }

namespace {

// A sample's term of the variance estimate (HeapSums): w (w - s), 0 for a block sampled for sure.
double var_term(double weight, double size) { return weight > size ? weight * (weight - size) : 0; }

}  // namespace

Wrappers::Wrappers()
    : names{
          // The C allocation API (libc's own, or another allocator's exported one).
          "malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign", "aligned_alloc",
          "memalign", "valloc", "pvalloc", "strdup", "strndup", "__libc_*", "__strdup", "__strndup",
          // C++.
          "operator new*", "operator new[]*", "std::allocator*", "std::__new_allocator*",
          "__gnu_cxx::new_allocator*", "std::allocator_traits*",
          // Services' own wrappers: redis/valkey, CPython, glib, GNU xmalloc, SQLite.
          "zmalloc*", "ztrymalloc*", "zcalloc*", "ztrycalloc*", "zrealloc*", "ztryrealloc*",
          "zstrdup", "PyMem_*", "_PyMem_*", "PyObject_Malloc", "PyObject_Calloc",
          "PyObject_Realloc", "_PyObject_Malloc", "_PyObject_Calloc", "_PyObject_Realloc",
          "g_malloc*", "g_try_malloc*", "g_realloc*", "g_try_realloc*", "g_slice_alloc*", "xmalloc",
          "xcalloc", "xrealloc", "xstrdup", "sqlite3Malloc*", "sqlite3_malloc*"} {}

bool Wrappers::match(const std::string& func) const {
  if (func.empty()) return false;
  // "zmalloc(unsigned long)" and "zmalloc" alike: compare the name before the parameters
  // (operator names keep their own parentheses out of the way: "operator new(unsigned long)").
  std::string name = func;
  size_t paren = name.compare(0, 8, "operator") == 0 ? name.find('(', 9) : name.find('(');
  if (paren != std::string::npos) name.resize(paren);
  for (const std::string& p : names) {
    if (!p.empty() && p.back() == '*') {
      if (name.compare(0, p.size() - 1, p, 0, p.size() - 1) == 0) return true;
    } else if (name == p) {
      return true;
    }
  }
  return false;
}

double sample_mean_of(double size, double weight) {
  if (size <= 0 || weight < 2 * size) return 0;
  return -size / std::log1p(-size / weight);
}

bool prefer_dwarf(size_t dwarf_len, bool dwarf_complete, size_t fp_len) {
  return dwarf_len > 0 && (dwarf_complete || dwarf_len >= fp_len);
}

HeapProcess::HeapProcess(pid_t pid, Library lib, const Wrappers* wrappers, Unwind unwind,
                         double attach_t)
    : pid_(pid),
      comm_(read_comm(pid)),
      lib_(std::move(lib)),
      wrappers_(wrappers),
      unwind_(unwind),
      sym_(std::make_unique<Symbolizer>(pid)),
      attach_t_(attach_t),
      prev_t_(attach_t) {
  std::string err;
  sym_->refresh(&err);
}

uint32_t HeapProcess::intern(std::vector<uint64_t> pcs, bool dwarf) {
  auto it = ids_.find(pcs);
  if (it != ids_.end()) return it->second;
  Stack s;
  // Symbolized once, when first seen, so a process that has exited still gets its final report.
  for (size_t i = 0; i < pcs.size(); i++)
    for (Frame& f : sym_->resolve_inlined(pcs[i], i > 0)) s.frames.push_back(std::move(f));
  s.pcs = pcs;
  s.dwarf = dwarf;
  uint32_t id = uint32_t(stacks_.size());
  stacks_.push_back(std::move(s));
  ids_.emplace(std::move(pcs), id);
  return id;
}

void HeapProcess::note_mean(double size, double weight) {
  double m = sample_mean_of(size, weight);
  if (m <= 0) return;
  auto& b = means_[std::lround(std::log2(m))];
  b.first++;
  b.second += m;
}

void HeapProcess::on_alloc(const hz3_heap_alloc_event& e) {
  std::vector<uint64_t> fp, dw;
  if (unwind_ != Unwind::DWARF) {
    // A frame-pointer walk through code without frame pointers can go on past garbage: it ends
    // at the first null address.
    for (uint32_t i = 0; i < std::min<uint32_t>(e.nips, HZ3_HEAP_STACK_DEPTH) && e.ips[i]; i++)
      fp.push_back(e.ips[i]);
  }
  bool complete = false;
  if (e.stack_len && unwind_ != Unwind::FP)
    dw = sym_->unwind(pid_t(e.tid), reinterpret_cast<const uint64_t*>(e.regs), e.stack_base,
                      e.stack, std::min<uint64_t>(e.stack_len, HZ3_HEAP_STACK_COPY),
                      HZ3_HEAP_STACK_DEPTH, &complete);
  bool dwarf = prefer_dwarf(dw.size(), complete, fp.size());
  uint32_t id = intern(dwarf ? std::move(dw) : std::move(fp), dwarf);
  Stack& s = stacks_[id];
  double w = double(e.weight), objs = e.size ? double(e.weight) / double(e.size) : 0;
  s.alloc_bytes += w;
  s.alloc_objects += objs;
  s.alloc_var += var_term(w, double(e.size));
  s.alloc_samples++;
  note_mean(double(e.size), w);
  // A block still live at the same address lost its free event (ring buffer full): end it.
  auto old = live_.find(e.ptr);
  if (old != live_.end()) {
    Stack& o = stacks_[old->second.stack];
    o.freed_bytes += old->second.weight;
    o.freed_objects += old->second.size ? old->second.weight / old->second.size : 0;
    o.freed_var += var_term(old->second.weight, old->second.size);
    o.freed_samples++;
  }
  live_[e.ptr] = Live{id, w, double(e.size), double(e.ts) / 1e9};
}

bool HeapProcess::on_free(const hz3_heap_free_event& e) {
  auto it = live_.find(e.ptr);
  if (it == live_.end()) return false;
  Stack& s = stacks_[it->second.stack];
  s.freed_bytes += it->second.weight;
  s.freed_objects += it->second.size ? it->second.weight / it->second.size : 0;
  s.freed_var += var_term(it->second.weight, it->second.size);
  s.freed_samples++;
  live_.erase(it);
  return true;
}

namespace {

std::string site_key(const Frame& f) {
  if (f.func.empty()) return f.label();
  return f.func + (f.lib.empty() ? "" : " (" + f.lib + ")");
}

}  // namespace

HeapProc HeapProcess::report(double now) {
  HeapProc p;
  p.pid = pid_;
  p.comm = comm_;
  p.lib = lib_.maps_path;
  p.alive = alive_;
  // The mappings of a process that has exited are those last seen.
  if (alive_) modules_ = sym_->modules();
  p.modules = modules_;
  for (const auto& [exp2, b] : means_) {
    double m = b.second / double(b.first);
    if (b.first > p.sample_mean_samples) {
      p.sample_mean = std::round(m);
      p.sample_mean_samples = b.first;
    }
    p.sample_mean_max = std::max(p.sample_mean_max, std::round(m));
  }
  // Ages of the live samples, per stack.
  std::vector<double> age_sum(stacks_.size(), 0), age_max(stacks_.size(), 0);
  for (const auto& [ptr, l] : live_) {
    double age = std::max(0.0, now - l.t);
    age_sum[l.stack] += age;
    age_max[l.stack] = std::max(age_max[l.stack], age);
  }
  std::map<std::string, HeapSite> by_key;
  std::map<std::string, double> site_age_sum;
  for (size_t id = 0; id < stacks_.size(); id++) {
    const Stack& s = stacks_[id];
    HeapStack hs;
    hs.frames = s.frames;
    hs.dwarf = s.dwarf;
    while (hs.hz3_frames < hs.frames.size() && lib_.in_text(hs.frames[hs.hz3_frames].addr))
      hs.hz3_frames++;
    hs.site_at = hs.hz3_frames;
    while (hs.site_at < hs.frames.size() && wrappers_->match(hs.frames[hs.site_at].func))
      hs.site_at++;
    if (hs.site_at >= hs.frames.size()) hs.site_at = hs.frames.empty() ? 0 : hs.frames.size() - 1;
    hs.sums.alloc_bytes = s.alloc_bytes;
    hs.sums.alloc_objects = s.alloc_objects;
    hs.sums.alloc_samples = s.alloc_samples;
    hs.sums.live_bytes = s.alloc_bytes - s.freed_bytes;
    hs.sums.live_objects = s.alloc_objects - s.freed_objects;
    hs.sums.live_samples = s.alloc_samples - s.freed_samples;
    hs.sums.alloc_var = s.alloc_var;
    hs.sums.live_var = std::max(0.0, s.alloc_var - s.freed_var);
    (s.dwarf ? p.dwarf_stacks : p.fp_stacks)++;
    Frame site;
    if (hs.frames.empty())
      site.func = "[stack lost]";
    else
      site = hs.frames[hs.site_at];
    std::string key = site_key(site);
    HeapSite& h = by_key[key];
    if (h.key.empty()) {
      h.key = key;
      h.site = site;
    }
    h.sums.add(hs.sums);
    site_age_sum[key] += age_sum[id];
    h.age_max = std::max(h.age_max, age_max[id]);
    h.stacks.push_back(std::move(hs));
  }
  double dt = now - prev_t_, since = now - attach_t_;
  std::map<std::string, std::pair<double, double>> now_vals;
  for (auto& [key, h] : by_key) {
    auto heavier = [](const HeapStack& a, const HeapStack& b) {
      if (a.sums.live_bytes != b.sums.live_bytes) return a.sums.live_bytes > b.sums.live_bytes;
      return a.sums.alloc_bytes > b.sums.alloc_bytes;
    };
    std::sort(h.stacks.begin(), h.stacks.end(), heavier);
    h.site = h.stacks.front().frames.empty() ? h.site
                                             : h.stacks.front().frames[h.stacks.front().site_at];
    auto prev = prev_.find(key);
    double alloc_before = prev == prev_.end() ? 0 : prev->second.first;
    double live_before = prev == prev_.end() ? 0 : prev->second.second;
    h.alloc_rate = dt > 0 ? std::max(0.0, h.sums.alloc_bytes - alloc_before) / dt : 0;
    h.live_delta = h.sums.live_bytes - live_before;
    h.growth_rate = since > 0 ? h.sums.live_bytes / since : 0;
    h.age_mean = h.sums.live_samples ? site_age_sum[key] / double(h.sums.live_samples) : 0;
    now_vals[key] = {h.sums.alloc_bytes, h.sums.live_bytes};
    p.sums.add(h.sums);
    p.alloc_rate += h.alloc_rate;
    p.live_delta += h.live_delta;
    p.growth_rate += h.growth_rate;
    p.sites.push_back(std::move(h));
  }
  prev_ = std::move(now_vals);
  prev_t_ = now;
  std::sort(p.sites.begin(), p.sites.end(), [](const HeapSite& a, const HeapSite& b) {
    if (a.sums.live_bytes != b.sums.live_bytes) return a.sums.live_bytes > b.sums.live_bytes;
    return a.sums.alloc_bytes > b.sums.alloc_bytes;
  });
  return p;
}

}  // namespace hz3top
