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
# Also measures the time from `hz3top -p` to attach and to the first report, and from the
# target's exit to hz3top's.
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

r=$(json_check "$T/watch.json" <<PY
p = proc(last)
large = bin_row(p, 32767)
expect(last['final'] is True, 'last report not final')
expect(p['alive'] is False, 'target still alive in the final report')
expect(large.get('tag_set') == $N + $H, f"large tag_set {large.get('tag_set')} != $N + $H")
expect(large.get('tag_clear') == $N + $H, f"large tag_clear {large.get('tag_clear')} != $N + $H")
expect(large.get('tag_set_pages') == ($N + $H) * 256, f"large tag_set_pages {large.get('tag_set_pages')}")
PY
)
is_ok "$r" && pass "counts/large_tag_churn_exact (tag_set = tag_clear = $((N + H)))" || fail counts/large_tag_churn_exact "$r"

r=$(json_check "$T/watch.json" <<PY
p = proc(last)
expect(p['ptag_hit'] == $M + $N + $H, f"ptag_hit {p['ptag_hit']} != $M + $N + $H")
expect(p['ptag_miss_outside'] == $K, f"ptag_miss_outside {p['ptag_miss_outside']} != $K")
expect(p['ptag_miss_untagged'] == 0, f"ptag_miss_untagged {p['ptag_miss_untagged']}")
expect(p['ptag_miss'] == $K, f"ptag_miss {p['ptag_miss']}")
expect(p['decode_fail'] == 0, f"decode_fail {p['decode_fail']}")
expect(last['ptag_hit'] == p['ptag_hit'], 'top-level ptag_hit is not the sum over processes')
expect(sum(l['procs'][0]['interval']['ptag_hit'] for l in lines) == p['ptag_hit'],
       'interval hits do not add up to the total')
PY
)
is_ok "$r" && pass "counts/hits_and_misses_exact (ptag_hit = $((M + N + H)), outside misses = $K)" || fail counts/hits_and_misses_exact "$r"

r=$(json_check "$T/watch.json" <<PY
base = bin_row(proc(lines[0]), 32767)
b_pages, b_bytes = base.get('live_pages', 0), base.get('live_bytes', 0)
held = [l for l in lines if bin_row(proc(l), 32767).get('live_pages') == b_pages + $H]
expect(held, f"no report with {b_pages} + $H live large heads")
if held:
    got = bin_row(proc(held[0]), 32767)['live_bytes']
    expect(got == b_bytes + $H * 2**20, f"live large bytes {got} != {b_bytes} + $H MiB")
    expect(proc(held[0])['live_source'] == 'tagmap', 'live pages not from the tag map')
PY
)
is_ok "$r" && pass "counts/live_large_while_held" || fail counts/live_large_while_held "$r"

r=$(json_check "$T/once.json" <<PY
expect(len(lines) == 1, f"{len(lines)} reports from --once")
p = proc(last)
large = bin_row(p, 32767)
expect(last['final'] is True, '--once report not final')
expect(p['large_unsized'] == 0, f"large_unsized {p['large_unsized']}: heads not sized from the page map")
expect(large.get('live_pages', 0) >= $H, f"live large heads {large.get('live_pages')}")
expect(large.get('live_bytes', 0) >= $H * 2**20, f"live large bytes {large.get('live_bytes')} < $H MiB")
PY
)
[ "$once_rc" -eq 0 ] && is_ok "$r" && pass counts/second_tracer_once || fail counts/second_tracer_once "rc $once_rc: $r"

if echo "$sem_after_second" | grep -qE '=(0|unreadable)( |$)'; then
  fail counts/second_tracer_keeps_first "semaphores after the second tracer left: $sem_after_second"
else
  pass "counts/second_tracer_keeps_first ($sem_after_second)"
fi
echo "timing: attach ${t_attach} ms, first report ${t_first} ms (interval 200 ms), exit after target ${t_done} ms"
