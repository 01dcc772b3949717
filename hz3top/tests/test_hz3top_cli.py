"""The report checks of t_hz3top_cli.sh (which says what each one asserts), run by it through
pytest_checks on what it wrote into $HZ3_T, with the pids it started (HZ3_A, HZ3_B, HZ3_TID: a
thread of A; HZ3_P and its child HZ3_C; HZ3_D, the late process) and hz3top's exit status
HZ3_RC."""
import os

from hz3top_json import Expect, bin_row, env_int, head, reports, text

RESULT_GROUP = "cli"
LARGE = 32767


def by_pid(report):
    return {p["pid"]: p for p in report["procs"]}


def test_comma_and_tid(record_property):
    a, b, tid = env_int("HZ3_A"), env_int("HZ3_B"), env_int("HZ3_TID")
    e = Expect()
    e(tid != a, f"thread id {tid} is the pid")
    e(env_int("HZ3_RC") == 0, f"hz3top exited {os.environ['HZ3_RC']}: {head('tid.err')}")
    rows = by_pid(reports("tid.json")[-1])
    e(sorted(rows) == sorted([a, b]), f"rows {sorted(rows)}, expected {a} (for thread {tid}) and {b}")
    if a in rows:
        e(bin_row(rows[a], LARGE).get("tag_set") == 3, "A large tag_set")
    if b in rows:
        e(bin_row(rows[b], LARGE).get("tag_set") == 2, "B large tag_set")
    e.note(f"-p {tid},{b}")
    e.finish(record_property)


def test_follow(record_property):
    p, c = env_int("HZ3_P"), env_int("HZ3_C")
    err = text("follow.err")
    assert any(f"following process {c} " in line and f"forked by {p}" in line for line in err.splitlines()), \
        f"no note for child {c}: {'|'.join(err.splitlines()[:3])}"
    e = Expect()
    e(env_int("HZ3_RC") == 0, f"hz3top exited {os.environ['HZ3_RC']}")
    last = reports("follow.json")[-1]
    rows = by_pid(last)
    e(sorted(rows) == sorted([p, c]), f"rows {sorted(rows)}, expected parent {p} and child {c}")
    if c in rows:
        e(bin_row(rows[c], LARGE).get("tag_set") == 4, f"child large tag_set {bin_row(rows[c], LARGE)}")
        e(rows[c]["alive"] is False, "child reported exited")
    if p in rows:
        e(bin_row(rows[p], LARGE).get("tag_set") == 1, "parent large tag_set")
    e(last["final"] is True, "hz3top ended after parent and child exited")
    e.finish(record_property)


def test_all_late(record_property):
    d = env_int("HZ3_D")
    first = [p for r in reports("late.json") for p in r["procs"] if p["pid"] == d][:1]
    assert first, "the late process never showed up"
    dt = first[0]["interval_s"]
    assert 0 < dt <= 0.75, f"first interval of the late process {dt} s: not timed from its start"
    record_property("detail", f"first interval {dt:.3f} s")
