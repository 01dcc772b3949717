// ncurses drawing and keys behind heap_tui.h.
#include "heap_tui.h"

#include <curses.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "output.h"

namespace hz3top {

namespace {

void line(int y, int cols, const std::string& s, int attr = 0) {
  if (attr) attron(attr);
  mvaddnstr(y, 0, s.c_str(), cols);
  clrtoeol();
  if (attr) attroff(attr);
}

}  // namespace

HeapTui::HeapTui() : screen_(0) {
  line(0, COLS, "hz3top heap: waiting for the first report…");
  refresh();
}

HeapTui::~HeapTui() = default;

void HeapTui::show(const HeapReport& r) {
  if (paused_ && have_) return;
  report_ = r;
  have_ = true;
  // Keep the selected site selected when the order changes.
  auto rows = sorted();
  for (size_t i = 0; i < rows.size(); i++)
    if (rows[i].first->pid == selected_key_.first && rows[i].second->key == selected_key_.second)
      selected_ = i;
  draw();
}

std::vector<std::pair<const HeapProc*, const HeapSite*>> HeapTui::sorted() const {
  std::vector<std::pair<const HeapProc*, const HeapSite*>> rows;
  for (const HeapProc& p : report_.procs)
    for (const HeapSite& s : p.sites) rows.push_back({&p, &s});
  auto value = [this](const HeapSite& s) {
    switch (sort_) {
      case Sort::LIVE:
        return s.sums.live_bytes;
      case Sort::GROWTH:
        return s.growth_rate;
      case Sort::DELTA:
        return s.live_delta;
      case Sort::ALLOC_RATE:
        return s.alloc_rate;
      case Sort::OBJECTS:
        return s.sums.live_objects;
      case Sort::AGE:
        return s.age_mean;
    }
    return 0.0;
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const auto& a, const auto& b) {
    return value(*a.second) > value(*b.second);
  });
  return rows;
}

static const char* sort_name(int k) {
  static const char* names[] = {"live", "growth/s", "Δlive", "alloc/s", "objects", "age"};
  return names[k];
}

void HeapTui::draw() {
  erase();
  int rows = LINES, cols = COLS;
  if (!have_) {
    line(0, cols, "hz3top heap: waiting for the first report…");
  } else if (detail_) {
    draw_stacks(rows, cols);
  } else {
    draw_table(rows, cols);
  }
  std::string foot = detail_ ? "(q) quit | (esc/enter) back | (p) pause"
                             : "(q) quit | (s) sort: " + std::string(sort_name(int(sort_))) +
                                   " | (up/down) select | (enter) stacks | (p) pause";
  if (paused_) foot += " | PAUSED";
  line(rows - 1, cols, foot, A_REVERSE);
  refresh();
}

void HeapTui::draw_table(int rows, int cols) {
  int y = 0;
  char buf[512];
  for (const HeapProc& p : report_.procs) {
    if (y >= rows - 4) break;
    snprintf(buf, sizeof buf,
             "pid %d %s%s  live ~%s ±%.0f%%  Δ %s  growth %s/s  allocated ~%s (%s/s)  "
             "samples %llu (%llu live)",
             int(p.pid), p.comm.c_str(), p.alive ? "" : " (exited)",
             fmt_bytes(p.sums.live_bytes).c_str(), 100 * p.sums.live_rel_err(),
             fmt_bytes(p.live_delta).c_str(), fmt_bytes(p.growth_rate).c_str(),
             fmt_bytes(p.sums.alloc_bytes).c_str(), fmt_bytes(p.alloc_rate).c_str(),
             static_cast<unsigned long long>(p.sums.alloc_samples),
             static_cast<unsigned long long>(p.sums.live_samples));
    line(y++, cols, buf, A_BOLD);
  }
  snprintf(buf, sizeof buf, "%7s %10s %4s %10s %10s %9s %6s %10s %7s  %s", "PID", "LIVE", "±",
           "ΔLIVE", "GROWTH/s", "OBJECTS", "AGE", "ALLOC/s", "SAMPLES", "SITE");
  line(y++, cols, buf, A_REVERSE);
  auto list = sorted();
  if (selected_ >= list.size()) selected_ = list.empty() ? 0 : list.size() - 1;
  int avail = rows - 1 - y;
  if (avail < 1) return;
  if (selected_ < scroll_) scroll_ = selected_;
  if (selected_ >= scroll_ + size_t(avail)) scroll_ = selected_ - size_t(avail) + 1;
  for (size_t i = scroll_; i < list.size() && y < rows - 1; i++) {
    const HeapProc& p = *list[i].first;
    const HeapSite& s = *list[i].second;
    std::string where = s.site.where();
    snprintf(buf, sizeof buf, "%7d %10s %3.0f%% %10s %10s %9.0f %6.1f %10s %7llu  %s%s%s",
             int(p.pid), fmt_bytes(s.sums.live_bytes).c_str(), 100 * s.sums.live_rel_err(),
             fmt_bytes(s.live_delta).c_str(), fmt_bytes(s.growth_rate).c_str(), s.sums.live_objects,
             s.age_mean, fmt_bytes(s.alloc_rate).c_str(),
             static_cast<unsigned long long>(s.sums.alloc_samples), s.site.label().c_str(),
             where.empty() ? "" : " ", where.c_str());
    line(y++, cols, buf, i == selected_ ? A_STANDOUT : 0);
  }
}

