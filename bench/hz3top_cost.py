#!/usr/bin/env python3
"""Measures what hz3top costs on this machine (docs/hz3top.md, "Costs"). Not a test: it
asserts nothing and is not run by `make test`; run it as root after `make all variants`:

    python3 bench/hz3top_cost.py [--pairs 7] [--iters 20000000]

1. Latency, against hz3top_workload on real libhz3: from starting `hz3top -p PID` to its
   probes being attached (semaphores raised) and to its first report (interval 0.1 s and 1 s);
   from SIGINT to exit; from the target's exit to the final report and to hz3top's exit.
2. Attached overhead on allocation-heavy workloads (bench_ssot mixed sizes; bench_xfree, whose
   cross-thread frees churn spans): ops/s without hz3top and with `hz3top -p PID --json`
   attached (with and without perf events), runs interleaved, medians of per-round ratios, by
   wall-clock ops/s and by ops per second of the target's own CPU time.
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("HZ3_BUILD", os.path.join(TOP, "build"))
HZ3TOP = os.path.join(BUILD, "bin", "hz3top")
LIB = os.environ.get("HZ3_LIB", os.path.join(BUILD, "lib", "libhz3.so"))
WORKLOAD = os.path.join(BUILD, "tests", "hz3top_workload")
SSOT = os.path.join(BUILD, "bin", "bench_ssot")
XFREE = os.path.join(BUILD, "bin", "bench_xfree")


def semaphores_raised(pid):
    out = subprocess.run([HZ3TOP, "--list-probes", "-p", str(pid)], capture_output=True,
                         text=True).stdout
    vals = re.findall(r"value=(\S+)", out)
    return len(vals) == 5 and all(v.isdigit() and int(v) > 0 for v in vals)


def wait_for(cond, timeout=20.0, step=0.002):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return time.monotonic()
        time.sleep(step)
    raise TimeoutError("condition not met")


def start_workload():
    w = subprocess.Popen([WORKLOAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         env=dict(os.environ, LD_PRELOAD=LIB), text=True, bufsize=1)
    assert w.stdout.readline().strip() == "ready"
    return w


def first_line_time(cmd, out_path):
    """Starts cmd writing to out_path; returns (proc, t_start, t_first_line)."""
    f = open(out_path, "w")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.DEVNULL)
    t1 = wait_for(lambda: os.path.getsize(out_path) > 0)
    return p, t0, t1


def latency(runs):
    rows = {k: [] for k in ("attach", "first@0.1", "first@1", "sigint_exit", "final_after_exit",
                            "exit_after_exit")}
    tmp = tempfile.mkdtemp()
    for _ in range(runs):
        w = start_workload()
        # Attach time: launch to semaphores raised (polled every few ms by another process).
        t0 = time.monotonic()
        p = subprocess.Popen([HZ3TOP, "-p", str(w.pid), "--json", "0.1"],
                             stdout=open(os.path.join(tmp, "a.json"), "w"),
                             stderr=subprocess.DEVNULL)
        rows["attach"].append(wait_for(lambda: semaphores_raised(w.pid)) - t0)
        t_sig = time.monotonic()
        p.send_signal(signal.SIGINT)
        p.wait()
        rows["sigint_exit"].append(time.monotonic() - t_sig)

        for interval in ("0.1", "1"):
            out = os.path.join(tmp, "f.json")
            p, t0, t1 = first_line_time([HZ3TOP, "-p", str(w.pid), "--json", interval], out)
            rows["first@" + interval].append(t1 - t0)
            p.send_signal(signal.SIGINT)
            p.wait()

        out = os.path.join(tmp, "e.json")
        p = subprocess.Popen([HZ3TOP, "-p", str(w.pid), "--json", "1"], stdout=open(out, "w"),
                             stderr=subprocess.DEVNULL)
        wait_for(lambda: semaphores_raised(w.pid))
        w.stdin.write("exit\n")
        w.stdin.flush()
        w.wait()
        t_exit = time.monotonic()
        wait_for(lambda: b'"final":true' in open(out, "rb").read())
        rows["final_after_exit"].append(time.monotonic() - t_exit)
        p.wait()
        rows["exit_after_exit"].append(time.monotonic() - t_exit)
    return {k: statistics.median(v) for k, v in rows.items()}


def event_cost(rounds, n=20000):
    """Seconds per attached probe event: n large malloc+free pairs fire 2n tag events."""
    w = start_workload()

    def run():
        t = time.monotonic()
        w.stdin.write(f"run {n} 0 0\n")
        w.stdin.flush()
        assert w.stdout.readline().startswith("ok")
        return time.monotonic() - t

    run()  # warm: the large runs come from the page heap afterwards
    det, att = [], []
    for _ in range(rounds):
        det.append(run())
        p = subprocess.Popen([HZ3TOP, "-p", str(w.pid), "--json", "--no-perf", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: semaphores_raised(w.pid))
        att.append(run())
        p.send_signal(signal.SIGINT)
        p.wait()
    w.stdin.write("exit\n")
    w.stdin.flush()
    w.wait()
    d, a = statistics.median(det), statistics.median(att)
    return d / (2 * n), a / (2 * n)


def bench_once(bench, tracer_args):
    tmp = tempfile.mkdtemp()
    ready, go = os.path.join(tmp, "ready"), os.path.join(tmp, "go")
    cmd = bench + ["--ready-file", ready, "--go-file", go]
    b = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env=dict(os.environ, LD_PRELOAD=LIB))
    wait_for(lambda: os.path.exists(ready))
    tracer = None
    if tracer_args is not None:
        tracer = subprocess.Popen([HZ3TOP, "-p", str(b.pid), "--json"] + tracer_args + ["1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: semaphores_raised(b.pid))
    open(go, "w").close()
    out = b.stdout.read()
    # The target's own CPU time (user + system): probe traps and BPF programs run in its
    # context and are charged to it, while preemption by other jobs on a shared machine is not.
    _, status, ru = os.wait4(b.pid, 0)
    b.returncode = os.waitstatus_to_exitcode(status)
    if tracer:
        tracer.wait()
    ops = float(re.search(r"ops_per_s=(\S+)", out).group(1))
    n = float(re.search(r" ops=(\d+)", out).group(1))
    return ops, n / (ru.ru_utime + ru.ru_stime)


def overhead(pairs, bench):
    """Per round: one run of each mode back to back; the ratio is taken within the round (the
    machine's load drifts between rounds), then the median over rounds."""
    modes = {"detached": None, "attached": [], "attached --no-perf": ["--no-perf"]}
    res = {m: [] for m in modes}
    cpu = {m: [] for m in modes}
    for _ in range(pairs):
        for m, args in modes.items():
            ops, per_cpu_s = bench_once(bench, args)
            res[m].append(ops)
            cpu[m].append(per_cpu_s)
    ratios = {m: statistics.median(a / b for a, b in zip(res[m], res["detached"])) for m in modes}
    cpu_ratios = {m: statistics.median(a / b for a, b in zip(cpu[m], cpu["detached"]))
                  for m in modes}
    return {m: statistics.median(v) for m, v in res.items()}, ratios, cpu_ratios, res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--iters", type=int, default=20000000)
    ap.add_argument("--latency-runs", type=int, default=5)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("hz3top_cost.py: needs root (BPF and perf_event_open)")
    print(f"latency (median of {a.latency_runs}), seconds:")
    for k, v in latency(a.latency_runs).items():
        print(f"  {k:18s} {v:7.3f}")
    d, att = event_cost(a.latency_runs)
    print(f"large malloc+free, per tag event: detached {d * 1e9:.0f} ns, attached {att * 1e9:.0f} ns"
          f" -> {(att - d) * 1e9:.0f} ns per attached probe event")
    benches = {
        f"bench_ssot mixed, {a.iters} ops": [SSOT, "--size", "mixed", "--iters", str(a.iters)],
        f"bench_xfree 2 threads 50 % remote, {a.iters // 4} ops per thread": [
            XFREE, "--threads", "2", "--remote", "50", "--iters", str(a.iters // 4)],
    }
    print("ratios: median of per-round ratios to detached; 'per CPU s' counts ops per second of"
          " the target's user+system time")
    for name, bench in benches.items():
        med, ratios, cpu_ratios, res = overhead(a.pairs, bench)
        print(f"{name}, {a.pairs} interleaved rounds:")
        for m, v in med.items():
            print(f"  {m:20s} median {v / 1e6:7.2f} M ops/s, ratio {ratios[m]:.4f}, per CPU s "
                  f"ratio {cpu_ratios[m]:.4f}   "
                  f"(runs: {' '.join(f'{x / 1e6:.1f}' for x in res[m])})")


if __name__ == "__main__":
    main()
