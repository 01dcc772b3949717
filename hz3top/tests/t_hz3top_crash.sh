#!/usr/bin/env bash
# timeout: 60
# A target that dies of an invalid free: libhz3 fires hz3:lookup_miss (kind 1, in the arena but
# tag 0) and aborts. hz3top must report that miss in its final report and exit 0
# (test_hz3top_crash.py, run through pytest_checks).
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing crash

start_workload crash || { fail crash/workload "did not start: $(cat "$T/crash.err")"; exit 0; }
"$HZ3TOP" -p "$WL_PID" --json 0.3 >"$T/watch.json" 2>"$T/watch.err" &
top=$!
if ! wait_attached "$WL_PID" 10; then
  grep -q 'failed to load BPF' "$T/watch.err" && { skip crash "BPF cannot load: $(head -1 "$T/watch.err")"; exit 0; }
  fail crash/attach "$(head -2 "$T/watch.err")"; exit 0
fi
wl badfree
wait "$WL_PID" 2>/dev/null
wl_rc=$?
wait_pid $top 15
top_rc=$?
if [ "$wl_rc" -ne 134 ]; then
  fail crash/target_aborted "workload exit status $wl_rc, expected SIGABRT (134)"
else
  pytest_checks test_hz3top_crash.py final_report -- HZ3_RC=$top_rc
fi
