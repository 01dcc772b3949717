"""The check of t_hz3top_sampling_rate.sh (which says what it asserts): the samples hz3top heap saw
from the spinning thread (the final report's `samples`, every otel_memory:alloc firing of the
traced process) against that thread's CPU time ($HZ3_CPU_NS) and the pacing's target
($HZ3_TARGET samples per CPU second, libhz3's HZ3_SAMPLE_MAX_RATE)."""

from hz3top_json import env_int, reports

RESULT_GROUP = "sampling_rate"


def test_held(record_property):
    last = reports("rate.json")[-1]
    proc = last["procs"][0] if last["procs"] else {}
    cpu_s = env_int("HZ3_CPU_NS") / 1e9
    target = env_int("HZ3_TARGET")
    rate = last["samples"] / cpu_s if cpu_s > 0 else float("inf")
    why = "%d samples over %.2f s of the thread's CPU: %.0f per CPU second (target %d, bound %d); " \
          "sampling mean up to %d B" % (last["samples"], cpu_s, rate, target, 2.5 * target,
                                        proc.get("sample_mean_max", 0))
    assert last["final"] and cpu_s > 0.3 and 0 < last["samples"] and rate <= 2.5 * target, why
    record_property("detail", why)
