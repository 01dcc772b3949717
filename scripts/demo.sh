#!/usr/bin/env bash
# `make demo`: the main job. Runs real workloads under glibc and with libhz3 preloaded, in
# interleaved pairs (glibc then hz3, hz3 then glibc, ...; REPS pairs, default 3), and prints for
# each the median of either side, the median of the per-pair ratios and their spread (lowest and
# highest pair). redis-server from Debian is one of them: started on a free port of 127.0.0.1
# under each allocator and driven by redis-benchmark. Then (as root, when hz3top is built) it
# shows hz3top's live view of that redis-server on libhz3 while redis-benchmark drives it, and
# `hz3top heap` finding the leaking function of a service with a known leak (scripts/demo-heap.sh).
# Last, `make triage` comparing the release library with the slowfree one (a fixed delay on every
# free, bench/bench.mk): the verdict must be REGRESSION (TRIAGE_RUNS pairs, default 8, of SSOT
# small with TRIAGE_ITERS = 2,000,000; its verdict and make's exit 1 are printed). Takes about
# 1-2 minutes on two cores plus the slowfree build (REPS=2 REDIS_N=30000: under 1.5 minutes; the
# leak part 5 s, the triage part 5-15 s). Checks nothing: a part that cannot run says why.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/${BUILD:-build}
lib=$build/lib/libhz3.so
bin=$build/bin
reps=${REPS:-3}
[ -f "$lib" ] || { echo "demo: $lib is missing; run 'make' first" >&2; exit 1; }
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
  { echo "demo: redis-server/redis-benchmark are missing; run 'make deps-demo'" >&2; exit 1; }

