// The interactive view of hz3top: ncurses on the alternate screen, a collector thread separate
// from the drawing thread, keys in a footer. The terminal is restored on every exit path: normal
// return, Ctrl-C, and crash signals. Plain and JSON outputs do not come through here.
#pragma once

#include <atomic>

#include "options.h"
#include "session.h"

namespace hz3top {

// Runs until q, Ctrl-C (`stop`), the count/duration limit or every -p target's exit; in the
// last case prints the final report in plain form after restoring the terminal.
int run_tui(Session& s, const Options& o, std::atomic<bool>& stop);

}  // namespace hz3top
