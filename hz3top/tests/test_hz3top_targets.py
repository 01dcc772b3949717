"""The report checks of t_hz3top_targets.sh (which says what each one asserts), run by it through
pytest_checks on what it wrote into $HZ3_T, with the workloads' pids HZ3_A and HZ3_B and hz3top's
exit status HZ3_RC."""
import os

from hz3top_json import Expect, bin_row, env_int, head, proc, reports, text

RESULT_GROUP = "targets"
LARGE = 32767


def test_replaced_library(record_property):
    a = env_int("HZ3_A")
    note = f"was replaced or deleted since it was loaded; attached through /proc/{a}/map_files/"
    assert note in text("rep.err"), f"no note about map_files: {head('rep.err')}"
    row = bin_row(proc(reports("rep.json")[-1]), LARGE)
    assert row.get("tag_set") == 7, f"large tag_set {row}"


def test_two_pids(record_property):
    a, b = env_int("HZ3_A"), env_int("HZ3_B")
    e = Expect()
    e(env_int("HZ3_RC") == 0, f"hz3top exited {os.environ['HZ3_RC']}")
    last = reports("two.json")[-1]
    rows = {p["pid"]: p for p in last["procs"]}
    e(set(rows) == {a, b}, f"processes {sorted(rows)}")
    if set(rows) == {a, b}:
        e(bin_row(rows[a], LARGE).get("tag_set") == 3, "A large tag_set")
        e(bin_row(rows[b], LARGE).get("tag_set") == 5, "B large tag_set")
        e(last["ptag_hit"] == rows[a]["ptag_hit"] + rows[b]["ptag_hit"], "sum of hits")
    e(last["final"] is True and last["processes"] == 2, "final report of both")
    e.finish(record_property)


def test_all(record_property):
    a, b = env_int("HZ3_A"), env_int("HZ3_B")
    seen = {}
    for r in reports("all.json"):
        for p in r["procs"]:
            seen[p["pid"]] = max(seen.get(p["pid"], 0), bin_row(p, LARGE).get("tag_set", 0))
    e = Expect()
    e(seen.get(a) == 3 and seen.get(b) == 5, f"--all saw {seen}")
    e(set(seen) == {a, b}, f"--lib let other processes in: {sorted(seen)}")
    e.finish(record_property, head("all.err"))


def test_noprobes(record_property):
    assert env_int("HZ3_RC") == 0, f"exit status {os.environ['HZ3_RC']}: {head('np.err')}"
    err = text("np.err")
    assert err.count("has no hz3 probes") == 1, f"expected one note: {err}"
    p = proc(reports("np.json")[-1])
    e = Expect()
    e(p["live_source"] == "tagmap", "live pages not from the tag map")
    e(bin_row(p, LARGE).get("live_pages", 0) >= 3, f"live large heads {bin_row(p, LARGE)}")
    e(p["tag_set"] == 0 and p["ptag_hit"] == 0, "probe counts without probes")
    e.finish(record_property)
