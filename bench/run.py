#!/usr/bin/env python3
"""bench/run.py — the runner behind `make bench`: every workload under every allocator,
interleaved, RUNS times; median and spread of ops/s, peak RSS and RSS at exit; a Markdown table
and plots stamped with machine, kernel, compiler and commit. With --ptag-ab it runs the
PTAG A/B comparison instead (hz3 with PTAG off vs on, small/medium/mixed) and writes ptag-ab.md
with the GO/NO-GO criteria applied.

Interleaving: run r executes every workload, and for each workload every allocator, in an order
rotated by r (A B C, B C A, C A B …). Drift of the machine (other jobs, thermal state, page cache)
therefore spreads over all allocators instead of landing on whichever ran last.

A missing allocator is an error before anything runs (exit 2), never a silently shorter table;
a run that crashes or whose LD_PRELOAD did not take is reported and makes the exit status 1.
Not a regression gate: bench/triage.py compares two builds and decides.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import stats  # noqa: E402

PTAG_OFF, PTAG_ON = "hz3-noptag", "hz3"
DISCUSSION_MARK = "<!-- discussion: written by hand, kept when the file is regenerated -->"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build folder (default build)")
    ap.add_argument("--runs", type=int, help="runs per workload x allocator (default 10, QUICK 1)")
    ap.add_argument("--scale", type=float,
                    help="multiplies every workload's operation count (default 1)")
    ap.add_argument("--iters", type=int, help="SSOT ITERS (default 20000000 x scale)")
    ap.add_argument("--threads", type=int, help="threads of the multi-threaded workloads "
                    "(default: CPUs, at least 2)")
    ap.add_argument("--workloads", help="comma list (default all)")
    ap.add_argument("--allocators", help="comma list of hz3, hz3-<variant>, glibc, mimalloc, "
                    "jemalloc, tcmalloc, NAME=PATH (default " + ",".join(bl.DEFAULT_ALLOCATORS) + ")")
    ap.add_argument("--out", help="output folder (default docs/benchmarks, QUICK build/bench-quick)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 run, tiny sizes; proves every allocator runs, times nothing")
    ap.add_argument("--ptag-ab", action="store_true",
                    help="PTAG A/B comparison: hz3-noptag vs hz3 on small/medium/mixed, writes ptag-ab.md")
    ap.add_argument("--no-plots", action="store_true", help="skip the PNG/SVG plots")
    ap.add_argument("--no-callgrind", action="store_true",
                    help="skip the instructions-per-operation table (default: on, off with QUICK)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per run (default 600)")
    ap.add_argument("--nice", type=int, help="run the workloads at this nice value (negative "
                    "needs root): on a machine shared with builds, -20 keeps their CPU time off "
                    "the measurement (not their cache and memory traffic)")
    return ap.parse_args()


def main():
    a = parse_args()
    build = os.path.abspath(a.build)
    if a.quick:
        runs = a.runs or 1
        scale = a.scale or 0.005
        iters = a.iters or 100_000
        out = a.out or os.path.join(build, "bench-quick")
    else:
        runs = a.runs or 10
        scale = a.scale or 1.0
        iters = a.iters
        out = a.out or os.path.join(bl.TOP, "docs", "benchmarks")
    threads = a.threads or bl.default_threads()
    try:
        all_ws = bl.workloads(threads, scale, iters, quick=a.quick)
        if a.ptag_ab:
            ws = bl.select_workloads(all_ws, a.workloads or "small,medium,mixed")
            allocs = bl.resolve_allocators(a.allocators or f"{PTAG_OFF},{PTAG_ON}", build)
        else:
            ws = bl.select_workloads(all_ws, a.workloads)
            allocs = bl.resolve_allocators(a.allocators or ",".join(bl.DEFAULT_ALLOCATORS), build)
    except bl.BenchError as e:
        bl.die(str(e))
    if runs < 1:
        bl.die("--runs must be at least 1")

    missing = [m for m in (x.check_present() for x in allocs) if m]
    for w in ws:
        binary = os.path.join(build, "bin", w.binary)
        if not os.access(binary, os.X_OK):
            missing.append(f"workload {w.name}: {binary} not built (make bench-bins)")
    if missing:
        print("bench: cannot run, missing:", file=sys.stderr)
        for m in missing:
            print(f"  {m}", file=sys.stderr)
        sys.exit(2)

    params = {"RUNS": runs, "SCALE": scale, "ITERS": iters or max(1, int(20_000_000 * scale)),
              "THREADS": threads}
    if a.quick:
        params["QUICK"] = 1
    if a.nice is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, a.nice)  # inherited by every workload
        except OSError as e:
            bl.die(f"failed to set nice {a.nice}: {e.strerror}")
        params["NICE"] = a.nice
    st = bl.stamp(build, allocs)
    if st["tracers"] != "none":
        print(f"bench: warning: tracers running ({st['tracers']}): a tracer attached to the "
              "allocator's library slows every process that maps it", file=sys.stderr)
    total = runs * len(ws) * len(allocs)
    print(f"bench: {len(ws)} workloads x {len(allocs)} allocators x {runs} runs = {total} runs "
          f"(threads {threads}, scale {scale}); results to {out}", flush=True)

    samples = {w.name: {x.name: [] for x in allocs} for w in ws}
    failures, warnings = [], []
    done = 0
    t_start = time.time()
    for r in range(runs):
        for w in ws:
            k = r % len(allocs)
            for alloc in allocs[k:] + allocs[:k]:
                done += 1
                try:
                    res = bl.run_workload(w, alloc, build, timeout=a.timeout)
                except bl.BenchError as e:
                    failures.append(f"run {r + 1}: {e}")
                    print(f"[{done:4}/{total}] run {r + 1:2}/{runs} {w.name:9} {alloc.name:11} "
                          f"FAILED: {e}", flush=True)
                    continue
                sample = {k2: res[k2] for k2 in ("ops_per_s", "seconds", "cpu_ns_per_op",
                                                  "peak_rss_kb", "exit_rss_kb", "ops", "live_kb",
                                                  "base_rss_kb", "joined_rss_kb") if k2 in res}
                if "rss_after_s" in res:
                    # "0,1,2,5" and one KiB value each (a single value parses as a number).
                    ts = str(res["rss_after_s"]).split(",")
                    kbs = [int(v) for v in str(res["rss_after_kb"]).split(",")]
                    sample["rss_after"] = dict(zip(ts, kbs))
                if res.get("misaligned"):
                    # A correctness failure that still yields a number: flagged, not dropped.
                    sample["misaligned"] = res["misaligned"]
                    warnings.append(f"run {r + 1}: {w.name} under {alloc.name}: "
                                    f"{res['misaligned']} misaligned pointers: "
                                    + res["_stderr"].strip().splitlines()[0])
                samples[w.name][alloc.name].append(sample)
                eta = (time.time() - t_start) / done * (total - done)
                unit, div = w.ops_unit
                print(f"[{done:4}/{total}] run {r + 1:2}/{runs} {w.name:9} {alloc.name:11} "
                      f"{res['ops_per_s'] / div:8.2f} {unit}  peak {res['peak_rss_kb'] / 1024:7.1f}"
                      f" MiB  exit {res['exit_rss_kb'] / 1024:7.1f} MiB  (eta {eta:4.0f}s)",
                      flush=True)

    os.makedirs(out, exist_ok=True)
    data = {
        "stamp": st,
        "params": params,
        "workloads": {w.name: {"command": w.command_line(), "what": w.what,
                               "ops_unit": list(w.ops_unit), "cpu_unit": list(w.cpu_unit)}
                      for w in ws},
        "allocators": {x.name: x.lib or "glibc (no preload)" for x in allocs},
        "samples": samples,
        "failures": failures,
        "warnings": warnings,
    }
    if a.ptag_ab:
        # Timings on a shared machine may not resolve a few percent; instruction counts always do.
        print("bench: callgrind instructions per operation (deterministic)…", flush=True)
        data["ir_per_op"] = {}
        for w in ws:
            if not w.deterministic:
                continue
            data["ir_per_op"][w.name] = {}
            for x in allocs:
                try:
                    data["ir_per_op"][w.name][x.name] = bl.workload_ir_per_op(build, x, w, 200_000)
                except bl.BenchError as e:
                    failures.append(f"callgrind: {e}")
        bl.write_json(os.path.join(out, "ptag-ab.json"), data)
        write_ptag_ab(os.path.join(out, "ptag-ab.md"), data)
        print(f"bench: wrote {out}/ptag-ab.md")
    else:
        if not (a.quick or a.no_callgrind):
            print("bench: callgrind instructions per operation (deterministic)…", flush=True)
            data["ir_per_op"] = measure_ir(ws, allocs, build, failures)
        bl.write_json(os.path.join(out, "results.json"), data)
        write_results_md(os.path.join(out, "results.md"), data, plots=not a.no_plots)
        if not a.no_plots:
            write_plots(out, data)
        print(f"bench: wrote {out}/results.md" + ("" if a.no_plots else " and plots"))
    if failures:
        print(f"bench: {len(failures)} run(s) failed:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        sys.exit(1)


def measure_ir(ws, allocs, build, failures, n=200_000):
    """callgrind instructions per operation of the single-threaded workloads: no noise at all,
    so it cross-checks the timed tables (and shows where time goes to stalls, not work)."""
    out = {}
    for w in ws:
        if not w.deterministic:
            continue
        out[w.name] = {}
        for x in allocs:
            try:
                out[w.name][x.name] = bl.workload_ir_per_op(build, x, w, n)
            except bl.BenchError as e:
                failures.append(f"callgrind: {e}")
    return out


# ---- reports -----------------------------------------------------------------------------------

def _summ(data, w, alloc, key):
    xs = [s[key] for s in data["samples"][w][alloc] if key in s]
    return stats.summary(xs) if xs else None


# The default units of the two timed tables; a workload may carry its own (benchlib.Workload).
UNIT_KEYS = {"ops_per_s": ("ops_unit", "M ops/s", 1e6), "cpu_ns_per_op": ("cpu_unit", "ns", 1.0)}


def _unit(data, w, key):
    """(label, divisor) of `key` for workload w; the label is None for the table's default unit.
    Results written before workloads had units fall back to the defaults."""
    if key not in UNIT_KEYS:
        return None, 1.0
    field, label, div = UNIT_KEYS[key]
    u = data["workloads"][w].get(field)
    if not u or (u[0] == label and u[1] == div):
        return None, div
    return u[0], u[1]


def _table(data, key, fmt, best, title_note, spread=False, vs_peer=False):
    allocs = list(data["allocators"])
    head = "| workload | " + " | ".join(allocs) + " |"
    sep = "|---|" + "---:|" * len(allocs)
    if vs_peer:
        head += " hz3 vs best peer |"
        sep += "---:|"
    rows = [head, sep]
    for w in data["workloads"]:
        unit, div = _unit(data, w, key)
        meds = {x: _summ(data, w, x, key) for x in allocs}
        vals = [m["median"] for m in meds.values() if m]
        target = best(vals) if vals else None
        cells = []
        for x in allocs:
            m = meds[x]
            if not m:
                cells.append("FAILED")
                continue
            c = fmt(m["median"] / div)
            if spread and m["n"] > 1:
                c += f" ({m['iqr_pct']:.1f}%)"
            c = f"**{c}**" if m["median"] == target and len(vals) > 1 else c
            if any(smp.get("misaligned") for smp in data["samples"][w][x]):
                c += " ⚠"
            cells.append(c)
        row = f"| {w}{f' ({unit})' if unit else ''} | " + " | ".join(cells) + " |"
        if vs_peer:
            peers = [meds[x]["median"] for x in allocs if not x.startswith("hz3") and meds[x]]
            if meds.get("hz3") and peers:
                row += f" {stats.delta_pct(max(peers), meds['hz3']['median']):+.1f}% |"
            else:
                row += " – |"
        rows.append(row)
    return f"{title_note}\n\n" + "\n".join(rows)


# The original hz3's published SSOT medians (glibc, hz3, mimalloc, tcmalloc), M ops/s.
ORIGINAL_HZ3 = {"small": (33.8, 100.3, 75.2, 95.0), "medium": (13.6, 104.2, 63.1, 109.8),
                "mixed": (15.2, 99.5, 62.5, 106.9)}


def _rss_after_section(data):
    """RSS sampled at fixed times after the work stopped (largechurn with its blocks still live,
    idle with its threads alive and nothing live): one row per workload and time."""
    allocs = list(data["allocators"])
    rows = []
    for w in data["workloads"]:
        times = []
        for x in allocs:
            for smp in data["samples"][w][x]:
                for t in smp.get("rss_after", {}):
                    if t not in times:
                        times.append(t)
        if not times:
            continue
        for t in sorted(times, key=float):
            cells = []
            meds = {}
            for x in allocs:
                xs = [smp["rss_after"][t] for smp in data["samples"][w][x]
                      if t in smp.get("rss_after", {})]
                meds[x] = stats.summary(xs) if xs else None
            vals = [m["median"] for m in meds.values() if m]
            for x in allocs:
                m = meds[x]
                if not m:
                    cells.append("–")
                    continue
                c = f"{m['median'] / 1024:.1f}"
                if m["n"] > 1:
                    c += f" ({m['iqr_pct']:.1f}%)"
                cells.append(f"**{c}**" if m["median"] == min(vals) and len(vals) > 1 else c)
            rows.append(f"| {w}, t = {t} s | " + " | ".join(cells) + " |")
        # Where the program still holds a live set: how far RSS is above it at the last time.
        last = max(times, key=float)
        cells = []
        for x in allocs:
            xs = [(smp["rss_after"][last] - smp["base_rss_kb"]) / smp["live_kb"] * 100 - 100
                  for smp in data["samples"][w][x]
                  if last in smp.get("rss_after", {}) and smp.get("live_kb")
                  and "base_rss_kb" in smp]
            cells.append(f"{stats.median(xs):+.1f} %" if xs else "–")
        if any(c != "–" for c in cells):
            rows.append(f"| {w}, t = {last} s, RSS − start RSS vs live set | "
                        + " | ".join(cells) + " |")
    if not rows:
        return []
    return ["## RSS after the work stops", "",
            "Median VmRSS in MiB (IQR as % of the median) sampled t seconds after the timed part "
            "ended, the process still running; lower is better. largechurn: its live blocks are "
            "still allocated (the last row: RSS minus the RSS before the first allocation, "
            "against the bytes the program holds; the target is within 10 % by t = 5 s). idle: "
            "its threads are alive and waiting, nothing is allocated.", "",
            "| workload, time | " + " | ".join(allocs) + " |",
            "|---|" + "---:|" * len(allocs)] + rows + [""]


def write_results_md(path, data, plots=True):
    allocs = data["allocators"]
    p = data["params"]
    parts = [
        "# hz3 benchmark results",
        "",
        "Generated by `make bench` (`bench/run.py`); regenerate rather than edit. What each workload "
        "does and how the numbers are taken: [docs/bench.md](../bench.md).",
        "",
        bl.stamp_markdown(data["stamp"], p),
        "",
    ]
    if p.get("QUICK"):
        parts += ["**QUICK smoke run: the sizes are tiny and the numbers mean nothing.**", ""]
    else:
        if p.get("RUNS", 10) < 10 or float(p.get("SCALE", 1)) < 1:
            parts += [f"**Reduced run: RUNS={p['RUNS']}, SCALE={p['SCALE']} (the full suite is "
                      "RUNS=10, SCALE=1).**", ""]
        iqrs = sorted(m["iqr_pct"] for w in data["workloads"] for x in allocs
                      for m in [_summ(data, w, x, "ops_per_s")] if m and m["n"] > 1)
        if iqrs:
            parts += [f"Noise of this run: the median interquartile range over all cells is "
                      f"{stats.median(iqrs):.1f} % (largest {iqrs[-1]:.0f} %). Differences smaller "
                      "than a cell's spread are not resolved; `make triage` tests a pair properly.",
                      ""]
    parts += [
        "Allocators: " + ", ".join(f"`{k}` = {v}" for k, v in allocs.items()) + ".",
        "",
        "## Throughput",
        "",
        _table(data, "ops_per_s", lambda v: f"{v:.1f}", max,
               "Median M ops/s (interquartile range as % of the median); higher is better; best "
               "per row in bold; a unit in brackets overrides M ops/s for its row (largechurn: "
               "steps per second). *hz3 vs best peer*: hz3's median against the best non-hz3 "
               "allocator.", spread=True, vs_peer="hz3" in allocs),
        "",
        "## CPU time per operation",
        "",
        _table(data, "cpu_ns_per_op", lambda v: f"{v:.1f}", min,
               "Median CPU time of all the process's threads per operation, in ns (IQR as % of the "
               "median; a unit in brackets overrides ns for its row, e.g. ms per largechurn "
               "step); lower is better. Steadier than ops/s on a shared machine: a descheduled "
               "thread stretches a multi-threaded run's wall clock but not its CPU time. Waiting "
               "by spinning or yielding (prodcons, xfree back-pressure) counts.", spread=True),
        "",
    ]
    ir = data.get("ir_per_op")
    if ir:
        names = list(allocs)
        parts += ["## Instructions per operation", "",
                  "callgrind, single-threaded workloads: (Ir of 400,000 operations − Ir of 200,000) "
                  "/ 200,000, the workload's own loop included. Exact and repeatable; blind to "
                  "cache misses, so an allocator with fewer instructions but no more speed is "
                  "paying in stalls.", "",
                  "| workload | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for w, per in ir.items():
            vals = [v for v in per.values() if v]
            best = min(vals) if vals else None
            cells = [(f"**{per[x]:.1f}**" if per[x] == best else f"{per[x]:.1f}")
                     if per.get(x) else "–" for x in names]
            parts.append(f"| {w} | " + " | ".join(cells) + " |")
        parts.append("")
    parts += [
        "## Peak RSS",
        "",
        _table(data, "peak_rss_kb", lambda v: f"{v / 1024:.1f}", min,
               "Median VmHWM in MiB (the whole process, binary and libraries included); lower is "
               "better."),
        "",
        "## RSS at exit",
        "",
        _table(data, "exit_rss_kb", lambda v: f"{v / 1024:.1f}", min,
               "Median VmRSS in MiB after the workload freed every block: what the allocator keeps "
               "resident once the live set is gone; lower is better."),
        "",
    ]
    parts += _rss_after_section(data)
    parts += [
        "## Workloads",
        "",
        "| workload | what | command |",
        "|---|---|---|",
    ]
    for w, d in data["workloads"].items():
        parts.append(f"| {w} | {d['what']} | `{d['command']}` |")
    if any(w in data["workloads"] for w in ORIGINAL_HZ3):
        parts += ["", "## Reference: the original hz3's published SSOT medians", "",
                  "From its own published results on other hardware, M ops/s; only the ratios "
                  "between allocators compare with the table above.", "",
                  "| workload | glibc | hz3 (original) | mimalloc | tcmalloc |",
                  "|---|---:|---:|---:|---:|"]
        for w, v in ORIGINAL_HZ3.items():
            parts.append(f"| {w} | " + " | ".join(f"{x:.1f}" for x in v) + " |")
    if plots:
        parts += ["", "## Plots", "", "![ops/s per workload](ops.svg)", "",
                  "![RSS per workload](rss.svg)"]
        if any("rss_after" in smp for w in data["workloads"] for x in allocs
               for smp in data["samples"][w][x]):
            parts += ["", "![RSS after the work stops](rss-after.svg)"]
    if data.get("warnings"):
        parts += ["", "## Correctness warnings (⚠)", "",
                  "The allocator returned wrong results but the run completed; its numbers are not "
                  "comparable. Debian's mimalloc 2.0.9 has a known bug: `aligned_alloc(256, 256)` "
                  "(and 512, 1024) returns a block aligned to only 128 bytes "
                  "(microsoft/mimalloc#700, fixed in later releases).", ""]
        parts += [f"- {w}" for w in data["warnings"]]
    if data["failures"]:
        parts += ["", "## Failed runs", ""] + [f"- {f}" for f in data["failures"]]
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def write_plots(out, data):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        bl.die("python3-matplotlib is missing (make deps-bench), or pass --no-plots")
    allocs = list(data["allocators"])
    wl = list(data["workloads"])
    ncol = min(4, len(wl))
    nrow = (len(wl) + ncol - 1) // ncol
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    st = data["stamp"]
    foot = (f"{st['machine']} | {st['kernel']} | {st['compiler']} | commit {st['commit']} | "
            + ", ".join(f"{k}={v}" for k, v in data["params"].items()))

    def grid(title, draw):
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.9 * nrow + 0.8), squeeze=False)
        for i, w in enumerate(wl):
            ax = axes[i // ncol][i % ncol]
            draw(ax, w)
            ax.set_title(w, fontsize=10)
            ax.set_xticks(range(len(allocs)))
            ax.set_xticklabels(allocs, rotation=45, ha="right", fontsize=8)
            ax.tick_params(axis="y", labelsize=8)
            ax.grid(axis="y", alpha=0.3)
        for j in range(len(wl), nrow * ncol):
            axes[j // ncol][j % ncol].axis("off")
        fig.suptitle(title, fontsize=12)
        fig.text(0.5, 0.005, foot, ha="center", fontsize=6, color="#555")
        fig.tight_layout(rect=(0, 0.02, 1, 0.97))
        return fig

    def ops(ax, w):
        unit, div = _unit(data, w, "ops_per_s")
        for k, x in enumerate(allocs):
            m = _summ(data, w, x, "ops_per_s")
            if not m:
                continue
            ax.bar(k, m["median"] / div, color=colors[k % len(colors)])
            ax.errorbar(k, m["median"] / div, yerr=[[(m["median"] - m["p25"]) / div],
                                                    [(m["p75"] - m["median"]) / div]],
                        color="black", capsize=2, lw=0.8)
        ax.set_ylabel(f"{unit or 'M ops/s'} (median, IQR)", fontsize=8)

    def rss(ax, w):
        for k, x in enumerate(allocs):
            pk = _summ(data, w, x, "peak_rss_kb")
            ex = _summ(data, w, x, "exit_rss_kb")
            if not pk:
                continue
            ax.bar(k - 0.2, pk["median"] / 1024, width=0.4, color=colors[k % len(colors)],
                   label="peak" if k == 0 else None)
            ax.bar(k + 0.2, ex["median"] / 1024, width=0.4, color=colors[k % len(colors)],
                   alpha=0.45, hatch="//", label="at exit" if k == 0 else None)
        ax.set_ylabel("MiB (median)", fontsize=8)
        if w == wl[0]:
            ax.legend(fontsize=7)

    # RSS over time after the work stopped (largechurn, idle): one line per allocator.
    timed = [w for w in wl if any("rss_after" in smp for x in allocs
                                  for smp in data["samples"][w][x])]
    if timed:
        fig, axes = plt.subplots(1, len(timed), figsize=(max(10, 4.6 * len(timed)), 3.4),
                                 squeeze=False)
        for ax, w in zip(axes[0], timed):
            for k, x in enumerate(allocs):
                per = {}
                for smp in data["samples"][w][x]:
                    for t, kb in smp.get("rss_after", {}).items():
                        per.setdefault(float(t), []).append(kb)
                if per:
                    ts = sorted(per)
                    ax.plot(ts, [stats.median(per[t]) / 1024 for t in ts], marker="o", ms=3,
                            color=colors[k % len(colors)], label=x)
            ax.set_title(w, fontsize=10)
            ax.set_xlabel("seconds after the work stopped", fontsize=8)
            ax.set_ylabel("VmRSS MiB (median)", fontsize=8)
            ax.set_ylim(bottom=0)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle("RSS after the work stops (largechurn: blocks still live; idle: threads "
                     "waiting), lower is better", fontsize=11)
        fig.text(0.5, 0.005, foot, ha="center", fontsize=6, color="#555")
        fig.tight_layout(rect=(0, 0.03, 1, 0.95))
        for ext in ("png", "svg"):
            fig.savefig(os.path.join(out, f"rss-after.{ext}"), dpi=110,
                        metadata={"Date": None} if ext == "svg" else None)
        plt.close(fig)

    for name, title, draw in (("ops", "Throughput per workload (higher is better)", ops),
                              ("rss", "RSS per workload: peak (solid) and at exit (hatched), "
                                      "lower is better", rss)):
        fig = grid(title, draw)
        for ext in ("png", "svg"):
            fig.savefig(os.path.join(out, f"{name}.{ext}"), dpi=110,
                        metadata={"Date": None} if ext == "svg" else None)
        plt.close(fig)


# ---- PTAG A/B comparison --------------------------------------------------------------------------

# The PTAG on-vs-off gains the original hz3 published (other hardware), for comparison.
SEED_GAIN = {"small": 13.6, "medium": 8.5, "mixed": 8.7}


def ptag_verdict(w, delta, p, ci):
    """The original hz3's GO/NO-GO, translated to on-vs-off deltas (criteria text in the file). A verdict
    needs evidence: too much noise to tell is INCONCLUSIVE, never a GO by default."""
    significant = p < 0.05
    lo = ci[0]
    if w == "small":
        if significant and delta < -7.0:
            return "NO-GO (regression beyond -7 %)"
        if significant and delta > 0:
            return "GO (PTAG beats the header path)"
        if lo >= -7.0:
            return "GO (any loss within -7 %)"
        return "INCONCLUSIVE (noise; rerun quieter or with more runs)"
    if significant and delta < -1.0:
        return "NO-GO (regression beyond -1 %)"
    if significant and delta > 1.0:
        return "GO (faster)"
    if lo >= -2.0:
        return "GO (±0 %)"
    return "INCONCLUSIVE (noise; rerun quieter or with more runs)"


def write_ptag_ab(path, data):
    kept = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        if DISCUSSION_MARK in old:
            kept = old.split(DISCUSSION_MARK, 1)[1].strip("\n")
    rows = ["| workload | PTAG off (noptag) M ops/s | PTAG on (release) M ops/s | on vs off | "
            "95 % CI (bootstrap) | Mann-Whitney p | original hz3 | verdict |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]
    verdicts = []
    for w in data["workloads"]:
        off = [s["ops_per_s"] for s in data["samples"][w].get(PTAG_OFF, [])]
        on = [s["ops_per_s"] for s in data["samples"][w].get(PTAG_ON, [])]
        if not off or not on:
            rows.append(f"| {w} | {'FAILED' if not off else ''} | {'FAILED' if not on else ''} "
                        "| | | | | NO RESULT |")
            verdicts.append("NO RESULT")
            continue
        so, sn = stats.summary(off), stats.summary(on)
        d = stats.delta_pct(so["median"], sn["median"])
        lo, hi = stats.bootstrap_delta_ci(off, on)
        p, method = stats.mann_whitney(off, on)
        v = ptag_verdict(w, d, p, (lo, hi))
        verdicts.append(v)
        rows.append(f"| {w} | {so['median'] / 1e6:.1f} ({so['iqr_pct']:.1f}%) | "
                    f"{sn['median'] / 1e6:.1f} ({sn['iqr_pct']:.1f}%) | {d:+.1f}% | "
                    f"[{lo:+.1f}, {hi:+.1f}] | {p:.2g} ({method}) | "
                    f"+{SEED_GAIN.get(w, 0):.1f}% | {v} |")
    ir = data.get("ir_per_op", {})
    ir_rows = ["| workload | PTAG off Ir/op | PTAG on Ir/op | on vs off |", "|---|---:|---:|---:|"]
    for w in data["workloads"]:
        off, on = ir.get(w, {}).get(PTAG_OFF), ir.get(w, {}).get(PTAG_ON)
        if off and on:
            ir_rows.append(f"| {w} | {off:.1f} | {on:.1f} | {stats.delta_pct(off, on):+.1f}% |")
    if any(v.startswith("NO") for v in verdicts):
        overall = "NO-GO"
    elif verdicts and all(v.startswith("GO") for v in verdicts):
        overall = "GO"
    else:
        overall = "INCONCLUSIVE"
    p = data["params"]
    text = f"""# PTAG on vs off — the PTAG A/B comparison

