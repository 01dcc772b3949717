"""Statistics for the hz3 benchmark scripts (run.py, triage.py): medians and spreads; for triage's
paired A/B runs, the per-pair ratio, a distribution-free confidence interval of its median and
the Wilcoxon signed-rank test; the unpaired Mann-Whitney U test and a bootstrap interval of the
relative difference of medians. Standard library only, so the runner and triage work without
numpy or scipy; not a general statistics package.

Why paired: triage runs A and B alternately, so run i of A and run i of B were taken seconds
apart, under the same machine load. The ratio B_i / A_i cancels whatever load both saw; an
unpaired test over all runs lets a load burst that spans several runs of one side look like a
change. The interval of the median ratio comes from order statistics (the sign-test interval):
exact coverage for any continuous distribution, no normality or symmetry assumed, and a few
wild pairs move it by at most a rank.

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


# ---- paired A/B ------------------------------------------------------------------------------

def pair_ratio(a, b):
    """B / A for one pair. 0 vs 0 is 1 (nothing changed), x vs 0 is inf (or 0 the other way)."""
    if a == 0:
        return 1.0 if b == 0 else math.inf
    return b / a


def median_ci_ranks(n, level=95):
    """(k, coverage): the interval [x_(k), x_(n+1-k)] of n sorted values (1-based ranks) holds
    the population median with probability coverage >= level % (binomial, p = 1/2); the
    narrowest such k. None when even [min, max] covers less (n < 6 for 95 %)."""
    best = None
    tail = 0.0
    for k in range(1, n // 2 + 1):
        tail += math.comb(n, k - 1) / 2**n  # P(Bin(n, 1/2) <= k - 1)
        cov = 1 - 2 * tail
        if cov * 100 < level - 1e-9:
            break
        best = (k, cov)
    return best


def median_ci(xs, level=95):
    """(lo, hi, coverage) distribution-free interval of the median of xs, or None if too few."""
    r = median_ci_ranks(len(xs), level)
    if r is None:
        return None
    k, cov = r
    s = sorted(xs)
    return s[k - 1], s[len(s) - k], cov


@lru_cache(maxsize=None)
def _w_counts(n):
    """Number of sign assignments giving each W+ = 0 … n(n+1)/2 for ranks 1 … n."""
    counts = [1]
    for r in range(1, n + 1):
        new = counts + [0] * r
        for w, c in enumerate(counts):
            new[w + r] += c
        counts = new
    return tuple(counts)


def wilcoxon_signed_rank(d):
    """Two-sided Wilcoxon signed-rank test of 'the differences d are centred on 0'. Zeros are
    dropped (Wilcoxon's rule). Returns (p, method): exact without ties for up to 25 nonzero
    differences, else the normal approximation with tie and continuity corrections; p = 1 when
    every difference is 0."""
    d = [x for x in d if x != 0]
    n = len(d)
    if n == 0:
        return 1.0, "none"
    order = sorted(range(n), key=lambda i: abs(d[i]))
    ranks = [0.0] * n
    ties = []
    i = 0
    while i < n:
        j = i
        while j + 1 < n and abs(d[order[j + 1]]) == abs(d[order[i]]):
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        if j > i:
            ties.append(j - i + 1)
        i = j + 1
    wplus = sum(r for r, x in zip(ranks, d) if x > 0)
    if not ties and n <= 25:
        counts = _w_counts(n)
        total = 2**n
        w = int(round(wplus))
        lo = sum(counts[: w + 1]) / total
        hi = sum(counts[w:]) / total
        return min(1.0, 2 * min(lo, hi)), "exact"
    mean = n * (n + 1) / 4
    var = n * (n + 1) * (2 * n + 1) / 24 - sum(t**3 - t for t in ties) / 48
    if var <= 0:
        return 1.0, "normal"
    z = max(abs(wplus - mean) - 0.5, 0.0) / math.sqrt(var)
    return math.erfc(z / math.sqrt(2)), "normal"


def paired(a, b, level=95):
    """The paired comparison of two equally long lists (a[i] and b[i] measured together):
    {'n', 'ratio' (median of b[i]/a[i]), 'ci' ((lo, hi) of that median or None when n is too
    small), 'coverage', 'p' (Wilcoxon signed-rank on the log ratios)}."""
    rs = [pair_ratio(x, y) for x, y in zip(a, b)]
    out = {"n": len(rs), "ratio": median(rs) if rs else math.nan, "ci": None,
           "coverage": None, "p": None}
    if not rs:
        return out
    ci = median_ci(rs, level)
    if ci:
        out["ci"], out["coverage"] = (ci[0], ci[1]), ci[2]

    def log_r(r):
        if r == 0:
            return -1e9
        return 1e9 if math.isinf(r) else math.log(r)

    out["p"] = wilcoxon_signed_rank([log_r(r) for r in rs])[0]
    return out
