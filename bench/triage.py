#!/usr/bin/env python3
"""bench/triage.py — did a change make hz3 better or worse? Builds A and B, runs a workload under
each, interleaved (A B, B A, A B …) RUNS times under `perf stat` while hz3top counts the probes,
then measures deterministic instruction counts with callgrind, and prints per metric: median A,
median B, delta %, and whether the delta exceeds run-to-run noise.

  bench/triage.py A B [--workload small,medium] [--runs 10] [--threshold 3] [--fail-on …]
  make triage A=noptag B=release WORKLOAD=small

A and B are each one of:
  release | check | noprobes | noptag     a variant of the working tree (built with make)
  REV[:VARIANT]                          a git revision, built in a worktree under
                                         BUILD/triage/wt-<sha> (git worktree add --detach)
  glibc | mimalloc | jemalloc | tcmalloc a peer allocator (Debian package)
  PATH.so                                any malloc library
The workload programs always come from the working tree, so only the allocator differs.

Noise test: two-sided Mann-Whitney U per metric (exact without ties), alpha 0.05, plus a seeded
bootstrap 95 % interval of the delta. Deterministic metrics (callgrind) have no noise: any change
counts. Without a hardware PMU (these VMs) perf's cycles/instructions are unsupported; triage says
so and relies on software counters, wall time and callgrind instructions per operation instead.

Exit status: 0 no regression; 1 a --fail-on metric got worse by more than --threshold % (and, for
a noisy metric, significantly); 2 usage, build or run error.
"""

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import stats  # noqa: E402

SW_EVENTS = ["task-clock", "page-faults", "context-switches", "cpu-migrations"]
HW_EVENTS = ["cycles", "instructions", "branch-misses", "cache-misses"]
PROBE_KEYS = ["ptag_hit", "ptag_miss", "decode_fail", "tag_set", "tag_clear", "live_pages"]
ALPHA = 0.05


class Metric:
    def __init__(self, key, label, unit, scale, better, kind):
        # better: "higher", "lower" or None (informational: probe counts have no good direction)
        # kind: "noisy" (timed runs) or "exact" (callgrind)
        self.key, self.label, self.unit, self.scale = key, label, unit, scale
        self.better, self.kind = better, kind


METRICS = [
    Metric("ops_per_s", "ops/s", "M ops/s", 1e-6, "higher", "noisy"),
    Metric("seconds", "loop time", "s", 1, "lower", "noisy"),
    Metric("cpu_ns_per_op", "CPU time per op", "ns", 1, "lower", "noisy"),
    Metric("task-clock", "task-clock", "ms", 1, "lower", "noisy"),
    Metric("page-faults", "page-faults", "count", 1, "lower", "noisy"),
    Metric("context-switches", "context-switches", "count", 1, "lower", "noisy"),
    Metric("cpu-migrations", "cpu-migrations", "count", 1, "lower", "noisy"),
    Metric("cycles", "cycles", "M", 1e-6, "lower", "noisy"),
    Metric("instructions", "instructions", "M", 1e-6, "lower", "noisy"),
    Metric("branch-misses", "branch-misses", "k", 1e-3, "lower", "noisy"),
    Metric("cache-misses", "cache-misses", "k", 1e-3, "lower", "noisy"),
    Metric("peak_rss_kb", "peak RSS", "MiB", 1 / 1024, "lower", "noisy"),
    Metric("exit_rss_kb", "RSS at exit", "MiB", 1 / 1024, "lower", "noisy"),
] + [Metric(f"probe:{k}", f"probe {k}", "count", 1, None, "noisy") for k in PROBE_KEYS] + [
    Metric("ir_per_op", "callgrind Ir/op", "instr", 1, "lower", "exact"),
] + [Metric(f"fp:{p}", f"fast path {p}", "instr", 1, "lower", "exact") for p in bl.FASTPATHS]
BY_KEY = {m.key: m for m in METRICS}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("A", help="baseline")
    ap.add_argument("B", help="candidate")
    ap.add_argument("--build", default="build")
    ap.add_argument("--workload", default="small",
                    help="comma list of bench/run.py workload names (default small)")
    ap.add_argument("--runs", type=int, default=10, help="runs per side (default 10)")
    ap.add_argument("--threshold", type=float, default=3.0,
                    help="regression threshold in %% for --fail-on metrics (default 3)")
    ap.add_argument("--fail-on", default="ops_per_s,ir_per_op",
                    help="metrics that set the exit status (default ops_per_s,ir_per_op); "
                         "any of: " + ", ".join(m.key for m in METRICS if m.better))
    ap.add_argument("--scale", type=float, default=1.0, help="workload size factor (default 1)")
    ap.add_argument("--iters", type=int, help="SSOT ITERS (default 20000000 x scale)")
    ap.add_argument("--threads", type=int, help="threads of multi-threaded workloads")
    ap.add_argument("--probes", choices=["auto", "on", "off"], default="auto",
                    help="count probes with hz3top (auto: when built, root, and the side is hz3)")
    ap.add_argument("--no-callgrind", action="store_true", help="skip the instruction counts")
    ap.add_argument("--no-fastpath", action="store_true",
                    help="skip the bench_fastpath loops (keep the workload's Ir/op)")
    ap.add_argument("--cg-ops", type=int, default=200_000,
                    help="operations per callgrind run of the workload (default 200000)")
    return ap.parse_args()