Generated by `make bench-ptag` (`bench/run.py --ptag-ab`); the tables are regenerated on every run,
the discussion at the end is written by hand and kept.

The original hz3 replaced the page-header lookup on `free`'s hot path by the Arena PageTagMap: a
range check and one load of a dense tag array. The PTAG A/B comparison measures that: the same allocator
built with `HZ3_SMALL_V2_PTAG_ENABLE=1` (PTAG on, `build/lib/libhz3.so`) and `=0` (PTAG off,
classification through page headers, `build/noptag/lib/libhz3.so`), SSOT small / medium / mixed,
RUNS = 10, interleaved.

{bl.stamp_markdown(data['stamp'], p)}

## Result: **{overall}**

Median M ops/s (interquartile range as % of the median). *on vs off*: relative difference of the
medians; the interval is a seeded bootstrap of that difference; the p-value is a two-sided
Mann-Whitney U test (exact when there are no ties), which decides whether the difference exceeds
run-to-run noise (p < 0.05). *original hz3*: the gain the original hz3 published (other
hardware).

{chr(10).join(rows)}

Instructions per operation of the same workloads under callgrind ((Ir of 400,000 operations − Ir
of 200,000) / 200,000; exact, no noise, but blind to cache misses and dependency chains):

{chr(10).join(ir_rows) if len(ir_rows) > 2 else "(not measured)"}

## GO / NO-GO criteria

The original hz3 states them for its own baseline (its small v2 had cost −16 % against v1, and PTAG was to
remove that cost):

- **medium / mixed**: the regression must vanish to about ±0 %. Applied here: NO-GO when PTAG on
  is significantly (p < 0.05) slower than off by more than 1 %; GO when it is significantly faster,
  or when the bootstrap interval excludes a loss beyond 2 %.
- **small**: the regression must at least halve (the original's −16 % → −7 %) or PTAG must beat the
  baseline. Applied here: NO-GO when on is significantly slower than off by more than 7 %; GO when
  it is significantly faster ("beats"), or when the interval excludes a loss beyond 7 %.
- Anything else is INCONCLUSIVE: the runs were too noisy to decide, which is not a GO.

Result **GO** requires all three workloads to pass; one NO-GO makes it NO-GO.

{DISCUSSION_MARK}
"""
    if kept:
        text += "\n" + kept + "\n"
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
