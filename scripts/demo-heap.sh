#!/usr/bin/env bash
# The leak part of `make demo`: a service with a known leaking site (hz3top_heap_sites --leak:
# every request keeps a 16 KiB block in site_leak_session_cache, hz3top/tests/heap_sites.cc) runs
# on libhz3, and `hz3top heap` watches it for two intervals. Prints the top of each report's
# live-bytes table, then one line saying whether the leaking function came first in both with
# growth in both intervals. Needs root (hz3top heap: CAP_SYS_ADMIN); without it, it says so.
# Not a test: it exits 0 whatever it finds (t_hz3top_heap.sh checks the heap view's numbers).
#   scripts/demo-heap.sh [INTERVAL_SECONDS]   (default 2)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/${BUILD:-build}
hz3top=$build/bin/hz3top sites=$build/tests/hz3top_heap_sites lib=$build/lib/libhz3.so
interval=${1:-2}

if [ ! -x "$hz3top" ] || [ ! -x "$sites" ]; then echo "demo: hz3top or $sites is not built; run 'make'"; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: hz3top heap needs root (or CAP_SYS_ADMIN; docs/hz3top.md); run 'sudo make demo' to see a leak found"
  exit 0
fi
tmp=$(mktemp -d /tmp/hz3-demo-heap.XXXXXX)
svc=
trap '[ -n "$svc" ] && { touch "$tmp/stop"; wait "$svc"; } 2>/dev/null; rm -rf "$tmp"' EXIT

LD_PRELOAD=$lib "$sites" --leak "$tmp/stop" &
svc=$!
echo "a leaking service: hz3top_heap_sites --leak (pid $svc, on libhz3): each request allocates"
echo "and frees 16 buffers, and site_leak_session_cache keeps one 16 KiB block it never frees"
echo "hz3top heap -p $svc --plain -n 3 $interval 2 (the live-bytes table of each report):"
"$hz3top" heap -p "$svc" --plain -n 3 "$interval" 2 >"$tmp/out" 2>"$tmp/err" ||
  { echo "demo: hz3top heap failed: $(head -2 "$tmp/err")"; exit 0; }
# Each report: its header line, then the first table (up to the allocation-rate table).
awk '/^[0-9:]+ heap / {show = 1} /top sites by estimated allocation rate/ {show = 0} show' "$tmp/out"

# The first row of each live table: its ΔLIVE column and its site.
awk '/top sites by estimated live bytes/ {getline; getline; print}' "$tmp/out" >"$tmp/first"
n=$(grep -c 'site_leak_session_cache' "$tmp/first")
grew=$(awk '{d = $4; if (d ~ /^\+/ && $4 $5 != "+0B") g++} END {print g + 0}' "$tmp/first")
if [ "$n" -eq 2 ] && [ "$grew" -eq 2 ]; then
  echo "found: site_leak_session_cache holds the most live bytes in both reports and grew in both" \
       "intervals ($(awk '{printf "%s%s%s", sep, $4, $5; sep = ", then "}' "$tmp/first"))"
else
  echo "demo: the leaking site led $n of 2 reports and grew in $grew (few samples on a loaded machine?)"
fi