tmp=$(mktemp -d /tmp/hz3-demo.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# One run: prints "<metric> <peak-rss-KiB>" for the command, preloaded with $1 (or nothing).
# kind ops: the metric is the ops_per_s= the program prints; kind secs: the wall time.
measure() {
  local preload=$1 kind=$2; shift 2
  local out secs rss
  out=$(env ${preload:+LD_PRELOAD=$preload} /usr/bin/time -f '%e %M' -o "$tmp/time" "$@" 2>/dev/null)
  read -r secs rss <"$tmp/time"
  if [ "$kind" = ops ]; then
    echo "$(echo "$out" | grep -o 'ops_per_s=[0-9.e+]*' | head -1 | cut -d= -f2) $rss"
  else
    echo "$secs $rss"
  fi
}

# A TCP port of 127.0.0.1 that nothing listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_redis PRELOAD: starts redis-server (no persistence) on a free port of 127.0.0.1,
# preloaded with PRELOAD (or nothing); sets REDIS_PID and REDIS_PORT once it answers PING.
start_redis() {
  local preload=$1
  REDIS_PORT=$(free_port)
  env ${preload:+LD_PRELOAD=$preload} redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
    --save '' --appendonly no --daemonize no --dir "$tmp" --logfile "$tmp/redis.log" &
  REDIS_PID=$!
  pids+=("$REDIS_PID")
  local _
  for _ in $(seq 100); do
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  echo "demo: redis-server did not start: $(tail -2 "$tmp/redis.log" 2>/dev/null)" >&2
  return 1
}

stop_redis() {
  kill "$REDIS_PID" 2>/dev/null || true
  wait "$REDIS_PID" 2>/dev/null || true
}

# One redis run: prints "<SET/s> <GET/s> <redis-server peak RSS KiB>" under PRELOAD.
REDIS_ARGS=(-q -t set,get -n "${REDIS_N:-100000}" -r 100000 -d 256 -c 20 --csv)
measure_redis() {
  local preload=$1 out set get rss
  start_redis "$preload"
  out=$(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" "${REDIS_ARGS[@]}" 2>/dev/null)
  rss=$(awk '/^VmHWM/ {print $2}' "/proc/$REDIS_PID/status")
  stop_redis
  set=$(echo "$out" | awk -F'","' '/^"SET"/ {print $2 + 0}')
  get=$(echo "$out" | awk -F'","' '/^"GET"/ {print $2 + 0}')
  echo "${set:-0} ${get:-0} ${rss:-0}"
}

human() { awk -v v="$1" 'BEGIN { if (v >= 1e6) printf "%.2fM", v / 1e6; else if (v >= 1e4) printf "%.1fk", v / 1e3; else printf "%.2f", v }'; }

# report NAME HIGHER G-FILE H-FILE: one table line from REPS lines of "glibc-metric glibc-rss" and
# "hz3-metric hz3-rss" (line i of both files is pair i). HIGHER=1 when more is better (ops/s);
# the ratio is then hz3/glibc per pair, otherwise glibc/hz3, so above 1 means hz3 is faster.
report() {
  paste -d' ' "$3" "$4" | python3 -c '
import sys, statistics as st
name, higher = sys.argv[1], sys.argv[2] == "1"
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
g = [r[0] for r in rows]; h = [r[2] for r in rows]
ratio = [(b / a if higher else a / b) if a > 0 and b > 0 else float("nan") for a, b in zip(g, h)]
def human(v):
    return f"{v/1e6:.2f}M" if v >= 1e6 else f"{v/1e3:.1f}k" if v >= 1e4 else f"{v:.2f}"
print(f"{name:<32} {human(st.median(g)):>9} {human(st.median(h)):>9} {st.median(ratio):>7.2f}x "
      f"{min(ratio):>6.2f}-{max(ratio):<6.2f} {st.median(r[1] for r in rows) / 1024:>7.0f}M "
      f"{st.median(r[3] for r in rows) / 1024:>7.0f}M")
' "$1" "$2"
}

# row NAME KIND COMMAND…: REPS interleaved pairs of the command under glibc and libhz3.
row() {
  local name=$1 kind=$2; shift 2
  : >"$tmp/g"; : >"$tmp/h"
  local i
  for i in $(seq "$reps"); do
    if [ $((i % 2)) -eq 1 ]; then
      measure "" "$kind" "$@" >>"$tmp/g"; measure "$lib" "$kind" "$@" >>"$tmp/h"
    else
      measure "$lib" "$kind" "$@" >>"$tmp/h"; measure "" "$kind" "$@" >>"$tmp/g"
    fi
  done
  report "$name" "$([ "$kind" = ops ] && echo 1 || echo 0)" "$tmp/g" "$tmp/h"
}

redis_rows() {
  local i
  : >"$tmp/rg"; : >"$tmp/rh"
  for i in $(seq "$reps"); do
    if [ $((i % 2)) -eq 1 ]; then
      measure_redis "" >>"$tmp/rg"; measure_redis "$lib" >>"$tmp/rh"
    else
      measure_redis "$lib" >>"$tmp/rh"; measure_redis "" >>"$tmp/rg"
    fi
  done
  awk '{print $1, $3}' "$tmp/rg" >"$tmp/g"; awk '{print $1, $3}' "$tmp/rh" >"$tmp/h"
  report "redis-server SET (req/s)" 1 "$tmp/g" "$tmp/h"
  awk '{print $2, $3}' "$tmp/rg" >"$tmp/g"; awk '{print $2, $3}' "$tmp/rh" >"$tmp/h"
  report "redis-server GET (req/s)" 1 "$tmp/g" "$tmp/h"
}

echo "hz3 demo: $(uname -r), $(nproc) cores, libhz3 at $lib"
echo "$reps interleaved pairs per row (glibc, hz3, then hz3, glibc, ...); medians of either side,"
echo "the median ratio (above 1: hz3 faster) and its spread over the pairs (lowest-highest)"
echo
printf '%-32s %9s %9s %8s %13s %8s %8s\n' workload glibc hz3 ratio spread "rss glibc" "rss hz3"
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
redis_rows
echo "(redis-benchmark ${REDIS_ARGS[*]} against redis-server on 127.0.0.1; rss is redis-server's peak)"
echo
echo "proof that libhz3 served the runs: the allocator behind malloc() in each (dladdr)"
for pre in "" "$lib"; do
  env ${pre:+LD_PRELOAD=$pre} "$bin/bench_ssot" --iters 1000 | grep -o 'allocator=[^ ]*' | sed 's/^/  /'
done
start_redis "$lib"
grep -m1 libhz3 "/proc/$REDIS_PID/maps" | awk '{print "  redis-server (pid '"$REDIS_PID"') maps " $NF}'

# hz3top's view of redis-server on libhz3 while redis-benchmark drives it (the script decides
# what it can show: it needs privileges for BPF, and uses plain mode when there is no terminal).
if [ -f "$top/scripts/demo-hz3top.sh" ]; then
  echo
  redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -q -t set,get,lpush,lpop -n 100000000 -r 100000 \
    -d 256 -c 20 >/dev/null 2>&1 &
  load=$!
  pids+=("$load")
  sleep 0.5
  bash "$top/scripts/demo-hz3top.sh" "$REDIS_PID" || echo "demo: hz3top view failed (exit $?)"
  kill "$load" 2>/dev/null || true
  wait "$load" 2>/dev/null || true
fi
stop_redis

# hz3top heap finding a leak (needs root; the script says so otherwise).
echo
bash "$top/scripts/demo-heap.sh" || echo "demo: the leak demo failed (exit $?)"

# make triage catching a deliberately slowed library. Its verdict gates are CPU time per op and
# callgrind's instructions per op (deterministic), so a loaded machine cannot hide the slowdown;
# wall-clock ops/s is shown beside them, not gated.
echo
triage_runs=${TRIAGE_RUNS:-8} triage_iters=${TRIAGE_ITERS:-2000000}
echo "make triage A=release B=slowfree RUNS=$triage_runs ITERS=$triage_iters (slowfree: the release"
echo "sources with a fixed delay loop in every free; bench/bench.mk, docs/bench.md):"
rc=0
# make's own flags of `make demo` (its jobserver) are not this make's.
out=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$top" --no-print-directory triage \
  BUILD="$build" A=release B=slowfree RUNS="$triage_runs" ITERS="$triage_iters" \
  TRIAGE_ARGS="--no-fastpath --cg-ops 50000 --probes off" 2>&1) || rc=$?
echo "$out" | sed -n '/^== /,$p' | sed -e '/^triage: exit 1 (regression)$/d' -e 's/^/  /'
case $rc in
  1) echo "make triage exited 1 (regression), as it must for this pair" ;;
  *) echo "demo: make triage exited $rc, expected 1 (regression): $(echo "$out" | grep '^triage:' | tail -3)" ;;
esac
