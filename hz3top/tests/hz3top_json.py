"""What hz3top's pytest checks share (hz3top/tests/test_*.py, run by the t_*.sh beside them
through scripts/testlib.sh's pytest_checks): reading `hz3top --json` output, finding a process or
a bin in a report, the test's inputs, and Expect, which gathers every unmet expectation of a
check before failing it, so one FAIL line says all that was wrong."""
import json
import os
import re

MIB = 1 << 20


def path(name):
    """A file the script wrote into its temporary folder ($HZ3_T, hz3top/tests/lib.sh's $T)."""
    return os.path.join(os.environ["HZ3_T"], name)


def env_int(name):
    return int(os.environ[name])


def text(name, default=""):
    """The contents of path(name), or default when the script did not write it."""
    try:
        with open(path(name), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return default


def head(name, n=2):
    """The first n lines of path(name) on one line (hz3top's stderr in a failure message)."""
    return " ".join(text(name).splitlines()[:n])


def reports(file):
    """Every JSON report (one per line) in path(file), or in file when it is a path."""
    p = file if os.sep in file else path(file)
    with open(p) as f:
        return [json.loads(line) for line in f if line.strip()]


def proc(report):
    """The report's first process."""
    return report["procs"][0]


def find(report, pid):
    """The report's process pid, or None."""
    r = [p for p in report["procs"] if p["pid"] == pid]
    return r[0] if r else None


def bin_row(p, b):
    """Process p's row for bin b, or {}."""
    r = [x for x in p["bins"] if x["bin"] == b]
    return r[0] if r else {}


class Expect:
    """expect(cond, why) records why when cond is false; note(text) adds to the PASS line's
    detail; finish(record_property) fails with every recorded why, or records the notes."""

    def __init__(self):
        self.problems, self.notes = [], []

    def __call__(self, cond, what):
        if not cond:
            self.problems.append(what)
        return bool(cond)

    def note(self, t):
        self.notes.append(t)

    def finish(self, record_property, extra=""):
        assert not self.problems, "; ".join(self.problems) + (f" {extra}" if extra else "")
        if self.notes:
            record_property("detail", ", ".join(self.notes))


def malloc_stats(name):
    """The malloc_stats() printout in path(name): {label: bytes}, from its lines
    "<mark> <bytes> (<MiB> MiB)  <label>" (a later printout's line replaces an earlier one's)."""
    stats = {}
    for line in text(name).splitlines():
        m = re.match(r"^[ +=]\s+(\d+) \(\s*[\d.]+ MiB\)  (.*)$", line)
        if m:
            stats[m.group(2)] = int(m.group(1))
    return stats


def stat(stats, prefix):
    """Bytes of the last line whose label starts with prefix (None if there is none)."""
    v = [b for k, b in stats.items() if k.startswith(prefix)]
    return v[-1] if v else None


def expect_ledger_matches(e, g, stats):
    """Records in Expect e every line of hz3top's ledger g that differs from malloc_stats'
    (stats, from malloc_stats()); small_used is the application's, caches' and inboxes' bytes."""
    want = {
        "small_used": (stat(stats, "in use by application: small/medium"),
                       stat(stats, "in thread caches"), stat(stats, "in remote-free inboxes")),
        "app_large": (stat(stats, "in use by application: large"),),
        "span_free": (stat(stats, "free in spans"),),
        "span_waste": (stat(stats, "span tails"),),
        "pageheap": (stat(stats, "page heap: free, dirty"), stat(stats, "page heap: free, released")),
        "arena": (stat(stats, "arena pages handed out"),),
        "huge": (stat(stats, "huge blocks"),),
    }
    assert not any(x is None for v in want.values() for x in v), f"malloc_stats lines missing: {stats}"
    got = {"small_used": g["small_used"], "app_large": g["app_large"], "span_free": g["span_free"],
           "span_waste": g["span_waste"], "pageheap": g["pageheap_dirty"] + g["pageheap_released"],
           "arena": g["arena"], "huge": g["huge"]}
    for k, parts in want.items():
        e(got[k] == sum(parts), f"{k} {got[k]} != malloc_stats {sum(parts)}")
    e(not g["unwalked"], f"unwalked {g['unwalked']}")
