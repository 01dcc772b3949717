// CursesScreen (terminal.h).
#include "terminal.h"

#include <langinfo.h>
#include <locale.h>
#include <ncurses.h>
#include <signal.h>
#include <term.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

namespace hz3top {

namespace {

// Saved for the crash handler, which may only use async-signal-safe calls: tcsetattr and write
// of escape strings captured while the terminal was set up.
termios g_saved_termios;
bool g_have_termios = false;
char g_restore_seq[128];
size_t g_restore_len = 0;
constexpr int CRASH_SIGNALS[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

void crash_restore(int sig) {
  if (g_have_termios) tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_termios);
  if (g_restore_len) (void)!write(STDOUT_FILENO, g_restore_seq, g_restore_len);
  signal(sig, SIG_DFL);
  raise(sig);
}

void append_cap(const char* name) {
  const char* s = tigetstr(const_cast<char*>(name));
  if (!s || s == reinterpret_cast<const char*>(-1)) return;
  size_t n = strlen(s);
  if (g_restore_len + n >= sizeof g_restore_seq) return;
  memcpy(g_restore_seq + g_restore_len, s, n);
  g_restore_len += n;
}

}  // namespace

CursesScreen::CursesScreen(int input_timeout_ms) {
  setlocale(LC_ALL, "");
  utf8_ = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
  g_have_termios = tcgetattr(STDIN_FILENO, &g_saved_termios) == 0;
  initscr();  // enters the alternate screen (smcup) where the terminal has one
  cbreak();   // keeps ISIG: Ctrl-C still raises SIGINT, which the stop flag handles
  noecho();
  keypad(stdscr, TRUE);
  curs_set(0);
  timeout(input_timeout_ms);
  set_escdelay(25);  // Esc alone must not wait a second for a key sequence that never comes
  g_restore_len = 0;
  append_cap("rmcup");
  append_cap("cnorm");
  append_cap("sgr0");
  struct sigaction sa {};
  sa.sa_handler = crash_restore;
  sigemptyset(&sa.sa_mask);
  for (int sig : CRASH_SIGNALS) sigaction(sig, &sa, nullptr);
}

CursesScreen::~CursesScreen() {
  endwin();
  for (int sig : CRASH_SIGNALS) signal(sig, SIG_DFL);
}

}  // namespace hz3top
