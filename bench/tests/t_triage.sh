#!/usr/bin/env bash
# timeout: 420
# bench/triage.py end to end, on cases whose answer is known: libhz3 against glibc must be a
# deterministic regression in callgrind instructions per operation (exit 1) and the reverse an
# improvement (exit 0); a threshold above the difference must pass; a side that names nothing must
# fail with exit 2, also through `make triage`; a git revision must build in a worktree; on this
# PMU-less machine the report must say so; as root with hz3top built, the probe counts must appear
# (and '-' for a side without probes). Then bench/triage_proof.sh with 3 identical-build runs under
# a load generator (never REGRESSION or IMPROVEMENT, make exits 0) and the slowfree library both
# ways (REGRESSION with make exit 1, IMPROVEMENT with exit 0). Plus the statistics the verdicts
# rest on and the disturbed-pair rules. About 2 minutes.
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
# Paired: the order-statistic interval of the median (coverage 1 - 2^(1-n) for [min, max]),
# exact Wilcoxon (all six pairs one way: p = 2/2^6), 0 vs 0 is a ratio of 1 with [1, 1].
check("stats_ci_ranks", stats.median_ci_ranks(5) is None
      and stats.median_ci_ranks(6) == (1, 1 - 2 / 64) and stats.median_ci_ranks(20)[0] == 6,
      f"{stats.median_ci_ranks(5)} {stats.median_ci_ranks(6)} {stats.median_ci_ranks(20)}")
p, m = stats.wilcoxon_signed_rank([1, 2, 3, 4, 5, 6])
check("stats_wilcoxon_exact", m == "exact" and abs(p - 2 / 64) < 1e-12, f"p={p} {m}")
p, _ = stats.wilcoxon_signed_rank([1, -2, 3, -4, 5, -6])
check("stats_wilcoxon_balanced", p > 0.5, f"p={p}")
check("stats_wilcoxon_zeros", stats.wilcoxon_signed_rank([0] * 8)[0] == 1.0, "p != 1")
z = stats.paired([0] * 6, [0] * 6)
check("stats_paired_zero", z["ratio"] == 1.0 and z["ci"] == (1.0, 1.0) and z["p"] == 1.0, f"{z}")
check("stats_pair_ratio", stats.pair_ratio(0, 5) == math.inf and stats.pair_ratio(4, 0) == 0
      and stats.pair_ratio(0, 0) == 1.0, "0-vs-x ratios")
pr = stats.paired([10, 11, 9, 10, 12, 10], [11.5, 12.6, 10.4, 11.6, 13.7, 11.4])
check("stats_paired_shift", pr["ci"][0] > 1.1 and pr["ci"][1] < 1.2 and pr["p"] < 0.05, f"{pr}")
if ok:
    print("PASS: triage_statistics")
PY

# Disturbed pairs: a run descheduled unlike its partner, context switches far above the other
# runs', a load change between the two runs, hypervisor steal; a pair alike in all is clean
# even when the whole machine is busy (both runs slowed alike).
$PY - "$HZ3_TOP/bench" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
sys.argv = ["triage.py", "x", "y"]
import triage
ok = True
def run(wc, cs, other, steal=0.0):
    return {"wall_cpu": wc, "context-switches": cs, "other_cpus": other, "steal_cpus": steal}
peers = [run(1.0, 10, 0.1) for _ in range(10)]
def why(a, b):
    return triage.disturbance({"A": a, "B": b}, peers + [a, b], 1.2) or ""
cases = [
    ("clean", why(run(1.0, 10, 0.1), run(1.01, 11, 0.1)) == ""),
    ("busy_alike", why(run(1.6, 12, 1.9), run(1.5, 11, 1.8)) == ""),
    ("descheduled", "B wall/cpu 1.90 vs A 1.00 (descheduled)" in why(run(1.0, 10, 0.1), run(1.9, 10, 0.1))),
    ("context_switches", "A context switches 200 vs median 10" in why(run(1.0, 200, 0.1), run(1.0, 10, 0.1))),
    ("load_change", "machine load changed" in why(run(1.0, 10, 0.1), run(1.0, 10, 1.2))),
    ("steal", "steal" in why(run(1.0, 10, 0.1, 0.3), run(1.0, 10, 0.1))),
]
for name, good in cases:
    if not good:
        print(f"FAIL: triage_disturbed_{name}: rule did not give the expected answer"); ok = False
