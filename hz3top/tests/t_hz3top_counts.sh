#!/usr/bin/env bash
# timeout: 90
# hz3top --json watches a workload with known operation counts, preloaded with the real libhz3,
# from before the first operation to after its exit; the final report must show what the
# workload did:
#   tag_set / tag_clear of bin 0x7FFF (large) = N + H exactly, tag_set_pages = (N + H) * 256;
#   ptag_hit = M + N + H exactly (every small and large free hits; the workload frees nothing
#     else, and libhz3 flushes pending hits at exit);
#   ptag_miss_outside = K exactly (huge blocks live outside the arena), no other miss, no
#     decode failure;
#   live large memory while H blocks are held = H MiB more than before, sized from tag_set;
#   a second tracer (hz3top --once) attached after the blocks were allocated sizes them from
#     libhz3's page map (no unsized heads); its exit leaves the first tracer's semaphores raised.
# The report checks are test_hz3top_counts.py's, run through pytest_checks. Also measures the
# time from `hz3top -p` to attach and to the first report, and from the target's exit to hz3top's.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing counts

N=40 M=100000 K=3 H=5
start_workload main || { fail counts/workload "did not start: $(cat "$T/main.err")"; exit 0; }

t0=$(date +%s%N)
"$HZ3TOP" -p "$WL_PID" --json 0.2 >"$T/watch.json" 2>"$T/watch.err" &
TOP=$!
if ! wait_attached "$WL_PID" 10; then
  if grep -q 'failed to load BPF' "$T/watch.err"; then
    skip counts "BPF cannot load here: $(head -1 "$T/watch.err")"; exit 0
  fi
  fail counts/attach "semaphores not raised within 10 s: $(head -3 "$T/watch.err")"; exit 0
fi
t_attach=$(( ($(date +%s%N) - t0) / 1000000 ))

wl "run $N $M $K" || { fail counts/run "workload answered '$WL_REPLY'"; exit 0; }
# Wait for one report after the run, so the live large memory before the hold is known.
for _ in $(seq 100); do [ -s "$T/watch.json" ] && break; sleep 0.05; done
t_first=$(( ($(date +%s%N) - t0) / 1000000 ))
sleep 0.25
wl "hold $H" || { fail counts/hold "workload answered '$WL_REPLY'"; exit 0; }
sleep 0.7  # three intervals: at least one whole report falls inside the hold

"$HZ3TOP" -p "$WL_PID" --json --once 0.3 >"$T/once.json" 2>"$T/once.err"
once_rc=$?
sem_after_second=$(semaphores "$WL_PID")
wl release || { fail counts/release "workload answered '$WL_REPLY'"; exit 0; }
wl exit
t_exit=$(date +%s%N)
wait_pid "$TOP" 15
top_rc=$?
t_done=$(( ($(date +%s%N) - t_exit) / 1000000 ))
workload_exited counts/workload_exit

if [ "$top_rc" -ne 0 ]; then fail counts/exit "hz3top exit status $top_rc: $(tail -2 "$T/watch.err")"; exit 0; fi
pass "counts/exit (hz3top ended by itself ${t_done} ms after the target's exit)"

pytest_checks test_hz3top_counts.py large_tag_churn_exact hits_and_misses_exact live_large_while_held \
  second_tracer_once -- HZ3_N=$N HZ3_M=$M HZ3_K=$K HZ3_H=$H HZ3_RC=$once_rc

if echo "$sem_after_second" | grep -qE '=(0|unreadable)( |$)'; then
  fail counts/second_tracer_keeps_first "semaphores after the second tracer left: $sem_after_second"
else
  pass "counts/second_tracer_keeps_first ($sem_after_second)"
fi
echo "timing: attach ${t_attach} ms, first report ${t_first} ms (interval 200 ms), exit after target ${t_done} ms"
