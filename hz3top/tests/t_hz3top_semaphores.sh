#!/usr/bin/env bash
# timeout: 60
# The USDT semaphores of libhz3 (read from /proc/PID/mem at the addresses in .note.stapsdt) are 0
# before hz3top attaches, non-zero while it is attached, and 0 again once it has exited — after
# a normal exit (-d), after Ctrl-C (SIGINT), and after kill -9, while the target keeps running;
# and the same with --legacy-attach (one uprobe per site instead of uprobe_multi links).
# Detached, the library's probe sites cost a load and a branch again.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing semaphores

start_workload sem || { fail semaphores/workload "did not start: $(cat "$T/sem.err")"; exit 0; }
before=$(semaphores "$WL_PID")
if [ -z "$before" ] || echo "$before" | grep -qvE '^(([a-z_]+=0) ?)+$'; then
  fail semaphores/zero_before "before attach: '$before'"; exit 0
fi
[ "$(echo "$before" | wc -w)" -eq 5 ] && pass "semaphores/zero_before ($before)" ||
  fail semaphores/zero_before "expected 5 probes: $before"

# all_zero PID SECONDS: the semaphores drop as soon as the tracer's links are gone.
all_zero() {
  local deadline=$(( $(date +%s) + $2 )) s
  while [ "$(date +%s)" -le "$deadline" ]; do
    s=$(semaphores "$1")
    echo "$s" | grep -qvE '^(([a-z_]+=0) ?)+$' || return 0
    sleep 0.05
  done
  echo "$s"
  return 1
}

for how in duration sigint kill9 legacy; do
  case $how in
    duration) "$HZ3TOP" -p "$WL_PID" --json -d 1 0.5 >"$T/$how.json" 2>"$T/$how.err" & ;;
    legacy) "$HZ3TOP" -p "$WL_PID" --json --legacy-attach -d 1 0.5 >"$T/$how.json" 2>"$T/$how.err" & ;;
    *) "$HZ3TOP" -p "$WL_PID" --json 0.5 >"$T/$how.json" 2>"$T/$how.err" & ;;
  esac
  top=$!
  if ! wait_attached "$WL_PID" 10; then
    if grep -q 'failed to load BPF' "$T/$how.err"; then
      skip semaphores "BPF cannot load here: $(head -1 "$T/$how.err")"; exit 0
    fi
    fail "semaphores/$how" "never attached: $(head -2 "$T/$how.err")"; kill -9 $top; continue
  fi
  during=$(semaphores "$WL_PID")
  case $how in
    sigint) sleep 0.3; kill -INT $top ;;
    kill9) sleep 0.3; kill -9 $top ;;
  esac
  t_stop=$(date +%s%N)
  wait_pid $top 10
  rc=$?
  ms=$(( ($(date +%s%N) - t_stop) / 1000000 ))
  if [ $how != kill9 ] && [ $rc -ne 0 ]; then fail "semaphores/$how" "hz3top exit status $rc"; continue; fi
  if ! left=$(all_zero "$WL_PID" 3); then
    fail "semaphores/$how" "still raised after hz3top exited: $left (while attached: $during)"
    continue
  fi
  if [ $how = sigint ] && ! tail -1 "$T/$how.json" | grep -q '"final":true'; then
    fail semaphores/sigint "no final report after SIGINT"; continue
  fi
  pass "semaphores/$how (attached: $during; hz3top gone ${ms} ms after the stop)"
done
if kill -0 "$WL_PID" 2>/dev/null && wl exit; then
  workload_exited semaphores/target_unharmed && pass semaphores/target_unharmed
else
  fail semaphores/target_unharmed "the workload did not survive being traced"
fi
