#!/usr/bin/env bash
# timeout: 240
# `make bench QUICK=1` in miniature: the runner runs every workload under every allocator (hz3,
# hz3-noptag, glibc, mimalloc, jemalloc, tcmalloc), once and tiny, and must produce a number for
# each, a Markdown table and the plots. It asserts that everything ran, not how fast (timing on
# a shared 2-core VM is not a test). Also: a missing allocator fails loudly before anything runs,
# and a preload that did not take is a failed run, not a glibc number under another name.
# About 40 s.
. "$HZ3_TOP/scripts/testlib.sh"
PY=/usr/bin/python3
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

allocs=hz3,hz3-noptag,glibc,mimalloc,jemalloc,tcmalloc
for lib in "$HZ3_LIB" "$HZ3_LIB_NOPTAG"; do
  if [ ! -f "$lib" ]; then
    skip bench_quick_hz3 "$lib not built (make variants); running the peers only"
    allocs=glibc,mimalloc,jemalloc,tcmalloc
  fi
done

$PY "$HZ3_TOP/bench/run.py" --build "$HZ3_BUILD" --quick --allocators "$allocs" --out "$out" \
  > "$out/log" 2>&1
rc=$?
# Exit 1 with failed runs is judged below per cell; exit 2 means nothing ran.
if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
  fail bench_quick_runs "runner exit $rc: $(tail -3 "$out/log" | tr '\n' ' ')"
  exit 0
fi
$PY - "$out/results.json" "$allocs" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = sys.argv[2].split(",")
ok = True
for w, per in d["samples"].items():
    for a in want:
        s = per.get(a, [])
        if not s or not all(x.get("ops_per_s", 0) > 0 and x.get("peak_rss_kb", 0) > 0 for x in s):
            print(f"FAIL: bench_quick_{w}_{a}: no ops/s (failures: {d['failures']})")
            ok = False
        if a.startswith("hz3") and any(x.get("misaligned") for x in s):
            print(f"FAIL: bench_quick_{w}_{a}: libhz3 returned misaligned blocks")
            ok = False
n = len(d["samples"])
if n < 16:
    print(f"FAIL: bench_quick_workloads: only {n} workloads ran")
    ok = False
if ok:
    print(f"{n} workloads x {len(want)} allocators ran")
    print("PASS: bench_quick_every_allocator_ran")
PY
rc=$?
[ $rc -eq 0 ] || fail bench_quick_checker "the results checker exited with status $rc (traceback above)"
for f in results.md ops.png ops.svg rss.png rss.svg; do
  [ -s "$out/$f" ] || { fail bench_quick_outputs "$f missing"; break; }
done && grep -q '^| small |' "$out/results.md" && grep -q 'Kernel\|kernel' "$out/results.md" \
  && grep -q 'Commit' "$out/results.md" && pass bench_quick_outputs \
  || fail bench_quick_outputs "results.md lacks the table or the stamp"

# A missing allocator: exit 2, naming it, before any run.
msg=$($PY "$HZ3_TOP/bench/run.py" --build "$HZ3_BUILD" --quick --allocators glibc,ghost=/nonexistent/libhz3.so \
      --workloads small --out "$out/missing" 2>&1)
rc=$?
[ $rc -eq 2 ] && echo "$msg" | grep -q '/nonexistent/libhz3.so' && ! echo "$msg" | grep -q 'M ops/s' \
  && pass bench_missing_allocator_fails_loudly \
  || fail bench_missing_allocator_fails_loudly "exit $rc: $(echo "$msg" | tail -2 | tr '\n' ' ')"

# A library that defines no malloc: the preload "works" but glibc serves; the run must fail.
libm=$(ls /lib/x86_64-linux-gnu/libm.so.6 2>/dev/null)
if [ -n "$libm" ]; then
  msg=$($PY "$HZ3_TOP/bench/run.py" --build "$HZ3_BUILD" --quick --allocators "notmalloc=$libm" \
        --workloads small --no-plots --out "$out/nomalloc" 2>&1)
  rc=$?
  [ $rc -eq 1 ] && echo "$msg" | grep -q 'LD_PRELOAD did not take' \
    && pass bench_preload_verified || fail bench_preload_verified "exit $rc: $(echo "$msg" | tail -2 | tr '\n' ' ')"
else
  skip bench_preload_verified "no libm.so.6 to preload"
fi
