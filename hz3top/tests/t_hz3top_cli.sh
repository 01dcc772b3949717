#!/usr/bin/env bash
# timeout: 90
# hz3top's command line against real processes on real libhz3:
#   version        --version prints "hz3top VERSION" and exits 0;
#   comma_and_tid  -p TID,PID: a comma list, and a thread id (of a second thread) that stands
#                  for its process: exactly two rows, the right pids, exact large counts;
#   follow         -p PID -f: a child the target forks gets its own row, attached within a
#                  tick of the fork, with its exact large malloc/free count, and a note;
#   all_late       --all: a process started while hz3top runs has a first interval that runs
#                  from its start (not from hz3top's, which would divide its counts by the
#                  whole run);
#   openmetrics_forms  --openmetrics=:0 binds every interface, =localhost:0 a loopback.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"

v=$("$HZ3TOP" --version 2>&1); rc=$?
[ $rc -eq 0 ] && [[ "$v" =~ ^hz3top\ [0-9]+\.[0-9]+\.[0-9]+$ ]] && pass "cli/version ($v)" ||
  fail cli/version "rc $rc: '$v'"

require_tracing cli

# ---- comma_and_tid ----
start_workload a || { fail cli/comma_and_tid "workload a did not start"; exit 0; }
A=$WL_PID A_IN=$WL_IN A_OUT=$WL_OUT
wl thread || fail cli/comma_and_tid "no thread: $WL_REPLY"
TID=${WL_REPLY#ok thread }
start_workload b || { fail cli/comma_and_tid "workload b did not start"; exit 0; }
B=$WL_PID B_IN=$WL_IN B_OUT=$WL_OUT
"$HZ3TOP" -p "$TID,$B" --json 0.3 >"$T/tid.json" 2>"$T/tid.err" &
top=$!
if ! wait_attached "$A" 10 || ! wait_attached "$B" 10; then
  grep -q 'failed to load BPF' "$T/tid.err" && { skip cli "BPF cannot load: $(head -1 "$T/tid.err")"; exit 0; }
  fail cli/comma_and_tid "never attached: $(head -2 "$T/tid.err")"
fi
WL_IN=$A_IN WL_OUT=$A_OUT wl "run 3 0 0"
WL_IN=$B_IN WL_OUT=$B_OUT wl "run 2 0 0"
WL_IN=$A_IN WL_OUT=$A_OUT wl exit
WL_IN=$B_IN WL_OUT=$B_OUT wl exit
wait_pid $top 15
rc=$?
workload_exited cli/comma_and_tid_exit_a "$A"
workload_exited cli/comma_and_tid_exit_b "$B"
r=$(json_check "$T/tid.json" <<PY
by_pid = {p['pid']: p for p in last['procs']}
expect(sorted(by_pid) == sorted([$A, $B]), f"rows {sorted(by_pid)}, expected $A (for thread $TID) and $B")
if $A in by_pid: expect(bin_row(by_pid[$A], 32767).get('tag_set') == 3, 'A large tag_set')
if $B in by_pid: expect(bin_row(by_pid[$B], 32767).get('tag_set') == 2, 'B large tag_set')
PY
)
[ "$TID" != "$A" ] || r="thread id $TID is the pid"
[ $rc -eq 0 ] && is_ok "$r" && pass "cli/comma_and_tid (-p $TID,$B)" || fail cli/comma_and_tid "rc $rc: $r"

# ---- follow ----
start_workload p || { fail cli/follow "workload did not start"; exit 0; }
P=$WL_PID
"$HZ3TOP" -p "$P" -f --json 0.2 >"$T/follow.json" 2>"$T/follow.err" &
top=$!
wait_attached "$P" 10 || fail cli/follow "never attached: $(head -2 "$T/follow.err")"
wl "fork 4" || fail cli/follow "no fork: $WL_REPLY"
C=${WL_REPLY#ok fork }
# The child inherits the parent's raised semaphores, so wait for hz3top's note instead.
for _ in $(seq 100); do grep -q "following process $C" "$T/follow.err" && break; sleep 0.05; done
kill -USR1 "$C"
for _ in $(seq 100); do [ "$(awk '{print $3}' "/proc/$C/stat" 2>/dev/null)" = Z ] && break; sleep 0.05; done
wl "run 1 0 0"
sleep 0.3
wl exit
wait_pid $top 15
rc=$?
workload_exited cli/follow_exit "$P"
r=$(json_check "$T/follow.json" <<PY
by_pid = {p['pid']: p for p in last['procs']}
expect(sorted(by_pid) == sorted([$P, $C]), f"rows {sorted(by_pid)}, expected parent $P and child $C")
if $C in by_pid:
    expect(bin_row(by_pid[$C], 32767).get('tag_set') == 4, f"child large tag_set {bin_row(by_pid[$C], 32767)}")
    expect(by_pid[$C]['alive'] is False, 'child reported exited')
if $P in by_pid: expect(bin_row(by_pid[$P], 32767).get('tag_set') == 1, 'parent large tag_set')
expect(last['final'] is True, 'hz3top ended after parent and child exited')
PY
)
if ! grep -q "following process $C .*forked by $P" "$T/follow.err"; then
  fail cli/follow "no note for child $C: $(head -3 "$T/follow.err" | tr '\n' '|')"
elif [ $rc -ne 0 ] || ! is_ok "$r"; then fail cli/follow "rc $rc: $r"
else pass cli/follow; fi

# ---- all_late ----
cp "$HZ3_LIB" "$T/libhz3-late.so"
start_workload e "$T/libhz3-late.so" || { fail cli/all_late "workload e did not start"; exit 0; }
E=$WL_PID E_IN=$WL_IN E_OUT=$WL_OUT
"$HZ3TOP" --all --lib "$T/libhz3-late.so" --json 0.5 >"$T/late.json" 2>"$T/late.err" &
all=$!
wait_attached "$E" 10 || fail cli/all_late "never attached: $(head -2 "$T/late.err")"
sleep 1.6  # three reports of hz3top's own run before the late process exists
start_workload d "$T/libhz3-late.so" || { fail cli/all_late "workload d did not start"; exit 0; }
D=$WL_PID D_IN=$WL_IN D_OUT=$WL_OUT
wl "run 2 0 0"
sleep 1.2
kill -INT $all
wait_pid $all 15
WL_IN=$D_IN WL_OUT=$D_OUT wl exit
workload_exited cli/all_late_exit_d "$D"
r=$(json_check "$T/late.json" <<PY
first = [p for l in lines for p in l['procs'] if p['pid'] == $D][:1]
expect(first, 'the late process never showed up')
if first:
    dt = first[0]['interval_s']
    note(f"first interval {dt:.3f} s")
    expect(0 < dt <= 0.75, f"first interval of the late process {dt} s: not timed from its start")
PY
)
is_ok "$r" && pass "cli/all_late $r" || fail cli/all_late "$r"

# ---- openmetrics_forms (on workload e, still running) ----
for form in ":0|0.0.0.0:" "localhost:0|(127.0.0.1|\[::1\]):"; do
  arg=${form%%|*} want=${form#*|}
  "$HZ3TOP" -p "$E" --no-perf --openmetrics="$arg" --once 0.1 >/dev/null 2>"$T/om.err"
  rc=$?
  if [ $rc -eq 0 ] && grep -qE "serving OpenMetrics on http://$want[0-9]+/metrics" "$T/om.err"; then
    pass "cli/openmetrics_forms (--openmetrics=$arg)"
  else
    fail cli/openmetrics_forms "--openmetrics=$arg: rc $rc: $(head -2 "$T/om.err" | tr '\n' '|')"
  fi
done
WL_IN=$E_IN WL_OUT=$E_OUT wl exit
workload_exited cli/exit_e "$E"
