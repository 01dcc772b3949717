"""The estimator check of t_sampling.sh: the weighted bytes of the otel_memory probes that
bpftrace counted (file $HZ3_SAMPLING_BPFTRACE: samples by size and weight, allocated and freed)
against what sample_sites allocated and still holds per site ($HZ3_SAMPLING_TRUTH,
`sites A_alloc=… A_live=…`). Each bound is 4 standard deviations of the estimator: the larger of
the one at the base mean (512 KiB) for the truth's block count and the one estimated from the
samples' own weights (sum of w (w - s), docs/heap-profiling.md "Accuracy"), which the pacing's
raised means make larger. A failure means a bias, not bad luck. Run by t_sampling.sh through
scripts/testlib.sh's run_pytest."""
import math
import os
import re

import pytest

RESULT_GROUP = "sampling"
MEAN = 512 * 1024
SITES = {"A": 512, "B": 262144, "C": 64}  # site: block size


@pytest.fixture(scope="module")
def truth():
    with open(os.environ["HZ3_SAMPLING_TRUTH"]) as f:
        return {k: int(v) for k, v in (kv.split("=") for kv in f.read().split()[1:])}


@pytest.fixture(scope="module")
def bpftrace_out():
    with open(os.environ["HZ3_SAMPLING_BPFTRACE"]) as f:
        return f.read()


def samples(out, name, size):
    """{weight: count} of map @name[size, weight]."""
    pat = r"@%s\[%d, (\d+)\]: (\d+)" % (name, size)
    return {int(w): int(n) for w, n in re.findall(pat, out)}


def estimate(hist, size):
    """(weighted bytes, variance estimate, samples) of a {weight: count} histogram."""
    est = sum(w * n for w, n in hist.items())
    var = sum(w * (w - size) * n for w, n in hist.items() if w > size)
    return est, var, sum(hist.values())


def test_samples_seen(bpftrace_out, record_property):
    n = re.search(r"@n: (\d+)", bpftrace_out)
    assert n, "no samples seen; bpftrace said: " + bpftrace_out[-300:]
    record_property("detail", f"{n.group(1)} samples")


def test_estimate_bound_uses_weights():
    """The bound of a site sampled at a raised mean is wider than at the base mean: 100 samples
    of 64 B blocks at 8 times the base mean (weight ~4 MiB) have a standard deviation of ~42 MB,
    not the ~13 MB that 256 MB of 64 B blocks at the base mean give."""
    w = round(64 / -math.expm1(-64 / (8 * MEAN)))
    est, var, n = estimate({w: 100}, 64)
    assert n == 100 and abs(est - 100 * w) < 1
    assert 0.99 * math.sqrt(100) * w < math.sqrt(var) <= math.sqrt(100) * w
    assert math.sqrt(var) > 3 * base_sd(256_000_000, 64)


def base_sd(true, size):
    p = -math.expm1(-size / MEAN)
    return math.sqrt((true // size) * size * size * (1 - p) / p)


CASES = [(s, w) for s in SITES for w in ("alloc", "live")]


@pytest.mark.parametrize("site,what", CASES, ids=[f"{s}_{w}" for s, w in CASES])
def test_estimate(site, what, truth, bpftrace_out, record_property):
    size = SITES[site]
    alloc = samples(bpftrace_out, "alloc", size)
    if what == "live":
        for w, n in samples(bpftrace_out, "freed", size).items():
            alloc[w] = alloc.get(w, 0) - n
    est, var, n = estimate(alloc, size)
    true = truth[f"{site}_{what}"]
    if true == 0:
        detail = f"estimate {est} for nothing live"
        assert abs(est) <= 0.05 * truth[f"{site}_alloc"], detail
    else:
        sd = max(base_sd(true, size), math.sqrt(var))
        detail = (f"estimate {est} vs truth {true} ({100.0 * (est - true) / true:+.1f} %, "
                  f"4 sd = {400.0 * sd / true:.1f} %, {n} samples, weights "
                  f"{sorted(w for w in alloc if alloc[w] > 0)})")
        assert abs(est - true) <= 4 * sd, detail
    record_property("detail", detail)
