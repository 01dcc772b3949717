"""The checks of t_hz3top_prometheus.sh, run by it through pytest_checks on the Prometheus API's
answers it saved into $HZ3_T (targets.json: /api/v1/targets, query.json: the last answer to
hz3_ptag_misses_total{kind="outside"}), with the workload's pid HZ3_WL_PID and its count of misses
outside the arena HZ3_K."""
import json

from hz3top_json import env_int, head, text

RESULT_GROUP = "prometheus"


def test_target_up():
    try:
        t = json.loads(text("targets.json"))["data"]["activeTargets"]
    except (ValueError, KeyError) as e:
        raise AssertionError(f"no targets from the API ({e!r}): {text('targets.json')[:200]}")
    health = " ".join("%s%s" % (x["health"], (":" + x["lastError"]) if x["lastError"] else "") for x in t)
    assert health == "up", f"target health '{health}'; {head('prom.log')}"


def test_query(record_property):
    want = (str(env_int("HZ3_K")), str(env_int("HZ3_WL_PID")), "hz3top_workload", "hz3")
    try:
        r = json.loads(text("query.json"))["data"]["result"]
    except (ValueError, KeyError):
        r = []
    got = (r[0]["value"][1],) + tuple(r[0]["metric"].get(k) for k in ("pid", "comm", "job")) if r else ()
    assert got == want, f"hz3_ptag_misses_total{{kind=\"outside\"}} gave {got}, expected {want}"
    record_property("detail", " ".join(got))
