#!/usr/bin/env bash
# timeout: 240
# `make bench QUICK=1` in miniature: the runner runs every workload under every allocator (hz3,
# hz3-noptag, glibc, mimalloc, jemalloc, tcmalloc), once and tiny, and must produce a number for
# each, a Markdown table and the plots. It asserts that everything ran, not how fast (timing on
# a shared 2-core VM is not a test). Also: a missing allocator fails loudly before anything runs,
# and a preload that did not take is a failed run, not a glibc number under another name. The
# results check is test_bench_quick.py's, run through pytest_checks.
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
pytest_checks test_bench_quick.py every_allocator_ran -- HZ3_RESULTS="$out/results.json" HZ3_ALLOCS="$allocs"
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
