#!/usr/bin/env python3
"""What `hz3top heap` attached costs the process it profiles (docs/heap-profiling.md, "Costs").
Not a test: it asserts nothing and `make test` does not run it. Run as root after `make all`:

    /usr/bin/python3 bench/heap_attach.py [--rounds 10] [--size mixed] [--redis]
        [--tracer hz3top|bpftrace|semaphore] [--hz3top-arg=ARG …]

SSOT (bench_ssot, one thread): each round runs the workload once detached and once with
`hz3top heap -p PID --plain` attached (the order alternates between rounds), both started the
same way and released by a go file once the tracer has raised the otel_memory:alloc semaphore.
The figure is the workload's own CPU time per operation (user + system: the uprobe traps are
system time of the traced thread), steadier on a shared machine than wall time, which is printed
too. `--tracer bpftrace` attaches a bpftrace program that only counts samples instead (the
probes' own cost, without hz3top's copy and unwinding); `--tracer semaphore` attaches nothing and
raises the semaphore through /proc/PID/mem (libhz3's own cost of sampling). With --redis, the same for redis-server under `redis-benchmark -t set,get,lpush,lpop` (the
server's CPU time per request, from /proc/PID/stat, and requests per second). Prints every round,
then the median attached/detached throughput ratio and its min-max.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("HZ3_BUILD", os.path.join(TOP, "build"))
HZ3TOP = os.path.join(BUILD, "bin", "hz3top")
LIB = os.path.realpath(os.environ.get("HZ3_LIB", os.path.join(BUILD, "lib", "libhz3.so")))
SSOT = os.path.join(BUILD, "bin", "bench_ssot")


def alloc_semaphore_offset(lib):
    """Offset of otel_memory:alloc's semaphore from the library's load base (readelf -n)."""
    notes = subprocess.run(["readelf", "-n", lib], capture_output=True, text=True).stdout
    m = re.search(r"Provider: otel_memory\s+Name: alloc\s+Location: \S+, Base: \S+, "
                  r"Semaphore: (0x[0-9a-f]+)", notes)
    if not m:
        sys.exit("no otel_memory:alloc probe with a semaphore in " + lib)
    return int(m.group(1), 16)


def load_base(pid, lib):
    for line in open("/proc/%d/maps" % pid):
        f = line.split()
        if len(f) >= 6 and os.path.realpath(f[5]) == lib:
            return int(f[0].split("-")[0], 16)
    return None


def semaphore(pid, lib, off):
    base = load_base(pid, lib)
    if base is None:
        return 0
    with open("/proc/%d/mem" % pid, "rb") as m:
        m.seek(base + off)
        return int.from_bytes(m.read(2), "little")


def wait_for(cond, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise TimeoutError("condition not met")


def cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


TRACER = "hz3top"
HZ3TOP_ARGS = []  # --hz3top-arg: more arguments of `hz3top heap`


class RaisedSemaphore:
    """No tracer: the semaphore is raised by hand (as the kernel does at attach), so the process
    samples with every probe a no-op. What is left is libhz3's own cost of sampling."""

    def __init__(self, pid, off):
        self.pid, self.off = pid, off
        self.poke(1)

    def poke(self, v):
        with open("/proc/%d/mem" % self.pid, "r+b") as m:
            m.seek(load_base(self.pid, LIB) + self.off)
            m.write(v.to_bytes(2, "little"))

    def poll(self):
        return 0

    def send_signal(self, sig):
        pass

    def wait(self, timeout=None):
        return 0


def start_tracer(pid, out):
    if TRACER == "semaphore":
        return RaisedSemaphore(pid, alloc_semaphore_offset(LIB))
    if TRACER == "bpftrace":  # counts samples only: the probes' own cost, without hz3top's work
        prog = "usdt:%s:otel_memory:alloc { @samples = count(); }" % LIB
        return subprocess.Popen(["bpftrace", "-p", str(pid), "-e", prog], stdout=out,
                                stderr=subprocess.STDOUT)
    return subprocess.Popen([HZ3TOP, "heap", "-p", str(pid), "--plain", "-n", "1"] + HZ3TOP_ARGS +
                            ["1"], stdout=out, stderr=subprocess.STDOUT)


def stop_tracer(t):
    if t.poll() is None:
        t.send_signal(2)
    try:
        t.wait(timeout=20)
    except subprocess.TimeoutExpired:
        t.kill()
        t.wait()


