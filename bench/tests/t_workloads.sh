#!/usr/bin/env bash
# timeout: 180
# The benchmark workloads themselves, run tiny: each prints a well-formed RESULT line under glibc
# and under libhz3, names the allocator that served malloc, rejects bad options, and catches the
# errors it exists to catch (realloc losing data, misaligned blocks, the remote-free share).
# About 15 s. Timing is not asserted: this proves the programs, bench/tests/t_bench_quick.sh the runner.
. "$HZ3_TOP/scripts/testlib.sh"
B=$HZ3_BIN

# result FILE KEY: the value of KEY in FILE's RESULT line
result() { sed -n 's/^RESULT .*\b'"$2"'=\([^ ]*\).*/\1/p' "$1" | tail -1; }

run_all() {  # run_all LABEL PRELOAD EXPECTED-ALLOCATOR-REGEX
  local label=$1 preload=$2 want=$3 out=$(mktemp)
  local cases=(
    "ssot-small:bench_ssot --size small --iters 200000"
    "ssot-medium:bench_ssot --size medium --iters 200000"
    "ssot-mixed:bench_ssot --size mixed --iters 200000"
    "xfree-0:bench_xfree --threads 2 --remote 0 --iters 50000"
    "xfree-90:bench_xfree --threads 3 --remote 90 --iters 50000"
    "prodcons:bench_prodcons --threads 2 --items 50000"
    "churn:bench_churn --threads 2 --rounds 20 --ops 500"
    "larson:bench_larson --threads 2 --rounds 3 --ops 20000"
    "realloc:bench_realloc --iters 200000"
    "aligned:bench_aligned --iters 200000"
    "largechurn:bench_largechurn --steps 6 --live 4 --rss-at 0,0.1"
    "largechurn-new:bench_largechurn --steps 6 --live 4 --api new --touch-pct 50"
    "xthread-small:bench_xthread_small --threads 2 --blocks 50000"
    "xthread-random:bench_xthread_random --threads 2 --iters 50000"
    "idle:bench_idle --threads 4 --blocks 8 --rss-at 0,0.1"
  )
  for c in "${cases[@]}"; do
    local name=${c%%:*} cmd=${c#*:}
    if ! LD_PRELOAD=$preload $B/$cmd > "$out" 2>&1; then
      fail "workload_${label}_$name" "exit $?: $(tail -2 "$out" | tr '\n' ' ')"; continue
    fi
    local ops rate alloc peak ex
    ops=$(result "$out" ops); rate=$(result "$out" ops_per_s); alloc=$(result "$out" allocator)
    peak=$(result "$out" peak_rss_kb); ex=$(result "$out" exit_rss_kb)
    if [ -z "$ops" ] || [ "$ops" -le 0 ] || [ -z "$rate" ] || [ "${rate%%.*}" -le 0 ]; then
      fail "workload_${label}_$name" "no ops/s in: $(grep RESULT "$out")"
    elif ! [[ $alloc =~ $want ]]; then
      fail "workload_${label}_$name" "malloc served by '$alloc', expected $want"
    elif [ "${peak:--1}" -le 0 ] || [ "${ex:--1}" -le 0 ] || [ "$ex" -gt "$peak" ]; then
      fail "workload_${label}_$name" "RSS readings wrong: peak $peak exit $ex"
    else
      pass "workload_${label}_$name"
    fi
    case $name in
      aligned) [ "$(result "$out" misaligned)" = 0 ] && pass "workload_${label}_aligned_correct" \
                 || fail "workload_${label}_aligned_correct" "$(grep -v RESULT "$out" | head -2)" ;;
      largechurn|idle)
        n=$(result "$out" rss_after_kb | tr ',' '\n' | grep -c '^[1-9][0-9]*$')
        [ "$(result "$out" rss_after_s)" = 0,0.1 ] && [ "$n" = 2 ] \
          && pass "workload_${label}_${name}_rss_after" \
          || fail "workload_${label}_${name}_rss_after" "$(grep RESULT "$out")" ;;&
      largechurn*) [ "$(result "$out" dirty_pages)" = 0 ] && [ "$(result "$out" live_kb)" -ge 20480 ] \
                     && pass "workload_${label}_${name}_zeroed" \
                     || fail "workload_${label}_${name}_zeroed" "$(grep RESULT "$out")" ;;
      xthread-*) [ "$(result "$out" corrupt)" = 0 ] && pass "workload_${label}_${name}_intact" \
                   || fail "workload_${label}_${name}_intact" "$(grep RESULT "$out")" ;;
      xfree-90) a=$(result "$out" remote_pct_actual)
                awk -v a="$a" 'BEGIN { exit !(a >= 89 && a <= 91) }' \
                  && pass "workload_${label}_xfree_remote_share" \
                  || fail "workload_${label}_xfree_remote_share" "asked 90 %, got $a %" ;;
    esac
  done
  rm -f "$out"
}

run_all glibc "" 'libc\.so'
if [ -f "$HZ3_LIB" ]; then
  run_all hz3 "$HZ3_LIB" "$(readlink -f "$HZ3_LIB" | sed 's/[.]/\\./g')"
else
  skip workload_hz3 "$HZ3_LIB not built"
fi

