"""The estimator check of t_sampling.sh: the weighted bytes bpftrace summed from the otel_memory
probes (file $HZ3_SAMPLING_BPFTRACE) against what sample_sites allocated and still holds per
site ($HZ3_SAMPLING_TRUTH, `sites A_alloc=… A_live=…`). Each bound is >= 4 standard deviations of
the estimator for that site's sample count (mean interval 512 KiB): a failure means a bias, not
bad luck. Run by t_sampling.sh through scripts/testlib.sh's run_pytest."""
import os
import re

import pytest

RESULT_GROUP = "sampling"
# site: (block size, relative bound)
SITES = {"A": (512, 0.20), "B": (262144, 0.30), "C": (64, 0.20)}


@pytest.fixture(scope="module")
def truth():
    with open(os.environ["HZ3_SAMPLING_TRUTH"]) as f:
        return {k: int(v) for k, v in (kv.split("=") for kv in f.read().split()[1:])}


@pytest.fixture(scope="module")
def bpftrace_out():
    with open(os.environ["HZ3_SAMPLING_BPFTRACE"]) as f:
        return f.read()


def sums(out, name):
    return {int(k): int(v) for k, v in re.findall(r"@%s\[(\d+)\]: (-?\d+)" % name, out)}


def test_samples_seen(bpftrace_out, record_property):
    n = re.search(r"@n: (\d+)", bpftrace_out)
    assert n, "no samples seen; bpftrace said: " + bpftrace_out[-300:]
    record_property("detail", f"{n.group(1)} samples")


CASES = [(s, w) for s in SITES for w in ("alloc", "live")]


@pytest.mark.parametrize("site,what", CASES, ids=[f"{s}_{w}" for s, w in CASES])
def test_estimate(site, what, truth, bpftrace_out, record_property):
    size, tol = SITES[site]
    alloc, freed = sums(bpftrace_out, "alloc"), sums(bpftrace_out, "freed")
    est = alloc.get(size, 0) - (freed.get(size, 0) if what == "live" else 0)
    true = truth[f"{site}_{what}"]
    if true == 0:
        detail = f"estimate {est} for nothing live"
        assert abs(est) <= 0.05 * truth[f"{site}_alloc"], detail
    else:
        detail = (f"estimate {est} vs truth {true} ({100.0 * (est - true) / true:.1f} %, "
                  f"bound {tol * 100:.0f} %)")
        assert abs(est - true) <= tol * true, detail
    record_property("detail", detail)
