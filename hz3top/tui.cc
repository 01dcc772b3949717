// ncurses implementation of tui.h. Two threads: the collector (samples the Session on its
// interval, watches for exits every 100 ms) and this one (keys and drawing, ~10 Hz). They share
// only the report history and notes, under one mutex.
#include "tui.h"

#include <langinfo.h>
#include <locale.h>
#include <ncurses.h>
#include <signal.h>
#include <term.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "format.h"
#include "ledger_view.h"
#include "sparkline.h"
#include "terminal.h"

namespace hz3top {

namespace {

constexpr size_t HISTORY = 120;

enum class SortKey { LIVE, SET_RATE, CLEAR_RATE, BIN };
const char* sort_name(SortKey k) {
  switch (k) {
    case SortKey::LIVE:
      return "live";
    case SortKey::SET_RATE:
      return "set/s";
    case SortKey::CLEAR_RATE:
      return "clr/s";
    default:
      return "bin";
  }
}

struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Report> history;
  std::vector<std::string> notes;
  bool quit = false;      // UI -> collector
  bool finished = false;  // collector -> UI: final report taken
  bool exited = false;    // every target exited
  double interval = 1;    // seconds between reports; the `d` key changes it
};

void collector(Session& s, const Options& o, std::atomic<bool>& stop, Shared& sh) {
  const double start = monotonic_seconds();
  double interval;
  {
    std::lock_guard<std::mutex> lk(sh.mu);
    interval = sh.interval;
  }
  double next = start + interval;
  for (long n = 1;; n++) {
    bool last = o.count && n >= o.count;
    bool done = false, exited = false;
    for (;;) {
      s.tick();
      {
        std::unique_lock<std::mutex> lk(sh.mu);
        for (auto& x : s.take_notes()) sh.notes.push_back(std::move(x));
        if (sh.quit || stop.load()) return;
      }
      double now = monotonic_seconds();
      if (s.all_exited()) {
        done = exited = true;
        break;
      }
      if (o.duration > 0 && now >= start + o.duration) {
        done = true;
        break;
      }
      if (now >= next) break;
      std::unique_lock<std::mutex> lk(sh.mu);
      if (sh.interval != interval) {  // a new interval counts from the last report
        next += sh.interval - interval;
        interval = sh.interval;
        continue;
      }
      sh.cv.wait_for(lk, std::chrono::duration<double>(std::min(0.1, next - now)));
    }
    Report r = s.sample(last || done);
    std::unique_lock<std::mutex> lk(sh.mu);
    for (auto& x : s.take_notes()) sh.notes.push_back(std::move(x));
    sh.history.push_back(std::move(r));
    if (sh.history.size() > HISTORY) sh.history.pop_front();
    if (last || done) {
      sh.finished = true;
      sh.exited = exited;
      return;
    }
    next += interval;
    if (next < monotonic_seconds()) next = monotonic_seconds() + interval;
  }
}

// Keys are read every 100 ms at most (the draw loop's pace).
class Screen : public CursesScreen {
 public:
  Screen() : CursesScreen(100) {}
};

struct UiState {
  SortKey sort = SortKey::LIVE;
  bool paused = false;
  bool detail = false;
  bool owners = false;  // the lower table lists owners (heaps) instead of bins
  bool help = false;    // the key help is shown instead of the tables
  bool prompt = false;  // reading a new interval after `d`
  std::string typed;    // what was typed at the prompt
  size_t proc = 0;      // index into the report's procs; == procs.size() means "all"
  size_t selected = 0;  // row in the bins table
  uint32_t detail_bin = 0;
  pid_t detail_pid = 0;
};

const ProcView* chosen_view(const Report& r, size_t idx) {
  if (r.procs.empty()) return nullptr;
  if (r.procs.size() == 1) return &r.procs[0];
  return idx < r.procs.size() ? &r.procs[idx] : &r.total;
}

std::vector<BinRow> sorted_bins(const ProcView& v, SortKey k) {
  std::vector<BinRow> rows = v.bins;
  std::stable_sort(rows.begin(), rows.end(), [k](const BinRow& a, const BinRow& b) {
    switch (k) {
      // By bytes, not pages: a large allocation tags only its head page.
      case SortKey::LIVE:
        return a.live_bytes != b.live_bytes ? a.live_bytes > b.live_bytes : a.bin < b.bin;
      case SortKey::SET_RATE:
        return a.set_rate != b.set_rate ? a.set_rate > b.set_rate : a.bin < b.bin;
      case SortKey::CLEAR_RATE:
        return a.clear_rate != b.clear_rate ? a.clear_rate > b.clear_rate : a.bin < b.bin;
      default:
        return a.bin < b.bin;
    }
  });
  return rows;
}

void draw_line(int y, const std::string& s, int attr = 0) {
  if (y >= LINES) return;
  if (attr) attron(attr);
  mvaddnstr(y, 0, s.c_str(), COLS);
  if (attr) {
    // Reverse-video rows span the full width, like top's header.
    for (int x = int(std::min<size_t>(s.size(), size_t(COLS))); x < COLS; x++) addch(' ');
    attroff(attr);
  }
}

void draw_main(const Report& r, UiState& ui, const std::vector<std::string>& notes, bool utf8,
               double interval, bool exited) {
  int y = 0;
  char buf[512];
  std::string who = r.procs.size() == 1
                        ? "pid " + std::to_string(r.procs[0].pid) + " (" + r.procs[0].comm + ")"
                        : std::to_string(r.procs.size()) + " processes";
  snprintf(buf, sizeof buf, "hz3top  %s  interval %.1f s  %s  events: %s%s%s", who.c_str(),
           interval, fmt_clock(r.wall).c_str(),
           r.perf_event.empty() ? "none" : r.perf_event.c_str(),
           r.sample_event.empty() ? "" : (", sampling " + r.sample_event).c_str(),
           ui.paused ? "   [PAUSED]"
           : exited  ? "   [targets exited]"
                     : "");
  draw_line(y++, buf, A_BOLD);
  y++;
  draw_line(y++, proc_table_header(r.perf_event), A_REVERSE);
  size_t max_procs = size_t(std::max(1, LINES / 3));
  for (size_t i = 0; i < r.procs.size() && i < max_procs; i++) {
    const ProcView& v = r.procs[i];
    bool chosen = r.procs.size() > 1 && ui.proc == i;
    draw_line(y++, proc_table_row(v, proc_name(v)), chosen ? A_BOLD : 0);
  }
  if (r.procs.size() > 1)
    draw_line(y++, proc_table_row(r.total, "all"), ui.proc >= r.procs.size() ? A_BOLD : 0);
  for (size_t i = notes.size() > 2 ? notes.size() - 2 : 0; i < notes.size(); i++)
    draw_line(y++, "note: " + notes[i]);
  y++;

  const ProcView* v = chosen_view(r, ui.proc);
  if (!v) return;
  snprintf(buf, sizeof buf,
           "%s of %s  (since attach: hits %s  misses %s: %s outside, %s untagged  decode "
           "failures %s  sets %s  clears %s)",
           ui.owners ? "Owners" : "Bins",
           v == &r.total ? "all processes" : (std::to_string(v->pid) + " " + v->comm).c_str(),
           fmt_si(double(v->total.hits)).c_str(), fmt_si(double(v->total.misses())).c_str(),
           fmt_si(double(v->total.miss_outside)).c_str(),
           fmt_si(double(v->total.miss_untagged)).c_str(),
           fmt_si(double(v->total.decode_fail)).c_str(), fmt_si(double(v->total.tag_set)).c_str(),
           fmt_si(double(v->total.tag_clear)).c_str());
  draw_line(y++, buf, A_BOLD);
  if (ui.owners) {
    // Owners are heaps (raw owner field = heap id + 1); large blocks have their own owner.
    snprintf(buf, sizeof buf, "%8s %8s %10s %9s", "OWNER", "HEAP", "LIVE_PG", "LIVE");
    draw_line(y++, buf, A_REVERSE);
    std::vector<OwnerRow> rows = v->owners;
    std::stable_sort(rows.begin(), rows.end(), [](const OwnerRow& a, const OwnerRow& b) {
      return a.live_bytes > b.live_bytes;
    });
    for (const OwnerRow& w : rows) {
      if (y >= LINES - 1) break;
      std::string heap =
          w.owner == HZ3_TAG_OWNER_LARGE ? "large" : std::to_string(int(w.owner) - 1);
      snprintf(buf, sizeof buf, "%8u %8s %10llu %9s", w.owner, heap.c_str(),
               (unsigned long long)w.live_pages, fmt_bytes(double(w.live_bytes)).c_str());
      draw_line(y++, buf);
    }
    if (rows.empty()) draw_line(y++, "  (no tagged pages yet)");
    return;
  }
  // The sort arrow takes the place of a trailing space, so the columns stay where the rows have
  // them; printf pads by bytes and the arrow is 3 bytes in UTF-8, so pad by hand.
  const char* arrow = utf8 ? "\u25bc" : "v";
  auto col = [&](const char* name, int width, SortKey k) {
    std::string c = std::string(name) + (ui.sort == k ? arrow : " ");
    int shown = int(strlen(name)) + 1;
    return std::string(size_t(std::max(0, width - shown)), ' ') + c;
  };
  std::string head = col("BIN", 8, SortKey::BIN);
  snprintf(buf, sizeof buf, "%9s %10s ", "SIZE", "LIVE_PG");
  head += buf;
  head += col("LIVE", 10, SortKey::LIVE) + col("SET/s", 10, SortKey::SET_RATE) +
          col("CLR/s", 9, SortKey::CLEAR_RATE);
  snprintf(buf, sizeof buf, "%9s %9s %6s", "SETS", "CLEARS", "OWNERS");
  head += buf;
  draw_line(y++, head, A_REVERSE);
  std::vector<BinRow> rows = sorted_bins(*v, ui.sort);
  if (!rows.empty() && ui.selected >= rows.size()) ui.selected = rows.size() - 1;
  int room = LINES - 1 - y;
  size_t first = ui.selected >= size_t(std::max(room, 1)) ? ui.selected - size_t(room) + 1 : 0;
  for (size_t i = first; i < rows.size() && y < LINES - 1; i++) {
    const BinRow& b = rows[i];
    if (b.bin == HZ3_TAG_BIN_LARGE) {
      snprintf(buf, sizeof buf, "%7s %9s", "large", "-");
    } else {
      snprintf(buf, sizeof buf, "%7u %9s", b.bin, fmt_bin(b.bin, b.size).c_str());
    }
    std::string line = buf;
    snprintf(buf, sizeof buf, " %10llu %9s %9s %8s %9s %9s %6u", (unsigned long long)b.live_pages,
             fmt_bytes(double(b.live_bytes)).c_str(), fmt_si(b.set_rate).c_str(),
             fmt_si(b.clear_rate).c_str(), fmt_si(double(b.sets)).c_str(),
             fmt_si(double(b.clears)).c_str(), b.owners);
    draw_line(y++, line + buf, i == ui.selected ? A_REVERSE : 0);
    if (i == ui.selected) {
      ui.detail_bin = b.bin;
      ui.detail_pid = v == &r.total ? 0 : v->pid;
    }
  }
  if (rows.empty()) draw_line(y++, "  (no tagged pages yet)");
}

// The chosen process (or all of them) over the history: sparklines of its hit rate and live
// bytes, and its allocator ledger now. Returns the next free line.
int draw_proc_detail(const std::deque<Report>& history, const UiState& ui, bool utf8) {
  int y = 0;
  char buf[256];
  std::vector<std::optional<double>> hits, live;
  const ProcView* last = nullptr;
  for (const Report& r : history) {
    const ProcView* v = ui.detail_pid == 0 ? &r.total : nullptr;
    for (const ProcView& p : r.procs)
      if (ui.detail_pid && p.pid == ui.detail_pid) v = &p;
    if (!v) continue;
    hits.push_back(v->hits_reported ? std::optional<double>(v->hit_rate) : std::nullopt);
    live.push_back(double(v->live_bytes));
    last = v;
  }
  if (!last) return y;
  size_t room = size_t(std::max(10, COLS - 30));
  if (hits.size() > room) {
    hits.erase(hits.begin(), hits.end() - long(room));
    live.erase(live.begin(), live.end() - long(room));
  }
  snprintf(buf, sizeof buf, "Process: %s  (last %zu intervals; now %s hits/s, %s live)",
           ui.detail_pid ? ("pid " + std::to_string(ui.detail_pid) + " " + last->comm).c_str()
                         : "all processes",
           hits.size(), last->hits_reported ? fmt_si(last->hit_rate).c_str() : "-",
           fmt_bytes(double(last->live_bytes)).c_str());
  draw_line(y++, buf, A_BOLD);
  draw_line(y++, "  hit/s  " + sparkline(hits, utf8));
  draw_line(y++, "  live   " + sparkline(live, utf8) + "  " + fmt_bytes(double(last->live_bytes)));
  if (last->ledger_ok) {
    for (const LedgerLine& l : ledger_lines(last->ledger)) {
      if (y >= LINES / 2) break;
      if (l.mark == '+' && l.bytes == 0) continue;  // room for the owners: 0 adds nothing
      snprintf(buf, sizeof buf, "  %c %10s  %s", l.mark, fmt_bytes(double(l.bytes)).c_str(),
               l.label.c_str());
      draw_line(y++, buf);
    }
    // Owners by the bytes their spans have handed out (application, their caches, inboxes).
    std::vector<std::pair<uint32_t, const OwnerLedger*>> owners;
    for (auto& [owner, h] : last->ledger.owners) owners.emplace_back(owner, &h);
    std::sort(owners.begin(), owners.end(),
              [](auto& a, auto& b) { return a.second->used > b.second->used; });
    // With the split (descriptor version 4): the application's share, the owner's cache, its
    // inboxes, its blocks other threads hold undelivered ("pending"), and the other heaps'
    // blocks its thread holds ("held").
    bool split = last->ledger.split;
    if (!owners.empty() && y < LINES / 2)
      draw_line(y++,
                split
                    ? "  small/medium spans by owner:       application    cache    inbox"
                      "  pending     held     free"
                    : "  small/medium spans by owner:               out of spans     free   spans");
    for (auto& [owner, h] : owners) {
      if (y >= LINES / 2) break;
      std::string who = heap_owner_label(owner, *h);
      if (split)
        snprintf(buf, sizeof buf, "    %-34.34s %9s %8s %8s %8s %8s %8s", who.c_str(),
                 fmt_bytes(double(h->app)).c_str(), fmt_bytes(double(h->cached)).c_str(),
                 fmt_bytes(double(h->inbox)).c_str(), fmt_bytes(double(h->remote_pending)).c_str(),
                 fmt_bytes(double(h->remote_held)).c_str(), fmt_bytes(double(h->free)).c_str());
      else
        snprintf(buf, sizeof buf, "    %-40.40s %12s %8s %7llu", who.c_str(),
                 fmt_bytes(double(h->used)).c_str(), fmt_bytes(double(h->free)).c_str(),
                 (unsigned long long)h->spans);
      draw_line(y++, buf);
    }
  } else {
    draw_line(y++, "  (no allocator ledger: the library's descriptor is older than version 2)");
  }
  return y + 1;
}

void draw_help(bool utf8) {
  const char* up = utf8 ? "↑↓" : "up/down";
  const char* lr = utf8 ? "←→" : "left/right";
  int y = 0;
  draw_line(y++, "hz3top keys", A_BOLD);
  y++;
  const std::string text[] = {
      "  q          quit (the final report stays on the screen when the targets have exited)",
      "  ?          this help; any key goes back",
      "  d          change the interval (seconds; Enter applies, Esc keeps the old one)",
      "  s          sort the bins: live bytes, set/s, clr/s, bin",
      "  p, space   pause the screen (numbers are still collected)",
      std::string("  ") + up + std::string(size_t(std::max(0, 11 - int(strlen(up)))), ' ') +
          "select a bin",
      std::string("  ") + lr + std::string(size_t(std::max(0, 11 - int(strlen(lr)))), ' ') +
          "select a process (tab too); the last one is \"all\"",
      "  Enter      detail of the selected process and bin: sparklines of hit rate and live",
      "             bytes, the allocator's ledger, the bin's history; Esc goes back",
      "  o          owners (heaps) instead of bins",
      "",
      "  HIT/s \"-\": no hits report arrived in the interval (threads report hits in batches).",
  };
  for (const std::string& l : text) draw_line(y++, l);
}

void draw_detail(const std::deque<Report>& history, const UiState& ui, bool utf8) {
  int y = draw_proc_detail(history, ui, utf8);
  char buf[256];
  const BinRow* latest = nullptr;
  std::vector<std::pair<double, BinRow>> rows;
  for (const Report& r : history) {
    const ProcView* v = nullptr;
    if (ui.detail_pid == 0) {
      v = &r.total;
    } else {
      for (const ProcView& p : r.procs)
        if (p.pid == ui.detail_pid) v = &p;
    }
    if (!v) continue;
    BinRow row;
    row.bin = ui.detail_bin;
    for (const BinRow& b : v->bins)
      if (b.bin == ui.detail_bin) row = b;
    rows.emplace_back(r.wall, row);
  }
  if (!rows.empty()) latest = &rows.back().second;
  std::string name = ui.detail_bin == HZ3_TAG_BIN_LARGE
                         ? "large allocations"
                         : "bin " + std::to_string(ui.detail_bin) + " (" +
                               fmt_bin(ui.detail_bin, latest ? latest->size : 0) + ")";
  snprintf(buf, sizeof buf, "Detail: %s of %s — last %zu intervals", name.c_str(),
           ui.detail_pid ? ("pid " + std::to_string(ui.detail_pid)).c_str() : "all processes",
           rows.size());
  draw_line(y++, buf, A_BOLD);
  if (latest) {
    snprintf(buf, sizeof buf,
             "live %llu pages (%s), %u owners; since attach %llu sets (%llu pages), %llu clears "
             "(%llu pages)",
             (unsigned long long)latest->live_pages, fmt_bytes(double(latest->live_bytes)).c_str(),
             latest->owners, (unsigned long long)latest->sets,
             (unsigned long long)latest->set_pages, (unsigned long long)latest->clears,
             (unsigned long long)latest->clear_pages);
    draw_line(y++, buf);
  }
  y++;
  snprintf(buf, sizeof buf, "%-11s %10s %9s %8s %8s  %s", "TIME", "LIVE_PG", "LIVE", "SET/s",
           "CLR/s", "live pages");
  draw_line(y++, buf, A_REVERSE);
  uint64_t peak = 1;
  for (auto& [t, b] : rows) peak = std::max(peak, b.live_pages);
  // Newest first; a bar per interval makes the trend readable at a glance.
  for (size_t i = rows.size(); i-- > 0 && y < LINES - 1;) {
    auto& [t, b] = rows[i];
    int width = int(double(b.live_pages) / double(peak) * 30.0 + 0.5);
    // Tenths tell sub-second intervals apart.
    snprintf(buf, sizeof buf, "%-11s %10llu %9s %8s %8s  %s", fmt_clock(t, true).c_str(),
             (unsigned long long)b.live_pages, fmt_bytes(double(b.live_bytes)).c_str(),
             fmt_si(b.set_rate).c_str(), fmt_si(b.clear_rate).c_str(),
             std::string(size_t(width), '#').c_str());
    draw_line(y++, buf);
  }
}

}  // namespace

