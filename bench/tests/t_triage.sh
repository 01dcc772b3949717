#!/usr/bin/env bash
# timeout: 300
# bench/triage.py end to end, on cases whose answer is known: libhz3 against glibc must be a
# deterministic regression in callgrind instructions per operation (exit 1) and the reverse must
# not (exit 0); a threshold above the difference must pass; a side that names nothing must fail
# with exit 2; a git revision must build in a worktree; on this PMU-less machine the report must
# say so; as root with hz3top built, the probe counts must appear. Plus the statistics the noise
# verdicts rest on. About 60 s.
. "$HZ3_TOP/scripts/testlib.sh"
PY=/usr/bin/python3
T="$PY $HZ3_TOP/bench/triage.py --build $HZ3_BUILD"
small="--workload small --runs 2 --iters 200000 --no-fastpath"

# Statistics: exact Mann-Whitney values (checked against the closed form 2/C(n+m, n)), the tie
# path, and a seeded bootstrap that reproduces.
$PY - "$HZ3_TOP/bench" <<'PY'
import math, sys
sys.path.insert(0, sys.argv[1])
import stats
ok = True
def check(name, cond, why):
    global ok
    if not cond:
        print(f"FAIL: {name}: {why}"); ok = False
p, m = stats.mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
check("stats_mw_exact", m == "exact" and abs(p - 2 / math.comb(10, 5)) < 1e-12, f"p={p} {m}")
p, _ = stats.mann_whitney(list(range(10)), [x + 20 for x in range(10)])
check("stats_mw_exact_10", abs(p - 2 / math.comb(20, 10)) < 1e-12, f"p={p}")
p, _ = stats.mann_whitney([1, 2, 3, 4], [1, 2, 3, 4])
check("stats_mw_identical", p > 0.9, f"p={p}")
p, m = stats.mann_whitney([5] * 10, [5] * 10)
check("stats_mw_constant", p == 1.0, f"p={p}")
p, m = stats.mann_whitney([1, 1, 2, 2, 3] * 2, [3, 4, 4, 5, 5] * 2)
check("stats_mw_ties", m == "normal" and p < 0.01, f"p={p} {m}")
ci1 = stats.bootstrap_delta_ci([100, 101, 99, 100], [110, 111, 109, 110])
ci2 = stats.bootstrap_delta_ci([100, 101, 99, 100], [110, 111, 109, 110])
check("stats_bootstrap", ci1 == ci2 and ci1[0] > 5 and ci1[1] < 15, f"{ci1} {ci2}")
s = stats.summary([1, 2, 3, 4, 100])
check("stats_summary", s["median"] == 3 and s["p25"] == 2 and s["p75"] == 4, f"{s}")
if ok:
    print("PASS: triage_statistics")
PY

if ! command -v valgrind >/dev/null; then
  skip triage "valgrind not installed"; exit 0
fi
if [ ! -f "$HZ3_LIB" ]; then
  fail triage "$HZ3_LIB not built"; exit 0
fi

out=$($T release glibc $small --fail-on ir_per_op 2>&1); rc=$?
echo "$out"
[ $rc -eq 1 ] && echo "$out" | grep -q 'REGRESSION' && echo "$out" | grep -q '^callgrind Ir/op .*worse' \
  && pass triage_detects_regression || fail triage_detects_regression "exit $rc (want 1 and a REGRESSION line)"
echo "$out" | grep -qE '^ops/s +M ops/s' && echo "$out" | grep -qE '^task-clock' \
  && pass triage_reports_counters || fail triage_reports_counters "no ops/s or task-clock row"
if perf stat -e cycles true 2>&1 | grep -q 'not supported'; then
  echo "$out" | grep -q 'no hardware PMU' && pass triage_says_no_pmu \
    || fail triage_says_no_pmu "PMU-less machine not reported"
else
  echo "$out" | grep -qE '^cycles' && pass triage_hw_counters || fail triage_hw_counters "no cycles row"
fi

out=$($T glibc release $small --fail-on ir_per_op --probes off 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q 'no regression' && pass triage_improvement_passes \
  || fail triage_improvement_passes "exit $rc: $(echo "$out" | tail -2 | tr '\n' ' ')"

out=$($T release glibc $small --fail-on ir_per_op --threshold 100000 --probes off 2>&1); rc=$?
[ $rc -eq 0 ] && pass triage_threshold || fail triage_threshold "exit $rc with a threshold above the delta"

out=$($T release no-such-thing-xyz $small 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q 'not a peer' && pass triage_bad_side \
  || fail triage_bad_side "exit $rc: $(echo "$out" | tail -1)"

# A revision: HEAD built in a worktree (removed afterwards unless it was there before).
sha=$(git -C "$HZ3_TOP" rev-parse HEAD 2>/dev/null)
if [ -n "$sha" ]; then
  wt=$HZ3_BUILD/triage/wt-${sha:0:12}
  existed=0; [ -d "$wt" ] && existed=1
  out=$($T HEAD:noptag noptag $small --no-callgrind --probes off 2>&1); rc=$?
  [ $rc -eq 0 ] && [ -f "$wt/build/noptag/lib/libhz3.so" ] && pass triage_git_revision \
    || fail triage_git_revision "exit $rc: $(echo "$out" | tail -3 | tr '\n' ' ')"
  [ $existed -eq 0 ] && [ -d "$wt" ] && git -C "$HZ3_TOP" worktree remove --force "$wt"
else
  skip triage_git_revision "not a git checkout"
fi

# Probe counts through hz3top (root only): every free of an hz3 block is a tag-map hit.
if [ "$(id -u)" -eq 0 ] && [ -x "$HZ3_BIN/hz3top" ]; then
  out=$($T release release $small --no-callgrind --probes on 2>&1); rc=$?
  hits=$(echo "$out" | awk '$1=="probe" && $2=="ptag_hit" {gsub(",", "", $4); print $4}')
  [ $rc -eq 0 ] && [ "${hits%%.*}" -ge 90000 ] 2>/dev/null && pass triage_probe_counts \
    || fail triage_probe_counts "exit $rc, ptag_hit '${hits}' (want ~100000): $(echo "$out" | grep -E 'note|probe' | head -3 | tr '\n' ' ')"
else
  skip triage_probe_counts "needs root and $HZ3_BIN/hz3top"
fi