def tracer_summary(path):
    text = open(path).read()
    if TRACER == "semaphore":
        return 0, 0
    if TRACER == "bpftrace":
        m = re.search(r"@samples: (\d+)", text)
        return (int(m.group(1)) if m else 0), 0
    samples = re.findall(r"samples (\d+) \(", text)
    lost = re.findall(r"(\d+) events lost", text)
    return int(samples[-1]) if samples else 0, int(lost[-1]) if lost else 0


def ssot_run(args, attached, off, tmp):
    ready, go = os.path.join(tmp, "ready"), os.path.join(tmp, "go")
    for f in (ready, go):
        if os.path.exists(f):
            os.unlink(f)
    w = subprocess.Popen([SSOT, "--size", args.size, "--iters", str(args.iters), "--ready-file",
                          ready, "--go-file", go], stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, LD_PRELOAD=LIB))
    wait_for(lambda: os.path.exists(ready))
    pid = int(open(ready).read())
    t = None
    log = os.path.join(tmp, "tracer")
    if attached:
        t = start_tracer(pid, open(log, "w"))
        wait_for(lambda: semaphore(pid, LIB, off) > 0)
    open(go, "w").close()
    out = w.communicate()[0]
    if t:
        stop_tracer(t)
    r = dict(kv.split("=", 1) for kv in out.split("RESULT ", 1)[1].split())
    samples, lost = tracer_summary(log) if attached else (0, 0)
    return float(r["cpu_ns_per_op"]), float(r["ops_per_s"]), samples, lost


def redis_run(args, attached, off, tmp):
    port = "6399"
    s = subprocess.Popen(["redis-server", "--port", port, "--save", "", "--appendonly", "no"],
                         stdout=subprocess.DEVNULL, env=dict(os.environ, LD_PRELOAD=LIB))
    wait_for(lambda: subprocess.run(["redis-cli", "-p", port, "ping"], capture_output=True,
                                    text=True).stdout.strip() == "PONG")
    t = None
    log = os.path.join(tmp, "tracer")
    if attached:
        t = start_tracer(s.pid, open(log, "w"))
        wait_for(lambda: semaphore(s.pid, LIB, off) > 0)
    c0 = cpu_seconds(s.pid)
    b = subprocess.run(["redis-benchmark", "-p", port, "-q", "-n", str(args.requests), "-P", "16",
                        "-d", "256", "-r", "100000", "-t", "set,get,lpush,lpop"],
                       capture_output=True, text=True).stdout
    c1 = cpu_seconds(s.pid)
    if t:
        stop_tracer(t)
    s.terminate()
    s.wait()
    rps = [float(x) for x in re.findall(r"([\d.]+) requests per second", b)]
    n = args.requests * len(rps)
    samples, lost = tracer_summary(log) if attached else (0, 0)
    return 1e9 * (c1 - c0) / n, statistics.mean(rps), samples, lost


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--size", default="mixed")
    ap.add_argument("--iters", type=int, default=20000000)
    ap.add_argument("--redis", action="store_true")
    ap.add_argument("--requests", type=int, default=400000)
    ap.add_argument("--tracer", choices=("hz3top", "bpftrace", "semaphore"), default="hz3top")
    ap.add_argument("--hz3top-arg", action="append", default=[], metavar="ARG",
                    help="one more argument of `hz3top heap` (repeat it: --hz3top-arg=--unwind "
                    "--hz3top-arg=fp)")
    args = ap.parse_args()
    global TRACER, HZ3TOP_ARGS
    TRACER = args.tracer
    HZ3TOP_ARGS = args.hz3top_arg
    off = alloc_semaphore_offset(LIB)
    run = redis_run if args.redis else ssot_run
    what = "redis-server" if args.redis else "ssot-" + args.size
    cpu_ratio, wall_ratio = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            order = (False, True) if i % 2 == 0 else (True, False)
            res = {a: run(args, a, off, tmp) for a in order}
            (dc, dw, _, _), (ac, aw, n, lost) = res[False], res[True]
            cpu_ratio.append(dc / ac)
            wall_ratio.append(aw / dw)
            print("%s round %2d: cpu ns/op detached %.2f attached %.2f (x%.3f); rate detached "
                  "%.3g attached %.3g (x%.3f); %d samples, %d lost" %
                  (what, i + 1, dc, ac, dc / ac, dw, aw, aw / dw, n, lost), flush=True)
    print("%s attached/detached throughput, %d rounds: by CPU time median %.3f (min %.3f max %.3f);"
          " by wall time median %.3f (min %.3f max %.3f)" %
          (what, args.rounds, statistics.median(cpu_ratio), min(cpu_ratio), max(cpu_ratio),
           statistics.median(wall_ratio), min(wall_ratio), max(wall_ratio)))


if __name__ == "__main__":
    main()
