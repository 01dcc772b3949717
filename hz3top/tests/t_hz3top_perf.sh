#!/usr/bin/env bash
# timeout: 60
# The perf half of hz3top against real libhz3:
#   - the default counting event (cache-misses) either works (a PMU) or falls back, with exactly
#     one note saying why, to page faults; either way the count moves when the workload faults
#     pages in, and per_kfree is reported;
#   - the sampling pipeline, with a software event (cpu-clock), attributes samples of an
#     allocation-heavy loop to libhz3's code and to the rest of the program;
#   - sampling on the page-faults software event works too.
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

notes=$(grep -c 'counting page-faults instead' "$T/cpu.err")
r=$(json_check "$T/cpu.json" <<PY
ev = last['perf_event']
nnotes = $notes
if ev == 'page-faults':
    expect(nnotes == 1, f"{nnotes} fallback notes, expected exactly one")
else:
    expect(ev == "cache-misses" and nnotes == 0, f"event {ev} with {nnotes} notes")
counts = sum(proc(l)['perf']['interval_count'] for l in lines)
expect(counts >= 2048 if ev == 'page-faults' else counts > 0, f"{ev} counted {counts}")
expect(proc(last)['perf']['count'] == counts, 'interval counts do not add up to the total')
expect(any(proc(l)['perf']['per_kfree'] is not None for l in lines), 'per_kfree never reported')
PY
)
is_ok "$r" && pass "perf/counting_event ($(tail -1 "$T/cpu.json" | grep -o '"perf_event":"[a-z-]*"'))" || fail perf/counting_event "$r"

r=$(json_check "$T/cpu.json" <<'PY'
alloc = sum(proc(l)['perf']['samples_alloc'] for l in lines)
user = sum(proc(l)['perf']['samples_user'] for l in lines)
kern = sum(proc(l)['perf']['samples_kernel'] for l in lines)
expect(last['sample_event'] == 'cpu-clock', f"sample_event {last['sample_event']}")
expect(alloc > 0, f"no sample in libhz3 (alloc {alloc}, user {user}, kernel {kern})")
expect(user > 0, f"no sample in the workload's own code (alloc {alloc}, user {user})")
shares = [proc(l)['perf']['alloc_share'] for l in lines if proc(l)['perf']['alloc_share'] is not None]
expect(shares and all(0 <= s <= 1 for s in shares), f"alloc_share out of range: {shares}")
note(f"samples: {alloc} in libhz3, {user} in the workload, {kern} in the kernel")
PY
)
is_ok "$r" && pass "perf/sampling_cpu_clock ${r#ok }" || fail perf/sampling_cpu_clock "$r"

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
r=$(json_check "$T/pf.json" <<'PY'
n = sum(sum(proc(l)['perf'][k] for k in ('samples_alloc', 'samples_user', 'samples_kernel')) for l in lines)
expect(last['sample_event'] == 'page-faults', f"sample_event {last['sample_event']}")
expect(n > 0, 'no page-fault samples')
PY
)
grep -q 'counting page-faults instead' "$T/pf.err" && r="fallback note although page-faults was asked for"
is_ok "$r" && pass perf/sampling_page_faults || fail perf/sampling_page_faults "$r"
