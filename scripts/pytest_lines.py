"""A pytest plugin that prints each test's result as the line scripts/run-tests.sh counts:
`PASS: name (detail)`, `FAIL: name: why` or `SKIP: name: why`, so a pytest file runs under the
same runner as every t_*.sh. The name is the module's RESULT_GROUP, a slash, and the test's
parameter id (or its function name without test_), unless the test is marked
@pytest.mark.name("a/{VAR}/b"): then it is that text with each {VAR} replaced by the test's
parameter VAR or else the environment variable VAR (a script that runs the same check per variant
passes the variant that way). `detail` is what the test recorded with
record_property("detail", ...). Used as `python3 -m pytest -p pytest_lines` with scripts/ on
PYTHONPATH (scripts/testlib.sh: run_pytest)."""
import collections
import os

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "name(text): the result line's name; {VAR}: parameter or $VAR")


def _name(item):
    mark = item.get_closest_marker("name")
    callspec = getattr(item, "callspec", None)
    if mark:
        return mark.args[0].format_map(collections.ChainMap(callspec.params if callspec else {}, os.environ))
    group = getattr(item.module, "RESULT_GROUP", item.module.__name__)
    leaf = callspec.id if callspec else item.name.removeprefix("test_")
    return f"{group}/{leaf}"


def _emit(line):
    os.write(1, (line + "\n").encode())  # past pytest's capture: the runner reads stdout


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().hz3_name = _name(item)


def pytest_runtest_logreport(report):
    name = getattr(report, "hz3_name", None) or report.nodeid
    detail = dict(report.user_properties).get("detail")
    if report.when == "call" and report.passed:
        _emit(f"PASS: {name}" + (f" ({detail})" if detail else ""))
    elif report.failed:
        why = report.longrepr.reprcrash.message if hasattr(report.longrepr, "reprcrash") else str(report.longrepr)
        _emit(f"FAIL: {name}: {' '.join(str(why).split())[:300]}")
    elif report.skipped and report.when in ("setup", "call"):
        why = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _emit(f"SKIP: {name}: {why.removeprefix('Skipped: ')}")


def pytest_report_teststatus(report, config):
    # No progress letters: they would share a line with the result lines.
    if report.when == "call" or not report.passed:
        return report.outcome, "", report.outcome.upper()
    return None
