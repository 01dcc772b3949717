"""The checks of t_misuse.sh (which says what they assert), run by it through pytest_checks on
libhz3/reliability/misuse/run.py's JSON tables: HZ3_MISUSE_HZ3 (release, check, hardened) and
HZ3_MISUSE_GLIBC."""
import json
import os
import re

import pytest

RESULT_GROUP = "misuse"
FAMILIES = ("double_free_", "invalid_free_", "realloc_freed_", "usable_size_freed_")


def load(var):
    with open(os.environ[var]) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def tables():
    hz3, glibc = load("HZ3_MISUSE_HZ3"), load("HZ3_MISUSE_GLIBC")
    cell = {(r["case"], r["allocator"]): r for r in hz3["results"] + glibc["results"]}
    cases = [c for c in hz3["cases"] if c != "control_correct_use"]
    return hz3, glibc, cell, cases


def desc(r):
    return "%s, stderr '%s'" % (r["how"], r["stderr_first_line"])


# The classifier: a known catch is caught, the control is not.
def test_classifier_glibc_double_free(tables):
    r = tables[2][("double_free_immediate_small_24", "glibc")]
    assert r["caught"] and r["how"] == "SIGABRT" and \
        r["stderr_first_line"] == "free(): double free detected in tcache 2", \
        "glibc immediate small double free: " + desc(r)


@pytest.mark.name("misuse/classifier_control_{a}")
@pytest.mark.parametrize("a", ["release", "check", "glibc"])
def test_classifier_control(tables, a):
    r = tables[2][("control_correct_use", a)]
    assert not r["caught"], "correct use classified as caught: " + desc(r)


# What release catches today (measured; docs/reliability-misuse.md), with how. A pointer hz3 does
# not own, or owns as a large block but not at this address, or a large block already freed:
# SIGABRT and one line naming the call and the pointer. The small write-after-free case is caught
# by a crash in the allocator itself (the freed block's in-block link was overwritten). A medium
# block sits in a magazine (an array: no in-block link), so release lets a write after its free
# survive; the check variant catches it by the poison check at malloc.
def bad(fn):
    return r"^hz3: %s\(\): invalid pointer 0x[0-9a-f]+$" % fn


RELEASE_FLOOR = {
    "double_free_immediate_large_200k": bad("free"),
    "double_free_immediate_large_4m": bad("free"),
    "double_free_interleaved_large_200k": bad("free"),
    "double_free_interleaved_large_4m": bad("free"),
    "double_free_reused_large_200k": bad("free"),
    "double_free_reused_large_4m": bad("free"),
    "invalid_free_stack": bad("free"),
    "invalid_free_global": bad("free"),
    "invalid_free_foreign_mmap": bad("free"),
    "invalid_free_unaligned_large_200k": bad("free"),
    "invalid_free_unaligned_large_4m": bad("free"),
    "invalid_free_interior_large_200k": bad("free"),
    "invalid_free_interior_large_4m": bad("free"),
    "realloc_freed_large_200k": bad("realloc"),
    "usable_size_freed_large_200k": bad("malloc_usable_size"),
    "write_after_free_small_24": None,
}


@pytest.mark.name("misuse/release/{case}")
@pytest.mark.parametrize("case", list(RELEASE_FLOOR))
def test_release(tables, case):
    r = tables[2][(case, "release")]
    msg = RELEASE_FLOOR[case]
    if msg is None:
        ok = r["caught"]
    else:
        ok = r["caught"] and r["how"] == "SIGABRT" and re.match(msg, r["stderr_first_line"])
    assert ok, "expected %s: got %s" % ("SIGABRT with /%s/" % msg if msg else "caught", desc(r))


def check_floor(cases):
    return sorted(set(RELEASE_FLOOR) | {c for c in cases if c.startswith(FAMILIES)})


# check: a superset of release, and every double free, invalid free, realloc and
# malloc_usable_size of a freed block, of every size class, with its hz3: line and SIGABRT.
@pytest.mark.name("misuse/check/floor")
def test_check_floor(tables, record_property):
    _, _, cell, cases = tables
    floor = check_floor(cases)
    missed = []
    for case in floor:
        r = cell[(case, "check")]
        ok = r["caught"]
        if case.startswith(FAMILIES):
            ok = ok and r["how"] == "SIGABRT" and r["stderr_first_line"].startswith("hz3: ")
        if not ok:
            missed.append("%s (%s)" % (case, desc(r)))
    assert not missed, "; ".join(missed[:6])
    record_property("detail", f"{len(floor)} cases")


def test_check_at_least_release(tables, record_property):
    t, cases = tables[0]["totals"], tables[3]
    assert t["check"] >= t["release"], "check catches %d, release %d" % (t["check"], t["release"])
    record_property("detail", "check %d, release %d of %d" % (t["check"], t["release"], len(cases)))


# hardened: more than glibc, every 1-byte overflow, and check's double/invalid-free families.
def test_hardened_beats_glibc(tables, record_property):
    hz3, glibc, _, cases = tables
    t, tg = hz3["totals"], glibc["totals"]["glibc"]
    assert t["hardened"] > tg, "hardened catches %d, glibc %d" % (t["hardened"], tg)
    record_property("detail", "hardened %d, glibc %d of %d; release %d, check %d" % (
        t["hardened"], tg, len(cases), t["release"], t["check"]))


@pytest.mark.name("misuse/hardened/floor")
def test_hardened_floor(tables, record_property):
    _, _, cell, cases = tables
    floor = sorted({c for c in cases if c.startswith("overflow1_")} |
                   {c for c in check_floor(cases) if c.startswith(FAMILIES)})
    missed = ["%s (%s)" % (c, desc(cell[(c, "hardened")])) for c in floor if not cell[(c, "hardened")]["caught"]]
    assert not missed, "; ".join(missed[:6])
    record_property("detail", f"{len(floor)} cases")
