// Renderings of the ledger behind ledger_view.h.
#include "ledger_view.h"

namespace hz3top {

Json ledger_json(const ProcView& v) {
  if (!v.ledger_ok) return nullptr;
  const Ledger& g = v.ledger;
  Json o;
  o["app_total"] = g.app_total();
  o["small_used"] = g.small_used;
  // The split of small_used (descriptor version 4); null when the library does not export it.
  auto split = [&](uint64_t v) { return g.split ? Json(v) : Json(nullptr); };
  o["app_small"] = split(g.app_small);
  o["thread_caches"] = split(g.thread_caches);
  o["inboxes"] = split(g.inboxes);
  o["remote_pending"] = split(g.remote_pending);
  o["cached_objs"] = split(g.cached_objs);
  o["inbox_objs"] = split(g.inbox_objs);
  o["remote_objs"] = split(g.remote_objs);
  o["app_large"] = g.app_large;
  o["span_free"] = g.span_free;
  o["span_waste"] = g.span_waste;
  o["pageheap_dirty"] = g.pageheap_dirty;
  o["pageheap_released"] = g.pageheap_released;
  o["unwalked"] = g.unwalked;
  o["arena"] = g.arena;
  o["huge"] = g.huge;
  o["mapped"] = g.mapped();
  o["arena_committed"] = g.committed;
  o["arena_reserved"] = g.reserved;
  o["small_spans"] = g.small_spans;
  o["large_blocks"] = g.large_blocks;
  o["huge_blocks"] = g.huge_blocks;
  o["free_runs"] = g.free_runs;
  Json heaps = Json::array();
  for (auto& [owner, h] : g.owners) {
    Json x;
    x["heap"] = owner - 1;
    x["spans"] = h.spans;
    x["pages"] = h.pages;
    x["used"] = h.used;
    x["free"] = h.free;
    if (h.split) {
      x["app"] = h.app;
      x["cached"] = h.cached;
      x["inbox"] = h.inbox;
      x["remote_pending"] = h.remote_pending;
      x["remote_held"] = h.remote_held;
    }
    if (h.owner_known) {
      x["owner"] = owner == 1 ? "shared" : h.orphan ? "orphan" : "thread";
      x["tid"] = h.orphan || h.tid <= 0 ? Json(nullptr) : Json(h.tid);
      x["thread"] = h.orphan || h.thread.empty() ? Json(nullptr) : Json(h.thread);
    }
    heaps.push_back(std::move(x));
  }
  o["heaps"] = std::move(heaps);
  return o;
}

std::string ledger_plain(const ProcView& v) {
  if (!v.ledger_ok) return "";
  const Ledger& g = v.ledger;
  std::string s = "# ledger pid=" + std::to_string(v.pid) + " comm=" + v.comm;
  auto add = [&](const char* k, uint64_t b) {
    s += std::string(" ") + k + "=" + std::to_string(b);
  };
  if (g.split) {
    add("app_small", g.app_small);
    add("remote_pending", g.remote_pending);
    add("thread_caches", g.thread_caches);
    add("inboxes", g.inboxes);
  } else {
    add("small_used", g.small_used);
  }
  add("app_large", g.app_large);
  add("span_free", g.span_free);
  add("span_waste", g.span_waste);
  add("pageheap_dirty", g.pageheap_dirty);
  add("pageheap_released", g.pageheap_released);
  add("unwalked", g.unwalked);
  add("arena", g.arena);
  add("huge", g.huge);
  return s + "\n";
}

std::vector<LedgerLine> ledger_lines(const Ledger& g) {
  std::vector<LedgerLine> l;
  if (g.split) {
    l = {
        {' ', g.app_small, "in use by application: small/medium objects"},
        {'+', g.remote_pending,
         "freed by other threads, not yet delivered (" + std::to_string(g.remote_objs) +
             " objects)"},
        {'+', g.thread_caches, "in thread caches (" + std::to_string(g.cached_objs) + " objects)"},
        {'+', g.inboxes, "in remote-free inboxes (" + std::to_string(g.inbox_objs) + " objects)"},
    };
  } else {
    l = {{' ', g.small_used, "small/medium objects out of spans (application, caches, inboxes)"}};
  }
  std::vector<LedgerLine> rest = {
      {'+', g.app_large, "large blocks (" + std::to_string(g.large_blocks) + ")"},
      {'+', g.span_free, "free in spans (" + std::to_string(g.small_spans) + " spans)"},
      {'+', g.span_waste, "span tails no object fits into"},
      {'+', g.pageheap_dirty, "page heap: free, dirty (resident)"},
      {'+', g.pageheap_released, "page heap: free, released (not resident)"},
  };
  l.insert(l.end(), rest.begin(), rest.end());
  if (g.unwalked) l.push_back({'+', g.unwalked, "changing while read"});
  l.push_back({'=', g.arena, "arena pages handed out"});
  l.push_back({'+', g.huge, "huge blocks (" + std::to_string(g.huge_blocks) + ")"});
  l.push_back({'=', g.mapped(), "mapped (without metadata)"});
  return l;
}

std::string heap_owner_label(uint32_t owner, const OwnerLedger& h) {
  std::string s = "heap " + std::to_string(owner - 1);
  if (!h.owner_known) return s;
  if (owner == 1) return s + " (shared)";
  if (h.orphan) return s + " (orphan)";
  return s + " tid " + std::to_string(h.tid) + " " + (h.thread.empty() ? "(exited)" : h.thread);
}

}  // namespace hz3top
