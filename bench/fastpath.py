#!/usr/bin/env python3
"""bench/fastpath.py — the fast-path instruction budget. Counts, with callgrind, the instructions
of one iteration of each bench_fastpath loop (loop and calls included; (Ir(1.1M) - Ir(0.1M)) / 1M)
under a preloaded allocator, and compares them with bench/fastpath.golden.

  fastpath.py check   [--lib PATH]   exit 1 when a path is over its golden budget (make test)
  fastpath.py update                 rewrite the golden file from the release build
  fastpath.py measure [--lib PATH | --alloc NAME …] [--path P,…]
  fastpath.py probe-cost             release vs noprobes build: detached probes within 1 %
  fastpath.py doc                    docs/benchmarks/fastpath.md: hz3 variants and the peers

Instruction counts, not time: they are exact and repeatable on a noisy 2-core VM, and a fast path
that grows by two instructions is a change someone should have meant. They are not a speed
measurement (cache misses and dependency chains are invisible to them); bench/run.py is.
"""

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

GOLDEN = os.path.join(bl.TOP, "bench", "fastpath.golden")
PROBE_BUDGET_PCT = 1.0  # the probe budget: detached probes cost within 1 % of the noprobes build …
PROBE_GATED = ("malloc_free_64", "malloc_free_8192")  # … per malloc/free pair (docs/probes.md)


def headroom(measured):
    """Budget above a measurement: callgrind is exact for one binary, but an unrelated change
    (register allocation, a moved branch) shifts a path by an instruction or two."""
    return max(2.0, measured * 0.03)


def read_golden(path):
    budgets = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            if len(line) < 2:
                raise bl.BenchError(f"{path}: malformed line: {' '.join(line)}")
            budgets[line[0]] = float(line[1])
    return budgets


def measure(build, alloc, paths=bl.FASTPATHS):
    return {p: bl.fastpath_ir(build, alloc, p) for p in paths}


def cmd_check(a, build):
    alloc = bl.Allocator("hz3", a.lib or bl.hz3_lib(build))
    missing = alloc.check_present()
    if missing:
        bl.die(missing)
    budgets = read_golden(a.golden)
    got = measure(build, alloc)
    bad = 0
    print(f"{'path':18} {'measured':>9} {'budget':>7}  (instructions per iteration, callgrind)")
    for p in bl.FASTPATHS:
        if p not in budgets:
            print(f"{p:18} {got[p]:9.2f} {'none':>7}  FAIL: no budget in {a.golden}")
            bad += 1
            continue
        b = budgets[p]
        verdict = "ok"
        if got[p] > b:
            verdict = f"FAIL: over budget by {got[p] - b:.2f}"
            bad += 1
        elif got[p] < b - 2 * headroom(got[p]):
            verdict = "ok (well under budget: tighten it with `make fastpath-golden`)"
        print(f"{p:18} {got[p]:9.2f} {b:7.1f}  {verdict}")
    return 1 if bad else 0


def cmd_update(a, build):
    alloc = bl.Allocator("hz3", a.lib or bl.hz3_lib(build))
    missing = alloc.check_present()
    if missing:
        bl.die(missing)
    got = measure(build, alloc)
    st = bl.stamp(build)
    lines = [
        "# Fast-path instruction budgets of libhz3 (release build), checked by `make test`",
        "# (bench/tests/t_fastpath.sh -> bench/fastpath.py check). Units: instructions per loop",
        "# iteration under callgrind, the loop and the calls included (bench/fastpath.cc).",
        "# A path over its budget fails the test. Raise a budget only in the same commit as the",
        "# deliberate change that needs it, and say why; `make fastpath-golden` rewrites this file",
        "# from the current build (budget = measured + max(2, 3 %)).",
        f"# Set from commit {st['commit']}, {st['compiler']}.",
        "#",
        "# path            budget   measured",
    ]
    for p in bl.FASTPATHS:
        b = math.ceil(got[p] + headroom(got[p]))
        lines.append(f"{p:18} {b:6d}   {got[p]:.2f}")
    with open(a.golden, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[-4:]))
    print(f"fastpath: wrote {a.golden}")
    return 0


def cmd_measure(a, build):
    allocs = []
    if a.lib:
        allocs.append(bl.Allocator(os.path.basename(a.lib), a.lib))
    if a.alloc:
        allocs += bl.resolve_allocators(a.alloc, build)
    if not allocs:
        allocs = bl.resolve_allocators("hz3", build)
    for x in allocs:
        if x.check_present():
            bl.die(x.check_present())
    paths = a.path.split(",") if a.path else bl.FASTPATHS
    for p in paths:
        if p not in bl.FASTPATHS:
            bl.die(f"unknown path '{p}' (known: {', '.join(bl.FASTPATHS)})")
    print(f"{'allocator':14} " + " ".join(f"{p:>17}" for p in paths))
    for x in allocs:
        got = measure(build, x, paths)
        print(f"{x.name:14} " + " ".join(f"{got[p]:17.2f}" for p in paths), flush=True)
    return 0


