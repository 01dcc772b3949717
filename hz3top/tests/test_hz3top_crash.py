"""The check of t_hz3top_crash.sh, run by it through pytest_checks: hz3top's final report
($HZ3_T/watch.json) on a target that aborted after one invalid free, and hz3top's exit status
HZ3_RC."""
import os

from hz3top_json import Expect, env_int, proc, reports

RESULT_GROUP = "crash"


def test_final_report(record_property):
    assert env_int("HZ3_RC") == 0, f"hz3top exit status {os.environ['HZ3_RC']}"
    last = reports("watch.json")[-1]
    p = proc(last)
    e = Expect()
    e(last["final"] is True, "no final report")
    e(p["ptag_miss_untagged"] == 1, f"ptag_miss_untagged {p['ptag_miss_untagged']} != 1")
    e(p["ptag_miss_outside"] == 0, f"ptag_miss_outside {p['ptag_miss_outside']}")
    e(p["decode_fail"] == 0, f"decode_fail {p['decode_fail']}")
    e.note("one untagged miss, then SIGABRT")
    e.finish(record_property)
