"""hz3top's half of t_probes_bpftrace.sh, run by it through pytest_checks: hz3top's final report
($HZ3_T/top.json) counted exactly what the workload did while it was attached (HZ3_N large
blocks, HZ3_M small frees, HZ3_K huge blocks, HZ3_W warm-up large blocks), and exited 0
(HZ3_RC)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "hz3top", "tests"))
from hz3top_json import bin_row, env_int, proc, reports  # noqa: E402

RESULT_GROUP = "probes_bpftrace"


def test_hz3top_agrees():
    n, m, k, w = (env_int(v) for v in ("HZ3_N", "HZ3_M", "HZ3_K", "HZ3_W"))
    assert env_int("HZ3_RC") == 0, f"hz3top exited {os.environ['HZ3_RC']}"
    p = proc(reports("top.json")[-1])
    large = bin_row(p, 32767)
    got = (large.get("tag_set"), large.get("tag_set_pages"), large.get("tag_clear"), p["ptag_hit"],
           p["ptag_miss_outside"])
    want = (n + w, (n + w) * 256, n + w, m + n + w, k)  # hz3top saw every warm-up
    assert got == want, f"hz3top counted {got}, expected {want}"
