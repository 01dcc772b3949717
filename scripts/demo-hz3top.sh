#!/usr/bin/env bash
# hz3top's part of `make demo`: shows hz3top's live view of a process running on libhz3.
# Usage: scripts/demo-hz3top.sh PID [SECONDS]   (scripts/demo.sh passes the pid of redis-server
# on libhz3, driven by redis-benchmark)
# On a terminal it runs the interactive view for SECONDS (default 8); otherwise it prints one
# plain line per second, then the live pages per size class from one JSON report. Then, either
# way, two seconds of `hz3top heap` (allocation sites, docs/heap-profiling.md) and one scrape of
# `hz3top --openmetrics` (docs/openmetrics.md). It needs root (BPF, perf); without it, it says so
# and exits 0. Not a test: it checks nothing.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
hz3top=$top/${BUILD:-build}/bin/hz3top
pid=${1:?usage: demo-hz3top.sh PID [SECONDS]}
secs=${2:-8}

if [ ! -x "$hz3top" ]; then echo "demo: $hz3top is not built; run 'make'"; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: hz3top needs root (or CAP_BPF+CAP_PERFMON, and CAP_SYS_ADMIN for hz3top heap; docs/hz3top.md); run 'sudo make demo' to see its view"
  exit 0
fi

echo "hz3top -p $pid: $(tr -d '\0' <"/proc/$pid/comm" 2>/dev/null) on libhz3, watched for ${secs} s"
tmp=$(mktemp -d)
om=
trap '[ -n "$om" ] && kill "$om" 2>/dev/null; rm -rf "$tmp"' EXIT

# extras: the heap view and the OpenMetrics endpoint, a few seconds each.
extras() {
  echo
  echo "heap by allocation site (hz3top heap -p $pid -n 5 -d 2 2):"
  "$hz3top" heap -p "$pid" -n 5 -d 2 2 || echo "demo: hz3top heap failed (exit $?)"
  echo
  "$hz3top" -p "$pid" --no-perf --openmetrics 127.0.0.1:0 0.5 2>"$tmp/om.log" &
  om=$!
  local addr=
  for _ in $(seq 50); do
    addr=$(sed -n 's|.*serving OpenMetrics on http://\(.*\)/metrics$|\1|p' "$tmp/om.log")
    [ -n "$addr" ] && break
    sleep 0.1
  done
  if [ -z "$addr" ]; then echo "demo: hz3top --openmetrics did not start: $(head -1 "$tmp/om.log")"; return; fi
  sleep 1.2
  echo "one scrape of http://$addr/metrics (hz3top --openmetrics; a few of its lines):"
  curl -s --max-time 5 "http://$addr/metrics" | grep -E '^hz3_(ptag_hits_total|ptag_hit_rate|live_bytes)' || true
  kill "$om" 2>/dev/null
  wait "$om" 2>/dev/null
  om=
}

if [ -t 0 ] && [ -t 1 ]; then
  # The interactive view ends by itself after $secs seconds and leaves the final report.
  "$hz3top" -p "$pid" -d "$secs" 0.5 || exit $?
  extras
  exit 0
fi

"$hz3top" -p "$pid" --plain -d "$secs" 1 || exit $?
echo
echo "live pages per size class (tag map of pid $pid, one JSON report of hz3top):"
json=$tmp/report.json
"$hz3top" -p "$pid" --json --once --no-perf 0.5 >"$json" 2>/dev/null || exit $?
python3 - "$json" <<'PY'
import json, sys
o = json.loads(open(sys.argv[1]).readline())
rows = sorted(o["procs"][0]["bins"], key=lambda b: -b["live_bytes"])[:10]
print(f"  {'bin':>5} {'size':>9} {'live pages':>11} {'live MiB':>9} {'sets':>8} {'clears':>8}")
for b in rows:
    size = "large" if b["bin"] == 32767 else f"{b['size']} B"
    print(f"  {b['bin']:5d} {size:>9} {b['live_pages']:11d} {b['live_bytes'] / 2**20:9.2f} "
          f"{b['tag_set']:8d} {b['tag_clear']:8d}")
print(f"  lookups/s {o['rate']['lookups']:.3g}, hit ratio since attach {o['hit_ratio']}")
PY
extras
