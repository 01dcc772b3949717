"""The report checks of t_hz3top_heap.sh (which says what they assert), run by it through
pytest_checks on what it wrote into $HZ3_T: main.truth (what hz3top_heap_sites allocated per site,
`sites NAME_alloc=… NAME_live=… NAME_size=… NAME_line=…`), main.json (`hz3top heap --json`),
heap.pb.gz (--pprof, decoded with the profile_pb2 module protoc wrote into $HZ3_T/pb), heap.folded
(--folded) and all.json (--all --unwind fp); HZ3_LIBC_DEBUG is libc's separate debug file (empty
when not installed), HZ3_BUILD_ID the workload's build id, HZ3_PID the --all run's workload."""
import gzip
import math
import os
import sys

import pytest

from hz3top_json import path, reports

RESULT_GROUP = "heap"
MEAN = 512 * 1024  # the library's mean sampling interval
SITES = ["site_keep_half", "site_big_blocks", "site_churn", "site_wrapped", "make_node", "heap_lib_leak"]
LIVE_SITES = [s for s in SITES if s != "site_churn"]  # the churn site frees all it allocates
LIBS = {"heap_lib_leak": "libhz3top_heap_lib.so"}


def truth():
    with open(path("main.truth")) as f:
        return {k: int(v) for k, v in (kv.split("=") for kv in f.read().split()[1:])}


def main_report():
    return reports("main.json")


def short(func):
    return func.split("(anonymous namespace)::")[-1].split("(")[0]


def by_func(report):
    out = {}
    for s in report["procs"][0]["sites"]:
        out.setdefault(short(s["func"]), s)
    return out


def site(name):
    last = main_report()[-1]
    s = by_func(last).get(name)
    assert s, f"no site named {name}; sites: {[x['site'] for x in last['procs'][0]['sites']][:8]}"
    return s, last


