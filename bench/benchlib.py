"""Shared pieces of the hz3 benchmark scripts (run.py, triage.py, fastpath.py): the allocator and
workload registries, running one workload under one allocator and checking that the preload took,
callgrind instruction counts, and the stamp (machine, kernel, compiler, commit) every report
carries. Standard library only. It does not decide what to run or how to report; the scripts do.
"""

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_DIR = "/usr/lib/x86_64-linux-gnu"

# name -> (library, Debian package or None). glibc is "no preload". The peers are the Debian
# builds on purpose: what a service on this distribution would get with apt-get.
PEERS = {
    "glibc": (None, "libc6"),
    "mimalloc": (f"{PEER_DIR}/libmimalloc.so.2", "libmimalloc2.0"),
    "jemalloc": (f"{PEER_DIR}/libjemalloc.so.2", "libjemalloc2"),
    "tcmalloc": (f"{PEER_DIR}/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
}
HZ3_VARIANTS = ("release", "check", "noprobes", "noptag", "hardened", "magall")
DEFAULT_ALLOCATORS = ["hz3", "hz3-noptag", "glibc", "mimalloc", "jemalloc", "tcmalloc"]


class BenchError(Exception):
    """A failure the user must see (missing allocator, a preload that did not take, a crash)."""


def die(msg, code=2):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(code)


def hz3_lib(build, variant="release"):
    vdir = build if variant == "release" else os.path.join(build, variant)
    return os.path.join(vdir, "lib", "libhz3.so")


class Allocator:
    def __init__(self, name, lib, package=None):
        self.name, self.lib, self.package = name, lib, package

    def env(self, base=None):
        env = dict(base if base is not None else os.environ)
        env.pop("LD_PRELOAD", None)
        if self.lib:
            env["LD_PRELOAD"] = os.path.realpath(self.lib)
        return env

    def check_present(self):
        if self.lib and not os.path.isfile(self.lib):
            hint = (
                f"install Debian package {self.package} (make deps-bench)"
                if self.package
                else "build it (make variants) or leave it out with ALLOCATORS=…"
            )
            return f"{self.name}: {self.lib} not found; {hint}"
        return None

    def served_by_me(self, owner):
        """True when the workload's malloc came from this allocator (the RESULT allocator=)."""
        if self.lib is None:
            return os.path.basename(owner).startswith("libc.so")
        return os.path.realpath(owner) == os.path.realpath(self.lib)


def resolve_allocators(spec, build):
    """'hz3,glibc,name=/path/lib.so' -> [Allocator]. Unknown names are an error, not a skip."""
    out = []
    for item in [s.strip() for s in spec.split(",") if s.strip()]:
        if "=" in item:
            name, lib = item.split("=", 1)
            out.append(Allocator(name, os.path.abspath(lib)))
        elif item == "hz3":
            out.append(Allocator("hz3", hz3_lib(build)))
        elif item.startswith("hz3-") and item[4:] in HZ3_VARIANTS:
            out.append(Allocator(item, hz3_lib(build, item[4:])))
        elif item in PEERS:
            lib, pkg = PEERS[item]
            out.append(Allocator(item, lib, pkg))
        else:
            known = ["hz3"] + [f"hz3-{v}" for v in HZ3_VARIANTS[1:]] + list(PEERS)
            raise BenchError(f"unknown allocator '{item}' (known: {', '.join(known)}, or NAME=PATH)")
    return out


class Workload:
    """One benchmark program with its arguments. `count_opt` is the option that scales the work
    linearly (callgrind measures two values of it); `deterministic` is true for single-threaded
    workloads, whose instruction counts are exactly reproducible."""

    # How the report shows ops/s and CPU time per operation: (unit, divisor). Workloads whose
    # operations are slow (a large-block step takes milliseconds) override them.
    OPS_UNIT = ("M ops/s", 1e6)
    CPU_UNIT = ("ns", 1.0)

    def __init__(self, name, binary, args, count_opt, deterministic, what, ops_unit=None,
                 cpu_unit=None):
        self.name, self.binary, self.args = name, binary, [str(a) for a in args]
        self.count_opt, self.deterministic, self.what = count_opt, deterministic, what
        self.ops_unit = ops_unit or self.OPS_UNIT
        self.cpu_unit = cpu_unit or self.CPU_UNIT

    def argv(self, build, override_count=None):
        args = list(self.args)
        if override_count is not None:
            i = args.index(self.count_opt)
            args[i + 1] = str(override_count)
        return [os.path.join(build, "bin", self.binary)] + args

    def command_line(self):
        return " ".join([self.binary] + self.args)


def default_threads():
    """Every core, at least 2: the cross-thread workloads need two threads to mean anything."""
    return max(2, os.cpu_count() or 2)


IDLE_THREADS = 8


def workloads(threads, scale=1.0, ssot_iters=None, quick=False):
    """The suite, in report order. Counts are per thread for the multi-threaded workloads, so a
    16-core machine does 8x the total work of a 2-core one in about the same time. `quick`
    shortens the RSS samples taken after the work stops (largechurn, idle) to 0 and 0.2 s."""

    def s(n):
        return max(1, int(n * scale))

    it = ssot_iters or s(20_000_000)
    t = threads
    ws = [
        Workload("small", "bench_ssot", ["--size", "small", "--iters", it, "--ws", 400],
                 "--iters", True, "SSOT 16-2048 B"),
        Workload("medium", "bench_ssot", ["--size", "medium", "--iters", it, "--ws", 400],
                 "--iters", True, "SSOT 4096-32768 B"),
        Workload("mixed", "bench_ssot", ["--size", "mixed", "--iters", it, "--ws", 400],
                 "--iters", True, "SSOT 16-32768 B"),
        Workload("realloc", "bench_realloc", ["--iters", s(10_000_000)], "--iters", True,
                 "realloc grow/shrink/in-class"),
        Workload("aligned", "bench_aligned", ["--iters", s(15_000_000)], "--iters", True,
                 "posix_memalign/aligned_alloc 16-4096"),
    ]
    for pct in (0, 50, 90):
        ws.append(Workload(f"xfree-{pct}", "bench_xfree",
                           ["--threads", t, "--remote", pct, "--iters", s(10_000_000)],
                           "--iters", False, f"{t} threads, {pct} % remote frees"))
    ws += [
        Workload("prodcons", "bench_prodcons", ["--threads", t, "--items", s(5_000_000)],
                 "--items", False, f"{max(1, t // 2)} producer/consumer pairs"),
        Workload("churn", "bench_churn", ["--threads", t, "--rounds", s(5000), "--ops", 2000],
                 "--rounds", False, f"{t} threads created and joined per round"),
        Workload("larson", "bench_larson", ["--threads", t, "--rounds", 10, "--ops", s(3_000_000)],
                 "--ops", False, f"{t} threads, server simulation"),
    ]
    # The patterns hz3 was measured losing to its peers (2026-12-01, docs/benchmarks/patterns.md). Large-block steps take
    # milliseconds, so largechurn reports steps/s and CPU ms per step; its RSS is sampled for 5 s
    # after the churn, and idle's while its threads wait: the samples are part of the result.
    rss_at = "0,0.2" if quick else "0,1,2,5"
    step = (("steps/s", 1.0), ("ms", 1e6))
    ws += [
        Workload("largechurn", "bench_largechurn",
                 ["--steps", s(2000), "--api", "calloc", "--rss-at", rss_at], "--steps", False,
                 "20 live calloc blocks of 5-25 MiB, one replaced per step", *step),
        Workload("largechurn-new", "bench_largechurn", ["--steps", s(2000), "--api", "new"],
                 "--steps", False, "the same with std::make_unique<char[]>(n)", *step),
        Workload("xthread-small", "bench_xthread_small", ["--threads", t, "--blocks", s(10_000_000)],
                 "--blocks", False, f"{t} producers hand 64 B blocks to {t} consumers"),
        Workload("xthread-random", "bench_xthread_random",
                 ["--threads", t, "--iters", s(2_000_000)], "--iters", False,
                 f"{t} threads, 8 B-16 KiB, swap into shared slots, free what comes out"),
        Workload("idle", "bench_idle", ["--threads", IDLE_THREADS, "--blocks", 63, "--rss-at", rss_at],
                 "--blocks", False,
                 f"{IDLE_THREADS} threads allocate and free 63 blocks x 44 sizes, then wait"),
    ]
    return ws


def select_workloads(all_ws, spec):
    if not spec:
        return all_ws
    by_name = {w.name: w for w in all_ws}
    out = []
    for name in [s.strip() for s in spec.split(",") if s.strip()]:
        if name not in by_name:
            raise BenchError(f"unknown workload '{name}' (known: {', '.join(by_name)})")
        out.append(by_name[name])
    return out


RESULT_RE = re.compile(r"^RESULT (.*)$", re.M)


def parse_result(stdout):
    m = RESULT_RE.findall(stdout)
    if not m:
        return None
    out = {}
    for kv in m[-1].split():
        k, _, v = kv.partition("=")
        try:
            out[k] = float(v) if any(c in v for c in ".e") else int(v)
        except ValueError:
            out[k] = v
    return out


def run_workload(w, alloc, build, timeout=600, wrapper=(), extra_env=None, extra_args=()):
    """Runs one workload under one allocator; returns the parsed RESULT dict. Raises BenchError
    when the program fails, prints no result, or malloc was not served by `alloc`."""
    env = alloc.env()
    if extra_env:
        env.update(extra_env)
    argv = list(wrapper) + w.argv(build) + list(extra_args)
    try:
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{w.name} under {alloc.name}: timed out after {timeout}s")
    res = parse_result(p.stdout)
    if p.returncode != 0 or res is None:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        raise BenchError(f"{w.name} under {alloc.name}: exit status {p.returncode}: "
                         + " | ".join(tail))
    if not alloc.served_by_me(str(res.get("allocator", ""))):
        raise BenchError(f"{w.name} under {alloc.name}: LD_PRELOAD did not take: malloc is served "
                         f"by {res.get('allocator')}, expected {alloc.lib or 'glibc'}")
    res["_stderr"] = p.stderr
    return res


# ---- callgrind ---------------------------------------------------------------------------------

def callgrind_ir(argv, env, toggle=None, timeout=600):
    """Instructions executed (Ir) by argv under callgrind; with `toggle`, only inside functions
    matching it (and their callees). Deterministic for a single-threaded program."""
    if not shutil.which("valgrind"):
        raise BenchError("valgrind not found; install Debian package valgrind (make deps-test)")
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    if toggle:
        cmd += ["--collect-atstart=no", f"--toggle-collect={toggle}"]
    p = subprocess.run(cmd + list(argv), env=env, capture_output=True, text=True, timeout=timeout)
    m = re.search(r"Collected\s*:\s*(\d+)", p.stderr)
    if "signal 5 (SIGTRAP)" in p.stderr:
        # Valgrind runs the code as it finds it in memory, so a uprobe's int3 traps instead of
        # entering the kernel's probe handler: a tracer attached to every process that maps this
        # library (hz3top --all, bpftrace -p-less) ruins the count.
        raise _sigtrap_error(argv)
    if p.returncode != 0 or not m:
        tail = p.stderr.strip().splitlines()[-3:]
        raise BenchError(f"failed to run callgrind on {os.path.basename(argv[0])}: exit "
                         f"{p.returncode}: {' | '.join(tail)}")
    return int(m.group(1))


def _sigtrap_error(argv):
    return BenchError(f"callgrind run of {os.path.basename(argv[0])} died of SIGTRAP at a USDT "
                      "probe: a tracer is attached to the library system-wide (hz3top --all, "
                      "bpftrace); uprobe breakpoints trap under valgrind. Rerun when it is gone.")


FASTPATHS = ("malloc_free_64", "malloc_free_8192", "realloc_in_class")
FASTPATH_N = (1_100_000, 100_000)


class PrivateCopy:
    """The allocator's library copied to a temporary file, for callgrind. Uprobes live on the
    file's inode: a tracer attached to the original for every process (bpftrace does that even
    with -p) puts breakpoints into any process mapping it, which under valgrind trap instead of
    entering the kernel. A copy is a different inode and executes the same instructions."""

    def __init__(self, alloc):
        self.alloc, self.dir = alloc, None

    def __enter__(self):
        if not self.alloc.lib:
            return self.alloc.env()
        self.dir = tempfile.mkdtemp(prefix="hz3-cg-")
        copy = os.path.join(self.dir, os.path.basename(self.alloc.lib))
        shutil.copy2(os.path.realpath(self.alloc.lib), copy)
        env = self.alloc.env()
        env["LD_PRELOAD"] = copy
        return env

    def __exit__(self, *exc):
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def fastpath_ir(build, alloc, path):
    """Instructions per iteration of a bench_fastpath loop: (Ir(1.1M) - Ir(0.1M)) / 1M, which
    cancels the first call's slow path and everything outside the loop."""
    binary = os.path.join(build, "bin", "bench_fastpath")
    with PrivateCopy(alloc) as env:
        hi, lo = (callgrind_ir([binary, "--path", path, "--n", str(n)], env,
                               toggle=f"hz3_fastpath_{path}") for n in FASTPATH_N)
    return (hi - lo) / (FASTPATH_N[0] - FASTPATH_N[1])


def workload_ir_per_op(build, alloc, w, n_lo):
    """Instructions per operation of a single-threaded workload: the difference of two runs (n and
    2n operations) divided by n, so process start and exit cancel."""
    irs = []
    with PrivateCopy(alloc) as env:
        for n in (n_lo, 2 * n_lo):
            irs.append(callgrind_ir(w.argv(build, override_count=n), env))
    return (irs[1] - irs[0]) / n_lo


# ---- stamp -------------------------------------------------------------------------------------

def _cmd(argv, cwd=None):
    try:
        return subprocess.run(argv, capture_output=True, text=True, cwd=cwd,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


TRACER_NAMES = ("bpftrace", "hz3top", "stap", "perf", "valgrind")


def active_tracers():
    """Tracers running on the machine. A USDT tracer may attach to every process that maps the
    library (bpftrace does, even with -p), which turns probe sites into kernel traps: the numbers
    of such a run are not the allocator's."""
    found = []
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in TRACER_NAMES:
            found.append(f"{comm}[{pid}]")
    return found


def stamp(build, allocators=()):
    """Where and with what the numbers were taken; every report carries it."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    distro = ""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    commit = _cmd(["git", "rev-parse", "--short=12", "HEAD"], cwd=TOP) or "unknown"
    dirty = _cmd(["git", "status", "--porcelain", "--untracked-files=no", "--", "libhz3", "bench"],
                 cwd=TOP)
    cxx = os.environ.get("CXX", "g++")
    versions = {}
    for a in allocators:
        pkg = getattr(a, "package", None)
        if pkg:
            versions[a.name] = _cmd(["dpkg-query", "-W", "-f=${Version}", pkg]) or "?"
        elif a.lib:
            versions[a.name] = "local build"
    try:
        load = "%.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        load = "?"
    return {
        "date": _cmd(["date", "-u", "+%Y-%m-%d %H:%M UTC"]),
        "load": load,
        "tracers": ", ".join(active_tracers()) or "none",
        "machine": f"{cpu}, {os.cpu_count()} CPUs, {mem}",
        "os": distro,
        "kernel": f"{platform.system()} {platform.release()}",
        "compiler": _cmd([cxx, "--version"]).splitlines()[0] if _cmd([cxx, "--version"]) else cxx,
        "commit": commit + (" (libhz3/ or bench/ modified)" if dirty else ""),
        "versions": versions,
    }


def stamp_markdown(st, params):
    lines = [
        f"- **Date**: {st['date']}",
        f"- **Machine**: {st['machine']} (load average {st.get('load', '?')} when the run "
        "started: other work on the machine adds noise)",
        f"- **OS / kernel**: {st['os']} / {st['kernel']}",
        f"- **Tracers running at the start**: {st.get('tracers', '?')}",
        f"- **Compiler**: {st['compiler']}",
        f"- **Commit**: {st['commit']}",
    ]
    if st.get("versions"):
        lines.append("- **Allocators**: " + ", ".join(f"{k} {v}" for k, v in st["versions"].items()))
    lines.append("- **Parameters**: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    return "\n".join(lines)


def write_json(path, obj):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(os.path.abspath(path)),
                                     delete=False) as f:
        json.dump(obj, f, indent=1)
        tmp = f.name
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
