#!/usr/bin/env bash
# Self-test of the test harness: a canary program (scripts/tests/harness_canary.c) prints PASS
# lines and then crashes (SIGSEGV, abort) or exits non-zero, and every runner path must report
# that as a failure: libhz3/unit/t_unit.sh (a unit binary piped through sed), run_group
# (libhz3/tests/lib.sh), check (scripts/testlib.sh), and scripts/run-tests.sh itself on a
# throwaway tree with one test script. A clean canary is the control: it must not fail. Then
# libhz3/tests/check.h's FAIL lines (scripts/tests/check_canary.cc): file:line and both values. The
# canary's own PASS lines are captured, never printed, so they are not counted by the outer run.
# PASS here means the harness caught the misbehaviour; FAIL means it was hidden.
# timeout: 60
set -u
top=${HZ3_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/scripts/testlib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
canary=$tmp/harness_canary
cc=${CC:-cc}
if ! "$cc" -O0 -o "$canary" "$top/scripts/tests/harness_canary.c" 2> "$tmp/cc.log"; then
  fail harness/canary_builds "$cc: $(head -2 "$tmp/cc.log" | tr '\n' ' ')"
  exit 0
fi

# fails_in LOG NAME: LOG has a FAIL line whose name starts with NAME.
fails_in() { grep -q "^FAIL: $2" "$1"; }
oneline() { tr '\n' ' ' < "$1" | cut -c1-300; }

# The canary itself: two PASS lines, then death by SIGSEGV (status 139).
"$canary" segv harness > "$tmp/direct.out" 2>&1
rc=$?
if [ $rc -eq 139 ] && [ "$(grep -c '^PASS: ' "$tmp/direct.out")" -eq 2 ]; then
  pass harness/canary_crashes_after_pass_lines
else
  fail harness/canary_crashes_after_pass_lines "status $rc, output: $(oneline "$tmp/direct.out")"
fi

# --- libhz3/unit/t_unit.sh: each variant's unit binary is a canary in another mode --------------
tbin=$tmp/tbin
mkdir -p "$tbin"
mk_unit() { printf '#!/bin/sh\nexec "%s" %s unit\n' "$canary" "$2" > "$tbin/unit_test_$1"; chmod +x "$tbin/unit_test_$1"; }
mk_unit release segv
mk_unit check exit3
mk_unit noprobes abort
mk_unit noptag clean
HZ3_TOP=$top HZ3_TBIN=$tbin bash "$top/libhz3/unit/t_unit.sh" > "$tmp/unit.out" 2>&1
for vm in release:segv check:exit3 noprobes:abort; do
  v=${vm%%:*} m=${vm#*:}
  if fails_in "$tmp/unit.out" "unit/$v"; then
    pass "harness/unit_script_reports_$m"
  else
    fail "harness/unit_script_reports_$m" "t_unit.sh printed no FAIL for unit/$v (canary $m after PASS lines): $(oneline "$tmp/unit.out")"
  fi
done
if fails_in "$tmp/unit.out" "unit/noptag"; then
  fail harness/unit_script_clean_control "a clean unit binary was reported as failed: $(oneline "$tmp/unit.out")"
else
  pass harness/unit_script_clean_control
fi

# --- run_group (libhz3/tests/lib.sh) and check (scripts/testlib.sh) ----------------------------
for m in segv abort exit3 clean; do
  (
    HZ3_TOP=$top
    . "$top/libhz3/tests/lib.sh"
    run_group "harness/rg_$m" "" "$canary" "$m" "harness/rg_$m"
  ) > "$tmp/rg_$m.out" 2>&1
  (
    . "$top/scripts/testlib.sh"
    check "harness/ck_$m" "$canary" "$m" "harness/ck_$m"
  ) > "$tmp/ck_$m.out" 2>&1
  for h in rg ck; do
    name=run_group
    [ $h = ck ] && name=check
    if [ $m = clean ]; then
      if fails_in "$tmp/${h}_$m.out" "harness/${h}_$m"; then
        fail "harness/${name}_clean_control" "a clean program was reported as failed: $(oneline "$tmp/${h}_$m.out")"
      else
        pass "harness/${name}_clean_control"
      fi
    elif fails_in "$tmp/${h}_$m.out" "harness/${h}_$m"; then
      pass "harness/${name}_reports_$m"
    else
      fail "harness/${name}_reports_$m" "no FAIL line for a canary that ends with $m: $(oneline "$tmp/${h}_$m.out")"
    fi
  done
done

# --- scripts/run-tests.sh on a throwaway tree ---------------------------------------------------
# The runner finds its scripts relative to its own location, so a copy in a temporary tree runs
# only the scripts planted there. Each planted script ends with the canary, as a script whose
# last command is the program under test does.
rt=$tmp/rt
mkdir -p "$rt/scripts" "$rt/libhz3/canary"
cp "$top/scripts/run-tests.sh" "$top/scripts/testlib.sh" "$rt/scripts/"
for m in segv exit3 clean; do
  printf '#!/usr/bin/env bash\n# timeout: 20\n"%s" %s canary_%s\n' "$canary" "$m" "$m" \
    > "$rt/libhz3/canary/t_$m.sh"
done
for m in segv exit3 clean no_such_script; do
  (cd "$rt" && env -u HZ3_TOP BUILD=build bash scripts/run-tests.sh "t_$m") > "$tmp/rt_$m.out" 2>&1
  rc=$?
  last=$(tail -1 "$tmp/rt_$m.out")
  if [ $m = clean ]; then
    if [ $rc -eq 0 ] && [ "$last" = "2 passed, 0 failed" ]; then
      pass harness/run_tests_clean_control
    else
      fail harness/run_tests_clean_control "status $rc, last line '$last'"
    fi
  elif [ $rc -ne 0 ] && [[ $last =~ ^[0-9]+\ passed,\ [1-9][0-9]*\ failed ]]; then
    pass "harness/run_tests_reports_$m"
  else
    fail "harness/run_tests_reports_$m" "status $rc, last line '$last' (canary ending with $m, or a filter matching no script)"
  fi
done

# A filter matching no script beside one that matches: the clean canary's two PASS lines, plus
# one failure that names the unmatched filter.
(cd "$rt" && env -u HZ3_TOP BUILD=build bash scripts/run-tests.sh t_clean t_no_such_script) \
  > "$tmp/rt_mixed.out" 2>&1
rc=$?
last=$(tail -1 "$tmp/rt_mixed.out")
if [ $rc -ne 0 ] && [ "$last" = "2 passed, 1 failed" ] &&
  grep -q 'FAIL: run-tests: no test script matches: t_no_such_script$' "$tmp/rt_mixed.out"; then
  pass harness/run_tests_reports_unmatched_filter_beside_a_match
else
  fail harness/run_tests_reports_unmatched_filter_beside_a_match "status $rc, last line '$last'"
fi

# --- libhz3/tests/check.h: what a failed check puts on its FAIL line ---------------------------
cxx=${CXX:-g++}
if ! "$cxx" -std=c++20 -O0 -I"$top/libhz3/tests" -I"$top/libhz3/include" \
  -o "$tmp/check_canary" "$top/scripts/tests/check_canary.cc" 2> "$tmp/cxx.log"; then
  fail harness/check_canary_builds "$cxx: $(head -2 "$tmp/cxx.log" | tr '\n' ' ')"
  exit 0
fi
"$tmp/check_canary" > "$tmp/check.out" 2>&1
rc=$?
# check_line NAME REGEX: the canary's line for case NAME matches REGEX (grep -E).
check_line() {
  if [ $rc -eq 1 ] && grep -qE "$2" "$tmp/check.out"; then
    pass "harness/check_h_$1"
  else
    fail "harness/check_h_$1" "status $rc, wanted /$2/ in: $(oneline "$tmp/check.out")"
  fi
}
check_line eq_shows_both_values '^FAIL: canary/eq_int: check_canary\.cc:17: seven\(\) == 8u \(left 7, right 8\)$'
check_line eq_str_shows_both_strings '^FAIL: canary/eq_str: check_canary\.cc:18: word\(\) == "tab here" \(left "tab\\there", right "tab here"\)$'
check_line checkf_shows_its_message '^FAIL: canary/checkf: check_canary\.cc:19: seven\(\) < 0 \(seven is 7\)$'
check_line keeps_first_and_counts_the_rest '^FAIL: canary/two_failures: check_canary\.cc:21: seven\(\) == 1 \[\+1 more failed checks\]$'
check_line passing_case_passes '^PASS: canary/passes$'
