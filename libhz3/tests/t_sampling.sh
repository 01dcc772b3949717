#!/usr/bin/env bash
# Heap sampling through the otel_memory USDT probes, counted by real eBPF (bpftrace): the
# weighted bytes of sampled allocations estimate what a workload with known sites allocated and
# still holds. Mean interval 512 KiB, raised by the pacing while the workload samples fast; each
# bound is 4 standard deviations of the estimator (from the samples' own weights, and never under
# the one at the base mean), so a failure means a bias, not bad luck.
# timeout: 120
. "$HZ3_TOP/scripts/testlib.sh"
prog=$HZ3_TBIN/sample_sites
is_root || { skip sampling/estimates "needs root to load BPF (run make test as root)"; exit 0; }
require_bpftrace sampling/estimates
[ -x "$prog" ] || { fail sampling/estimates "$prog not built"; exit 0; }
lib=$(readlink -f "$HZ3_LIB")
tmp=$(mktemp -d); trap 'kill $bt 2>/dev/null; rm -rf "$tmp"' EXIT
cat > "$tmp/otel.bt" <<BT
usdt:$lib:otel_memory:alloc { @w[arg0] = arg2; @sz[arg0] = arg1; @alloc[arg1, arg2] = count(); @n = count(); }
usdt:$lib:otel_memory:free /@w[arg0]/ { @freed[@sz[arg0], @w[arg0]] = count(); delete(@w[arg0]); delete(@sz[arg0]); }
BT
bpftrace "$tmp/otel.bt" > "$tmp/bt.out" 2>&1 &
bt=$!
for _ in $(seq 100); do grep -q '^Attaching' "$tmp/bt.out" && break; sleep 0.1; done
sleep 0.5
LD_PRELOAD=$lib "$prog" "$tmp/go" > "$tmp/truth" &
wl=$!
touch "$tmp/go"
wait $wl || { fail sampling/estimates "workload exited $?"; exit 0; }
kill -INT $bt; wait $bt 2>/dev/null
HZ3_SAMPLING_TRUTH=$tmp/truth HZ3_SAMPLING_BPFTRACE=$tmp/bt.out \
  run_pytest "$HZ3_TOP/libhz3/tests/test_sampling_estimates.py"
rc=$?
# 1: a case failed (its FAIL line is printed); anything else: pytest itself failed.
[ $rc -le 1 ] || fail sampling/checker "pytest exited with status $rc (5: it collected no test; log above)"
