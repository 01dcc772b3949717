#!/usr/bin/env python3
"""bench/triage.py — did a change make hz3 better or worse? Builds A and B, runs a workload under
each as RUNS A/B pairs (A B, B A, A B …) under `perf stat`, reruns or discards a pair that a load
burst disturbed, measures deterministic instruction counts with callgrind and, in separate untimed
runs, the probe counts with hz3top; prints per metric the medians, the median ratio B/A over the
pairs with its interval, and a verdict.

  bench/triage.py A B [--workload small,medium] [--runs 10] [--threshold 2] [--gate …]
  make triage A=noptag B=release WORKLOAD=small

A and B are each one of:
  release | check | noprobes | noptag     a variant of the working tree (built with make)
  slowfree                               the release sources with a fixed delay on every free
                                         (triage's own known regression, make slowfree-lib)
  REV[:VARIANT]                          a git revision, built in a worktree under
                                         BUILD/triage/wt-<sha> (git worktree add --detach)
  glibc | mimalloc | jemalloc | tcmalloc a peer allocator (Debian package)
  PATH.so                                any malloc library
The workload programs always come from the working tree, so only the allocator differs.

Verdict: decided by the gates, by default CPU time per op, callgrind Ir/op and page faults per op
(what a load burst on a shared machine cannot move; wall-clock ops/s is shown and gates only with
--gate-wall). A timed gate compares run i of A with run i of B: the median of the per-pair
ratios, a distribution-free order-statistic interval of it (>= 95 %, needs 6 pairs) and the
Wilcoxon signed-rank p. A gate is worse or better only when its whole interval lies beyond
1 +- threshold; an exact (callgrind) count when its ratio does. Without a hardware PMU (these VMs)
perf's cycles/instructions are unsupported; triage says so.

Exit status: 0 no change or IMPROVEMENT; 1 REGRESSION (a gate worse); 2 usage, build or run
error; 3 INCONCLUSIVE (a timed gate kept fewer than 6 undisturbed pairs). `make triage` exits 0, 1
or 2 (3 becomes 2: make has no other status).
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


class Metric:
    def __init__(self, key, label, unit, scale, better, kind):
        # better: "higher", "lower" or None (informational: probe counts and the disturbance
        # indicators have no good direction)
        # kind: "timed" (one value per run, compared pair by pair), "exact" (callgrind, one
        # deterministic value per side) or "probe" (separate runs with hz3top attached)
        self.key, self.label, self.unit, self.scale = key, label, unit, scale
        self.better, self.kind = better, kind


METRICS = [
    Metric("cpu_ns_per_op", "CPU time per op", "ns", 1, "lower", "timed"),
    Metric("page_faults_per_op", "page faults per op", "1/kop", 1e3, "lower", "timed"),
    Metric("ops_per_s", "ops/s (wall clock)", "M ops/s", 1e-6, "higher", "timed"),
    Metric("seconds", "loop time (wall)", "s", 1, "lower", "timed"),
    Metric("task-clock", "task-clock", "ms", 1, "lower", "timed"),
    Metric("page-faults", "page-faults", "count", 1, "lower", "timed"),
    Metric("context-switches", "context-switches", "count", 1, None, "timed"),
    Metric("cpu-migrations", "cpu-migrations", "count", 1, None, "timed"),
    Metric("wall_cpu", "wall/CPU of the loop", "ratio", 1, None, "timed"),
    Metric("other_cpus", "other processes' CPU", "CPUs", 1, None, "timed"),
    Metric("cycles", "cycles", "M", 1e-6, "lower", "timed"),
    Metric("instructions", "instructions", "M", 1e-6, "lower", "timed"),
    Metric("branch-misses", "branch-misses", "k", 1e-3, "lower", "timed"),
    Metric("cache-misses", "cache-misses", "k", 1e-3, "lower", "timed"),
    Metric("peak_rss_kb", "peak RSS", "MiB", 1 / 1024, "lower", "timed"),
    Metric("exit_rss_kb", "RSS at exit", "MiB", 1 / 1024, "lower", "timed"),
    Metric("ir_per_op", "callgrind Ir/op", "instr", 1, "lower", "exact"),
] + [Metric(f"fp:{p}", f"fast path {p}", "instr", 1, "lower", "exact") for p in bl.FASTPATHS] + [
    Metric(f"probe:{k}", f"probe {k}", "count", 1, None, "probe") for k in PROBE_KEYS]
BY_KEY = {m.key: m for m in METRICS}
# What a load burst cannot move: CPU time (not wall clock), exact instruction counts, page faults.
DEFAULT_GATES = "cpu_ns_per_op,ir_per_op,page_faults_per_op"
DESCHED_RATIO = 1.25  # a run's wall/cpu this far above its partner's: descheduled
MIN_PAIRS = 6  # fewest pairs whose median ratio has a >= 95 % distribution-free interval


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("A", help="baseline")
    ap.add_argument("B", help="candidate")
    ap.add_argument("--build", default="build")
    ap.add_argument("--workload", default="small",
                    help="comma list of bench/run.py workload names (default small)")
    ap.add_argument("--runs", type=int, default=10,
                    help=f"A/B pairs per workload (default 10; at least {MIN_PAIRS} kept pairs "
                         "are needed for a verdict on a timed metric)")
    ap.add_argument("--threshold", type=float, default=2.0,
                    help="minimum effect in %% (default 2): a gate moves only when the whole "
                         "interval of its ratio lies beyond 1 +- threshold")
    ap.add_argument("--gate", "--fail-on", dest="gate", default=DEFAULT_GATES,
                    help=f"metrics that decide the verdict (default {DEFAULT_GATES}); any of: "
                         + ", ".join(m.key for m in METRICS if m.better))
    ap.add_argument("--gate-wall", action="store_true",
                    help="also gate on wall-clock ops/s (off by default: a load burst moves it)")
    ap.add_argument("--retries", type=int, default=2,
                    help="reruns of a disturbed pair before it is discarded (default 2)")
    ap.add_argument("--max-wall-cpu", type=float, default=1.2,
                    help="a single-threaded run whose loop took more than this many times its "
                         "CPU time, and 1.25x its partner's, was descheduled (default 1.2)")
    ap.add_argument("--scale", type=float, default=1.0, help="workload size factor (default 1)")
    ap.add_argument("--iters", type=int, help="SSOT ITERS (default 20000000 x scale)")
    ap.add_argument("--threads", type=int, help="threads of multi-threaded workloads")
    ap.add_argument("--probes", choices=["auto", "on", "off"], default="auto",
                    help="count probes with hz3top in separate, untimed runs (auto: when built, "
                         "root, and the side has probes)")
    ap.add_argument("--probe-runs", type=int, default=1,
                    help="untimed runs per side with hz3top attached (default 1)")
    ap.add_argument("--no-callgrind", action="store_true", help="skip the instruction counts")
    ap.add_argument("--no-fastpath", action="store_true",
                    help="skip the bench_fastpath loops (keep the workload's Ir/op)")
    ap.add_argument("--cg-ops", type=int, default=200_000,
                    help="operations per callgrind run of the workload (default 200000)")
    return ap.parse_args()


def clean_env():
    """The environment without make's: `make triage` runs in question mode (bench/bench.mk),
    and a make started from here must not inherit -q or the caller's command-line variables."""
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(k, None)
    return env


