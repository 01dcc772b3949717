# Sourced by test scripts (<component>/tests/t_*.sh). Result lines are what the runner counts.
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: ${2:-}"; }
skip() { echo "SKIP: $1: $2"; }
# check NAME CMD…: PASS when CMD exits 0, FAIL (with its last output lines) otherwise.
check() {
  local name=$1; shift
  local out; out=$("$@" 2>&1); local rc=$?
  if [ $rc -eq 0 ]; then pass "$name"; else fail "$name" "exit $rc: $(echo "$out" | tail -3 | tr '\n' ' ')"; fi
}
is_root() { [ "$(id -u)" -eq 0 ]; }
# require_bpftrace NAME: the test NAME fails (and its script ends) without bpftrace, which the
# test dependencies install: a missing tracer must not turn a check into a skip.
require_bpftrace() {
  command -v bpftrace >/dev/null && return 0
  fail "$1" "bpftrace is not installed (scripts/deps.sh test installs it)"
  exit 0
}
# exit_verdict NAME RC LOG: after a test program ran with its output in LOG (its result lines
# already printed), turns what its exit status says into a FAIL of NAME when the lines alone
# would hide it: death by a signal (unless its last FAIL line already names the crash or
# timeout), a timeout (124/137 from timeout(1)), a non-zero exit without any FAIL line, or a
# clean exit with no result line at all. Status 1 when it printed a FAIL.
exit_verdict() {
  local name=$1 rc=$2 log=$3
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    fail "$name" "timed out (status $rc)"
  elif [ "$rc" -gt 128 ]; then
    grep '^FAIL: ' "$log" | tail -1 | grep -qE ': (crashed|timed out)' && return 1
    fail "$name" "killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null)) after $(grep -c '^PASS: ' "$log") PASS lines"
  elif [ "$rc" -ne 0 ]; then
    grep -q '^FAIL: ' "$log" && return 1
    fail "$name" "exited with status $rc without a FAIL line"
  elif ! grep -qE '^(PASS|FAIL|SKIP): ' "$log"; then
    fail "$name" "exited 0 but printed no result line"
  else
    return 0
  fi
  return 1
}
# run_pytest FILE [ARG…]: runs the pytest file FILE with scripts/pytest_lines.py, which prints
# each test's PASS/FAIL/SKIP line; pytest's exit status (5: it collected no test). One SKIP when
# pytest is missing. No __pycache__ is written into the tree.
run_pytest() {
  local f=$1; shift
  if ! /usr/bin/python3 -c 'import pytest' 2>/dev/null; then
    skip "pytest/$(basename "$f" .py)" "pytest not installed (scripts/deps.sh test installs python3-pytest)"
    return 0
  fi
  local scripts
  scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)  # pytest_lines.py's folder
  PYTHONPATH="$scripts${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1 \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider -o console_output_style=classic -p pytest_lines \
      "$f" "$@"
}
# pytest_checks FILE [NAME…] [-- VAR=VALUE…]: runs the tests test_NAME of the pytest file FILE
# (all of them when no NAME is given; FILE relative to the calling script's folder, or absolute)
# with each VAR=VALUE exported to them, through run_pytest. Their PASS/FAIL/SKIP lines are
# printed; status 0 when every one passed, 1 when one failed. Any other pytest status (a NAME
# that does not exist, a file that does not import) is a FAIL named after FILE, and status 2.
pytest_checks() {
  local file=$1; shift
  case $file in /*) ;; *) file=$(dirname "${BASH_SOURCE[1]}")/$file ;; esac
  local ids=() rc
  while [ $# -gt 0 ] && [ "$1" != -- ]; do ids+=("$file::test_$1"); shift; done
  [ $# -gt 0 ] && shift
  [ ${#ids[@]} -gt 0 ] || ids=("$file")
  (
    for kv in "$@"; do export "${kv?}"; done
    run_pytest "${ids[@]}"
  )
  rc=$?
  [ $rc -le 1 ] && return $rc
  fail "pytest/$(basename "$file" .py)" "pytest exited with status $rc running ${ids[*]##*::} (5: nothing collected)"
  return 2
}