void HeapTui::draw_stacks(int rows, int cols) {
  auto list = sorted();
  if (list.empty()) return;
  const HeapProc& p = *list[std::min(selected_, list.size() - 1)].first;
  const HeapSite& s = *list[std::min(selected_, list.size() - 1)].second;
  int y = 0;
  char buf[512];
  snprintf(buf, sizeof buf, "pid %d %s  site %s  live ~%s ±%.0f%%  allocated ~%s  %zu stack%s",
           int(p.pid), p.comm.c_str(), s.site.label().c_str(), fmt_bytes(s.sums.live_bytes).c_str(),
           100 * s.sums.live_rel_err(), fmt_bytes(s.sums.alloc_bytes).c_str(), s.stacks.size(),
           s.stacks.size() == 1 ? "" : "s");
  line(y++, cols, buf, A_BOLD);
  for (const HeapStack& st : s.stacks) {
    if (y >= rows - 2) break;
    snprintf(buf, sizeof buf, "stack: live ~%s, allocated ~%s, %llu samples, unwound by %s",
             fmt_bytes(st.sums.live_bytes).c_str(), fmt_bytes(st.sums.alloc_bytes).c_str(),
             static_cast<unsigned long long>(st.sums.alloc_samples),
             st.dwarf ? "DWARF" : "frame pointers");
    line(y++, cols, buf, A_REVERSE);
    for (size_t i = 0; i < st.frames.size() && y < rows - 1; i++) {
      const Frame& f = st.frames[i];
      const char* mark = i < st.hz3_frames ? "hz3    "
                         : i < st.site_at  ? "wrapper"
                         : i == st.site_at ? "site   "
                                           : "       ";
      std::string where = f.where();
      snprintf(buf, sizeof buf, "  %s %s%s%s", mark, f.label().c_str(), where.empty() ? "" : "  ",
               where.c_str());
      line(y++, cols, buf, i == st.site_at ? A_BOLD : 0);
    }
  }
}

bool HeapTui::keys() {
  bool redraw = false;
  for (int ch; (ch = getch()) != ERR;) {
    auto list = sorted();
    switch (ch) {
      case 'q':
      case 'Q':
        return false;
      case 's':
        sort_ = Sort((int(sort_) + 1) % 6);
        break;
      case 'p':
        paused_ = !paused_;
        break;
      case KEY_UP:
      case 'k':
        if (selected_ > 0) selected_--;
        break;
      case KEY_DOWN:
      case 'j':
        if (selected_ + 1 < list.size()) selected_++;
        break;
      case '\n':
      case '\r':
      case KEY_ENTER:
        detail_ = !detail_;
        break;
      case 27:  // Esc
      case KEY_BACKSPACE:
        detail_ = false;
        break;
      case KEY_RESIZE:
        break;
      default:
        continue;
    }
    list = sorted();
    if (selected_ < list.size())
      selected_key_ = {list[selected_].first->pid, list[selected_].second->key};
    redraw = true;
  }
  if (redraw) draw();
  return true;
}

}  // namespace hz3top