def sh(argv, cwd=None, check=True):
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=clean_env())
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


# Libraries that exist only for triage's own tests: name -> (make target, library under BUILD).
TEST_LIBS = {"slowfree": ("slowfree-lib", os.path.join("slowfree", "lib", "libhz3.so"))}


def make_lib(top, build, variant, what):
    target = TEST_LIBS[variant][0] if variant in TEST_LIBS else "lib"
    print(f"triage: building {what} (make {'' if variant in TEST_LIBS else f'VARIANT={variant} '}"
          f"{target})", flush=True)
    argv = ["make", "--no-print-directory", "-j2"]
    argv += [target] if variant in TEST_LIBS else [f"VARIANT={variant}", "lib"]
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
    if spec in TEST_LIBS:
        make_lib(bl.TOP, build, spec, f"{label} = working tree, test library {spec}")
        lib = os.path.join(build, TEST_LIBS[spec][1])
        return Side(label, spec, lib, f"working tree, test library {spec} ({lib})", True)
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
            f"({', '.join(bl.HZ3_VARIANTS)}), a test library ({', '.join(TEST_LIBS)}), a library "
            "path or a git revision")
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


def cpu_jiffies():
    """(busy, steal) jiffies of the whole machine since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal guest guest_nice; guest is inside user.
    busy = sum(v[:8]) - v[3] - v[4] - v[7]
    return busy, v[7] if len(v) > 7 else 0


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def run_once(side, w, build, perf_events, hz3top=None):
    """One run of the workload under perf stat: its RESULT, perf's counters and what the rest of
    the machine did meanwhile. With hz3top, an untimed run with the tracer attached, for the
    probe counts only (an attached probe costs ~0.6 us per hit, so timed runs never have one)."""
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
        env = clean_env()
        env.pop("LD_PRELOAD", None)
        j0, t0 = cpu_jiffies(), time.time()
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
        j1, t1 = cpu_jiffies(), time.time()
        res = bl.parse_result(stdout)
        if p.returncode != 0 or res is None:
            tail = (stderr or stdout).strip().splitlines()[-3:]
            raise bl.BenchError(f"{w.name} under {side.label}: exit {p.returncode}: "
                                + " | ".join(tail))
        if not side.alloc.served_by_me(str(res.get("allocator", ""))):
            raise bl.BenchError(f"{w.name} under {side.label}: LD_PRELOAD did not take (malloc "
                                f"served by {res.get('allocator')})")
        if watcher:
            counts, err = watcher.finish()
            return counts or {}, err
        sample = {k: float(res[k]) for k in ("ops_per_s", "seconds", "cpu_ns_per_op",
                                             "peak_rss_kb", "exit_rss_kb") if k in res}
        if perf_events:
            sample.update(parse_perf_csv(perf_out))
        ops = float(res.get("ops", 0) or 0)
        if ops and "page-faults" in sample:
            sample["page_faults_per_op"] = sample["page-faults"] / ops
        cpu_s = sample.get("cpu_ns_per_op", 0) * ops / 1e9
        if w.deterministic and cpu_s > 0 and "seconds" in sample:
            sample["wall_cpu"] = sample["seconds"] / cpu_s  # single thread: 1.0 if never off-CPU
        if j0 and j1 and t1 > t0:
            own = sample.get("task-clock", cpu_s * 1e3) / 1e3
            sample["other_cpus"] = max(0.0, ((j1[0] - j0[0]) / CLK_TCK - own) / (t1 - t0))
            sample["steal_cpus"] = (j1[1] - j0[1]) / CLK_TCK / (t1 - t0)
        return sample, None


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


# ---- pairs and disturbance ------------------------------------------------------------------

def has_probes(lib):
    """True when the library carries USDT notes (a noprobes build, glibc and the peers do not)."""
    if not lib:
        return False
    try:
        with open(os.path.realpath(lib), "rb") as f:
            return b"stapsdt" in f.read()
    except OSError:
        return False


def disturbance(pair, peers, max_wall_cpu):
    """Why this pair's two runs were not measured under comparable conditions, or None.
    pair: {"A": sample, "B": sample}; peers: every run of the workload (for 'way above the
    others'). A machine that is busy all the time slows both runs of a pair alike, and the
    pair's ratio cancels that; what biases a ratio is a disturbance that hit one run of the pair
    and not the other, so each test compares a run with its partner or with its peers."""
    why = []
    wcs = [x["wall_cpu"] for x in peers if "wall_cpu" in x]
    med_wc = stats.median(wcs) if wcs else None
    for lab, other in (("A", "B"), ("B", "A")):
        wc, wo = pair[lab].get("wall_cpu"), pair[other].get("wall_cpu")
        if wc is None or wc <= max_wall_cpu:
            continue
        # Both runs descheduled alike (a machine busy throughout) is not a disturbance of the
        # pair: the ratio cancels it. One run far above its partner is.
        if wo is None:
            if wc > DESCHED_RATIO * med_wc:
                why.append(f"{lab} wall/cpu {wc:.2f} vs median {med_wc:.2f} (descheduled)")
        elif wc > DESCHED_RATIO * wo:
            why.append(f"{lab} wall/cpu {wc:.2f} vs {other} {wo:.2f} (descheduled)")
    cs_all = [x["context-switches"] for x in peers if "context-switches" in x]
    if len(cs_all) >= 4:
        med = stats.median(cs_all)
        for lab in ("A", "B"):
            cs = pair[lab].get("context-switches")
            if cs is not None and cs > max(3 * med, med + 20):
                why.append(f"{lab} context switches {cs:.0f} vs median {med:.0f}")
    oa, ob = pair["A"].get("other_cpus"), pair["B"].get("other_cpus")
    if oa is not None and ob is not None and abs(oa - ob) > 0.5:
        why.append(f"machine load changed within the pair (other processes {oa:.1f} vs "
                   f"{ob:.1f} CPUs)")
    for lab in ("A", "B"):
        st = pair[lab].get("steal_cpus", 0)
        if st > 0.1:
            why.append(f"{lab} hypervisor steal {st:.2f} CPUs")
    return "; ".join(why) or None


# ---- comparison --------------------------------------------------------------------------------

def judge(m, ratio, ci, t, n=None):
    """Verdict of one metric from its ratio B/A and interval: worse / better (the whole interval
    beyond 1 +- t), 'small change' (excludes 1, not by t), 'no change', 'inconclusive'."""
    if ci is None:
        return "inconclusive"
    lo, hi = ci
    if lo > 1 + t:
        up = True
    elif hi < 1 - t:
        up = False
    elif lo > 1 or hi < 1:
        return "small change"
    else:
        return "no change"
    if m.better is None:
        return "moved"
    return "worse" if up == (m.better == "lower") else "better"


def compare(m, a_vals, b_vals, t):
    """One metric: dict(med_a, med_b, ratio, ci, cov, p, n, verdict); medians None for a side
    that does not have the metric at all."""
    r = {"med_a": stats.median(a_vals) if a_vals else None,
         "med_b": stats.median(b_vals) if b_vals else None,
         "ratio": None, "ci": None, "cov": None, "p": None, "n": 0, "verdict": "-"}
    if not a_vals or not b_vals:
        return r
    if m.kind == "timed":
        pr = stats.paired(a_vals, b_vals)
        r.update(ratio=pr["ratio"], ci=pr["ci"], cov=pr["coverage"], p=pr["p"], n=pr["n"])
        r["verdict"] = judge(m, r["ratio"], r["ci"], t)
    else:
        ratio = stats.pair_ratio(r["med_a"], r["med_b"])
        r.update(ratio=ratio, ci=(ratio, ratio), n=1)
        if m.kind == "exact":
            v = judge(m, ratio, (ratio, ratio), t)
            r["verdict"] = "same" if v == "small change" and abs(ratio - 1) < 1e-3 else v
            if r["verdict"] == "no change":
                r["verdict"] = "same"
        else:
            r["verdict"] = "same" if ratio == 1 else "moved"
    return r


def fmt_val(m, v):
    if v is None:
        return "-"
    x = v * m.scale
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}" if x else "0"


def fmt_ratio(x):
    if x is None:
        return "-"
    if math.isinf(x):
        return "inf"
    return f"{x:.3f}"


def main():
    a = parse_args()
    build = os.path.abspath(a.build)
    gates = [k.strip() for k in a.gate.split(",") if k.strip()]
    if a.gate_wall and "ops_per_s" not in gates:
        gates.append("ops_per_s")
    for k in gates:
        if k not in BY_KEY or not BY_KEY[k].better:
            bl.die(f"--gate: unknown or directionless metric '{k}'")
    if a.runs < 2:
        bl.die("--runs must be at least 2 (a paired test needs pairs)")
    if a.threshold < 0 or a.retries < 0:
        bl.die("--threshold and --retries must not be negative")
    t = a.threshold / 100
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
    probe_sides = {s.label: has_probes(s.lib) for s in sides}
    if a.probes == "off" or a.probe_runs < 1:
        probe_note = "probe counts: off"
    elif not os.access(hz3top, os.X_OK):
        probe_note = f"probe counts: skipped, {hz3top} not built (make)"
    elif os.geteuid() != 0:
        probe_note = "probe counts: skipped, hz3top needs root (or CAP_BPF+CAP_PERFMON)"
    else:
        probe_note = (f"probe counts: hz3top -p PID --json in {a.probe_runs} separate untimed "
                      "run(s) per side; no tracer is attached during the timed runs")
        for s in sides:
            if not probe_sides[s.label]:
                probe_note += f"; {s.label} has no probes ('-')"
    do_probes = a.probes != "off" and probes_ok and a.probe_runs >= 1

    print(f"triage: A = {sides[0].what}")
    print(f"triage: B = {sides[1].what}")
    tracers = bl.active_tracers()
    if tracers:
        print(f"triage: warning: tracers running ({', '.join(tracers)}): one attached to a "
              "library under test turns its probe sites into kernel traps (and SIGTRAPs callgrind)")
    print(f"triage: {pmu_note}")
    print(f"triage: {probe_note}")
    print(f"triage: {a.runs} A/B pairs per workload (A B, B A, …); each metric compared pair by "
          "pair: median of B/A, distribution-free >= 95 % interval, Wilcoxon signed-rank p")
    print(f"triage: verdict gates: {', '.join(gates)}; a gate moves only when its whole interval "
          f"lies beyond 1 ± {a.threshold:g} %" + ("" if "ops_per_s" in gates else
                                                  "; wall-clock ops/s is shown, not gated"))
    if a.runs < MIN_PAIRS and any(BY_KEY[g].kind == "timed" for g in gates):
        print(f"triage: note: fewer than {MIN_PAIRS} pairs: the timed gates cannot reach a 95 % "
              "interval, only exact (callgrind) gates can decide", flush=True)
    sys.stdout.flush()

    notes = []
    pairs = {w.name: [] for w in ws}
    fate = {w.name: {"reruns": 0, "discarded": []} for w in ws}
    probes = {w.name: {s.label: [] for s in sides} for w in ws}
    exact = {w.name: {} for w in ws}

    def run_pair(i, w):
        out = {}
        for s in (sides if i % 2 == 0 else sides[::-1]):
            out[s.label] = run_once(s, w, build, perf_events)[0]
        return out

    t0 = time.time()
    try:
        for i in range(a.runs):
            for w in ws:
                pairs[w.name].append(run_pair(i, w))
            print(f"triage: pair {i + 1}/{a.runs} done ({time.time() - t0:.0f}s)", flush=True)
        for w in ws:
            ps = pairs[w.name]
            tries = [0] * len(ps)
            while True:
                peers = [p[lab] for p in ps for lab in ("A", "B")]
                bad = [(i, why) for i, p in enumerate(ps)
                       if (why := disturbance(p, peers, a.max_wall_cpu))]
                todo = [(i, why) for i, why in bad if tries[i] < a.retries]
                if not todo:
                    break
                for i, why in todo:
                    tries[i] += 1
                    fate[w.name]["reruns"] += 1
                    print(f"triage: {w.name} pair {i + 1} disturbed: {why}; rerun "
                          f"{tries[i]}/{a.retries}", flush=True)
                    ps[i] = run_pair(i, w)
            for i, why in bad:
                print(f"triage: {w.name} pair {i + 1} discarded: {why} (after {tries[i]} "
                      "reruns)", flush=True)
                fate[w.name]["discarded"].append(i)
            pairs[w.name] = [p for i, p in enumerate(ps) if i not in fate[w.name]["discarded"]]
        if do_probes:
            print("triage: probe counts (separate runs, hz3top attached)…", flush=True)
            for w in ws:
                for _ in range(a.probe_runs):
                    for s in sides:
                        if not probe_sides[s.label]:
                            continue
                        counts, err = run_once(s, w, build, perf_events, hz3top)
                        if counts:
                            probes[w.name][s.label].append(counts)
                        elif err and err not in notes:
                            notes.append(err)
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

    worse, better, undecided = [], [], []
    for w in ws:
        ps = pairs[w.name]
        f = fate[w.name]
        print()
        print(f"== {w.name}: {w.command_line()}")
        print(f"pairs: {len(ps)} kept of {a.runs}, {f['reruns']} rerun(s), "
              f"{len(f['discarded'])} discarded"
              + (f" (pairs {', '.join(str(i + 1) for i in f['discarded'])})"
                 if f["discarded"] else ""))
        print(f"  {'metric':26} {'unit':8} {'median A':>10} {'median B':>10} {'B/A':>7} "
              f"{'95% CI of B/A':>17} {'p':>7}  verdict")
        seen = set()
        for m in METRICS:
            if m.kind == "timed":
                both = [p for p in ps if m.key in p["A"] and m.key in p["B"]]
                va = [p["A"][m.key] for p in both]
                vb = [p["B"][m.key] for p in both]
                if not both:
                    has_a = any(m.key in p["A"] for p in ps)
                    has_b = any(m.key in p["B"] for p in ps)
                    if not (has_a or has_b):
                        continue
                    va = [p["A"][m.key] for p in ps if m.key in p["A"]]
                    vb = [p["B"][m.key] for p in ps if m.key in p["B"]]
                    va, vb = (va if has_a else []), (vb if has_b else [])
            elif m.kind == "exact":
                va = [exact[w.name].get("A", {}).get(m.key)]
                vb = [exact[w.name].get("B", {}).get(m.key)]
                va, vb = [x for x in va if x is not None], [x for x in vb if x is not None]
                if not va and not vb:
                    continue
            else:
                va = [x[m.key] for x in probes[w.name]["A"] if m.key in x]
                vb = [x[m.key] for x in probes[w.name]["B"] if m.key in x]
                if not va and not vb:
                    continue
            r = compare(m, va, vb, t)
            gated = m.key in gates
            seen.add(m.key)
            if r["ci"] is None:
                ci_s = "-" if r["ratio"] is None else f"(< {MIN_PAIRS} pairs)"
            elif m.kind != "timed":
                ci_s = "exact" if m.kind == "exact" else "-"
            else:
                ci_s = f"[{fmt_ratio(r['ci'][0])}, {fmt_ratio(r['ci'][1])}]"
            p_s = f"{r['p']:.2g}" if r["p"] is not None else "-"
            verdict = r["verdict"]
            if m.better and not gated and verdict in ("worse", "better"):
                verdict += " (not a gate)"
            print(f"{'*' if gated else ' '} {m.label:26} {m.unit:8} {fmt_val(m, r['med_a']):>10} "
                  f"{fmt_val(m, r['med_b']):>10} {fmt_ratio(r['ratio']):>7} {ci_s:>17} "
                  f"{p_s:>7}  {verdict}")
            if not gated:
                continue
            ci = r["ci"]
            desc = (f"{w.name}: {m.label} B/A {fmt_ratio(r['ratio'])}"
                    + (f" [{fmt_ratio(ci[0])}, {fmt_ratio(ci[1])}]" if ci and m.kind == "timed"
                       else " (exact)" if m.kind == "exact" else ""))
            if r["verdict"] == "worse":
                worse.append(desc)
            elif r["verdict"] == "better":
                better.append(desc)
            elif r["verdict"] == "inconclusive" or (r["verdict"] == "-" and m.kind == "timed"):
                undecided.append(f"{w.name}: {m.label}: "
                                 + (f"{r['n']} usable pairs, {MIN_PAIRS} needed"
                                    if r["verdict"] == "inconclusive" else "not measured"))
        for g in gates:
            if g in seen:
                continue
            m = BY_KEY[g]
            if m.kind == "timed" and not ps:
                undecided.append(f"{w.name}: {m.label}: no usable pairs, {MIN_PAIRS} needed")
            else:
                msg = f"{w.name}: gate {g} not measured here"
                if msg not in notes:
                    notes.append(msg)
    print()
    print("  (* = a gate of the verdict; intervals of exact counts are the counts themselves)")
    for n in notes:
        print(f"triage: note: {n}")
    thr = f"{a.threshold:g} %"
    if worse:
        print(f"triage: REGRESSION: B is worse than A beyond {thr}:")
        for d in worse:
            print(f"  {d}")
        for d in better:
            print(f"  (better: {d})")
        sys.exit(1)
    if undecided:
        print("triage: INCONCLUSIVE: too many disturbed pairs to decide "
              "(rerun on a quieter machine or with more RUNS):")
        for d in undecided:
            print(f"  {d}")
        sys.exit(3)
    if better:
        print(f"triage: IMPROVEMENT: B is better than A beyond {thr}:")
        for d in better:
            print(f"  {d}")
        sys.exit(0)
    print(f"triage: no change beyond {thr} in {', '.join(gates)}")
    sys.exit(0)


if __name__ == "__main__":
    main()
