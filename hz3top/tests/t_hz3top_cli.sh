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
# The report checks are test_hz3top_cli.py's, run through pytest_checks.
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
pytest_checks test_hz3top_cli.py comma_and_tid -- HZ3_A="$A" HZ3_B="$B" HZ3_TID="$TID" HZ3_RC=$rc

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
pytest_checks test_hz3top_cli.py follow -- HZ3_P="$P" HZ3_C="$C" HZ3_RC=$rc

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
pytest_checks test_hz3top_cli.py all_late -- HZ3_D="$D"

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
