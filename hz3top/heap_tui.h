// The interactive heap view: ncurses on the alternate screen, the sites of every traced process
// in one table with a sort key, a selected row, and on Enter the selected site's stacks in full
// (frames with source lines, wrappers and inlined functions marked). Keys in a footer. The
// terminal is restored on every exit path, crash signals included. The heap loop (heap_view.cc)
// hands it each report and polls its keys between them.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "heap_model.h"
#include "terminal.h"

namespace hz3top {

class HeapTui {
 public:
  HeapTui();
  ~HeapTui();
  HeapTui(const HeapTui&) = delete;
  HeapTui& operator=(const HeapTui&) = delete;
  void show(const HeapReport& r);
  // Handles the keys typed since the last call, without waiting. False once the user quit.
  bool keys();

 private:
  enum class Sort { LIVE, GROWTH, DELTA, ALLOC_RATE, OBJECTS, AGE };
  void draw();
  void draw_table(int rows, int cols);
  void draw_stacks(int rows, int cols);
  std::vector<std::pair<const HeapProc*, const HeapSite*>> sorted() const;

  HeapReport report_;
  CursesScreen screen_;
  bool have_ = false, paused_ = false, detail_ = false;
  Sort sort_ = Sort::LIVE;
  size_t selected_ = 0, scroll_ = 0;
  std::pair<pid_t, std::string> selected_key_;  // follows the site across reports
};

}  // namespace hz3top
