#!/usr/bin/env bash
# timeout: 60
# Two independent tracers agree on the probes of real libhz3: bpftrace (its own USDT support,
# scripts as in docs/probes.md) and hz3top (probes/hz3.bpf.c) watch the same known-count
# workload at the same time; both must count exactly what the workload did while they were
# attached: N large tag sets and clears (bin 0x7FFF, 256 pages each), M + N hits, K
# outside-the-arena misses (plus the warm-up allocations that show bpftrace is attached).
# hz3top's report is checked by test_probes_bpftrace.py, run through pytest_checks.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing probes_bpftrace
require_bpftrace probes_bpftrace

N=25 M=50000 K=2
start_workload wl || { fail probes_bpftrace/workload "did not start"; exit 0; }
"$HZ3TOP" -p "$WL_PID" --json 0.5 >"$T/top.json" 2>"$T/top.err" &
top=$!
if ! wait_attached "$WL_PID" 10; then
  grep -q 'failed to load BPF' "$T/top.err" && { skip probes_bpftrace "BPF cannot load: $(head -1 "$T/top.err")"; exit 0; }
  fail probes_bpftrace/attach "hz3top: $(head -2 "$T/top.err")"; exit 0
fi

L=$HZ3_LIB
bpftrace -B line -p "$WL_PID" -e "
usdt:$L:hz3:tag_set /arg2 == 0x7fff/ { @large_sets++; @large_set_pages += arg1; }
usdt:$L:hz3:tag_clear /arg2 == 0x7fff/ { @large_clears++; }
usdt:$L:hz3:hits { @hits += arg0; }
usdt:$L:hz3:lookup_miss { @miss[arg1]++; }
usdt:$L:hz3:decode_fail { @decode_fail++; }
interval:ms:100 { printf(\"tick %d\\n\", @large_sets); }
" >"$T/bt.out" 2>"$T/bt.err" &
bt=$!
# bpftrace shows no sign of having attached (its BEGIN fires before the probes are, and it
# leaves a semaphore that is already raised as it is): do single large allocations until it
# has counted one. Both tracers count these W warm-ups as well.
W=0
for _ in $(seq 75); do
  wl "run 1 0 0"
  W=$((W + 1))
  sleep 0.2
  grep -q '^tick [1-9]' "$T/bt.out" && break
done
if ! grep -q '^tick [1-9]' "$T/bt.out"; then
  fail probes_bpftrace/attach "bpftrace never counted: $(grep -v 'detach\|uprobe_events\|MEMLOCK' "$T/bt.err" | head -2)"
  exit 0
fi
sleep 0.25  # a tick after the last warm-up: how many of them bpftrace saw
B0=$(sed -n 's/^tick \([0-9]*\)$/\1/p' "$T/bt.out" | tail -1)
wl "run $N $M $K"
wl exit
wait_pid $top 15
top_rc=$?
workload_exited probes_bpftrace/workload_exit
wait_pid $bt 15 || { kill -INT $bt 2>/dev/null; wait $bt; }

val() { sed -n "s/^@$1: \([0-9]*\)$/\1/p" "$T/bt.out"; }
got="large_sets=$(val large_sets) large_set_pages=$(val large_set_pages) large_clears=$(val large_clears) miss0=$(val 'miss\[0\]')"
# Large sets and clears: the run's N plus the B0 warm-ups bpftrace saw. Hits: the run's M + N,
# the B0 warm-ups' (reported after them) and those of the other W - B0 warm-ups that were still
# pending when bpftrace attached: hz3top, attached all along, makes threads report hits at least
# once a second (docs/probes.md), so a slow bpftrace attach sees fewer of them.
want="large_sets=$((N + B0)) large_set_pages=$(((N + B0) * 256)) large_clears=$((N + B0)) miss0=$K"
hits=$(val hits)
if [ "$got" = "$want" ] && [ "${hits:-0}" -ge $((M + N + B0)) ] && [ "${hits:-0}" -le $((M + N + W)) ]; then
  pass "probes_bpftrace/bpftrace_counts ($got hits=$hits)"
else
  fail probes_bpftrace/bpftrace_counts "bpftrace counted $got hits=${hits:-none}, expected $want hits=$((M + N + B0))..$((M + N + W))"
fi

pytest_checks test_probes_bpftrace.py hz3top_agrees -- HZ3_N=$N HZ3_M=$M HZ3_K=$K HZ3_W=$W HZ3_RC=$top_rc