def bound_sd(true, size, est, var):
    """The standard deviation a site's estimate is bounded by: the larger of the base mean's for
    `true` bytes of `size`-byte blocks and the one from the samples' weights (hz3top's live_err /
    alloc_err squared is `var`, the sum of w (w - s)). var / est is the variance per byte at the
    means the samples were drawn with; it is scaled to the truth's bytes, so a site that drew
    fewer samples than expected by chance is not held to the tighter bound its few samples say."""
    p = 1 - math.exp(-size / MEAN)
    base = (true // size) * size * size * (1 - p) / p
    weights = var * max(1.0, true / est) if est > 0 else 0
    return math.sqrt(max(base, weights))


def frame_index(st, name):
    return next((i for i, f in enumerate(st) if short(f["func"]) == name), -1)


def totals():
    """The main run's totals in its last JSON report, which --pprof and --folded must match."""
    proc = main_report()[-1]["procs"][0]
    return {"live": proc["live_bytes"], "alloc": proc["alloc_bytes"], "live_objects": proc["live_objects"],
            "alloc_objects": proc["alloc_objects"], "samples": sum(len(t["stacks"]) for t in proc["sites"])}


def test_final(record_property):
    last = main_report()[-1]
    assert last["final"] and len(last["procs"]) == 1, "last report not final or not of one process"
    proc = last["procs"][0]
    record_property("detail", "last report final, one process; samples %d, live samples %d, free_unknown %d, "
                    "dropped %d+%d; workload ran %.0f ms traced" % (
                        last["samples"], proc["live_samples"], last["free_unknown"], last["alloc_dropped"],
                        last["free_dropped"], truth()["run_us"] / 1e3))


@pytest.mark.name("heap/{name}/lib")
@pytest.mark.parametrize("name", SITES)
def test_lib(name, record_property):
    s, _ = site(name)
    assert s["lib"] == LIBS.get(name, "hz3top_heap_sites"), f"in {s['lib']}"
    record_property("detail", f"in {s['lib']}")


@pytest.mark.name("heap/{name}/{what}")
@pytest.mark.parametrize("what", ["alloc", "live"])
@pytest.mark.parametrize("name", SITES)
def test_estimate(name, what, record_property):
    s, _ = site(name)
    t = truth()
    size = t[name + "_size"]
    true = t[f"{name}_{what}"]
    est = s[f"{what}_bytes"]
    sd = bound_sd(true, size, est, s[f"{what}_err"] ** 2)
    if true == 0:
        # Every sampled block of the churn site was freed while the tracer watched.
        why = "estimate %d for nothing live" % est
        assert est == 0, why
    else:
        why = "estimate %d vs truth %d (%+.1f %%, 4 sd = %.1f %%, %d samples)" % (
            est, true, 100.0 * (est - true) / true, 400.0 * sd / true, s[f"{what}_samples"])
        assert abs(est - true) <= 4 * sd, why
    record_property("detail", why)


def live_site(name):
    s, last = site(name)
    t = truth()
    assert t[name + "_live"], f"the workload left nothing live at {name}"
    return s, last, t


@pytest.mark.name("heap/{name}/objects")
@pytest.mark.parametrize("name", LIVE_SITES)
def test_objects(name, record_property):
    s, _, t = live_site(name)
    size = t[name + "_size"]
    n = t[name + "_live"] // size
    sd = bound_sd(n * size, size, s["live_bytes"], s["live_err"] ** 2) / size
    est = s["live_objects"]
    why = "estimate %d live objects vs truth %d (4 sd = %.0f)" % (est, n, 4 * sd)
    assert abs(est - n) <= 4 * sd, why
    record_property("detail", why)


@pytest.mark.name("heap/{name}/error_bar")
@pytest.mark.parametrize("name", LIVE_SITES)
def test_error_bar(name, record_property):
    """live_err is sqrt(sum of w (w - s)) over the live samples: the stacks' variances add up to
    the site's, and it is never under (1 - p) ** 0.5 * live / sqrt(samples) with p the base mean's
    sampling probability (by Cauchy-Schwarz; a raised mean lowers p and raises the weights)."""
    s, _, t = live_site(name)
    n = s["live_samples"]
    p = -math.expm1(-t[name + "_size"] / MEAN)
    low = math.sqrt(1 - p) * s["live_bytes"] / math.sqrt(n) if n else 0
    var = sum(x["live_err"] ** 2 for x in s["stacks"])
    why = "live_err %d over %d samples (%.1f %%; at least %d), stacks' sqrt(sum of squares) %.0f" % (
        s["live_err"], n, 100.0 * s["live_err"] / max(1, s["live_bytes"]), low, math.sqrt(var))
    # 1e-4: weights are rounded to whole bytes.
    assert s["live_err"] >= low * (1 - 1e-4) - 1 and abs(s["live_err"] - math.sqrt(var)) <= len(s["stacks"]), why
    record_property("detail", why)


@pytest.mark.name("heap/{name}/age")
@pytest.mark.parametrize("name", LIVE_SITES)
def test_age(name, record_property):
    s, last, _ = live_site(name)
    why = "mean %.2f s, max %.2f s, attached %.2f s" % (s["age_mean"], s["age_max"], last["elapsed"])
    assert 0 < s["age_mean"] <= s["age_max"] <= last["elapsed"] + 0.05 and s["age_mean"] >= 0.5, why
    record_property("detail", why)


@pytest.mark.name("heap/{name}/stack")
@pytest.mark.parametrize("name", SITES)
def test_stack(name, record_property):
    s, _ = site(name)
    st = s["stack"]
    funcs = [short(f["func"]) for f in st]
    why = " <- ".join(funcs[:12])
    assert len(st) >= 3 and st[0]["hz3"] and st[0]["lib"].startswith("libhz3") and "main" in funcs, why
    record_property("detail", why)


@pytest.mark.name("heap/{name}/dwarf")
@pytest.mark.parametrize("name", SITES)
def test_dwarf(name, record_property):
    s, _ = site(name)
    why = "unwound with %s" % sorted({x["unwind"] for x in s["stacks"]})
    assert all(x["unwind"] == "dwarf" for x in s["stacks"]), why
    record_property("detail", why)


@pytest.mark.name("heap/{name}/stacks")
@pytest.mark.parametrize("name", SITES)
def test_stacks(name, record_property):
    s, _ = site(name)
    tot = sum(x["live_bytes"] for x in s["stacks"])
    why = "%d stacks listed, live bytes %d = site %d" % (len(s["stacks"]), tot, s["live_bytes"])
    assert abs(tot - s["live_bytes"]) <= len(s["stacks"]), why
    record_property("detail", why)


# Source lines: the malloc call of site_keep_half, the zmalloc call of site_wrapped.
@pytest.mark.name("heap/{name}/line")
@pytest.mark.parametrize("name", ["site_keep_half", "site_wrapped"])
def test_line(name, record_property):
    s, _ = site(name)
    line = truth()[name + "_line"]
    why = "%s:%d, malloc call at line %d" % (s["file"], s["line"], line)
    assert s["file"].endswith("heap_sites.cc") and s["line"] == line, why
    record_property("detail", why)


def test_wrapper(record_property):
    st = site("site_wrapped")[0]["stack"]
    z = frame_index(st, "zmalloc")
    assert z >= 0 and st[z]["wrapper"] and z < frame_index(st, "site_wrapped"), \
        f"zmalloc not kept as a wrapper below its caller: {[short(f['func']) for f in st][:8]}"
    record_property("detail", "zmalloc kept in the stack as a wrapper, the site is its caller")


def test_inlined(record_property):
    st = site("make_node")[0]["stack"]
    t = truth()
    i = frame_index(st, "make_node")
    why = "make_node [inlined] at line %s, called from site_inlined at line %s" % (
        st[i]["line"] if i >= 0 else "?", st[i + 1]["line"] if 0 <= i < len(st) - 1 else "?")
    assert 0 <= i < len(st) - 1, why
    assert st[i]["inlined"] and st[i]["line"] == t["make_node_line"] and \
        short(st[i + 1]["func"]) == "site_inlined" and st[i + 1]["line"] == t["site_inlined_line"] and \
        st[i + 1]["addr"] == st[i]["addr"], why
    record_property("detail", why)


def test_nofp_library(record_property):
    st = site("heap_lib_leak")[0]["stack"]
    order = [frame_index(st, n) for n in ("heap_lib_leak", "heap_lib_outer", "site_lib", "main")]
    why = "heap_lib_leak <- heap_lib_outer <- site_lib <- main at frames %s" % order
    assert all(x >= 0 for x in order) and order == sorted(order), why
    record_property("detail", why)


def test_debuginfo(record_property):
    debug = os.environ.get("HZ3_LIBC_DEBUG", "")
    if not debug:
        pytest.skip("no separate debug info for libc under /usr/lib/debug/.build-id "
                    "(Debian libc6-dbg, scripts/deps.sh test)")
    s = by_func(main_report()[-1]).get("site_keep_half")
    libc = [f for f in (s["stack"] if s else []) if f["lib"] == "libc.so.6" and f["func"]]
    why = "libc frames with source lines from %s: %s" % (
        debug, ["%s %s:%d" % (f["func"], f["file"], f["line"]) for f in libc])
    assert libc and all(f["file"] and f["line"] > 0 for f in libc), why
    record_property("detail", why)


# Growth: live bytes of the leaking site rose in some interval, and not in the last one.
def test_growth(record_property):
    rs = main_report()
    rise = max((t["live_delta"] for r in rs for t in r["procs"][0]["sites"] if short(t["func"]) == "site_wrapped"),
               default=0)
    s = by_func(rs[-1]).get("site_wrapped")
    why = "site_wrapped grew by %d B in one interval, %d B in the last" % (rise, s["live_delta"] if s else -1)
    assert rise > 0 and s and s["live_delta"] == 0, why
    record_property("detail", why)


def test_growth_rate(record_property):
    s, last = site("site_wrapped")
    g = s["live_bytes"] / last["elapsed"]
    why = "%.0f B/s since attach, live %d B over %.2f s" % (s["growth_rate"], s["live_bytes"], last["elapsed"])
    assert abs(s["growth_rate"] - g) <= 1e-6 * g + 1, why
    record_property("detail", why)


def test_rate(record_property):
    peak = max((t["alloc_rate"] for r in main_report() for t in r["procs"][0]["sites"] if "site_churn" in t["func"]),
               default=0)
    why = "peak site_churn allocation rate %.0f B/s" % peak
    assert peak > 0, why
    record_property("detail", why)


# ---- --pprof, against pprof's profile.proto ----


@pytest.fixture(scope="module")
def profile():
    sys.path.insert(0, path("pb"))
    import profile_pb2

    p = profile_pb2.Profile()
    with gzip.open(path("heap.pb.gz")) as f:
        p.ParseFromString(f.read())
    return p


@pytest.mark.name("heap/pprof/types")
def test_pprof_types(profile, record_property):
    S = profile.string_table
    types = [(S[t.type], S[t.unit]) for t in profile.sample_type]
    assert types == [("inuse_space", "bytes"), ("inuse_objects", "count"), ("alloc_space", "bytes"),
                     ("alloc_objects", "count")] and S[profile.default_sample_type] == "inuse_space", str(types)
    record_property("detail", str(types))


@pytest.mark.name("heap/pprof/period")
def test_pprof_period(profile, record_property):
    """period_type space/bytes and period the sampling mean most samples were drawn with: the
    JSON report's sample_mean, libhz3's base mean times a power of two (the pacing's)."""
    S = profile.string_table
    proc = main_report()[-1]["procs"][0]
    ratio = profile.period / MEAN
    why = "period_type %s/%s, period %d (%.0f x 512 KiB), JSON sample_mean %d, max %d" % (
        S[profile.period_type.type], S[profile.period_type.unit], profile.period, ratio,
        proc["sample_mean"], proc["sample_mean_max"])
    assert (S[profile.period_type.type], S[profile.period_type.unit]) == ("space", "bytes") and \
        profile.period == proc["sample_mean"] and ratio >= 1 and ratio == 2 ** round(math.log2(ratio)), why
    record_property("detail", why)


@pytest.mark.name("heap/pprof/totals")
def test_pprof_totals(profile, record_property):
    tot = totals()
    sums = [sum(s.value[i] for s in profile.sample) for i in range(4)]
    want = [tot["live"], tot["live_objects"], tot["alloc"], tot["alloc_objects"]]
    n = len(profile.sample)
    why = "%d samples; inuse_space %d, inuse_objects %d, alloc_space %d, alloc_objects %d vs JSON %s" % (
        n, *sums, want)
    assert n == tot["samples"] and all(abs(a - b) <= n for a, b in zip(sums, want)), why
    record_property("detail", why)


@pytest.mark.name("heap/pprof/leaf")
def test_pprof_leaf(profile, record_property):
    S = profile.string_table
    funcs = {f.id: S[f.name] for f in profile.function}
    locs = {loc.id: loc for loc in profile.location}
    leaves = {}
    for s in profile.sample:
        name = funcs[locs[s.location_id[0]].line[0].function_id]
        leaves[name] = leaves.get(name, 0) + s.value[0]
    top = sorted(leaves.items(), key=lambda kv: -kv[1])
    named = [k for k, v in top if v > 0]
    why = "inuse_space by leaf: " + ", ".join("%s %d" % kv for kv in top[:6])
    assert any("site_keep_half" in k for k in named) and any(k == "heap_lib_leak" for k in named) \
        and any(k.startswith("zmalloc") for k in named), \
        "site_keep_half, heap_lib_leak and zmalloc are not all leaves holding live bytes; " + why
    record_property("detail", why)


@pytest.mark.name("heap/pprof/build_id")
def test_pprof_build_id(profile, record_property):
    S = profile.string_table
    maps = {S[m.filename]: S[m.build_id] for m in profile.mapping}
    exe = [b for f, b in maps.items() if f.endswith("/hz3top_heap_sites")]
    why = "executable mapping build id %s, readelf %s" % (exe, os.environ["HZ3_BUILD_ID"])
    assert exe == [os.environ["HZ3_BUILD_ID"]], why
    record_property("detail", why)


# ---- --folded ----


def folded():
    with open(path("heap.folded")) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


@pytest.mark.name("heap/folded/total")
def test_folded_total(record_property):
    lines = folded()
    vals = [int(line.rsplit(" ", 1)[1]) for line in lines]
    live = totals()["live"]
    why = "%d stacks, %d B vs live %d B" % (len(lines), sum(vals), live)
    assert abs(sum(vals) - live) <= len(lines), why
    record_property("detail", why)


@pytest.mark.name("heap/folded/stack")
def test_folded_stack(record_property):
    keep = [line for line in folded() if "site_keep_half" in line]
    assert keep and all(line.split(";")[0] == "hz3top_heap_sit" and ";main;" in line
                        and line.index(";main;") < line.index("site_keep_half") for line in keep), str(keep[:1])
    record_property("detail", keep[0][:200])


# ---- --all --unwind fp ----


def all_procs():
    pid = int(os.environ["HZ3_PID"])
    return pid, [p for r in reports("all.json") for p in r["procs"] if p["pid"] == pid]


def test_all(record_property):
    pid, procs = all_procs()
    why = "pid %d found by --all with %d samples" % (pid, procs[-1]["alloc_samples"] if procs else 0)
    assert procs and procs[-1]["alloc_samples"] > 0, why
    record_property("detail", why)


def test_unwind_fp(record_property):
    _, procs = all_procs()
    assert procs, "the workload is not in the --all reports"
    p = procs[-1]
    st = [f["func"] for s in p["sites"] for x in s["stacks"] for f in x["frames"] if "heap_lib_leak" in s["func"]]
    outer = any("heap_lib_outer" in f for f in st)
    why = "%d frame-pointer stacks, %d DWARF; without DWARF heap_lib_outer is %s" % (
        p["fp_stacks"], p["dwarf_stacks"], "present" if outer else "missing")
    assert p["dwarf_stacks"] == 0 and p["fp_stacks"] > 0 and not outer, why
    record_property("detail", why)
