#!/usr/bin/env bash
# Heap sampling through the otel_memory USDT probes, counted by real eBPF (bpftrace): the
# weighted bytes of sampled allocations estimate what a workload with known sites (hz3top's heap
# workload, hz3top/tests/heap_sites.cc) allocated and still holds. Mean interval 512 KiB, raised
# by the pacing while the workload samples fast; bpftrace counts the samples by size and weight,
# and each bound is about 4 standard deviations of the estimator (the base mean's, or the one the
# samples' weights give when larger), so a failure means a bias, not bad luck (libhz3/tests/test_sampling_estimates.py, run through
# pytest_checks).
# timeout: 120
. "$HZ3_TOP/scripts/testlib.sh"
prog=$HZ3_TBIN/hz3top_heap_sites
is_root || { skip sampling/estimates "needs root to load BPF (run make test as root)"; exit 0; }
require_bpftrace sampling/estimates
[ -x "$prog" ] || { fail sampling/estimates "$prog not built (make all)"; exit 0; }
lib=$(readlink -f "$HZ3_LIB")
tmp=$(mktemp -d); trap 'kill $bt $wl 2>/dev/null; rm -rf "$tmp"' EXIT
cat > "$tmp/otel.bt" <<BT
usdt:$lib:otel_memory:alloc { @w[arg0] = arg2; @sz[arg0] = arg1; @alloc[arg1, arg2] = count(); @n = count(); }
usdt:$lib:otel_memory:free /@w[arg0]/ { @freed[@sz[arg0], @w[arg0]] = count(); delete(@w[arg0]); delete(@sz[arg0]); }
BT
# The workload waits for "go", allocates, prints its truth line, then holds its blocks until
# "stop" and exits without freeing them. bpftrace counts its probes only (-p): other processes
# on the same library would add to the sums.
LD_PRELOAD=$lib "$prog" "$tmp/go" "$tmp/stop" > "$tmp/truth" &
wl=$!
for _ in $(seq 100); do grep -q libhz3 "/proc/$wl/maps" 2>/dev/null && break; sleep 0.05; done
bpftrace -p "$wl" "$tmp/otel.bt" > "$tmp/bt.out" 2>&1 &
bt=$!
for _ in $(seq 100); do grep -q '^Attaching' "$tmp/bt.out" && break; sleep 0.1; done
sleep 0.5
touch "$tmp/go"
for _ in $(seq 600); do [ -s "$tmp/truth" ] && break; kill -0 $wl 2>/dev/null || break; sleep 0.05; done
touch "$tmp/stop"
wait $wl || { fail sampling/estimates "workload exited $?"; exit 0; }
[ -s "$tmp/truth" ] || { fail sampling/estimates "the workload printed no truth line"; exit 0; }
# bpftrace -p ends with its target and prints its maps then; interrupt it only if it did not.
for _ in $(seq 100); do kill -0 $bt 2>/dev/null || break; sleep 0.05; done
kill -INT $bt 2>/dev/null; wait $bt 2>/dev/null
pytest_checks test_sampling_estimates.py -- HZ3_SAMPLING_TRUTH="$tmp/truth" HZ3_SAMPLING_BPFTRACE="$tmp/bt.out"
