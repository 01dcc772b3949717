#!/usr/bin/env bash
# Self-hosting: the project's own build runs on libhz3. `make lib libhz3-tests` (every
# libhz3/src/*.cc and every test program, with the Makefile's real flags) runs into a temporary
# build folder with LD_PRELOAD=libhz3 on make itself, so the shell, g++, cc1plus, as and ld all
# allocate through hz3; maps_watch proves the cc1plus processes were served. The result must link
# (libhz3.so, libhz3.a, the test programs), and the self-built library must then serve the
# self-built api_test. Budget: ~90 s on 2 cores.
# timeout: 420
. "$(dirname "$0")/lib.sh"
need_bin selfhost "$HZ3_TBIN/maps_watch" || exit 0
need_lib selfhost "$HZ3_LIB" || exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/build

# A make started from `make test` inherits MAKEFLAGS (jobserver descriptors it cannot use).
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
  "$HZ3_TBIN/maps_watch" --preload "$HZ3_LIB" --report "$tmp/watch" -- \
  make -C "$top" -j2 --no-print-directory BUILD="$out" VARIANT=release lib libhz3-tests \
  > "$tmp/make.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  fail selfhost/build "make under libhz3 exited with $rc: $(grep -m3 -iE 'error|killed|hz3:' "$tmp/make.log" | tr '\n' ' ')"
  exit 0
fi
missing=()
for f in lib/libhz3.so lib/libhz3.a tests/api_test tests/stress_test tests/death_test \
         tests/rss_test tests/maps_watch; do
  [ -s "$out/$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
  fail selfhost/build "make succeeded but did not produce: ${missing[*]}"
  exit 0
fi
pass selfhost/build

# Every cc1plus the watcher sampled must have been served by libhz3; at least a few were seen.
# A process read only once cannot be judged unless that read already shows it served: a loaded
# machine can starve the watcher so that its single read lands between exec and the library's
# first allocation (lib=1, descriptor not yet published). Those are counted apart, not failed.
summary=$(awk 'NR > 1 && / comm=cc1plus / {
    good = / lib=1 / && / desc=1 / && / arena=1 / && !/ hwm_pages=0 /
    if (good) { n++; ok++ }
    else if (/ samples=1$/) short++
    else { n++; bad = $0 }
  } END { printf "%d %d %d %s", n, ok, short, bad }' "$tmp/watch")
read -r seen served short bad <<< "$summary"
if [ "${seen:-0}" -lt 3 ]; then
  fail selfhost/compiler_served "only ${seen:-0} cc1plus processes sampled more than once or served (expected one per source; ${short:-0} read once)"
elif [ "$seen" -ne "$served" ]; then
  fail selfhost/compiler_served "$((seen - served)) of $seen cc1plus not served by libhz3: $bad"
else
  pass "selfhost/compiler_served ($served served, ${short:-0} read only once before init)"
fi

# The hz3-compiled hz3 serves the hz3-compiled tests (a few representative cases).
res=$(LD_PRELOAD=$out/lib/libhz3.so "$out/tests/api_test" selfhost --hz3 \
  --only served_by_hz3 --only exports_resolve_to_hz3 --only malloc_sizes --only new_aligned \
  --only realloc_grow_shrink 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c '^PASS: ' <<< "$res")" -eq 5 ]; then
  pass selfhost/self_built_library_works
else
  fail selfhost/self_built_library_works "exit $rc: $(grep -v '^PASS' <<< "$res" | head -3 | tr '\n' ' ')"
fi