# The same seed gives the same work: SSOT's checksum is a function of the LCG alone.
# checksum ARG…: bench_ssot's check= value; status 1 when bench_ssot itself failed.
checksum() {
  local out
  out=$($B/bench_ssot "$@") || return 1
  sed -n 's/.* check=\([0-9]*\).*/\1/p' <<< "$out"
}
c1= c2= c3=
c1=$(checksum --iters 100000) && c2=$(checksum --iters 100000) &&
  c3=$(checksum --iters 100000 --seed 7)
rc=$?
[ $rc -eq 0 ] && [ -n "$c1" ] && [ "$c1" = "$c2" ] && [ "$c1" != "$c3" ] && pass workload_seeded \
  || fail workload_seeded "bench_ssot status $rc, checksums $c1 $c2 (seed 7: $c3)"

# Options: an unknown or malformed option is an error (exit 2), never a silent default.
bad_opts() {
  "$@" >/dev/null 2>&1; [ $? -eq 2 ]
}
bad_opts $B/bench_ssot --itres 5 && bad_opts $B/bench_ssot --iters 1x && \
  bad_opts $B/bench_ssot --size huge && bad_opts $B/bench_xfree --threads 1 --remote 50 && \
  bad_opts $B/bench_prodcons --ring 1000 && bad_opts $B/bench_largechurn --api malloc && \
  bad_opts $B/bench_largechurn --rss-at 2,1 && bad_opts $B/bench_idle --rss-at 1s && \
  bad_opts $B/bench_xthread_small --ring 1000 && pass workload_bad_options \
  || fail workload_bad_options "a bad option did not exit 2"
out=$($B/bench_ssot --iters=2e5 --ws=100 2>&1)
rc=$?
[ $rc -eq 0 ] && grep -q 'ops=200000 ' <<< "$out" && pass workload_option_forms \
  || fail workload_option_forms "--key=value or 2e5 not accepted (status $rc)"

# bench_realloc must notice an allocator that loses data: a shim whose realloc returns a fresh,
# uninitialised block (no copy) has to make it exit 3.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/badrealloc.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
void* realloc(void* p, size_t n) {
  static void* (*real_malloc)(size_t);
  if (!real_malloc) real_malloc = (void* (*)(size_t))dlsym(RTLD_NEXT, "malloc");
  void* q = real_malloc(n);
  if (q) memset(q, 0xA5, n);  /* the bug: nothing copied */
  free(p);
  return q;
}
C
if gcc -shared -fPIC -O1 -o "$tmp/badrealloc.so" "$tmp/badrealloc.c" -ldl 2>"$tmp/cc.log"; then
  LD_PRELOAD=$tmp/badrealloc.so $B/bench_realloc --iters 20000 >/dev/null 2>&1
  rc=$?
  [ $rc -eq 3 ] && pass workload_realloc_detects_loss \
    || fail workload_realloc_detects_loss "exit $rc with a realloc that copies nothing"
else
  fail workload_realloc_detects_loss "cannot build the shim: $(head -2 "$tmp/cc.log")"
fi

# bench_largechurn must notice a calloc that does not zero: a shim that fills its blocks with 0xA5.
cat > "$tmp/badcalloc.c" <<'C'
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
void* calloc(size_t n, size_t m) {
  void* p = malloc(n * m);  /* no overflow check: the test asks for 5 MiB */
  if (p) memset(p, 0xA5, n * m);
  return p;
}
C
if gcc -shared -fPIC -O1 -o "$tmp/badcalloc.so" "$tmp/badcalloc.c" 2>"$tmp/cc.log"; then
  LD_PRELOAD=$tmp/badcalloc.so $B/bench_largechurn --steps 2 --live 2 --max-mib 5 >/dev/null 2>&1
  rc=$?
  [ $rc -eq 3 ] && pass workload_largechurn_detects_dirty_calloc \
    || fail workload_largechurn_detects_dirty_calloc "exit $rc with a calloc that does not zero"
else
  fail workload_largechurn_detects_dirty_calloc "cannot build the shim: $(head -2 "$tmp/cc.log")"
fi

# bench_aligned must notice misaligned blocks: a shim whose aligned_alloc ignores the alignment.
cat > "$tmp/badalign.c" <<'C'
#include <stdlib.h>
void* aligned_alloc(size_t align, size_t n) { (void)align; return malloc(n); }
C
if gcc -shared -fPIC -O1 -o "$tmp/badalign.so" "$tmp/badalign.c" 2>"$tmp/cc.log"; then
  # Misaligned blocks are counted, not fatal: the run must still end with status 0.
  out=$(LD_PRELOAD=$tmp/badalign.so $B/bench_aligned --iters 20000 2>&1)
  rc=$?
  n=$(echo "$out" | sed -n 's/.* misaligned=\([0-9]*\).*/\1/p')
  [ $rc -eq 0 ] && [ "${n:-0}" -gt 0 ] && pass workload_aligned_detects_misalignment \
    || fail workload_aligned_detects_misalignment "status $rc, misaligned=${n:-none} with an aligned_alloc that ignores alignment"
else
  fail workload_aligned_detects_misalignment "cannot build the shim: $(head -2 "$tmp/cc.log")"
fi
