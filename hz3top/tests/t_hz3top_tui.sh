#!/usr/bin/env bash
# timeout: 90
# The interactive mode, driven through tmux (send-keys / capture-pane) against a workload on
# real libhz3: it draws on the alternate screen with the keys in a footer; s, p, Enter and Esc
# do what the footer says; and the terminal is restored (alternate screen left) after q, after
# Ctrl-C, after a crash (SIGSEGV), and when the target exits, which also leaves the final
# report on the normal screen. The owners table shows the held large blocks; ? shows the keys,
# d changes the interval (and rejects 0), Enter's detail has sparklines of hit rate and live
# bytes, the allocator's ledger (remote frees held by another thread and waiting in the inbox,
# exactly) and its heaps by owner thread (the workload's main thread by its thread id and name,
# the thread holding remote frees with what it holds), and the left/right arrows choose the
# process; up/down choose the bin whose detail Enter opens.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing tui
if ! command -v tmux >/dev/null; then fail tui "tmux is not installed (scripts/deps.sh test installs it)"; exit 0; fi

SOCK=hz3top-test-$$
tm() { tmux -L "$SOCK" "$@"; }
cleanup_tmux() { tm kill-server 2>/dev/null; cleanup_all; }
trap cleanup_tmux EXIT
tm -f /dev/null new-session -d -s keep -x 150 -y 45 "sleep 600" || { fail tui "tmux cannot start"; exit 0; }
tm set-option -g remain-on-exit on

start_workload tui || { fail tui/workload "did not start"; exit 0; }
# Remote frees: 200 of the main thread's 64 B blocks freed by another thread, 128 delivered to
# the main heap's inbox, 72 held in that thread's remote bucket.
wl "hold 2" && wl "small 100" && wl "alloc 300 64" && wl "xfree 200"

# open NAME: a window running hz3top on the workload; waits for its first report.
open() {
  tm new-window -d -n "$1" "TERM=xterm-256color exec $HZ3TOP -p $WL_PID 0.3"
  local i
  for i in $(seq 100); do
    tm capture-pane -p -t "$1" 2>/dev/null | grep -q 'Bins of' && return 0
    sleep 0.1
  done
  return 1
}
screen() { tm capture-pane -p -t "$1"; }
alt() { tm display-message -p -t "$1" '#{alternate_on}'; }
dead() { tm display-message -p -t "$1" '#{pane_dead}'; }
# wait_for WIN PATTERN: until the pane shows PATTERN (5 s at most).
# wait_for WINDOW REGEX [TENTHS]: 5 s unless told (a first report, which needs the BPF programs
# loaded and attached, can take longer on a loaded machine).
wait_for() {
  local i
  for i in $(seq "${3:-50}"); do screen "$1" | grep -qE "$2" && return 0; sleep 0.1; done
  return 1
}
wait_dead() {
  local i
  for i in $(seq 100); do [ "$(dead "$1")" = 1 ] && return 0; sleep 0.1; done
  return 1
}

if ! open main; then
  fail tui/draws "no report on screen: $(screen main | head -5 | tr '\n' '|')"; exit 0
fi
s=$(screen main)
if [ "$(alt main)" = 1 ] && echo "$s" | grep -q '(q) quit | (s) sort | (p) pause .*(o) owners' &&
   echo "$s" | grep -q 'HIT/s' && echo "$s" | grep -q "$WL_PID"; then
  pass "tui/draws (alternate screen, header, footer)"
else
  fail tui/draws "alternate_on=$(alt main): $(echo "$s" | head -4 | tr '\n' '|')"
fi

tm send-keys -t main s
wait_for main 'sort: set/s' && pass tui/key_sort || fail tui/key_sort "footer: $(screen main | tail -1)"
tm send-keys -t main p
wait_for main 'PAUSED' && pass tui/key_pause || fail tui/key_pause "$(screen main | head -1)"
tm send-keys -t main p
tm send-keys -t main s s s  # back to sorting by live bytes: large is the top row
tm send-keys -t main Enter
if wait_for main 'Detail: large allocations' && wait_for main 'TIME +LIVE_PG'; then
  pass tui/key_detail
else
  fail tui/key_detail "$(screen main | head -3 | tr '\n' '|')"
fi
tm send-keys -t main Escape
wait_for main 'Bins of' && pass tui/key_back || fail tui/key_back "$(screen main | head -2 | tr '\n' '|')"
tm send-keys -t main o
if wait_for main 'Owners of' && wait_for main ' 65535 +large +[0-9]+ '; then
  pass tui/key_owners
else
  fail tui/key_owners "$(screen main | grep -A3 'Owners of' | tr '\n' '|')"
fi
tm send-keys -t main o
wait_for main 'Bins of' || true

tm send-keys -t main '?'
if wait_for main 'hz3top keys' && wait_for main 'd +change the interval'; then
  tm send-keys -t main x  # any key goes back
  wait_for main 'Bins of' && pass tui/key_help || fail tui/key_help "help did not close: $(screen main | head -2 | tr '\n' '|')"
