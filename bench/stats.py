"""Statistics for the hz3 benchmark scripts (run.py, triage.py): medians and spreads, the
Mann-Whitney U test that decides whether an A/B difference exceeds run-to-run noise, and a
bootstrap interval for the relative difference of medians. Standard library only, so the runner
and triage work without numpy or scipy; not a general statistics package.

Why Mann-Whitney: benchmark timings on a shared machine are skewed (a run that lost its core is
slow, never fast), and a rank test does not assume normality. With RUNS=10 per side it can reach
p ~ 1e-5, so a real 2 % change on a quiet machine is detected while one noisy run is not enough to
claim a change.
"""

import math
import random
from functools import lru_cache


def percentile(xs, q):
    """Linear-interpolated percentile, q in [0, 100]. xs must be non-empty."""
    s = sorted(xs)
    if len(s) == 1:
        return float(s[0])
    pos = (len(s) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def median(xs):
    return percentile(xs, 50)


def summary(xs):
    """median, quartiles, extremes, and the IQR relative to the median (the spread we report)."""
    m = median(xs)
    q1, q3 = percentile(xs, 25), percentile(xs, 75)
    return {
        "n": len(xs),
        "median": m,
        "p25": q1,
        "p75": q3,
        "min": float(min(xs)),
        "max": float(max(xs)),
        "iqr_pct": (q3 - q1) / m * 100 if m else 0.0,
    }


@lru_cache(maxsize=None)
def _u_counts(m, n):
    """Number of rank arrangements giving each U = 0 … m*n, for samples of m and n without ties."""
    # f(m, n)[u] = f(m-1, n)[u-n] + f(m, n-1)[u]: the largest value belongs to A (it then beats
    # all n of B) or to B (it adds nothing to A's U).
    if m == 0 or n == 0:
        return (1,)
    a = _u_counts(m - 1, n)
    b = _u_counts(m, n - 1)
    out = [0] * (m * n + 1)
    for u, c in enumerate(a):
        out[u + n] += c
    for u, c in enumerate(b):
        out[u] += c
    return tuple(out)


def mann_whitney(a, b):
    """Two-sided Mann-Whitney U test. Returns (p, method): exact distribution when there are no
    ties and both samples have at most 25 values, else the normal approximation with tie and
    continuity corrections. p = 1 when both samples are constant and equal."""
    m, n = len(a), len(b)
    if m == 0 or n == 0:
        return 1.0, "none"
    pooled = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    ranks = [0.0] * len(pooled)
    ties = []
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        r = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[k] = r
        if j > i:
            ties.append(j - i + 1)
        i = j + 1
    ra = sum(r for r, (_, side) in zip(ranks, pooled) if side == 0)
    u = ra - m * (m + 1) / 2
    mean = m * n / 2
    if not ties and m <= 25 and n <= 25:
        counts = _u_counts(m, n)
        total = sum(counts)
        k = int(round(u))
        lo = min(k, m * n - k)  # the distribution is symmetric
        tail = sum(counts[: lo + 1]) / total
        return min(1.0, 2 * tail), "exact"
    nn = m + n
    var = m * n / 12 * ((nn + 1) - sum(t**3 - t for t in ties) / (nn * (nn - 1)))
    if var <= 0:
        return 1.0, "normal"
    z = (abs(u - mean) - 0.5) / math.sqrt(var)
    z = max(z, 0.0)
    return math.erfc(z / math.sqrt(2)), "normal"


def bootstrap_delta_ci(a, b, iters=2000, seed=1, level=95):
    """Bootstrap interval for median(b)/median(a) - 1, in percent. Seeded, so a report
    reproduces exactly from the same samples."""
    if not a or not b:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    deltas = []
    for _ in range(iters):
        ma = median([rng.choice(a) for _ in a])
        mb = median([rng.choice(b) for _ in b])
        if ma:
            deltas.append((mb / ma - 1) * 100)
    if not deltas:
        return (float("nan"), float("nan"))
    tail = (100 - level) / 2
    return (percentile(deltas, tail), percentile(deltas, 100 - tail))


def delta_pct(a_med, b_med):
    if a_med == 0:
        return 0.0 if b_med == 0 else float("inf")
    return (b_med / a_med - 1) * 100