int run_tui(Session& s, const Options& o, std::atomic<bool>& stop) {
  Shared sh;
  Report final_report;
  bool print_final = false;
  {
    Screen screen;
    sh.interval = o.interval;
    std::thread col(collector, std::ref(s), std::cref(o), std::ref(stop), std::ref(sh));
    UiState ui;
    std::deque<Report> shown;  // what is on screen; frozen while paused
    std::vector<std::string> notes;
    double interval = o.interval;
    for (;;) {
      bool finished;
      {
        std::lock_guard<std::mutex> lk(sh.mu);
        if (!ui.paused) shown = sh.history;
        notes = sh.notes;
        finished = sh.finished;
        interval = sh.interval;
        if (finished && !sh.history.empty()) {
          final_report = sh.history.back();
          print_final = true;
        }
      }
      if (finished || stop.load()) break;
      erase();
      if (ui.help) {
        draw_help(screen.utf8());
      } else if (shown.empty()) {
        draw_line(
            0, "hz3top: attached, first numbers after one interval (" + fmt_si(interval) + " s)…",
            A_BOLD);
      } else if (ui.detail) {
        draw_detail(shown, ui, screen.utf8());
      } else {
        draw_main(shown.back(), ui, notes, screen.utf8(), interval, false);
      }
      const char* footer = ui.detail ? "(q) quit | (esc/\u21b5) back | (p) pause | (?) help"
                                     : "(q) quit | (s) sort | (p) pause | (\u2191\u2193) select | "
                                       "(\u21b5) detail | (o) owners | (\u2190\u2192) process | "
                                       "(d) interval | (?) help";
      if (!screen.utf8())
        footer = ui.detail ? "(q) quit | (esc/enter) back | (p) pause | (?) help"
                           : "(q) quit | (s) sort | (p) pause | (up/down) select | (enter) detail "
                             "| (o) owners | (left/right) process | (d) interval | (?) help";
      std::string foot = footer;
      if (!ui.detail) foot += std::string("   sort: ") + sort_name(ui.sort);
      if (ui.prompt) {
        char pb[128];
        snprintf(pb, sizeof pb,
                 "interval in seconds (now %g; Enter applies, Esc cancels): ", interval);
        foot = pb + ui.typed;
      }
      draw_line(LINES - 1, foot, A_REVERSE);
      refresh();

      int ch = getch();  // waits up to 100 ms
      if (ch == ERR) continue;
      if (ui.prompt) {
        if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
          char* end = nullptr;
          double v = strtod(ui.typed.c_str(), &end);
          if (!ui.typed.empty() && end && *end == 0 && std::isfinite(v) && v >= 0.05 && v <= 3600) {
            std::lock_guard<std::mutex> lk(sh.mu);
            sh.interval = v;
          } else {
            std::lock_guard<std::mutex> lk(sh.mu);
            sh.notes.push_back("interval must be a number of seconds from 0.05 to 3600, not '" +
                               ui.typed + "'");
          }
          sh.cv.notify_all();
          ui.prompt = false;
        } else if (ch == 27) {
          ui.prompt = false;
        } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
          if (!ui.typed.empty()) ui.typed.pop_back();
        } else if (((ch >= '0' && ch <= '9') || ch == '.') && ui.typed.size() < 12) {
          ui.typed += char(ch);
        }
        continue;
      }
      if (ui.help) {  // any key leaves the help; q still quits
        ui.help = false;
        if (ch != 'q' && ch != 'Q') continue;
      }
      if (ch == 'q' || ch == 'Q') break;
      switch (ch) {
        case '?':
        case 'h':
          ui.help = true;
          break;
        case 'd':
        case 'D':
          ui.prompt = true;
          ui.typed.clear();
          break;
        case KEY_LEFT:
        case KEY_RIGHT: {
          size_t n = shown.empty() ? 1 : shown.back().procs.size();
          if (n > 1) ui.proc = ch == KEY_RIGHT ? (ui.proc + 1) % (n + 1) : (ui.proc + n) % (n + 1);
          ui.selected = 0;
          break;
        }
        case 's':
        case 'S':
          ui.sort = SortKey((int(ui.sort) + 1) % 4);
          ui.selected = 0;
          break;
        case 'p':
        case 'P':
        case ' ':
          ui.paused = !ui.paused;
          break;
        case KEY_UP:
        case 'k':
          if (ui.selected) ui.selected--;
          break;
        case KEY_DOWN:
        case 'j':
          ui.selected++;
          break;
        case '\t': {
          size_t n = shown.empty() ? 1 : shown.back().procs.size();
          ui.proc = n > 1 ? (ui.proc + 1) % (n + 1) : 0;
          ui.selected = 0;
          break;
        }
        case 'o':
        case 'O':
          ui.owners = !ui.owners;
          ui.detail = false;
          break;
        case '\n':
        case '\r':
        case KEY_ENTER:
          ui.detail = !ui.owners && !ui.detail;
          break;
        case 27:
        case KEY_BACKSPACE:
        case 127:
          ui.detail = false;
          break;
        default:
          break;
      }
    }
    {
      std::lock_guard<std::mutex> lk(sh.mu);
      sh.quit = true;
    }
    sh.cv.notify_all();
    col.join();
  }  // terminal restored here
  // Every target exited (or the count/duration ran out): leave the final numbers on the
  // ordinary screen, where they stay readable after the alternate screen is gone.
  if (print_final) {
    fputs(plain_header(final_report.perf_event).c_str(), stdout);
    fputs(plain_lines(final_report).c_str(), stdout);
  }
  return 0;
}

}  // namespace hz3top
