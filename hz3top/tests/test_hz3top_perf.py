"""The report checks of t_hz3top_perf.sh (which says what each one asserts), run by it through
pytest_checks on the reports and stderr it wrote into $HZ3_T (cpu.*: counting and cpu-clock
sampling, pf.*: page-fault sampling)."""
from hz3top_json import Expect, proc, reports, text

RESULT_GROUP = "perf"
FALLBACK = "counting page-faults instead"


def test_counting_event(record_property):
    lines = reports("cpu.json")
    last = lines[-1]
    ev = last["perf_event"]
    nnotes = text("cpu.err").count(FALLBACK)
    e = Expect()
    if ev == "page-faults":
        e(nnotes == 1, f"{nnotes} fallback notes, expected exactly one")
    else:
        e(ev == "cache-misses" and nnotes == 0, f"event {ev} with {nnotes} notes")
    counts = sum(proc(r)["perf"]["interval_count"] for r in lines)
    e(counts >= 2048 if ev == "page-faults" else counts > 0, f"{ev} counted {counts}")
    e(proc(last)["perf"]["count"] == counts, "interval counts do not add up to the total")
    e(any(proc(r)["perf"]["per_kfree"] is not None for r in lines), "per_kfree never reported")
    e.note(f'"perf_event":"{ev}"')
    e.finish(record_property)


def test_sampling_cpu_clock(record_property):
    lines = reports("cpu.json")
    last = lines[-1]
    alloc = sum(proc(r)["perf"]["samples_alloc"] for r in lines)
    user = sum(proc(r)["perf"]["samples_user"] for r in lines)
    kern = sum(proc(r)["perf"]["samples_kernel"] for r in lines)
    e = Expect()
    e(last["sample_event"] == "cpu-clock", f"sample_event {last['sample_event']}")
    e(alloc > 0, f"no sample in libhz3 (alloc {alloc}, user {user}, kernel {kern})")
    e(user > 0, f"no sample in the workload's own code (alloc {alloc}, user {user})")
    shares = [proc(r)["perf"]["alloc_share"] for r in lines if proc(r)["perf"]["alloc_share"] is not None]
    e(shares and all(0 <= s <= 1 for s in shares), f"alloc_share out of range: {shares}")
    e.note(f"samples: {alloc} in libhz3, {user} in the workload, {kern} in the kernel")
    e.finish(record_property)


def test_sampling_page_faults(record_property):
    assert FALLBACK not in text("pf.err"), "fallback note although page-faults was asked for"
    lines = reports("pf.json")
    last = lines[-1]
    n = sum(sum(proc(r)["perf"][k] for k in ("samples_alloc", "samples_user", "samples_kernel")) for r in lines)
    e = Expect()
    e(last["sample_event"] == "page-faults", f"sample_event {last['sample_event']}")
    e(n > 0, "no page-fault samples")
    e.finish(record_property)