def sh(argv, cwd=None, check=True):
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if check and p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-6:]
        raise bl.BenchError(f"failed to run {' '.join(argv)}: exit {p.returncode}:\n    "
                            + "\n    ".join(tail))
    return p


# ---- sides -------------------------------------------------------------------------------------

class Side:
    def __init__(self, label, spec, lib, what, is_hz3):
        self.label, self.spec, self.lib, self.what, self.is_hz3 = label, spec, lib, what, is_hz3
        self.alloc = bl.Allocator(f"{label}={spec}", lib,
                                  bl.PEERS[spec][1] if spec in bl.PEERS else None)


def make_lib(top, build, variant, what):
    print(f"triage: building {what} (make VARIANT={variant} lib)", flush=True)
    argv = ["make", "--no-print-directory", "-j2", f"VARIANT={variant}", "lib"]
    if build and os.path.relpath(build, top) != "build":
        argv.append(f"BUILD={os.path.relpath(build, top)}")
    sh(argv, cwd=top)


def resolve_side(label, spec, build):
    if not spec:
        raise bl.BenchError(f"{label} is empty: say what to compare, e.g. A=noptag B=release")
    if spec in bl.PEERS:
        lib = bl.PEERS[spec][0]
        return Side(label, spec, lib, f"peer {spec} ({lib or 'no preload'})", False)
    if spec in bl.HZ3_VARIANTS:
        make_lib(bl.TOP, build, spec, f"{label} = working tree, variant {spec}")
        lib = bl.hz3_lib(build, spec)
        return Side(label, spec, lib, f"working tree, variant {spec} ({lib})", True)
    if spec.endswith(".so") or os.path.isfile(spec):
        if not os.path.isfile(spec):
            raise bl.BenchError(f"{label}: {spec}: no such file")
        lib = os.path.abspath(spec)
        return Side(label, spec, lib, f"library {lib}", os.path.basename(lib).startswith("libhz3"))
    rev, variant = spec, "release"
    if ":" in spec and spec.rsplit(":", 1)[1] in bl.HZ3_VARIANTS:
        rev, variant = spec.rsplit(":", 1)
    p = sh(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=bl.TOP, check=False)
    if p.returncode != 0:
        raise bl.BenchError(
            f"{label}={spec}: not a peer ({', '.join(bl.PEERS)}), a variant "
            f"({', '.join(bl.HZ3_VARIANTS)}), a library path or a git revision")
    sha = p.stdout.strip()
    wt = os.path.join(build, "triage", f"wt-{sha[:12]}")
    if not os.path.isdir(wt):
        # A `make clean` removes the folder but not git's record of it; prune, or the add fails.
        sh(["git", "worktree", "prune"], cwd=bl.TOP)
        print(f"triage: {label}: git worktree add --detach {wt} {sha[:12]}", flush=True)
        os.makedirs(os.path.dirname(wt), exist_ok=True)
        sh(["git", "worktree", "add", "--detach", "--quiet", wt, sha], cwd=bl.TOP)
    make_lib(wt, None, variant, f"{label} = {rev} ({sha[:12]}), variant {variant}")
    lib = bl.hz3_lib(os.path.join(wt, "build"), variant)
    if not os.path.isfile(lib):
        raise bl.BenchError(f"{label}: building {rev} did not produce {lib}")
    return Side(label, spec, lib, f"{rev} = {sha[:12]}, variant {variant} ({lib})", True)