if ok:
    print("PASS: triage_disturbed_pair_rules")
PY

if ! command -v valgrind >/dev/null; then
  skip triage "valgrind not installed"; exit 0
fi
if [ ! -f "$HZ3_LIB" ]; then
  fail triage "$HZ3_LIB not built"; exit 0
fi

out=$($T release glibc $small --fail-on ir_per_op 2>&1); rc=$?
echo "$out"
[ $rc -eq 1 ] && echo "$out" | grep -q 'REGRESSION' && echo "$out" | grep -q '^\* callgrind Ir/op .*worse' \
  && pass triage_detects_regression || fail triage_detects_regression "exit $rc (want 1 and a REGRESSION line)"
# Every pair of a run can be disturbed (and discarded) on a loaded machine: timed rows then have
# no sample to show, and the check has nothing to look at.
if echo "$out" | grep -qE '^pairs: 0 kept'; then
  skip triage_reports_counters "every pair was disturbed by other load and discarded"
else
  echo "$out" | grep -qE '^  ops/s \(wall clock\) +M ops/s' && echo "$out" | grep -qE '^  task-clock' \
    && pass triage_reports_counters || fail triage_reports_counters "no ops/s or task-clock row"
fi
if perf stat -e cycles true 2>&1 | grep -q 'not supported'; then
  echo "$out" | grep -q 'no hardware PMU' && pass triage_says_no_pmu \
    || fail triage_says_no_pmu "PMU-less machine not reported"
else
  echo "$out" | grep -qE '^  cycles' && pass triage_hw_counters || fail triage_hw_counters "no cycles row"
fi

