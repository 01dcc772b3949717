#!/usr/bin/env bash
# bench/triage_proof.sh — does `make triage` withstand a noisy machine and still see a real
# slowdown? Behind `make triage-proof` (20 identical-build runs) and, with 3 runs, in
# bench/tests/t_triage.sh. While a load generator runs (`yes > /dev/null` on one core, switched
# on and off every LOAD_PERIOD seconds, so half the time, and the load starts and stops in the
# middle of triage's pairs):
#   1. N times `make triage A=release B=<a copy of the same library at another path>`: every
#      run must exit 0 or say INCONCLUSIVE, never print REGRESSION or IMPROVEMENT;
#   2. `make triage A=release B=slowfree` must say REGRESSION and exit 1, and
#      `make triage A=slowfree B=release` IMPROVEMENT and exit 0 (the slowfree library adds a
#      fixed delay to every free: bench/bench.mk, HZ3_TEST_SLOW_FREE_SPINS).
# Prints one "proof:" line per finding and exits 1 if any assertion failed.
#
#   bench/triage_proof.sh [-n RUNS_OF_TRIAGE] [-b BUILD] [--no-load] [-- extra triage.py args]
# Environment: PROOF_RUNS (pairs per triage, default 10), PROOF_ITERS (SSOT ITERS, default
# 5000000), LOAD_PERIOD (seconds, default 3), LOG (folder for every triage output).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
n=20 build=$top/build load=1
while [ $# -gt 0 ]; do
  case $1 in
    -n) n=$2; shift 2 ;;
    -b) build=$(cd "$2" && pwd); shift 2 ;;
    --no-load) load=0; shift ;;
    --) shift; break ;;
    *) echo "usage: $0 [-n N] [-b BUILD] [--no-load] [-- triage args]" >&2; exit 2 ;;
  esac
done
extra="--no-fastpath --cg-ops 50000 $*"
runs=${PROOF_RUNS:-10} iters=${PROOF_ITERS:-5000000} period=${LOAD_PERIOD:-3}
log=${LOG:-$build/triage/proof-logs}
mkdir -p "$log" "$build/triage/proof"
bad=0

cpu_ratio() {  # "B/A [lo, hi] (verdict)" of the CPU time row of a triage output
  echo "$1" | sed -nE 's/^\* CPU time per op +ns +[^ ]+ +[^ ]+ +([^ ]+) +(\[[^]]*\]|\(< [0-9]+ pairs\)) +[^ ]+ +(.*)$/\1 \2 (\3)/p'
}

mk() {  # make triage with the proof's parameters; prints the output, returns make's status
  make -C "$top" --no-print-directory triage BUILD="$build" RUNS="$runs" ITERS="$iters" \
    TRIAGE_ARGS="$extra" "$@" 2>&1
}

make -C "$top" --no-print-directory BUILD="$build" VARIANT=release lib >/dev/null || exit 2
copy=$build/triage/proof/libhz3.so
cp "$build/lib/libhz3.so" "$copy" || exit 2

loadpid=
if [ "$load" -eq 1 ]; then
  # One busy core for `period` seconds, then none for `period` seconds, until killed.
  ( trap 'kill $y 2>/dev/null; exit 0' TERM
    while :; do yes > /dev/null & y=$!; sleep "$period"; kill $y; wait $y 2>/dev/null
                sleep "$period"; done ) &
  loadpid=$!
  trap '[ -n "$loadpid" ] && kill $loadpid 2>/dev/null' EXIT
  what="yes > /dev/null on one core, ${period} s on / ${period} s off"
else
  what="no load generator"
fi
echo "proof: load: $what; other load now: $(cut -d' ' -f1-3 /proc/loadavg)"

fp=0 same=0 inconcl=0 reruns=0 discarded=0
for i in $(seq 1 "$n"); do
  out=$(mk A=release B="$copy"); rc=$?
  echo "$out" > "$log/identical-$i.log"
  r=$(echo "$out" | sed -n 's/^pairs: .*, \([0-9]*\) rerun(s), \([0-9]*\) discarded.*/\1 \2/p')
  reruns=$((reruns + ${r%% *})); discarded=$((discarded + ${r##* }))
  cpu=$(cpu_ratio "$out")
  if echo "$out" | grep -qE '^triage: (REGRESSION|IMPROVEMENT)'; then
    fp=$((fp + 1))
    echo "proof: identical run $i: FALSE POSITIVE (make exit $rc): $(echo "$out" | grep -A2 -E '^triage: (REGRESSION|IMPROVEMENT)' | tr '\n' ' ')"
  elif echo "$out" | grep -q '^triage: INCONCLUSIVE'; then
    inconcl=$((inconcl + 1))
    [ $rc -eq 2 ] || { echo "proof: identical run $i: INCONCLUSIVE but make exit $rc (want 2)"; bad=1; }
    echo "proof: identical run $i: inconclusive (make exit $rc), CPU time B/A $cpu"
  elif echo "$out" | grep -q '^triage: no change'; then
    same=$((same + 1))
    [ $rc -eq 0 ] || { echo "proof: identical run $i: no change but make exit $rc (want 0)"; bad=1; }
    echo "proof: identical run $i: no change (make exit $rc), CPU time B/A $cpu"
  else
    echo "proof: identical run $i: no verdict (make exit $rc): $(echo "$out" | tail -3 | tr '\n' ' ')"
    bad=1
  fi
done
[ "$fp" -eq 0 ] || bad=1
echo "proof: identical builds: $n triage runs ($runs pairs each, ITERS=$iters) under $what:" \
     "$fp false positives, $same no change, $inconcl inconclusive; $reruns pairs rerun," \
     "$discarded discarded"

detect() {  # A B want_word want_rc
  local out rc cpu ir
  out=$(mk A="$1" B="$2"); rc=$?
  echo "$out" > "$log/detect-$1-$2.log"
  cpu=$(cpu_ratio "$out")
  ir=$(echo "$out" | awk '$1=="*" && $2=="callgrind" && $3=="Ir/op" {print $7}')
  if echo "$out" | grep -q "^triage: $3" && [ "$rc" -eq "$4" ]; then
    echo "proof: A=$1 B=$2: $3, make exit $rc; CPU time per op B/A $cpu; Ir/op B/A $ir"
  else
    echo "proof: A=$1 B=$2: want $3 and exit $4, got exit $rc: $(echo "$out" | grep -E '^triage: (REG|IMP|no |INC)' | tr '\n' ' ')"
    bad=1
  fi
}
detect release slowfree REGRESSION 1
detect slowfree release IMPROVEMENT 0
echo "proof: logs in $log"
exit $bad
