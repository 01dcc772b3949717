"""The exposition checks of t_hz3top_openmetrics.sh (which says what each one asserts), run by it
through pytest_checks on the two scrapes it wrote into $HZ3_T (m1 after the first run, m2 after
the second), with the workload's counts HZ3_N and HZ3_K."""
import re

import pytest

from hz3top_json import env_int, path, text

RESULT_GROUP = "openmetrics"
NAME_RE = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_RE = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_RE = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (\S+)$" % (NAME_RE, LABEL_RE, LABEL_RE))


def parse(name):
    """The problems found in scrape `name` and its samples {(name, labels): (type, value)}."""
    lines = text(name).split("\n")
    problems, samples, family, ftype = [], {}, None, None
    if len(lines) < 2 or lines[-1] != "" or lines[-2] != "# EOF":
        problems.append(f'{name} does not end with "# EOF\\n"')
    body = lines[:-2]
    if "# EOF" in body:
        problems.append("# EOF before the end")
    seen = set()
    for ln in body:
        m = re.match(r"^# (TYPE|UNIT|HELP) (%s)(?: (.*))?$" % NAME_RE, ln)
        if m:
            if m.group(1) == "TYPE":
                family, ftype = m.group(2), m.group(3)
                if family in seen:
                    problems.append("family %s declared twice" % family)
                seen.add(family)
                if ftype not in ("counter", "gauge", "info", "unknown"):
                    problems.append("bad type in " + ln)
            elif m.group(2) != family:
                problems.append("metadata outside its family: " + ln)
            elif m.group(1) == "UNIT" and not family.endswith("_" + m.group(3)):
                problems.append("unit not a suffix: " + ln)
            continue
        m = SAMPLE_RE.match(ln)
        if not m:
            problems.append("malformed line: %r" % ln)
            continue
        sname, labels, value = m.group(1), m.group(2) or "", m.group(3)
        suffixes = {"counter": ("_total", "_created"), "info": ("_info",)}.get(ftype, ("",))
        if sname not in [family + x for x in suffixes]:
            problems.append("sample %s outside family %s (%s)" % (sname, family, ftype))
        try:
            samples[(sname, labels)] = (ftype, float(value))
        except ValueError:
            problems.append("bad value: " + ln)
    return problems, samples


@pytest.fixture(scope="module")
def scrapes():
    return parse("m1"), parse("m2")


def value(s, name, **labels):
    for (n, l), (t, v) in s.items():
        if n == name and all('%s="%s"' % kv in l for kv in labels.items()):
            return v
    return None


def test_format(scrapes, record_property):
    (p1, _), (p2, s2) = scrapes
    probs = p1 + p2
    assert not probs, "; ".join(probs[:5])
    record_property("detail", f"{len(s2)} samples")


def test_monotonic(scrapes):
    (_, s1), (_, s2) = scrapes

    def created(k):
        return k[0].endswith("_created")

    back = [k for k, (t, v) in s1.items() if t == "counter" and not created(k) and k in s2 and s2[k][1] < v]
    gone = [k for k, (t, v) in s1.items() if t == "counter" and k not in s2]
    moved = [k for k, (t, v) in s1.items() if created(k) and k in s2 and s2[k][1] != v]
    assert not back and not gone and not moved, \
        "went back %s, vanished %s, _created moved %s" % (back[:3], gone[:3], moved[:3])


def test_misses(scrapes, record_property):
    (_, s1), (_, s2) = scrapes
    k = env_int("HZ3_K")
    o1 = value(s1, "hz3_ptag_misses_total", kind="outside")
    o2 = value(s2, "hz3_ptag_misses_total", kind="outside")
    assert (o1, o2) == (k, 2 * k), "outside misses %s then %s, expected %d then %d" % (o1, o2, k, 2 * k)
    record_property("detail", f"{o1} then {o2}")


def test_tag_sets(scrapes, record_property):
    (_, s1), (_, s2) = scrapes
    n = env_int("HZ3_N")
    t1, t2 = value(s1, "hz3_tag_sets_total"), value(s2, "hz3_tag_sets_total")
    assert t1 is not None and t2 is not None and t1 >= n and t2 >= t1 + n, f"tag sets {t1} then {t2}"
    record_property("detail", f"{t1} then {t2}")


def test_labels(scrapes):
    (_, _), (_, s2) = scrapes
    info = [l for (n, l) in s2 if n == "hz3_process_info"]
    assert info and 'comm="hz3top_workload"' in info[0], f"process info {info}"


# The Prometheus client library's OpenMetrics parser is strict about the whole exposition.
def test_prometheus_parser(record_property):
    try:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    except ImportError:
        pytest.skip("python3-prometheus-client not installed (scripts/deps.sh test)")
    with open(path("m2")) as f:
        fams = list(text_string_to_metric_families(f.read()))
    record_property("detail", f"{len(fams)} families")
