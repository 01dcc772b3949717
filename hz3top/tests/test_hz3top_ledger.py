"""The checks of t_hz3top_ledger.sh (which says what each one asserts), run by it through
pytest_checks once their inputs exist: the files it wrote into $HZ3_T for the library HZ3_L
(L.err: the workload's stderr, with the malloc_stats() it printed; L.json, L.plain, L.om and
L.busy.json: hz3top's reports; L.top.err: hz3top's stderr), and HZ3_WL_PID, HZ3_XTID (the thread
that freed the remote blocks), HZ3_REMOTE_OBJS and HZ3_INBOX_OBJS where a check needs them."""
import os
import re

import pytest

from hz3top_json import Expect, env_int, expect_ledger_matches, head, malloc_stats, proc, reports, stat, text

RESULT_GROUP = "ledger"

# The split lines, in the order hz3top prints them, then the arena's other lines.
SPLIT = ("app_small", "remote_pending", "thread_caches", "inboxes")
OTHERS = ("app_large", "span_free", "span_waste", "pageheap_dirty", "pageheap_released", "unwalked")


def stat_objs(stats, prefix):
    """The object count in the label of the line starting with prefix ("… (N objects …)")."""
    v = [k for k in stats if k.startswith(prefix)]
    m = re.search(r"\((\d+) objects", v[-1]) if v else None
    return int(m.group(1)) if m else None


def last_ledger(file):
    r = reports(file)
    assert r, f"no report in {file}"
    g = proc(r[-1]).get("ledger")
    assert g, "no ledger in the report"
    return g


@pytest.mark.name("ledger/{HZ3_L}/split")
def test_split(record_property):
    l = os.environ["HZ3_L"]
    stats = malloc_stats(f"{l}.err")
    g = last_ledger(f"{l}.json")
    app, caches, inboxes = (stat(stats, "in use by application: small/medium"),
                            stat(stats, "in thread caches"), stat(stats, "in remote-free inboxes"))
    assert g.get("app_small") is not None, "no split (app_small null)"
    e = Expect()
    expect_ledger_matches(e, g, stats)
    heaps = g["heaps"]
    e(heaps, "no heaps")
    # malloc_stats counts other threads' undelivered remote frees as the application's.
    split = {"app_small + remote_pending": (g["app_small"] + g["remote_pending"], app),
             "thread_caches": (g["thread_caches"], caches), "inboxes": (g["inboxes"], inboxes),
             "cached_objs": (g["cached_objs"], stat_objs(stats, "in thread caches")),
             "inbox_objs": (g["inbox_objs"], stat_objs(stats, "in remote-free inboxes"))}
    for k, (mine, theirs) in split.items():
        e(mine == theirs, f"{k} {mine} != malloc_stats {theirs}")
    e(sum(g[k] for k in SPLIT) == g["small_used"], "the split does not add up to small_used")
    remote, inbox = env_int("HZ3_REMOTE_OBJS"), env_int("HZ3_INBOX_OBJS")
    e(g["remote_objs"] == remote, f"remote_objs {g['remote_objs']} != {remote}")
    e(g["inbox_objs"] == inbox, f"inbox_objs {g['inbox_objs']} != {inbox}")
    for k, total in (("remote_pending", "remote_pending"), ("remote_held", "remote_pending"),
                     ("cached", "thread_caches")):
        e(sum(h.get(k, 0) for h in heaps) == g[total], f"per-heap {k} does not add up to {total}")
    xtid = env_int("HZ3_XTID")
    hold = [h for h in heaps if h.get("tid") == xtid]
    e(len(hold) == 1 and hold[0].get("remote_held") == g["remote_pending"] and
      hold[0].get("thread") == "hz3wl-xfree", f"holder {xtid}: {hold}")
    e.note(f"app_total {g['app_total']}, arena {g['arena']}, {len(heaps)} heaps")
    e.note(f"app_small {g['app_small']}, caches {g['thread_caches']} ({g['cached_objs']})")
    e.note(f"inboxes {g['inboxes']} ({g['inbox_objs']}), remote {g['remote_pending']} ({g['remote_objs']})")
    e.finish(record_property, head(f"{l}.top.err"))


@pytest.mark.name("ledger/{HZ3_L}/plain")
def test_plain():
    l = os.environ["HZ3_L"]
    led = [x for x in text(f"{l}.plain").splitlines() if x.startswith(f"# ledger pid={os.environ['HZ3_WL_PID']} ")]
    g = last_ledger(f"{l}.json")
    assert len(led) == 1, f'{len(led)} "# ledger" lines'
    kv = dict(re.findall(r" ([a-z_]+)=(\d+)", led[0]))
    e = Expect()
    for k in SPLIT + OTHERS + ("arena", "huge"):
        e(kv.get(k) == str(g[k]), f"{k}={kv.get(k)} (json {g[k]})")
    e("small_used" not in kv, "small_used beside the split")
    e.finish(None)


@pytest.mark.name("ledger/{HZ3_L}/openmetrics")
def test_openmetrics():
    l, pid = os.environ["HZ3_L"], os.environ["HZ3_WL_PID"]
    g = {}
    for line in text(f"{l}.om").splitlines():
        m = re.match(r"^hz3_ledger_bytes\{(.*)\} (\S+)$", line)
        if m and f'pid="{pid}"' in m.group(1):
            g[re.search(r'line="([a-z_]+)"', m.group(1)).group(1)] = float(m.group(2))
    assert g, "no hz3_ledger_bytes samples"
    assert "small_used" not in g and all(k in g for k in SPLIT), f"not split: {sorted(g)}"
    parts = sum(v for k, v in g.items() if k not in ("arena", "huge"))
    assert parts == g["arena"], f"lines {parts} != arena {g['arena']}"
    j = last_ledger(f"{l}.json")
    assert g["app_small"] == j["app_small"] and g["remote_pending"] == j["remote_pending"], (
        f"app_small {g['app_small']}, remote_pending {g['remote_pending']},"
        f" json {j['app_small']}, {j['remote_pending']}")


@pytest.mark.name("ledger/{HZ3_L}/busy_adds_up")
def test_busy_adds_up(record_property):
    lines = reports(f"{os.environ['HZ3_L']}.busy.json")
    e = Expect()
    e(len(lines) >= 5, f"{len(lines)} reports")
    for i, r in enumerate(lines):
        g = proc(r)["ledger"]
        if not e(g, f"report {i}: no ledger"):
            break
        split = sum(g[k] for k in SPLIT)
        total = g["small_used"] + sum(g[k] for k in OTHERS)
        e(split == g["small_used"], f"report {i}: split {split} != small_used {g['small_used']}")
        e(total == g["arena"], f"report {i}: lines {total} != arena {g['arena']}")
    most = max([(proc(r)["ledger"] or {}).get("unwalked", 0) for r in lines] or [0])
    e.note(f"{len(lines)} reports, unwalked at most {most}")
    e.finish(record_property)