else
  fail tui/key_help "$(screen main | head -3 | tr '\n' '|')"
fi
tm send-keys -t main d
wait_for main 'interval in seconds' || fail tui/key_interval "no prompt: $(screen main | tail -1)"
tm send-keys -t main 0 . 5 Enter
if wait_for main 'interval 0.5 s'; then
  # Reports now come every 0.5 s: the clock in the header moves by at most 1 s per 0.5 s.
  pass tui/key_interval
else
  fail tui/key_interval "$(screen main | head -1)"
fi
tm send-keys -t main d 0 Enter  # out of range: a note, the interval stays
wait_for main 'note: interval must be' && screen main | head -1 | grep -q 'interval 0.5 s' &&
  pass tui/key_interval_rejects_0 || fail tui/key_interval_rejects_0 "$(screen main | head -4 | tr '\n' '|')"
tm send-keys -t main Enter
if wait_for main "Process: pid $WL_PID" && wait_for main '^  hit/s' && wait_for main '^  live ' &&
   wait_for main 'arena pages handed out' && wait_for main "heap 1 tid $WL_PID hz3top_workload" &&
   wait_for main '4\.5 KiB +freed by other threads, not yet delivered \(72 objects\)' &&
   wait_for main '8\.0 KiB +in remote-free inboxes \(128 objects\)' &&
   wait_for main 'in thread caches' && wait_for main 'heap 2 tid [0-9]+ hz3wl-xfree .* 4\.5 KiB' &&
   wait_for main 'Detail: large allocations'; then
  pass tui/detail_sparklines_and_ledger
else
  fail tui/detail_sparklines_and_ledger "$(screen main | head -14 | tr '\n' '|')"
fi
tm send-keys -t main Escape
wait_for main 'Bins of' || true
# Down selects the next bin (a small class: large is the top row by live bytes), Up the first.
tm send-keys -t main Down Enter
ok=0
wait_for main 'Detail: bin [0-9]+ \([0-9]+ [KMG]?i?B\) of pid' && ok=1
tm send-keys -t main Escape
wait_for main 'Bins of' || true
tm send-keys -t main Up Enter
wait_for main 'Detail: large allocations' || ok=0
[ $ok = 1 ] && pass tui/arrows_select_bin || fail tui/arrows_select_bin "$(screen main | grep 'Detail:')"
tm send-keys -t main Escape
wait_for main 'Bins of' || true

tm send-keys -t main q
if wait_dead main && [ "$(alt main)" = 0 ]; then pass tui/restored_after_q
else fail tui/restored_after_q "dead=$(dead main) alternate_on=$(alt main)"; fi

# Two processes: the arrow keys choose which one the lower table shows.
A=$WL_PID A_IN=$WL_IN A_OUT=$WL_OUT
start_workload second || { fail tui/workload "second did not start"; exit 0; }
B=$WL_PID
tm new-window -d -n two "TERM=xterm-256color exec $HZ3TOP -p $A -p $B 0.3"
if wait_for two "Bins of $A" 200; then
  tm send-keys -t two Right
  ok=0
  wait_for two "Bins of $B" && ok=1
  tm send-keys -t two Right  # past the last process: the "all" row
  wait_for two "Bins of all processes" || ok=0
  tm send-keys -t two Left Left
  wait_for two "Bins of $A" || ok=0
  [ $ok = 1 ] && pass tui/arrows_select_process || fail tui/arrows_select_process "$(screen two | grep 'Bins of')"
else
  fail tui/arrows_select_process "no report: $(screen two | head -3 | tr '\n' '|')"
fi
tm send-keys -t two q
wl exit
workload_exited tui/second_exit
WL_PID=$A WL_IN=$A_IN WL_OUT=$A_OUT

open ctrlc || { fail tui/restored_after_ctrl_c "no report on screen"; }
tm send-keys -t ctrlc C-c
if wait_dead ctrlc && [ "$(alt ctrlc)" = 0 ]; then pass tui/restored_after_ctrl_c
else fail tui/restored_after_ctrl_c "dead=$(dead ctrlc) alternate_on=$(alt ctrlc)"; fi

open crash || { fail tui/restored_after_crash "no report on screen"; }
kill -SEGV "$(tm display-message -p -t crash '#{pane_pid}')"
if wait_dead crash && [ "$(alt crash)" = 0 ]; then pass tui/restored_after_crash
else fail tui/restored_after_crash "dead=$(dead crash) alternate_on=$(alt crash)"; fi

open exit || { fail tui/final_report_on_exit "no report on screen"; }
wl release
wl exit
if wait_dead exit && [ "$(alt exit)" = 0 ] && screen exit | grep -q "# totals pid=$WL_PID"; then
  pass tui/final_report_on_exit
else
  fail tui/final_report_on_exit "dead=$(dead exit) alternate_on=$(alt exit): $(screen exit | grep -v '^$' | tail -3 | tr '\n' '|')"
fi