out=$($T glibc release $small --fail-on ir_per_op --probes off 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q '^triage: IMPROVEMENT' && pass triage_improvement_passes \
  || fail triage_improvement_passes "exit $rc: $(echo "$out" | tail -2 | tr '\n' ' ')"

out=$($T release glibc $small --fail-on ir_per_op --threshold 100000 --probes off 2>&1); rc=$?
[ $rc -eq 0 ] && pass triage_threshold || fail triage_threshold "exit $rc with a threshold above the delta"

out=$($T release no-such-thing-xyz $small 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q 'not a peer' && pass triage_bad_side \
  || fail triage_bad_side "exit $rc: $(echo "$out" | tail -1)"
# make turns any failed recipe into its own exit 2; bench.mk keeps 1 (regression) apart.
out=$(make -C "$HZ3_TOP" --no-print-directory triage BUILD="$HZ3_BUILD" A=release B=no-such-variant 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q 'not a peer' && pass triage_make_bad_variant \
  || fail triage_make_bad_variant "make exit $rc: $(echo "$out" | tail -1)"

# A revision: HEAD built in a worktree (removed afterwards unless it was there before).
sha=$(git -C "$HZ3_TOP" rev-parse HEAD 2>/dev/null)
if [ -n "$sha" ]; then
  wt=$HZ3_BUILD/triage/wt-${sha:0:12}
  existed=0; [ -d "$wt" ] && existed=1
  out=$($T HEAD:noptag noptag $small --no-callgrind --probes off 2>&1); rc=$?
  # 2 pairs cannot decide a timed gate: exit 3 (inconclusive) is the honest answer here.
  [ $rc -eq 3 ] && [ -f "$wt/build/noptag/lib/libhz3.so" ] && pass triage_git_revision \
    || fail triage_git_revision "exit $rc: $(echo "$out" | tail -3 | tr '\n' ' ')"
  [ $existed -eq 0 ] && [ -d "$wt" ] && git -C "$HZ3_TOP" worktree remove --force "$wt"
else
  skip triage_git_revision "not a git checkout"
fi

# Probe counts through hz3top (root only): every free of an hz3 block is a tag-map hit.
if [ "$(id -u)" -eq 0 ] && [ -x "$HZ3_BIN/hz3top" ]; then
  out=$($T release release $small --no-callgrind --probes on --gate ir_per_op 2>&1); rc=$?
  hits=$(echo "$out" | awk '$1=="probe" && $2=="ptag_hit" {gsub(",", "", $4); print $4}')
  [ $rc -eq 0 ] && [ "${hits%%.*}" -ge 90000 ] 2>/dev/null && pass triage_probe_counts \
    || fail triage_probe_counts "exit $rc, ptag_hit '${hits}' (want ~100000): $(echo "$out" | grep -E 'note|probe' | head -3 | tr '\n' ' ')"
  if [ -f "$HZ3_LIB_NOPROBES" ]; then
    out=$($T release noprobes $small --no-callgrind --probes on --gate ir_per_op 2>&1); rc=$?
    row=$(echo "$out" | awk '$1=="probe" && $2=="ptag_hit" {print $5, $6}')
    [ $rc -eq 0 ] && [ "$row" = "- -" ] && pass triage_probes_dash \
      || fail triage_probes_dash "exit $rc, ptag_hit row B/ratio '$row' (want '- -')"
  fi
else
  skip triage_probe_counts "needs root and $HZ3_BIN/hz3top"
fi

# A pair that stays disturbed is rerun, then discarded, and the output says so; with no pair
# left the timed gates cannot decide: INCONCLUSIVE, exit 3 (never a silent "no change").
out=$(PYTHONDONTWRITEBYTECODE=1 $PY - "$HZ3_TOP/bench" "$HZ3_BUILD" <<'PY' 2>&1
import sys
sys.path.insert(0, sys.argv[1])
import triage
triage.disturbance = lambda pair, peers, limit: "A wall/cpu 1.90 vs B 1.00 (descheduled)"
sys.argv = ["triage.py", "release", "release", "--build", sys.argv[2], "--runs", "6",
            "--iters", "200000", "--no-callgrind", "--probes", "off", "--retries", "1"]
triage.main()
PY
); rc=$?
[ $rc -eq 3 ] && echo "$out" | grep -q '^triage: small pair 3 disturbed: A wall/cpu 1.90 vs B 1.00 (descheduled); rerun 1/1' \
  && echo "$out" | grep -q '^triage: small pair 3 discarded: ' && echo "$out" | grep -q '^triage: INCONCLUSIVE' \
  && pass triage_disturbed_discarded \
  || fail triage_disturbed_discarded "exit $rc: $(echo "$out" | grep -E 'pair 3|INCONCL|pairs:' | head -3 | tr '\n' ' ')"

# The noise proof, short: 3 identical-build triage runs (two paths of one library) through
# `make triage` while `yes` loads one core half the time, then the slowfree library both ways.
# `make triage-proof` runs the same with 20 (docs/bench.md has its result).
out=$(bash "$HZ3_TOP/bench/triage_proof.sh" -n 3 -b "$HZ3_BUILD" 2>&1); rc=$?
echo "$out"
echo "$out" | grep -q 'identical builds: 3 triage runs .*: 0 false positives' \
  && pass triage_identical_under_load \
  || fail triage_identical_under_load "$(echo "$out" | grep -E 'FALSE|identical builds|no verdict|want' | head -3 | tr '\n' ' ')"
echo "$out" | grep -q 'A=release B=slowfree: REGRESSION, make exit 1' \
  && pass triage_detects_slowfree \
  || fail triage_detects_slowfree "$(echo "$out" | grep 'B=slowfree' | tr '\n' ' ')"
echo "$out" | grep -q 'A=slowfree B=release: IMPROVEMENT, make exit 0' \
  && pass triage_slowfree_improvement \
  || fail triage_slowfree_improvement "$(echo "$out" | grep 'A=slowfree' | tr '\n' ' ')"
[ $rc -eq 0 ] || fail triage_proof "bench/triage_proof.sh exit $rc"
