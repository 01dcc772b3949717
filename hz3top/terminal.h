// The curses screen shared by hz3top's two interactive views (tui.cc, heap_tui.cc): entering it
// (alternate screen, no echo, keypad, hidden cursor, the input timeout), leaving it, and putting
// the terminal back if hz3top crashes meanwhile (a handler for SIGSEGV, SIGBUS, SIGFPE, SIGILL
// and SIGABRT that restores the saved termios and writes rmcup/cnorm/sgr0, async-signal-safe).
// One at a time per process.
#pragma once

namespace hz3top {

class CursesScreen {
 public:
  // Keys are read with getch() waiting at most input_timeout_ms (0: never waits).
  explicit CursesScreen(int input_timeout_ms);
  ~CursesScreen();
  CursesScreen(const CursesScreen&) = delete;
  CursesScreen& operator=(const CursesScreen&) = delete;
  bool utf8() const { return utf8_; }  // the locale's charset is UTF-8

 private:
  bool utf8_ = false;
};

}  // namespace hz3top