# ---- measurement -------------------------------------------------------------------------------

def detect_pmu():
    """(has_perf, has_pmu, why). No PMU is the normal case on these VMs."""
    if not shutil.which("perf"):
        return False, False, "perf not found (Debian package linux-perf): wall time and callgrind only"
    p = subprocess.run(["perf", "stat", "-x,", "-e", "cycles,instructions", "true"],
                       capture_output=True, text=True)
    if "<not supported>" in p.stderr or p.returncode != 0:
        return True, False, ("no hardware PMU (perf: cycles/instructions <not supported>): using "
                             "software counters, wall time and callgrind instructions per op")
    return True, True, "hardware PMU present: cycles, instructions, branch and cache misses"


def parse_perf_csv(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) < 3 or line.startswith("#"):
                    continue
                value, event = parts[0], parts[2]
                event = event.split(":")[0]
                try:
                    out[event] = float(value)
                except ValueError:
                    pass  # <not supported>, <not counted>
    except OSError:
        pass
    return out


def last_json(text):
    import json
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


class ProbeWatcher:
    """hz3top -p PID --json on the workload; ready once it reports its probes attached."""

    def __init__(self, hz3top, pid):
        self.out = tempfile.TemporaryFile("w+")
        self.attached = threading.Event()
        self.err = []
        self.p = subprocess.Popen([hz3top, "-p", str(pid), "--json", "--no-perf", "-v"],
                                  stdout=self.out, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_err(self):
        for line in self.p.stderr:
            self.err.append(line.rstrip())
            if "attached" in line:
                self.attached.set()
        self.attached.set()  # exited: nothing to wait for

    def wait_attached(self, timeout=15):
        self.attached.wait(timeout)

    def finish(self, timeout=20):
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.terminate()
            self.p.wait(5)
            self.err.append("hz3top did not exit after the workload; terminated")
        self.out.seek(0)
        rep = last_json(self.out.read())
        self.out.close()
        if not rep:
            return None, "hz3top printed no report: " + " | ".join(self.err[-3:])
        return {f"probe:{k}": float(rep[k]) for k in PROBE_KEYS
                if isinstance(rep.get(k), (int, float))}, None


def timed_run(side, w, build, perf_events, hz3top, notes):
    """One run under perf stat (and hz3top): the workload's RESULT plus perf counters."""
    with tempfile.TemporaryDirectory(prefix="hz3-triage-") as tmp:
        ready, go = os.path.join(tmp, "ready"), os.path.join(tmp, "go")
        perf_out = os.path.join(tmp, "perf.csv")
        argv = w.argv(build) + ["--ready-file", ready, "--go-file", go]
        # `env` sets the preload for the workload only; perf itself runs on the default allocator.
        preload = ["env", f"LD_PRELOAD={os.path.realpath(side.lib)}"] if side.lib else []
        if perf_events:
            argv = ["perf", "stat", "-x,", "-o", perf_out, "-e", ",".join(perf_events),
                    "--"] + preload + argv
        else:
            argv = preload + argv
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        watcher = None
        try:
            deadline = time.time() + 30
            while not os.path.exists(ready):
                if p.poll() is not None or time.time() > deadline:
                    break
                time.sleep(0.002)
            if hz3top and os.path.exists(ready):
                with open(ready) as f:
                    pid = int(f.read().strip())
                watcher = ProbeWatcher(hz3top, pid)
                watcher.wait_attached()
        finally:
            open(go, "w").close()
        try:
            stdout, stderr = p.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise bl.BenchError(f"{w.name} under {side.label}: timed out")
        res = bl.parse_result(stdout)
        if p.returncode != 0 or res is None:
            tail = (stderr or stdout).strip().splitlines()[-3:]
            raise bl.BenchError(f"{w.name} under {side.label}: exit {p.returncode}: "
                                + " | ".join(tail))
        if not side.alloc.served_by_me(str(res.get("allocator", ""))):
            raise bl.BenchError(f"{w.name} under {side.label}: LD_PRELOAD did not take (malloc "
                                f"served by {res.get('allocator')})")
        sample = {k: float(res[k]) for k in ("ops_per_s", "seconds", "cpu_ns_per_op",
                                             "peak_rss_kb", "exit_rss_kb") if k in res}
        if perf_events:
            sample.update(parse_perf_csv(perf_out))
        if watcher:
            counts, err = watcher.finish()
            if counts:
                sample.update(counts)
            elif err not in notes:
                notes.append(err)
        return sample


def exact_metrics(side, w, build, cg_ops, notes):
    out = {}
    if w.deterministic:
        out["ir_per_op"] = bl.workload_ir_per_op(build, side.alloc, w, cg_ops)
    else:
        msg = f"{w.name}: multi-threaded, so no callgrind Ir/op (not deterministic)"
        if msg not in notes:
            notes.append(msg)
    return out


def fastpath_metrics(side, build):
    return {f"fp:{p}": bl.fastpath_ir(build, side.alloc, p) for p in bl.FASTPATHS}


# ---- comparison --------------------------------------------------------------------------------

def compare(m, a, b):
    """(median a, median b, delta %, ci, p, verdict) for one metric."""
    ma, mb = stats.median(a), stats.median(b)
    d = stats.delta_pct(ma, mb)
    if m.kind == "exact":
        ci, p = None, None
        moved = abs(d) >= 0.1
    else:
        ci = stats.bootstrap_delta_ci(a, b)
        p, _ = stats.mann_whitney(a, b)
        moved = p < ALPHA
    if ma == mb or (m.kind == "exact" and not moved):
        verdict = "same"
    elif not moved:
        verdict = "noise"
    elif m.better is None:
        verdict = "moved"
    else:
        improved = (mb > ma) == (m.better == "higher")
        verdict = "better" if improved else "worse"
    return ma, mb, d, ci, p, verdict


def fmt_val(m, v):
    x = v * m.scale
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}" if x else "0"


