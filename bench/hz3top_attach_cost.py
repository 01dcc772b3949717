#!/usr/bin/env python3
"""bench/hz3top_attach_cost.py — what watching costs: ops/s of a workload on libhz3 with no tracer
against the same with hz3top's counting view attached (`hz3top -p PID --json`, default options:
the probes, the tag-map reads and perf counting), in interleaved pairs (detached, attached, then
attached, detached, ...). Prints per workload the median of either side, the median of the
per-pair ratios attached/detached with the lowest and highest pair, and the CPU time per op of
the workload process (user+sys) the same way. Not a test (asserts nothing, not run by make test); docs/hz3top.md, "Costs", quotes it. The
latency and per-event costs are bench/hz3top_cost.py's.

  bench/hz3top_attach_cost.py [--build build] [--pairs 10] [--iters 20000000] [--redis-n 100000]
                       [--only ssot|redis]
SSOT mixed: bench_ssot --size mixed, hz3top attached (its stderr says "attached") before the
workload's loop starts (--ready-file/--go-file). redis: one redis-server on libhz3 on a free port
of 127.0.0.1 for all runs, redis-benchmark -t set,get -d 256 -c 20 -r 100000; an attached run
starts hz3top on redis-server, waits for it to attach, runs redis-benchmark, stops hz3top.
Needs root (hz3top)."""
import argparse
import os
import socket
import statistics as st
import subprocess
import sys
import tempfile
import threading
import time


def start_hz3top(hz3top, pid):
    p = subprocess.Popen([hz3top, "-p", str(pid), "--json", "-v", "1"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    attached = threading.Event()
    err = []

    def read():
        for line in p.stderr:
            err.append(line.rstrip())
            if "attached" in line:
                attached.set()
        attached.set()
    threading.Thread(target=read, daemon=True).start()
    if not attached.wait(20) or p.poll() is not None:
        raise SystemExit("hz3top did not attach: " + " | ".join(err[-3:]))
    return p


def stop_hz3top(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def ssot_run(a, lib, attached):
    """(ops/s, CPU ns per op) of one bench_ssot --size mixed run."""
    with tempfile.TemporaryDirectory(prefix="hz3-attach-") as tmp:
        ready, go = os.path.join(tmp, "ready"), os.path.join(tmp, "go")
        argv = [os.path.join(a.build, "bin", "bench_ssot"), "--size", "mixed", "--iters",
                str(a.iters), "--ready-file", ready, "--go-file", go]
        env = dict(os.environ, LD_PRELOAD=lib)
        p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
        while not os.path.exists(ready):
            if p.poll() is not None:
                raise SystemExit("bench_ssot exited early")
            time.sleep(0.002)
        top = start_hz3top(a.hz3top, p.pid) if attached else None
        open(go, "w").close()
        _, status, ru = os.wait4(p.pid, 0)
        out = p.stdout.read()
        p.returncode = os.waitstatus_to_exitcode(status)
        if top:
            stop_hz3top(top)
        ops = float(out.split("ops_per_s=")[1].split()[0])
        return ops, (ru.ru_utime + ru.ru_stime) * 1e9 / a.iters


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def redis_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def redis_run(a, server, port, attached):
    """(SET+GET requests/s, redis-server CPU ns per request) of one redis-benchmark run."""
    top = start_hz3top(a.hz3top, server.pid) if attached else None
    c0 = redis_cpu(server.pid)
    out = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-q", "-t",
                          "set,get", "-n", str(a.redis_n), "-r", "100000", "-d", "256", "-c",
                          "20", "--csv"], capture_output=True, text=True, check=True).stdout
    c1 = redis_cpu(server.pid)
    if top:
        stop_hz3top(top)
    rates = [float(l.split('","')[1]) for l in out.splitlines()
             if l.startswith('"SET"') or l.startswith('"GET"')]
    # Both tests do redis_n requests: the combined rate is 2n over the summed times.
    req_s = 2 / sum(1 / r for r in rates)
    return req_s, (c1 - c0) * 1e9 / (2 * a.redis_n)


def pairs(name, n, run):
    det, att = [], []
    for i in range(n):
        order = [False, True] if i % 2 == 0 else [True, False]
        for attached in order:
            (att if attached else det).append(run(attached))
        print(f"  {name} pair {i + 1}/{n}: detached {det[-1][0]:.4g}/s, attached {att[-1][0]:.4g}/s",
              file=sys.stderr)
    ratio = [b[0] / a[0] for a, b in zip(det, att)]
    cpu = [b[1] / a[1] for a, b in zip(det, att)]
    print(f"{name:<22} detached {st.median(x[0] for x in det):>10.4g}/s  attached "
          f"{st.median(x[0] for x in att):>10.4g}/s  ops/s attached/detached {st.median(ratio):.3f} "
          f"[{min(ratio):.3f}, {max(ratio):.3f}]  CPU/op {st.median(cpu):.3f} "
          f"[{min(cpu):.3f}, {max(cpu):.3f}]  ({n} pairs)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--iters", type=int, default=20000000)
    ap.add_argument("--redis-n", type=int, default=100000)
    ap.add_argument("--only", choices=["ssot", "redis"])
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    a.hz3top = os.path.join(a.build, "bin", "hz3top")
    lib = os.path.realpath(os.path.join(a.build, "lib", "libhz3.so"))
    print(f"attach cost: {a.pairs} interleaved pairs; load now {os.getloadavg()[0]:.2f}")
    if a.only in (None, "ssot"):
        pairs(f"SSOT mixed ({a.iters // 1000000}M)", a.pairs, lambda att: ssot_run(a, lib, att))
    if a.only in (None, "redis"):
        port = free_port()
        tmp = tempfile.mkdtemp(prefix="hz3-attach-redis-")
        server = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                                   "--save", "", "--appendonly", "no", "--dir", tmp, "--logfile",
                                   os.path.join(tmp, "redis.log")],
                                  env=dict(os.environ, LD_PRELOAD=lib))
        try:
            for _ in range(100):
                r = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                                   text=True)
                if "PONG" in r.stdout:
                    break
                time.sleep(0.05)
            pairs("redis SET+GET", a.pairs, lambda att: redis_run(a, server, port, att))
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
