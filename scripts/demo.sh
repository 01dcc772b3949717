#!/usr/bin/env bash
# `make demo`: the main job. Runs real workloads once under glibc and once with libhz3
# preloaded, side by side, then (as root, when hz3top is built) shows hz3top's live view of a
# workload running on libhz3. A demonstration, not a benchmark: one run each on a shared
# machine; `make bench` runs the interleaved, repeated comparison.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/${BUILD:-build}
lib=$build/lib/libhz3.so
bin=$build/bin
[ -f "$lib" ] || { echo "demo: $lib is missing; run 'make' first" >&2; exit 1; }

# One run: prints "<metric> <peak-rss-KiB>" for the command, preloaded with $1 (or nothing).
measure() {
  local preload=$1 kind=$2; shift 2
  local out tfile; tfile=$(mktemp)
  out=$(env ${preload:+LD_PRELOAD=$preload} /usr/bin/time -f '%e %M' -o "$tfile" "$@" 2>/dev/null)
  read -r secs rss < "$tfile"; rm -f "$tfile"
  if [ "$kind" = ops ]; then
    echo "$(echo "$out" | grep -o 'ops_per_s=[0-9.e+]*' | head -1 | cut -d= -f2) $rss"
  else
    echo "$secs $rss"
  fi
}

human() { awk -v v="$1" 'BEGIN { if (v >= 1e6) printf "%.1fM", v / 1e6; else printf "%.2f", v }'; }

row() {  # name kind command…
  local name=$1 kind=$2; shift 2
  read -r g grss < <(measure "" "$kind" "$@")
  read -r h hrss < <(measure "$lib" "$kind" "$@")
  local ratio
  if [ "$kind" = ops ]; then ratio=$(awk -v a="$h" -v b="$g" 'BEGIN { printf "%.2fx", a / b }')
  else ratio=$(awk -v a="$g" -v b="$h" 'BEGIN { printf "%.2fx", a / b }'); fi
  printf '%-34s %10s %10s %8s %9s %9s\n' "$name" "$(human "$g")" "$(human "$h")" "$ratio" \
    "$((grss / 1024))M" "$((hrss / 1024))M"
}

echo "hz3 demo: $(uname -r), $(nproc) cores, libhz3 at $lib"
echo "one run each under glibc and under libhz3 (faster is better; ratio = hz3 over glibc)"
echo
printf '%-34s %10s %10s %8s %9s %9s\n' workload glibc hz3 ratio "rss glibc" "rss hz3"
for size in small medium mixed; do
  row "SSOT $size (ops/s)" ops "$bin/bench_ssot" --size "$size" --iters 5000000
done
row "cross-thread frees 50% (ops/s)" ops "$bin/bench_xfree" --remote 50 --threads 2
row "python3 dict/list churn (s)" secs python3 -c '
d = {}
for i in range(400000):
    d[str(i)] = [i] * 8
    if i % 3 == 0:
        d.pop(str(i // 2), None)
print(sum(len(v) for v in d.values()))'
row "g++ -O2 compile (s)" secs g++ -std=c++20 -O2 -Ilibhz3/src -Ilibhz3/include -c \
  "$top/libhz3/src/heap.cc" -o /dev/null
echo
echo "proof that libhz3 served the runs: the allocator behind malloc() in each (dladdr)"
for pre in "" "$lib"; do
  env ${pre:+LD_PRELOAD=$pre} "$bin/bench_ssot" --iters 1000 | grep -o 'allocator=[^ ]*' | sed 's/^/  /'
done

# hz3top's view of a workload running on libhz3 (the script decides what it can show: it needs
# root for BPF, and uses plain mode when there is no terminal).
if [ -f "$top/scripts/demo-hz3top.sh" ]; then
  echo
  LD_PRELOAD=$lib "$bin/bench_xfree" --threads 2 --remote 50 --iters 400000000 >/dev/null 2>&1 &
  wl=$!
  trap 'kill $wl 2>/dev/null || true' EXIT
  sleep 0.5
  bash "$top/scripts/demo-hz3top.sh" "$wl" || echo "demo: hz3top view failed (exit $?)"
  kill "$wl" 2>/dev/null || true
  wait "$wl" 2>/dev/null || true
fi
