#!/usr/bin/env bash
# The test runner behind `make test`. Runs every test script (libhz3/*/t_*.sh, probes/tests,
# hz3top/tests, bench/tests and scripts/tests: the harness's self-test and the build, install,
# format, layer and assertion checks), each under the timeout its "# timeout: N" line gives (600 s without one),
# and counts the result lines they print:
#   PASS: name            FAIL: name: why            SKIP: name: why
# A script that exits non-zero without printing a FAIL, or prints no result at all, counts as one
# failure, and so does each substring that matches no script. Ends with the line
# "N passed, M failed[, K skipped]"; exit status 1 if anything failed.
# Usage: scripts/run-tests.sh [substring …]   (only scripts whose path contains a substring)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export BUILD=${BUILD:-build}
export HZ3_TOP=$top
export HZ3_BUILD=$top/$BUILD
export HZ3_LIB=$HZ3_BUILD/lib/libhz3.so
export HZ3_LIB_CHECK=$HZ3_BUILD/check/lib/libhz3.so
export HZ3_LIB_NOPROBES=$HZ3_BUILD/noprobes/lib/libhz3.so
export HZ3_LIB_NOPTAG=$HZ3_BUILD/noptag/lib/libhz3.so
export HZ3_LIB_HARDENED=$HZ3_BUILD/hardened/lib/libhz3.so
export HZ3_LIB_MAGALL=$HZ3_BUILD/magall/lib/libhz3.so
export HZ3_BIN=$HZ3_BUILD/bin
export HZ3_TBIN=$HZ3_BUILD/tests

all=$(ls libhz3/*/t_*.sh probes/tests/t_*.sh hz3top/tests/t_*.sh bench/tests/t_*.sh \
          scripts/tests/t_*.sh 2>/dev/null | sort)
scripts=()
for s in $all; do
  if [ $# -eq 0 ]; then scripts+=("$s"); continue; fi
  for f in "$@"; do case "$s" in *"$f"*) scripts+=("$s"); break ;; esac; done
done

pass=0 failn=0 skip=0
failed=()
# A filter that matches no script must not read as a clean run, even beside filters that match.
for f in "$@"; do
  hit=0
  for s in $all; do case "$s" in *"$f"*) hit=1; break ;; esac; done
  if [ $hit -eq 0 ]; then
    echo "   FAIL: run-tests: no test script matches: $f"
    failn=$((failn + 1))
  fi
done
logdir=$HZ3_BUILD/test-logs/run-$$  # per run: concurrent runs must not share logs
mkdir -p "$logdir"
for s in "${scripts[@]}"; do
  name=${s%.sh}; name=${name//\//_}
  limit=$(sed -n 's/^# timeout: *\([0-9]*\).*/\1/p' "$s" | head -1)
  limit=${limit:-600}
  start=$(date +%s)
  echo "== $s"
  timeout -k 10 "$limit" bash "$s" > "$logdir/$name.log" 2>&1 </dev/null
  rc=$?
  grep -E '^(PASS|FAIL|SKIP): ' "$logdir/$name.log" | sed 's/^/   /'
  p=$(grep -c '^PASS: ' "$logdir/$name.log"); f=$(grep -c '^FAIL: ' "$logdir/$name.log")
  k=$(grep -c '^SKIP: ' "$logdir/$name.log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    why="exit status $rc"; [ "$rc" -eq 124 ] && why="timed out after ${limit}s"
    echo "   FAIL: $s: $why (log: $logdir/$name.log)"; tail -5 "$logdir/$name.log" | sed 's/^/      | /'
    f=1
  elif [ $((p + f + k)) -eq 0 ]; then
    echo "   FAIL: $s: printed no result (log: $logdir/$name.log)"; f=1
  fi
  [ "$f" -gt 0 ] && failed+=("$s")
  pass=$((pass + p)); failn=$((failn + f)); skip=$((skip + k))
  echo "   ($(( $(date +%s) - start ))s)"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "failed scripts (logs in $logdir):"; printf '  %s\n' "${failed[@]}"
fi
if [ "$skip" -gt 0 ]; then
  echo "$pass passed, $failn failed, $skip skipped"
else
  echo "$pass passed, $failn failed"
fi
[ "$failn" -eq 0 ]