def probe_cost(build):
    rel = bl.Allocator("hz3", bl.hz3_lib(build))
    nop = bl.Allocator("hz3-noprobes", bl.hz3_lib(build, "noprobes"))
    for x in (rel, nop):
        if x.check_present():
            bl.die(x.check_present())
    return measure(build, rel), measure(build, nop)


def cmd_probe_cost(a, build):
    rel, nop = probe_cost(build)
    bad = 0
    print(f"{'path':18} {'release':>9} {'noprobes':>9} {'cost':>7}  (budget {PROBE_BUDGET_PCT} %)")
    for p in bl.FASTPATHS:
        pct = (rel[p] / nop[p] - 1) * 100 if nop[p] else 0.0
        if p not in PROBE_GATED:
            print(f"{p:18} {rel[p]:9.2f} {nop[p]:9.2f} {pct:+6.2f}%  (information, not gated)")
            continue
        ok = pct <= PROBE_BUDGET_PCT
        bad += not ok
        print(f"{p:18} {rel[p]:9.2f} {nop[p]:9.2f} {pct:+6.2f}%  {'ok' if ok else 'FAIL'}")
    return 1 if bad else 0


def cmd_doc(a, build):
    names = ["hz3", "hz3-noptag", "hz3-noprobes", "glibc", "mimalloc", "jemalloc", "tcmalloc"]
    allocs = bl.resolve_allocators(",".join(names), build)
    missing = [m for m in (x.check_present() for x in allocs) if m]
    if missing:
        bl.die("cannot measure: " + "; ".join(missing))
    rows = []
    for x in allocs:
        got = measure(build, x)
        print(f"{x.name:14} " + " ".join(f"{got[p]:9.2f}" for p in bl.FASTPATHS), flush=True)
        rows.append(f"| {x.name} | " + " | ".join(f"{got[p]:.1f}" for p in bl.FASTPATHS) + " |")
    budgets = read_golden(a.golden) if os.path.exists(a.golden) else {}
    st = bl.stamp(build, allocs)
    text = f"""# Fast-path instruction counts

Generated by `bench/fastpath.py doc`. Instructions per loop iteration under callgrind, the loop
and the calls included: `free(malloc(64))`, `free(malloc(8192))`, and `p = realloc(p, 57 or 64)`
alternating within one 16-byte size class. Each is (Ir of 1,100,000 iterations − Ir of 100,000) /
1,000,000, counted only inside the loop function (`--toggle-collect`), so the first call's slow
path and process start-up cancel. Exact and repeatable, but not time: a cache miss costs one
instruction here. The peers are Debian's builds, which reach their thread data through
general-dynamic TLS (`__tls_get_addr`); measured on this project's machines: glibc 139, mimalloc 116, tcmalloc 77,
jemalloc 77 for the first loop.

{bl.stamp_markdown(st, {"N": "1.1M - 0.1M"})}

| allocator | malloc+free 64 B | malloc+free 8192 B | realloc in class |
|---|---:|---:|---:|
{chr(10).join(rows)}

The budget for libhz3's release build lives in `bench/fastpath.golden` (currently
{", ".join(f"{k} {v:g}" for k, v in budgets.items()) or "not set"}); `make test` fails when a path
grows past it.
"""
    out = a.out or os.path.join(bl.TOP, "docs", "benchmarks", "fastpath.md")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    print(f"fastpath: wrote {out}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["check", "update", "measure", "probe-cost", "doc"])
    ap.add_argument("--build", default="build")
    ap.add_argument("--lib", help="library to preload (default: the release build)")
    ap.add_argument("--alloc", help="measure: allocators by name (as bench/run.py --allocators)")
    ap.add_argument("--path", help="measure: comma list of paths (default all)")
    ap.add_argument("--golden", default=GOLDEN)
    ap.add_argument("--out", help="doc: output file")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    if not os.access(os.path.join(build, "bin", "bench_fastpath"), os.X_OK):
        bl.die(f"{build}/bin/bench_fastpath not built (make bench-bins)")
    try:
        sys.exit({"check": cmd_check, "update": cmd_update, "measure": cmd_measure,
                  "probe-cost": cmd_probe_cost, "doc": cmd_doc}[a.command](a, build))
    except bl.BenchError as e:
        bl.die(str(e))


if __name__ == "__main__":
    main()
