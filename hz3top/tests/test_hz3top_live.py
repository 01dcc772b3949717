"""The checks of t_hz3top_live.sh (which says what each one asserts), run by it through
pytest_checks once their inputs exist: the JSON reports and stderr it wrote into $HZ3_T, and
HZ3_V (the library variant), HZ3_RC (hz3top's exit status), HZ3_WL_PID, HZ3_WTID, HZ3_B, HZ3_READY,
HZ3_HELD and HZ3_AFTER where a check needs them."""
import os
import re

import pytest

from hz3top_json import (MIB, Expect, bin_row, env_int, expect_ledger_matches, find, head,
                         malloc_stats, path, proc, reports, text)

RESULT_GROUP = "live"


def rc_ok(e, err_file):
    e(env_int("HZ3_RC") == 0, f"hz3top exited {os.environ['HZ3_RC']}: {head(err_file)}")


@pytest.mark.name("live/{HZ3_V}/before_attach")
def test_before_attach(record_property):
    v = os.environ["HZ3_V"]
    e = Expect()
    rc_ok(e, f"pre-{v}.top.err")
    p = proc(reports(f"pre-{v}.json")[-1])
    large = bin_row(p, 32767).get("live_bytes", 0)
    e(large >= 100 * MIB, f"live large {large} < 100 MiB")
    # Besides the 100 blocks: the 8 MiB array of "small"'s pointers, the scavenger's stack and, in
    # the hardened variant, a guard page per block.
    e(large < 112 * MIB, f"live large {large} >= 112 MiB")
    e(p["large_unsized"] == 0, f"large_unsized {p['large_unsized']}")
    e(p["live_bytes"] >= 100 * MIB, f"live {p['live_bytes']}")
    e.note(f"live {p['live_bytes'] / MIB:.1f} MiB, large {large / MIB:.1f} MiB")
    e.finish(record_property)


@pytest.mark.name("live/{HZ3_V}/ledger")
def test_ledger(record_property):
    v = os.environ["HZ3_V"]
    stats = malloc_stats(f"pre-{v}.err")
    g = proc(reports(f"pre-{v}.json")[-1]).get("ledger")
    assert g, "no ledger in the report"
    e = Expect()
    expect_ledger_matches(e, g, stats)
    e(g["huge_blocks"] == 2, f"huge_blocks {g['huge_blocks']}")
    e(g["heaps"], "no heaps")
    e.note(f"app_total {g['app_total']}, arena {g['arena']}, huge {g['huge']}, {len(g['heaps'])} heaps")
    e.finish(record_property)


def test_heap_owners(record_property):
    wl_pid, wtid = env_int("HZ3_WL_PID"), env_int("HZ3_WTID")
    heaps = (proc(reports("owners.json")[-1]).get("ledger") or {}).get("heaps", [])
    main = [h for h in heaps if h.get("tid") == wl_pid]
    work = [h for h in heaps if h.get("tid") == wtid]
    e = Expect()
    e(len(main) == 1 and main[0].get("thread") == "hz3top_workload" and main[0].get("owner") == "thread",
      f"main thread's heap: {main} in {heaps}")
    e(len(work) == 1 and work[0].get("thread") == "hz3wl-worker" and work[0].get("owner") == "thread"
      and work[0]["used"] >= 5000 * 64, f"worker's heap (tid {wtid}): {work} in {heaps}")
    if main and work:
        e.note(f"heap {main[0]['heap']} tid {wl_pid}, heap {work[0]['heap']} tid {wtid}")
    e.finish(record_property, head("owners.err"))


def test_exit(record_property):
    lines = reports("ex.json")
    last = lines[-1]
    e = Expect()
    rc_ok(e, "ex.top.err")
    e([r for r in lines if proc(r)["live_bytes"] >= 20 * MIB], "no report with the 20 MiB held")
    p = proc(last)
    e(last["final"] is True and p["alive"] is False, "final report does not say the process exited")
    e(p["live_bytes"] == 0, f"live {p['live_bytes']} after exit")
    e(p["ledger"] is not None and p["ledger"]["app_total"] == 0, f"ledger after exit {p['ledger']}")
    e.finish(record_property)


