#!/usr/bin/env bash
# timeout: 60
# The pacing holds under a real tracer: `hz3top heap -p` attached (real BPF on libhz3's
# otel_memory probes, each sample a uprobe trap and a stack copy) to a thread that allocates as
# fast as it can (the workload's `spin`: malloc+free of 16 B - 32 KiB blocks, which at the base
# mean of 512 KiB would sample ~10^5 times per CPU second), the samples it took are at most 2.5
# times HZ3_SAMPLE_MAX_RATE per second of that thread's CPU time (/proc/PID/task/PID/schedstat,
# the trap's time included), and it sampled at all. The checks are
# test_hz3top_sampling_rate.py's, run through pytest_checks.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing sampling_rate
target=$(sed -n 's/^#define HZ3_SAMPLE_MAX_RATE \([0-9]*\).*/\1/p' "$HZ3_TOP/libhz3/src/sample.h")
[ -n "$target" ] || { fail sampling_rate "no HZ3_SAMPLE_MAX_RATE in libhz3/src/sample.h"; exit 0; }

start_workload rate || { fail sampling_rate/workload "did not start: $(cat "$T/rate.err")"; exit 0; }
"$HZ3TOP" heap -p "$WL_PID" --unwind fp --json 0.5 >"$T/rate.json" 2>"$T/rate.top.err" &
top=$!
for _ in $(seq 100); do [ -s "$T/rate.json" ] && break; kill -0 $top 2>/dev/null || break; sleep 0.05; done
if [ ! -s "$T/rate.json" ]; then
  kill $top 2>/dev/null
  if grep -q 'failed to load BPF' "$T/rate.top.err"; then
    skip sampling_rate "BPF cannot load here: $(head -1 "$T/rate.top.err")"; exit 0
  fi
  fail sampling_rate/attach "no report within 5 s: $(head -3 "$T/rate.top.err")"; exit 0
fi
cpu() { awk '{print $1}' "/proc/$WL_PID/task/$WL_PID/schedstat"; }
before=$(cpu)
wl "spin 1500" || { fail sampling_rate/spin "no answer to spin: $WL_REPLY"; exit 0; }
after=$(cpu)
wl exit
workload_exited sampling_rate/workload_exit || exit 0
wait_pid "$top" 10 || { fail sampling_rate/exit "hz3top heap exited $?: $(head -3 "$T/rate.top.err")"; exit 0; }
pytest_checks test_hz3top_sampling_rate.py -- HZ3_CPU_NS=$((after - before)) HZ3_TARGET="$target"
