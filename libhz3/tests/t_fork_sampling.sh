#!/usr/bin/env bash
# fork while a tracer samples (fork_sampling.cc): bpftrace attached with -p to the running
# program's otel_memory:alloc, two threads allocating 60-65 KB blocks, the main thread forking
# 150 times; every child must allocate and exit within 5 s. A child that inherited a lock a
# parent thread held at fork (the sampled-block table's) hangs. Needs root and bpftrace.
# Budget: ~15 s.
# timeout: 120
. "$(dirname "$0")/lib.sh"
name=fork/sampling
is_root || { skip $name "needs root to load BPF (run make test as root)"; exit 0; }
require_bpftrace $name
need_bin $name "$HZ3_TBIN/fork_sampling" || exit 0
need_lib $name "$HZ3_LIB" || exit 0
lib=$(readlink -f "$HZ3_LIB")
tmp=$(mktemp -d)
trap 'kill $bt $wl 2>/dev/null; rm -rf "$tmp"' EXIT
LD_PRELOAD=$lib "$HZ3_TBIN/fork_sampling" "$tmp/ready" 150 > "$tmp/out" 2>&1 &
wl=$!
bpftrace -p $wl -e "usdt:$lib:otel_memory:alloc { @samples = count(); }" > "$tmp/bt" 2>&1 &
bt=$!
for _ in $(seq 150); do grep -q '^Attaching' "$tmp/bt" && break; sleep 0.1; done
sleep 1  # the attach raises the semaphore after the banner
touch "$tmp/ready"
wait $wl
rc=$?
kill -INT $bt 2>/dev/null
wait $bt 2>/dev/null
samples=$(sed -n 's/^@samples: *//p' "$tmp/bt")
echo "  workload: $(cat "$tmp/out" | tr '\n' ' ') samples: ${samples:-none}"
if [ -z "$samples" ] || [ "$samples" -eq 0 ]; then
  fail $name "bpftrace saw no samples, so the case did not run sampled: $(tail -3 "$tmp/bt" | tr '\n' ' ')"
elif [ $rc -ne 0 ]; then
  fail $name "exit $rc: $(tail -2 "$tmp/out" | tr '\n' ' ')"
else
  pass "$name ($samples samples)"
fi
