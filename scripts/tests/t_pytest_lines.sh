#!/usr/bin/env bash
# The pytest bridge (scripts/pytest_lines.py through testlib.sh's run_pytest): a pytest file with
# a passing, a failing and a skipped test prints exactly one PASS, FAIL and SKIP line named
# GROUP/test, with the recorded detail and the assertion's message, and pytest exits 1; and
# testlib.sh's pytest_checks runs named tests with variables and judges pytest's status.
# timeout: 60
set -u
top=${HZ3_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
export HZ3_TOP=$top
. "$top/scripts/testlib.sh"
if ! /usr/bin/python3 -c 'import pytest' 2>/dev/null; then
  skip pytest_lines/bridge "pytest not installed (scripts/deps.sh test installs python3-pytest)"
  exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/test_bridge.py" <<'PY'
import pytest
RESULT_GROUP = "bridge"
def test_ok(record_property):
    record_property("detail", "two is 2")
    assert 1 + 1 == 2
def test_bad():
    assert 1 + 1 == 3, "one and one is not three"
@pytest.mark.skip(reason="not here")
def test_skipped():
    pass
PY
out=$(run_pytest "$dir/test_bridge.py" 2>&1)
rc=$?
lines=$(echo "$out" | grep -E '^(PASS|FAIL|SKIP): ')
# The FAIL line's tail is pytest's rendering of the assertion: only its message is checked.
if [ $rc -eq 1 ] && [ "$(echo "$lines" | wc -l)" -eq 3 ] &&
  [ "$(echo "$lines" | sed -n 1p)" = "PASS: bridge/ok (two is 2)" ] &&
  echo "$lines" | sed -n 2p | grep -q '^FAIL: bridge/bad: AssertionError: one and one is not three' &&
  [ "$(echo "$lines" | sed -n 3p)" = "SKIP: bridge/skipped: not here" ]; then
  pass pytest_lines/bridge
else
  fail pytest_lines/bridge "exit $rc (want 1), lines: $(echo "$lines" | tr '\n' '|')"
fi

# pytest_checks: only the named tests run, with the given variables in their environment, and a
# @pytest.mark.name("…{VAR}…") names the result line from them and from the test's parameters; a name that matches no test is a
# FAIL of the file, not a silent pass.
cat >"$dir/test_checks.py" <<'PY'
import os
import pytest
RESULT_GROUP = "checks"
@pytest.mark.name("checks/{HZ3_V}/named")
def test_named():
    assert os.environ["HZ3_V"] == "release"
def test_other():
    assert os.environ.get("HZ3_OTHER") == "1"
@pytest.mark.name("checks/{HZ3_V}/{what}")
@pytest.mark.parametrize("what", ["one", "two"])
def test_param(what):
    pass
def test_not_run():
    assert False, "this test was not asked for"
PY
out=$(pytest_checks "$dir/test_checks.py" named other param -- HZ3_V=release HZ3_OTHER=1 2>&1)
rc=$?
lines=$(echo "$out" | grep -E '^(PASS|FAIL|SKIP): ')
if [ $rc -eq 0 ] && [ "$lines" = "$(printf 'PASS: checks/release/named\nPASS: checks/other\nPASS: checks/release/one\nPASS: checks/release/two')" ]; then
  pass pytest_lines/checks_by_name_with_variables
else
  fail pytest_lines/checks_by_name_with_variables "status $rc (want 0), lines: $(echo "$lines" | tr '\n' '|')"
fi
out=$(pytest_checks "$dir/test_checks.py" not_run 2>&1)
rc=$?
lines=$(echo "$out" | grep -E '^(PASS|FAIL|SKIP): ')
if [ $rc -eq 1 ] && echo "$lines" | grep -q '^FAIL: checks/not_run: AssertionError: this test was not asked for'; then
  pass pytest_lines/checks_failure_is_status_1
else
  fail pytest_lines/checks_failure_is_status_1 "status $rc (want 1), lines: $(echo "$lines" | tr '\n' '|')"
fi
out=$(pytest_checks "$dir/test_checks.py" no_such_test 2>&1)
rc=$?
if [ $rc -eq 2 ] && echo "$out" | grep -q '^FAIL: pytest/test_checks: pytest exited with status 4'; then
  pass pytest_lines/checks_unknown_name_fails
else
  fail pytest_lines/checks_unknown_name_fails "status $rc (want 2), output: $(echo "$out" | tail -3 | tr '\n' '|')"
fi
