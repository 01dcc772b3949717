#!/usr/bin/env bash
# timeout: 60
# The perf half of hz3top against real libhz3:
#   - the default counting event (cache-misses) either works (a PMU) or falls back, with exactly
#     one note saying why, to page faults; either way the count moves when the workload faults
#     pages in, and per_kfree is reported;
#   - the sampling pipeline, with a software event (cpu-clock), attributes samples of an
#     allocation-heavy loop to libhz3's code and to the rest of the program;
#   - sampling on the page-faults software event works too.
# The report checks are test_hz3top_perf.py's, run through pytest_checks.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing perf

start_workload perf || { fail perf/workload "did not start: $(cat "$T/perf.err")"; exit 0; }
"$HZ3TOP" -p "$WL_PID" --json --sample-hz 4000 0.3 >"$T/cpu.json" 2>"$T/cpu.err" &
top=$!
if ! wait_attached "$WL_PID" 10; then
  grep -q 'failed to load BPF' "$T/cpu.err" && { skip perf "BPF cannot load: $(head -1 "$T/cpu.err")"; exit 0; }
  fail perf/attach "$(head -2 "$T/cpu.err")"; exit 0
fi
wl "spin 1200" || { fail perf/spin "workload answered '$WL_REPLY'"; exit 0; }
wl "hold 8"    # 8 MiB written: ~2000 page faults
wl release
sleep 0.4
kill -INT $top
wait_pid $top 10 || { fail perf/exit "hz3top exit status $?"; exit 0; }

pytest_checks test_hz3top_perf.py counting_event sampling_cpu_clock

# Sampling on a software page-fault event: every sample is a fault of the target.
"$HZ3TOP" -p "$WL_PID" --json --event page-faults --sample-event page-faults --sample-hz 10000 0.3 \
  >"$T/pf.json" 2>"$T/pf.err" &
top=$!
wait_attached "$WL_PID" 10 || { fail perf/sampling_page_faults "never attached: $(head -2 "$T/pf.err")"; exit 0; }
wl "hold 40"   # beyond the 16 MiB libhz3 keeps dirty after the first hold: new faults
wl release
sleep 0.4
wl exit
wait_pid $top 10 || { fail perf/sampling_page_faults "hz3top exit status $?"; exit 0; }
workload_exited perf/workload_exit
pytest_checks test_hz3top_perf.py sampling_page_faults
