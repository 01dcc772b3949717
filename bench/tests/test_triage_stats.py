"""The statistics bench/triage.py's verdicts rest on (bench/stats.py) and its rules for a
disturbed pair, on inputs whose answer is known. Run by t_triage.sh through pytest_checks."""
import math
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import stats  # noqa: E402
import triage  # noqa: E402

RESULT_GROUP = "triage"


# Exact Mann-Whitney values (checked against the closed form 2/C(n+m, n)), the tie path, and a
# seeded bootstrap that reproduces.
@pytest.mark.name("triage_statistics/mw_exact")
def test_mw_exact():
    p, m = stats.mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert m == "exact" and abs(p - 2 / math.comb(10, 5)) < 1e-12, f"p={p} {m}"


@pytest.mark.name("triage_statistics/mw_exact_10")
def test_mw_exact_10():
    p, _ = stats.mann_whitney(list(range(10)), [x + 20 for x in range(10)])
    assert abs(p - 2 / math.comb(20, 10)) < 1e-12, f"p={p}"


@pytest.mark.name("triage_statistics/mw_identical")
def test_mw_identical():
    p, _ = stats.mann_whitney([1, 2, 3, 4], [1, 2, 3, 4])
    assert p > 0.9, f"p={p}"


@pytest.mark.name("triage_statistics/mw_constant")
def test_mw_constant():
    p, _ = stats.mann_whitney([5] * 10, [5] * 10)
    assert p == 1.0, f"p={p}"


@pytest.mark.name("triage_statistics/mw_ties")
def test_mw_ties():
    p, m = stats.mann_whitney([1, 1, 2, 2, 3] * 2, [3, 4, 4, 5, 5] * 2)
    assert m == "normal" and p < 0.01, f"p={p} {m}"


@pytest.mark.name("triage_statistics/bootstrap")
def test_bootstrap():
    ci1 = stats.bootstrap_delta_ci([100, 101, 99, 100], [110, 111, 109, 110])
    ci2 = stats.bootstrap_delta_ci([100, 101, 99, 100], [110, 111, 109, 110])
    assert ci1 == ci2 and ci1[0] > 5 and ci1[1] < 15, f"{ci1} {ci2}"


@pytest.mark.name("triage_statistics/summary")
def test_summary():
    s = stats.summary([1, 2, 3, 4, 100])
    assert s["median"] == 3 and s["p25"] == 2 and s["p75"] == 4, f"{s}"


# Paired: the order-statistic interval of the median (coverage 1 - 2^(1-n) for [min, max]),
# exact Wilcoxon (all six pairs one way: p = 2/2^6), 0 vs 0 is a ratio of 1 with [1, 1].
@pytest.mark.name("triage_statistics/ci_ranks")
def test_ci_ranks():
    r5, r6, r20 = stats.median_ci_ranks(5), stats.median_ci_ranks(6), stats.median_ci_ranks(20)
    assert r5 is None and r6 == (1, 1 - 2 / 64) and r20[0] == 6, f"{r5} {r6} {r20}"


@pytest.mark.name("triage_statistics/wilcoxon_exact")
def test_wilcoxon_exact():
    p, m = stats.wilcoxon_signed_rank([1, 2, 3, 4, 5, 6])
    assert m == "exact" and abs(p - 2 / 64) < 1e-12, f"p={p} {m}"


@pytest.mark.name("triage_statistics/wilcoxon_balanced")
def test_wilcoxon_balanced():
    p, _ = stats.wilcoxon_signed_rank([1, -2, 3, -4, 5, -6])
    assert p > 0.5, f"p={p}"


@pytest.mark.name("triage_statistics/wilcoxon_zeros")
def test_wilcoxon_zeros():
    assert stats.wilcoxon_signed_rank([0] * 8)[0] == 1.0, "p != 1"


@pytest.mark.name("triage_statistics/paired_zero")
def test_paired_zero():
    z = stats.paired([0] * 6, [0] * 6)
    assert z["ratio"] == 1.0 and z["ci"] == (1.0, 1.0) and z["p"] == 1.0, f"{z}"


@pytest.mark.name("triage_statistics/pair_ratio")
def test_pair_ratio():
    assert stats.pair_ratio(0, 5) == math.inf and stats.pair_ratio(4, 0) == 0 and stats.pair_ratio(0, 0) == 1.0, \
        "0-vs-x ratios"


@pytest.mark.name("triage_statistics/paired_shift")
def test_paired_shift():
    pr = stats.paired([10, 11, 9, 10, 12, 10], [11.5, 12.6, 10.4, 11.6, 13.7, 11.4])
    assert pr["ci"][0] > 1.1 and pr["ci"][1] < 1.2 and pr["p"] < 0.05, f"{pr}"


# Disturbed pairs: a run descheduled unlike its partner, context switches far above the other
# runs', a load change between the two runs, hypervisor steal; a pair alike in all is clean even
# when the whole machine is busy (both runs slowed alike).
def run(wc, cs, other, steal=0.0):
    return {"wall_cpu": wc, "context-switches": cs, "other_cpus": other, "steal_cpus": steal}


PEERS = [run(1.0, 10, 0.1) for _ in range(10)]


def why(a, b):
    return triage.disturbance({"A": a, "B": b}, PEERS + [a, b], 1.2) or ""


DISTURBED = {
    "clean": (lambda: why(run(1.0, 10, 0.1), run(1.01, 11, 0.1)) == ""),
    "busy_alike": (lambda: why(run(1.6, 12, 1.9), run(1.5, 11, 1.8)) == ""),
    "descheduled": (lambda: "B wall/cpu 1.90 vs A 1.00 (descheduled)" in why(run(1.0, 10, 0.1), run(1.9, 10, 0.1))),
    "context_switches": (lambda: "A context switches 200 vs median 10" in why(run(1.0, 200, 0.1),
                                                                               run(1.0, 10, 0.1))),
    "load_change": (lambda: "machine load changed" in why(run(1.0, 10, 0.1), run(1.0, 10, 1.2))),
    "steal": (lambda: "steal" in why(run(1.0, 10, 0.1, 0.3), run(1.0, 10, 0.1))),
}


@pytest.mark.name("triage_disturbed_pair_rules/{case}")
@pytest.mark.parametrize("case", list(DISTURBED))
def test_disturbed(case):
    assert DISTURBED[case](), "rule did not give the expected answer"
