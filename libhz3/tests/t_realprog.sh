#!/usr/bin/env bash
# Real programs nobody here wrote, run twice: once on glibc (the reference) and once with libhz3
# preloaded under maps_watch, which samples /proc/PID/maps of the program and its children while
# they run. Each program must exit 0, print exactly the reference output, and be proven served:
# the libhz3 path mapped, its hz3_arena_desc readable with the magic, its arena mapped in that
# process and pages handed out, and
# (where the kernel names anonymous regions) `[anon:hz3-arena]`.
#   python3   dict/list/str churn with PYTHONMALLOC=malloc (every object through malloc)
#   g++ -O2   compiling libhz3/tests/stress_test.cc (proof taken in cc1plus; the .o must match)
#   xz -T2    multi-threaded compression and decompression of generated data (>= 2 threads seen)
#   sort      --parallel=2 with a small buffer (temporary files, merge)
# Budget: ~45 s.
# timeout: 300
. "$(dirname "$0")/lib.sh"
need_bin realprog "$HZ3_TBIN/maps_watch" || exit 0
need_lib realprog "$HZ3_LIB" || exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
watch() { "$HZ3_TBIN/maps_watch" --preload "$HZ3_LIB" --report "$@"; }

# proof REPORT COMM_REGEX [MIN_THREADS]: prints nothing when a process whose name matches was
# seen served by libhz3 (with at least MIN_THREADS threads at some sample); otherwise why not.
proof() {
  awk -v c="$2" -v min="${3:-1}" '
    NR == 1 { for (i = 1; i <= NF; i++) { split($i, kv, "="); head[kv[1]] = kv[2] }; next }
    {
      delete f
      for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      if (f["comm"] !~ c) next
      found = 1
      if (f["lib"] != 1) why = "libhz3 not mapped in " $0
      else if (f["desc"] != 1) why = "hz3_arena_desc not readable or wrong magic in " $0
      else if (f["arena"] != 1) why = "the descriptor'"'"'s arena is not mapped in " $0
      else if (f["hwm_pages"] + 0 == 0) why = "arena handed out no pages in " $0
      else if (head["anon_names_supported"] == 1 && f["anon"] != 1) why = "no [anon:hz3-arena] in " $0
      else if (f["threads"] + 0 < min + 0) why = "fewer than " min " threads seen in " $0
      else ok = 1
    }
    END {
      if (head["desc_symbol"] != 1) print "hz3_arena_desc not exported by the library"
      else if (!found) print "no process matching " c " was sampled"
      else if (!ok) print why
    }' "$1"
}

# same NAME REF OUT RC_REF RC_OUT REPORT COMM [MIN_THREADS]: one result line for a program.
same() {
  local name=$1 ref=$2 out=$3 rc_ref=$4 rc=$5 report=$6 comm=$7 min=${8:-1} why
  if [ "$rc_ref" -ne 0 ]; then
    fail "$name" "reference run (glibc) exited with $rc_ref: $(tail -c 300 "$ref.err" 2>/dev/null)"
  elif [ "$rc" -ne 0 ]; then
    fail "$name" "run with libhz3 exited with $rc: $(tail -c 300 "$out.err" 2>/dev/null | tr '\n' ' ')"
  elif ! cmp -s "$ref" "$out"; then
    fail "$name" "output differs from the glibc run: $(cmp "$ref" "$out" 2>&1 | head -1)"
  elif why=$(proof "$report" "$comm" "$min") && [ -n "$why" ]; then
    fail "$name" "not proven served by libhz3: $why"
  else
    pass "$name"
  fi
}

# --- python3 -------------------------------------------------------------------------------------
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
if [ -z "$py" ]; then
  skip realprog/python3 "python3 not installed"
else
  export PYTHONHASHSEED=0 PYTHONMALLOC=malloc
  script=$top/libhz3/tests/fixtures/churn.py
  "$py" -I "$script" 3 > "$tmp/py.ref" 2> "$tmp/py.ref.err"; r0=$?
  watch "$tmp/py.watch" -- "$py" -I "$script" 3 > "$tmp/py.out" 2> "$tmp/py.out.err"; r1=$?
  same realprog/python3_churn "$tmp/py.ref" "$tmp/py.out" $r0 $r1 "$tmp/py.watch" '^python3'
  unset PYTHONHASHSEED PYTHONMALLOC
fi

# --- g++ -O2 on a real source file ----------------------------------------------------------------
cxx=${CXX:-g++}
src=$top/libhz3/tests/stress_test.cc
flags=(-std=c++20 -O2 -Wall -frandom-seed=hz3 -I"$top/libhz3/include" -c "$src")
"$cxx" "${flags[@]}" -o "$tmp/cc.ref" 2> "$tmp/cc.ref.err"; r0=$?
watch "$tmp/cc.watch" -- "$cxx" "${flags[@]}" -o "$tmp/cc.out" 2> "$tmp/cc.out.err"; r1=$?
same realprog/gxx_O2 "$tmp/cc.ref" "$tmp/cc.out" $r0 $r1 "$tmp/cc.watch" '^cc1plus$'

# --- xz -T2 ------------------------------------------------------------------------------------------
# 21 MiB of generated text in 1 MiB blocks, so both worker threads get work.
awk 'BEGIN { x = 12345
  for (i = 0; i < 600000; i++) {
    x = (x * 1103515245 + 12345) % 2147483648
    printf "%08d %s line-%d %x\n", x % 100000000, substr("abcdefghijklmnopqrstuvwxyz", x % 26 + 1, 1 + x % 13), i, x
  } }' > "$tmp/data"
if ! command -v xz > /dev/null; then
  skip realprog/xz_T2 "xz not installed"
else
  xz -T2 -3 --block-size=1MiB -c "$tmp/data" > "$tmp/xz.ref" 2> "$tmp/xz.ref.err"; r0=$?
  watch "$tmp/xz.watch" -- xz -T2 -3 --block-size=1MiB -c "$tmp/data" > "$tmp/xz.out" \
    2> "$tmp/xz.out.err"; r1=$?
  same realprog/xz_T2_compress "$tmp/xz.ref" "$tmp/xz.out" $r0 $r1 "$tmp/xz.watch" '^xz$' 2
  watch "$tmp/unxz.watch" -- xz -d -T2 -c "$tmp/xz.out" > "$tmp/unxz.out" 2> "$tmp/unxz.out.err"
  r1=$?
  same realprog/xz_T2_decompress "$tmp/data" "$tmp/unxz.out" 0 $r1 "$tmp/unxz.watch" '^xz$' 2
fi

# --- sort --parallel=2 -----------------------------------------------------------------------------
sort_args=(--parallel=2 -S 8M -T "$tmp" -k2,2 -k1,1n "$tmp/data")
LC_ALL=C sort "${sort_args[@]}" > "$tmp/sort.ref" 2> "$tmp/sort.ref.err"; r0=$?
LC_ALL=C watch "$tmp/sort.watch" -- sort "${sort_args[@]}" > "$tmp/sort.out" \
  2> "$tmp/sort.out.err"; r1=$?
same realprog/sort_parallel2 "$tmp/sort.ref" "$tmp/sort.out" $r0 $r1 "$tmp/sort.watch" '^sort$'
