# Sourced by libhz3/tests/t_*.sh: paths to the library variants and test programs (from the
# variables scripts/run-tests.sh exports, with the same defaults when a script runs alone), and
# helpers that turn a missing library into SKIP and a crashed program into FAIL. Result lines
# themselves come from scripts/testlib.sh (pass/fail/skip).
top=${HZ3_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$top/scripts/testlib.sh"
build_dir=${HZ3_BUILD:-$top/${BUILD:-build}}
HZ3_LIB=${HZ3_LIB:-$build_dir/lib/libhz3.so}
HZ3_LIB_CHECK=${HZ3_LIB_CHECK:-$build_dir/check/lib/libhz3.so}
HZ3_LIB_NOPROBES=${HZ3_LIB_NOPROBES:-$build_dir/noprobes/lib/libhz3.so}
HZ3_LIB_NOPTAG=${HZ3_LIB_NOPTAG:-$build_dir/noptag/lib/libhz3.so}
HZ3_LIB_HARDENED=${HZ3_LIB_HARDENED:-$build_dir/hardened/lib/libhz3.so}
HZ3_TBIN=${HZ3_TBIN:-$build_dir/tests}

# variant_lib VARIANT: the library path of a variant.
variant_lib() {
  case $1 in
    release) echo "$HZ3_LIB" ;;
    check) echo "$HZ3_LIB_CHECK" ;;
    noprobes) echo "$HZ3_LIB_NOPROBES" ;;
    noptag) echo "$HZ3_LIB_NOPTAG" ;;
    hardened) echo "$HZ3_LIB_HARDENED" ;;
    magall) echo "$HZ3_LIB_MAGALL" ;;
    *) echo "/nonexistent/unknown-variant-$1" ;;
  esac
}

# need_lib NAME LIB: SKIP (and status 1) when the library is not built yet.
need_lib() {
  [ -f "$2" ] && return 0
  skip "$1" "${2#"$top"/} not built"
  return 1
}

# need_bin NAME PROGRAM…: FAIL (and status 1) when a test program is missing; `make all` builds
# them, so a missing one is a build problem, not a reason to skip.
need_bin() {
  local name=$1 b
  shift
  for b in "$@"; do
    if [ ! -x "$b" ]; then
      fail "$name" "${b#"$top"/} not built (run make)"
      return 1
    fi
  done
}

# run_group GROUP LIB PROGRAM [ARG…]: runs a test program with LIB preloaded and passes its
# result lines through. When the program dies in a case (its crash guard prints
# "FAIL: GROUP/CASE: crashed…" or "…timed out…"), it is rerun with `--after CASE`, so one crash
# does not hide the cases after it. A death without such a line, a non-zero exit without any
# FAIL line, or a clean exit without any result line, becomes a FAIL of its own.
run_group() {
  local group=$1 lib=$2 out rc last tries=0
  shift 2
  local resume=()
  out=$(mktemp)
  while :; do
    LD_PRELOAD=$lib "$@" "${resume[@]}" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -gt 128 ]; then
      last=$(awk -v p="FAIL: $group/" 'index($0, p) == 1 && /: (crashed|timed out)/ {
        s = substr($0, length(p) + 1); sub(/:.*/, "", s); c = s } END { print c }' "$out")
      tries=$((tries + 1))
      if [ -n "$last" ] && [ "$tries" -lt 20 ]; then
        resume=(--after "$last")
        continue
      fi
      fail "$group" "$(basename "$1") killed by signal $((rc - 128)); later cases did not run"
    elif [ "$rc" -ne 0 ] && ! grep -q '^FAIL: ' "$out"; then
      fail "$group" "$(basename "$1") exited with status $rc without a FAIL line"
    elif [ "$rc" -eq 0 ] && [ ${#resume[@]} -eq 0 ] && ! grep -qE '^(PASS|FAIL|SKIP): ' "$out"; then
      fail "$group" "$(basename "$1") exited 0 but printed no result line"
    fi
    break
  done
  rm -f "$out"
}
