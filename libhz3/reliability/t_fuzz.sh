#!/usr/bin/env bash
# Differential fuzzing (fuzz_diff.cc): libFuzzer drives the allocator core (ASan, hz3_-prefixed
# entry points) with op sequences checked against a shadow model, once on the release and once on
# the check configuration, REL_FUZZ_SECONDS each (20 in make test; `make fuzz` passes
# FUZZ_SECONDS, default 300, and keeps a growing corpus in build/reliability/fuzz-corpus/). Starts
# from seeds generated here. A mismatch or an ASan report is a FAIL naming the saved input
# (build/reliability/fuzz-artifacts/); replay it with `build/reliability/fuzz_diff FILE`.
# Each run prints how many inputs it executed clean. Budget in make test: ~45 s.
# timeout: 200
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/rel.sh"
secs=${REL_FUZZ_SECONDS:-20}
art=$rel_out/fuzz-artifacts
mkdir -p "$art"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
[ -x "$py" ] || py=python3

# Seeds: short random programs, a few long ones, and one that walks every op code in order.
seeds=$tmp/seeds
mkdir -p "$seeds"
"$py" - "$seeds" << 'PYEOF'
import os, random, sys
d = sys.argv[1]
rng = random.Random(20240601)
for i in range(24):
    n = rng.choice([16, 64, 256, 1024, 4000])
    with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
        f.write(bytes(rng.randrange(256) for _ in range(n)))
with open(os.path.join(d, "seed-every-op"), "wb") as f:
    for op in range(256):
        f.write(bytes([op, op * 7 % 64, op % 16 * 16 + op % 16, 200, 3, 5, 7, 11]))
PYEOF

for flavor in release check; do
  bin=$rel_out/fuzz_diff
  [ $flavor = check ] && bin=$rel_out/fuzz_diff_check
  need_bin "fuzz/$flavor" "$bin" || continue
  if [ -n "${REL_FUZZ_KEEP:-}" ]; then
    corpus=$rel_out/fuzz-corpus/$flavor
    mkdir -p "$corpus"
  else
    corpus=$tmp/corpus-$flavor
    mkdir -p "$corpus"
  fi
  log=$tmp/$flavor.log
  # -rss_limit_mb: huge blocks are touched sparsely, but 64 slots of 8 MiB blocks add up.
  ASAN_OPTIONS="allocator_may_return_null=1 ${ASAN_OPTIONS:-}" \
    "$bin" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096 -timeout=60 \
    -max_len=2048 -artifact_prefix="$art/$flavor-" "$corpus" "$seeds" > "$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  ops=$(sed -n 's/^hz3-fuzz totals: \([0-9]*\) ops.*/\1/p' "$log" | tail -1)
  inputs=$(ls "$corpus" | wc -l)
  echo "# fuzz/$flavor: ${execs:-0} inputs (${ops:-?} allocator ops) executed in ${secs} s," \
    "corpus $inputs, peak RSS ${rss:-?} MB"
  if [ $rc -eq 0 ] && [ -n "$execs" ] && [ "$execs" -gt 0 ]; then
    pass "fuzz/$flavor"
  else
    why=$(grep -m1 -E '^hz3-fuzz: op|^SUMMARY:|ERROR: (AddressSanitizer|libFuzzer)' "$log")
    crash=$(sed -n "s/.*Test unit written to \(.*\)/\1/p" "$log" | tail -1)
    fail "fuzz/$flavor" "exit $rc: ${why:-no report} (input: ${crash#"$top"/})"
    grep -m1 -B2 -A14 -E '^hz3-fuzz: op|ERROR: AddressSanitizer' "$log" | sed 's/^/  | /'
  fi
done
