"""The checks of t_hz3top_caps.sh that read hz3top's JSON report: run by it through pytest_checks
once hz3top ran as nobody with CAP_BPF + CAP_PERFMON ($HZ3_T/MODE.log, where MODE is HZ3_MODE:
count, all, perf; other_ptrace and other_noptrace for a process of another user), with the exit
status HZ3_RC and the workload's pid HZ3_WL_PID."""
import json
import os
import re

import pytest

from hz3top_json import env_int, text

RESULT_GROUP = "caps"
# A kernel that refuses what the documented set should allow (no uprobe_multi before 6.6, a BPF
# LSM): SKIP with the kernel's words instead of a FAIL of hz3top (kernel_refused in the script).
REFUSED = re.compile(r"failed to (load BPF programs|attach hz3:).*(Operation not permitted|Permission denied"
                     r"|Invalid argument)")


def refused(log):
    m = [line for line in text(log).splitlines() if REFUSED.search(line)]
    if m:
        pytest.skip(f"the kernel refused CAP_BPF+CAP_PERFMON: {m[0]}")


def saw_workload(log, sampling):
    """The final report saw the workload: probe events counted, live pages from the tag map (and,
    with sampling, allocator samples)."""
    pid = env_int("HZ3_WL_PID")
    for line in text(log).splitlines():
        if line.startswith("{"):
            o = json.loads(line)
            q = ([p for p in o["procs"] if p["pid"] == pid] or [{}])[0]
            ok = bool(q) and q["tag_set"] + q["ptag_hit"] > 0 and q["live_source"] == "tagmap" and q["live_pages"] > 0
            if sampling:
                ok = ok and o["perf"]["sampling"] and o["perf"]["samples_alloc"] > 0
            return ok, line[:200]
    return False, "no JSON report"


def not_json(log):
    return " ".join([x for x in text(log).splitlines() if not x.startswith("{")][:2])


@pytest.mark.name("caps/{HZ3_MODE}_bpf_perfmon")
def test_bpf_perfmon():
    mode, rc = os.environ["HZ3_MODE"], env_int("HZ3_RC")
    log = f"{mode}.log"
    if rc != 0:
        refused(log)
    ok, seen = saw_workload(log, mode == "perf")
    assert rc == 0 and ok, f"exit {rc}: {not_json(log)} {'' if ok else 'report: ' + seen}"


def test_other_user_sys_ptrace():
    refused("other_ptrace.log")
    rc = env_int("HZ3_RC")
    ok, seen = saw_workload("other_ptrace.log", False)
    without = text("other_noptrace.log").count("cannot read the tag map")
    assert rc == 0 and ok and without > 0, \
        f"exit {rc}: {not_json('other_ptrace.log')} / without: {without} (report: {seen})"