def test_exec(record_property):
    lines = reports("exe.json")
    e = Expect()
    rc_ok(e, "exe.top.err")
    before = [r for r in lines if proc(r)["comm"] == "hz3top_workload" and proc(r)["live_bytes"] >= 30 * MIB]
    e(before, "no report with the 30 MiB held before exec")
    execd = [r for r in lines if proc(r).get("exec")]
    e(len(execd) == 1, f"{len(execd)} reports say exec")
    after = [r for r in lines if proc(r)["comm"] == "wl-after-exec" and proc(r)["alive"]]
    e(after, "no report with the new name")
    if after:
        lb = [proc(r)["live_bytes"] for r in after]
        e(max(lb) >= 5 * MIB and max(lb) < 12 * MIB, f"live after exec {lb}, want the 5 MiB of the new image")
    notes = text("exe.top.err").count("exec'd wl-after-exec")
    e(notes == 1, f"{notes} exec notes on stderr: {head('exe.top.err', 3)}")
    e.finish(record_property)


def test_exec_without_libhz3(record_property):
    lines = reports("bare.json")
    e = Expect()
    e(os.environ["HZ3_READY"] == "ready", f"ready='{os.environ['HZ3_READY']}' after the exec")
    rc_ok(e, "bare.top.err")
    e([r for r in lines if proc(r)["live_bytes"] >= 10 * MIB], "no report with the 10 MiB held")
    after = [r for r in lines if proc(r)["comm"] == "wl-after-exec"]
    e(after, "no report with the new name")
    e(all(proc(r)["live_bytes"] == 0 for r in after), f"live after exec {[proc(r)['live_bytes'] for r in after]}")
    err = text("bare.top.err")
    e("exec'd wl-after-exec without libhz3" in err,
      f"no exec note: {[x for x in err.splitlines() if 'exec' in x][:2]}")
    e.finish(record_property)


def test_exit_dropped(record_property):
    b = env_int("HZ3_B")
    lines = reports("two.json")
    last = lines[-1]
    body = lines[:-1]  # the final report lists every process watched, with its totals
    e = Expect()
    dead = [i for i, r in enumerate(body) if find(r, b) and not find(r, b)["alive"]]
    e(len(dead) == 1, f"{len(dead)} reports before the final one show {b} exited")
    if dead:
        e(find(body[dead[0]], b)["live_bytes"] == 0, "exited process not at 0")
        e(all(find(r, b) is None for r in body[dead[0] + 1:]), "exited process reported again")
        e(len(body) > dead[0] + 2, "too few reports after the exit")
    fb = find(last, b)
    e(last["final"] and fb is not None and fb["live_bytes"] == 0 and not fb["alive"],
      "final report does not list the exited process at 0")
    e.finish(record_property)


def test_openmetrics_ledger(record_property):
    pid = os.environ["HZ3_B"]
    g = {}
    for line in text("om-held.txt").splitlines():
        m = re.match(r"^hz3_ledger_bytes\{(.*)\} (\S+)$", line)
        if m and f'pid="{pid}"' in m.group(1):
            g[re.search(r'line="([a-z_]+)"', m.group(1)).group(1)] = float(m.group(2))
    assert g, "no hz3_ledger_bytes samples"
    parts = sum(v for k, v in g.items() if k not in ("arena", "huge"))
    assert parts == g["arena"] and g["app_large"] >= 20 * MIB, f"ledger {g}"
    record_property("detail", f"arena {g['arena']:.0f}, large {g['app_large']:.0f}")


def test_openmetrics_exit(record_property):
    held, after = os.environ["HZ3_HELD"], os.environ["HZ3_AFTER"]
    why = f"hz3_live_bytes of {os.environ['HZ3_B']}: held '{held}', after exit '{after}'"
    assert float(held or 0) >= 20 * MIB and after != "" and float(after) == 0, why
    record_property("detail", f"held {held}, after exit {after}")
