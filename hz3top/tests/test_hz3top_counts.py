"""The checks of t_hz3top_counts.sh (which says what each one asserts), run by it through
pytest_checks on the reports it wrote into $HZ3_T (watch.json: the whole run, once.json: the
second tracer), with the workload's counts HZ3_N, HZ3_M, HZ3_K, HZ3_H and the second tracer's exit
status HZ3_RC."""
import os

from hz3top_json import MIB, Expect, bin_row, env_int, proc, reports

RESULT_GROUP = "counts"
LARGE = 32767


def counts():
    return env_int("HZ3_N"), env_int("HZ3_M"), env_int("HZ3_K"), env_int("HZ3_H")


def test_large_tag_churn_exact(record_property):
    n, _, _, h = counts()
    last = reports("watch.json")[-1]
    p = proc(last)
    large = bin_row(p, LARGE)
    e = Expect()
    e(last["final"] is True, "last report not final")
    e(p["alive"] is False, "target still alive in the final report")
    e(large.get("tag_set") == n + h, f"large tag_set {large.get('tag_set')} != {n} + {h}")
    e(large.get("tag_clear") == n + h, f"large tag_clear {large.get('tag_clear')} != {n} + {h}")
    e(large.get("tag_set_pages") == (n + h) * 256, f"large tag_set_pages {large.get('tag_set_pages')}")
    e.note(f"tag_set = tag_clear = {n + h}")
    e.finish(record_property)


def test_hits_and_misses_exact(record_property):
    n, m, k, h = counts()
    lines = reports("watch.json")
    last = lines[-1]
    p = proc(last)
    e = Expect()
    e(p["ptag_hit"] == m + n + h, f"ptag_hit {p['ptag_hit']} != {m} + {n} + {h}")
    e(p["ptag_miss_outside"] == k, f"ptag_miss_outside {p['ptag_miss_outside']} != {k}")
    e(p["ptag_miss_untagged"] == 0, f"ptag_miss_untagged {p['ptag_miss_untagged']}")
    e(p["ptag_miss"] == k, f"ptag_miss {p['ptag_miss']}")
    e(p["decode_fail"] == 0, f"decode_fail {p['decode_fail']}")
    e(last["ptag_hit"] == p["ptag_hit"], "top-level ptag_hit is not the sum over processes")
    e(sum(r["procs"][0]["interval"]["ptag_hit"] for r in lines) == p["ptag_hit"],
      "interval hits do not add up to the total")
    e.note(f"ptag_hit = {m + n + h}, outside misses = {k}")
    e.finish(record_property)


def test_live_large_while_held(record_property):
    h = env_int("HZ3_H")
    lines = reports("watch.json")
    base = bin_row(proc(lines[0]), LARGE)
    b_pages, b_bytes = base.get("live_pages", 0), base.get("live_bytes", 0)
    held = [r for r in lines if bin_row(proc(r), LARGE).get("live_pages") == b_pages + h]
    assert held, f"no report with {b_pages} + {h} live large heads"
    e = Expect()
    got = bin_row(proc(held[0]), LARGE)["live_bytes"]
    e(got == b_bytes + h * MIB, f"live large bytes {got} != {b_bytes} + {h} MiB")
    e(proc(held[0])["live_source"] == "tagmap", "live pages not from the tag map")
    e.finish(record_property)


def test_second_tracer_once(record_property):
    h = env_int("HZ3_H")
    lines = reports("once.json")
    e = Expect()
    e(env_int("HZ3_RC") == 0, f"hz3top --once exited {os.environ['HZ3_RC']}")
    e(len(lines) == 1, f"{len(lines)} reports from --once")
    last = lines[-1]
    p = proc(last)
    large = bin_row(p, LARGE)
    e(last["final"] is True, "--once report not final")
    e(p["large_unsized"] == 0, f"large_unsized {p['large_unsized']}: heads not sized from the page map")
    e(large.get("live_pages", 0) >= h, f"live large heads {large.get('live_pages')}")
    e(large.get("live_bytes", 0) >= h * MIB, f"live large bytes {large.get('live_bytes')} < {h} MiB")
    e.finish(record_property)
