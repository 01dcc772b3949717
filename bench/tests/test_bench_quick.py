"""The results check of t_bench_quick.sh, run by it through pytest_checks on bench/run.py's
results.json (HZ3_RESULTS): every workload ran under every allocator in HZ3_ALLOCS (a comma list)
with a number, libhz3 returned no misaligned block, and at least 16 workloads ran."""
import json
import os

import pytest

@pytest.fixture(scope="module")
def results():
    with open(os.environ["HZ3_RESULTS"]) as f:
        return json.load(f)


@pytest.mark.name("bench_quick_every_allocator_ran")
def test_every_allocator_ran(results, record_property):
    want = os.environ["HZ3_ALLOCS"].split(",")
    problems = []
    for w, per in results["samples"].items():
        for a in want:
            s = per.get(a, [])
            if not s or not all(x.get("ops_per_s", 0) > 0 and x.get("peak_rss_kb", 0) > 0 for x in s):
                problems.append(f"{w}/{a}: no ops/s")
            if a.startswith("hz3") and any(x.get("misaligned") for x in s):
                problems.append(f"{w}/{a}: libhz3 returned misaligned blocks")
    n = len(results["samples"])
    if n < 16:
        problems.append(f"only {n} workloads ran")
    assert not problems, "; ".join(problems[:8]) + f" (failures: {results['failures']})"
    record_property("detail", f"{n} workloads x {len(want)} allocators ran")
