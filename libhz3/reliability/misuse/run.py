#!/usr/bin/env python3
"""Heap-misuse table: builds misuse.c, runs every case as its own process under each allocator
(LD_PRELOAD; "glibc" means no preload) and prints which allocator caught which misuse.

A case is *caught* when its process does anything but print the final marker "SURVIVED" and exit
0: it dies by a signal (SIGABRT, SIGSEGV, SIGBUS, ...), exits non-zero, or runs past the timeout.
A crash caused by the misuse itself (writing into memory the allocator unmapped) counts, as in the
public suites. The row control_correct_use does nothing wrong: it must survive everywhere, and it
is not counted in the totals.

Usage: run.py [options] [NAME=PATH | glibc ...]
  With no allocator arguments, the default set: hz3 release, check and hardened (from --build-root),
  glibc, Debian's mimalloc, jemalloc and tcmalloc, and the peers under /work/shared/peers when
  present. A library file that does not exist is skipped, and the output says so.
  --json PATH / --tsv PATH   machine-readable results (every cell, with how it was caught)
  --markdown PATH            the table as a docs page (date, machine, definition)
  --cases A,B,...            only these cases (default: all)
  --timeout S                per case (default 10)
  --build-root DIR           where hz3's variants are (default: $HZ3_BUILD or <repo>/build)
  --out DIR                  where the misuse program is built (default: <build-root>/reliability/misuse)
Exit status: 0, or 2 when the program cannot be built or a library does not take as LD_PRELOAD.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
CONTROL = "control_correct_use"
DEB = "/usr/lib/x86_64-linux-gnu"
PEERS = "/work/shared/peers"


def default_allocators(build_root):
    return [
        ("hz3-release", os.path.join(build_root, "lib/libhz3.so")),
        ("hz3-check", os.path.join(build_root, "check/lib/libhz3.so")),
        ("hz3-hardened", os.path.join(build_root, "hardened/lib/libhz3.so")),
        ("glibc", ""),
        ("mimalloc", DEB + "/libmimalloc.so.2"),
        ("jemalloc", DEB + "/libjemalloc.so.2"),
        ("tcmalloc", DEB + "/libtcmalloc_minimal.so.4"),
        ("mimalloc-3.4.3", PEERS + "/mimalloc-3.4.3/libmimalloc.so"),
        ("snmalloc", PEERS + "/snmalloc/libsnmallocshim.so"),
    ]


def build(out):
    os.makedirs(out, exist_ok=True)
    exe = os.path.join(out, "misuse")
    src = os.path.join(HERE, "misuse.c")
    cc = os.environ.get("CC", "gcc")
    cmd = [cc, "-O0", "-g", "-fno-builtin", "-fno-omit-frame-pointer", "-Wall", "-o", exe, src, "-ldl"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit("run.py: cannot build %s: %s" % (src, r.stdout.strip()[-500:]))
    return exe


def no_core():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_one(exe, lib, arg, timeout):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env["LIBC_FATAL_STDERR_"] = "1"  # glibc's fatal messages to stderr, not the tty
    if lib:
        env["LD_PRELOAD"] = lib
    try:
        r = subprocess.run([exe, arg], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, preexec_fn=no_core)
    except subprocess.TimeoutExpired as e:
        return None, (e.stdout or b"").decode(errors="replace"), (e.stderr or b"").decode(errors="replace")
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def classify(rc, out):
    """(caught, how). Survived means exactly: exit status 0 and the SURVIVED marker printed."""
    if rc is None:
        return True, "timeout"
    if rc == 0 and out.splitlines()[-1:] == ["SURVIVED"]:
        return False, "survived"
    if rc < 0:
        try:
            return True, signal.Signals(-rc).name
        except ValueError:
            return True, "signal %d" % -rc
    return True, "exit %d" % rc


def machine():
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    distro = "?"
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    glibc = " ".join(platform.libc_ver())
    return "%s, kernel %s, %d vCPUs (%s), %s" % (distro, platform.release(), os.cpu_count() or 0,
                                                 model, glibc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("allocators", nargs="*")
    ap.add_argument("--json")
    ap.add_argument("--tsv")
    ap.add_argument("--markdown")
    ap.add_argument("--cases")
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--build-root", default=os.environ.get("HZ3_BUILD", os.path.join(TOP, "build")))
    ap.add_argument("--out")
    a = ap.parse_args()
    build_root = os.path.abspath(a.build_root)
    exe = build(a.out or os.path.join(build_root, "reliability", "misuse"))

    if a.allocators:
        allocs = []
        for spec in a.allocators:
            name, _, path = spec.partition("=")
            if name == "glibc" and not path:
                path = ""
            elif not _:
                sys.exit("run.py: allocator '%s' is not NAME=PATH (or glibc)" % spec)
            allocs.append((name, path))
    else:
        allocs = default_allocators(build_root)

    all_cases = subprocess.run([exe, "--list"], stdout=subprocess.PIPE, text=True, check=True).stdout.split()
    cases = all_cases
    if a.cases:
        want = a.cases.split(",")
        unknown = [c for c in want if c not in all_cases]
        if unknown:
            sys.exit("run.py: unknown cases: %s" % " ".join(unknown))
        cases = [c for c in all_cases if c in want]

    columns, skipped, bad = [], [], []
    for name, path in allocs:
        if path and not os.path.isfile(path):
            skipped.append((name, path, "not found"))
            print("skip %s: %s not found" % (name, path), file=sys.stderr)
            continue
        # The library must really serve malloc: a path that does not preload would silently test glibc.
        rc, out, err = run_one(exe, path, "--which", a.timeout)
        served = out.strip()
        want = os.path.realpath(path) if path else None
        ok = rc == 0 and (os.path.realpath(served) == want if path else "libc.so" in served)
        if not ok:
            bad.append(name)
            skipped.append((name, path, "LD_PRELOAD did not take (malloc from %s)" % (served or err.strip()[:200])))
            print("run.py: %s: LD_PRELOAD=%s did not take: malloc comes from %s" %
                  (name, path, served or err.strip()[:200]), file=sys.stderr)
            continue
        columns.append((name, path))

    results = {}  # (case, alloc) -> dict
    for case in cases:
        for name, path in columns:
            rc, out, err = run_one(exe, path, case, a.timeout)
            caught, how = classify(rc, out)
            first = next((l for l in err.splitlines() if l.strip()), "")
            results[(case, name)] = {"case": case, "allocator": name, "caught": caught, "how": how,
                                     "status": rc, "stderr_first_line": first[:300]}

    names = [n for n, _ in columns]
    misuse_cases = [c for c in cases if c != CONTROL]
    totals = {n: sum(results[(c, n)]["caught"] for c in misuse_cases) for n in names}
    control_caught = [n for n in names if CONTROL in cases and results[(CONTROL, n)]["caught"]]

    w = max([len(c) for c in cases] + [10])
    cw = [max(len(n), 6) for n in names]
    lines = ["%-*s  %s" % (w, "case", "  ".join("%-*s" % (cw[i], n) for i, n in enumerate(names)))]
    for c in cases:
        cells = ["%-*s" % (cw[i], "caught" if results[(c, n)]["caught"] else "-") for i, n in enumerate(names)]
        lines.append("%-*s  %s" % (w, c, "  ".join(cells)))
    lines.append("%-*s  %s" % (w, "caught (of %d)" % len(misuse_cases),
                               "  ".join("%-*d" % (cw[i], totals[n]) for i, n in enumerate(names))))
    print("\n".join(line.rstrip() for line in lines))
    for name, path, why in skipped:
        print("not run: %s (%s): %s" % (name, path or "no preload", why))
    for n in control_caught:
        print("WARNING: %s: the control case was caught (%s): the classification of that column is not"
              " trustworthy" % (n, results[(CONTROL, n)]["how"]))

    summary = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "definition": "caught = the process did not print SURVIVED and exit 0 (signal, non-zero exit or timeout)",
        "timeout_s": a.timeout,
        "allocators": [{"name": n, "path": p} for n, p in columns],
        "skipped": [{"name": n, "path": p, "why": why} for n, p, why in skipped],
        "cases": cases,
        "totals": totals,
        "misuse_cases": len(misuse_cases),
        "results": [results[(c, n)] for c in cases for n in names],
    }
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")
    if a.tsv:
        with open(a.tsv, "w") as f:
            f.write("case\tallocator\tcaught\thow\tstderr_first_line\n")
            for c in cases:
                for n in names:
                    r = results[(c, n)]
                    f.write("%s\t%s\t%d\t%s\t%s\n" % (c, n, r["caught"], r["how"],
                                                      r["stderr_first_line"].replace("\t", " ")))
    if a.markdown:
        write_markdown(a.markdown, summary, columns, cases, misuse_cases, results, totals, skipped)
    return 2 if bad else 0


def write_markdown(path, s, columns, cases, misuse_cases, results, totals, skipped):
    names = [n for n, _ in columns]
    md = []
    md.append("# Heap misuse: what each allocator catches")
    md.append("")
    md.append("Generated by `make misuse` (`libhz3/reliability/misuse/run.py`) on %s, on %s. Each row is one"
              " program (`libhz3/reliability/misuse/misuse.c CASE`, built with `gcc -O0 -fno-builtin`,"
              " no sanitizer) that commits one heap misuse and then writes `SURVIVED` and exits 0."
              % (s["date"], s["machine"]))
    md.append("")
    md.append("**caught** means the process did not get there: it died by a signal (SIGABRT from the"
              " allocator's own check, or SIGSEGV/SIGBUS from the misuse itself, e.g. writing into"
              " memory the allocator had unmapped), exited non-zero, or ran past the %g s timeout."
              " `-` means it printed `SURVIVED` and exited 0: the misuse went unnoticed. The row"
              " `%s` does nothing wrong and must survive everywhere; it is not counted."
              % (s["timeout_s"], CONTROL))
    md.append("")
    md.append("Sizes: small 24 B and 200 B, medium 8 KiB and 40 KiB, large 200 KiB and 4 MiB. Each"
              " allocator is switched in with `LD_PRELOAD` (glibc: none), and the runner checks that"
              " the preloaded library really serves `malloc` before it counts anything.")
    md.append("")
    md.append("These are this project's own %d cases, not the public heap-misuse suite of 116 programs"
              " measured earlier (there: glibc 68, hz3 release 31, hz3 check 47, mimalloc 28, tcmalloc 26,"
              " jemalloc 22); the totals of the two are not comparable, the ranking roughly is."
              " `libhz3/reliability/t_misuse.sh` (in `make test`) keeps hz3's floor: every case"
              " release catches here stays caught, and check catches a superset."
              % len(misuse_cases))
    md.append("")
    md.append("| case | " + " | ".join(names) + " |")
    md.append("|---|" + "---|" * len(names))
    for c in cases:
        md.append("| `%s` | " % c + " | ".join("caught" if results[(c, n)]["caught"] else "-" for n in names) + " |")
    md.append("| **caught, of %d** | " % len(misuse_cases) + " | ".join("**%d**" % totals[n] for n in names) + " |")
    md.append("")
    md.append("Libraries:")
    md.append("")
    for n, p in columns:
        md.append("- %s: %s" % (n, "`%s`" % p if p else "no preload (the C library)"))
    for n, p, why in skipped:
        md.append("- %s: not measured — `%s` %s" % (n, p, why))
    md.append("")
    md.append("How each hz3 column caught its cases (signal or status, and the allocator's message):")
    md.append("")
    for n in names:
        if not n.startswith("hz3"):
            continue
        md.append("- %s:" % n)
        for c in misuse_cases:
            r = results[(c, n)]
            if r["caught"]:
                msg = r["stderr_first_line"]
                md.append("  - `%s`: %s%s" % (c, r["how"], " — `%s`" % msg if msg else ""))
    md.append("")
    with open(path, "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