def main():
    a = parse_args()
    build = os.path.abspath(a.build)
    fail_on = [k.strip() for k in a.fail_on.split(",") if k.strip()]
    for k in fail_on:
        if k not in BY_KEY or not BY_KEY[k].better:
            bl.die(f"--fail-on: unknown or directionless metric '{k}'")
    if a.runs < 2:
        bl.die("--runs must be at least 2 (a noise test needs samples)")
    try:
        ws = bl.select_workloads(bl.workloads(a.threads or bl.default_threads(), a.scale, a.iters),
                                 a.workload)
        for w in ws:
            if not os.access(os.path.join(build, "bin", w.binary), os.X_OK):
                raise bl.BenchError(f"{build}/bin/{w.binary} not built (make bench-bins)")
        sides = [resolve_side("A", a.A, build), resolve_side("B", a.B, build)]
    except bl.BenchError as e:
        bl.die(str(e))
    for s in sides:
        if s.alloc.check_present():
            bl.die(s.alloc.check_present())

    has_perf, has_pmu, pmu_note = detect_pmu()
    perf_events = (SW_EVENTS + (HW_EVENTS if has_pmu else [])) if has_perf else []
    hz3top = os.path.join(build, "bin", "hz3top")
    probes_ok = os.access(hz3top, os.X_OK) and os.geteuid() == 0
    if a.probes == "on" and not probes_ok:
        bl.die("--probes on: needs build/bin/hz3top (make) and root")
    if a.probes == "off":
        probe_note = "probe counts: off (--probes off)"
    elif not os.access(hz3top, os.X_OK):
        probe_note = f"probe counts: skipped, {hz3top} not built (make)"
    elif os.geteuid() != 0:
        probe_note = "probe counts: skipped, hz3top needs root (or CAP_BPF+CAP_PERFMON)"
    else:
        probe_note = "probe counts: hz3top -p PID --json on every run of an hz3 side"

    print(f"triage: A = {sides[0].what}")
    print(f"triage: B = {sides[1].what}")
    tracers = bl.active_tracers()
    if tracers:
        print(f"triage: warning: tracers running ({', '.join(tracers)}): one attached to a "
              "library under test turns its probe sites into kernel traps (and SIGTRAPs callgrind)")
    print(f"triage: {pmu_note}")
    print(f"triage: {probe_note}")
    print(f"triage: noise test: Mann-Whitney U, two-sided, alpha {ALPHA} (exact without ties); "
          f"95 % CI: bootstrap of the median delta; callgrind counts are exact")
    print(f"triage: {a.runs} runs per side per workload, interleaved A B / B A", flush=True)

    notes = []
    samples = {w.name: {s.label: [] for s in sides} for w in ws}
    exact = {w.name: {} for w in ws}
    t0 = time.time()
    try:
        for i in range(a.runs):
            for w in ws:
                for s in (sides if i % 2 == 0 else sides[::-1]):
                    watch = hz3top if (a.probes != "off" and probes_ok and s.is_hz3) else None
                    smp = timed_run(s, w, build, perf_events, watch, notes)
                    samples[w.name][s.label].append(smp)
            print(f"triage: run {i + 1}/{a.runs} done ({time.time() - t0:.0f}s)", flush=True)
        if not a.no_callgrind:
            print("triage: callgrind instruction counts (deterministic)…", flush=True)
            fps = {s.label: ({} if a.no_fastpath else fastpath_metrics(s, build))
                   for s in sides}
            for w in ws:
                for s in sides:
                    e = exact_metrics(s, w, build, a.cg_ops, notes)
                    e.update(fps[s.label])
                    exact[w.name][s.label] = e
    except bl.BenchError as e:
        bl.die(str(e))

    regressions = []
    for w in ws:
        print()
        print(f"== {w.name}: {w.command_line()}")
        print(f"{'metric':28} {'unit':8} {'median A':>12} {'median B':>12} {'delta':>8} "
              f"{'95% CI':>16} {'p':>8}  verdict")
        for m in METRICS:
            if m.kind == "exact":
                va = [exact[w.name].get("A", {}).get(m.key)]
                vb = [exact[w.name].get("B", {}).get(m.key)]
                if va[0] is None or vb[0] is None:
                    continue
            else:
                va = [x[m.key] for x in samples[w.name]["A"] if m.key in x]
                vb = [x[m.key] for x in samples[w.name]["B"] if m.key in x]
                if len(va) < 2 or len(vb) < 2:
                    continue
            ma, mb, d, ci, p, verdict = compare(m, va, vb)
            if ci is None:
                ci_s = "exact"
            elif any(math.isnan(c) or math.isinf(c) for c in ci):
                ci_s = "-"  # a zero median: no relative interval
            else:
                ci_s = f"[{ci[0]:+.1f},{ci[1]:+.1f}]"
            p_s = f"{p:.2g}" if p is not None else "-"
            gated = m.key in fail_on
            flag = ""
            if gated and verdict == "worse" and abs(d) > a.threshold:
                flag = f"  REGRESSION (> {a.threshold:g} %)"
                regressions.append(f"{w.name}: {m.key} {d:+.1f}% (A {fmt_val(m, ma)}, "
                                   f"B {fmt_val(m, mb)} {m.unit})")
            print(f"{m.label:28} {m.unit:8} {fmt_val(m, ma):>12} {fmt_val(m, mb):>12} "
                  f"{d:+7.1f}% {ci_s:>16} {p_s:>8}  {verdict}{flag}")
    print()
    for n in notes:
        print(f"triage: note: {n}")
    gates = ", ".join(fail_on)
    if regressions:
        print(f"triage: REGRESSION in B beyond {a.threshold:g} % ({gates}):")
        for r in regressions:
            print(f"  {r}")
        sys.exit(1)
    print(f"triage: no regression of B beyond {a.threshold:g} % in {gates}")
    sys.exit(0)


if __name__ == "__main__":
    main()
