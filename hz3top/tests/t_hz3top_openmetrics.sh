#!/usr/bin/env bash
# timeout: 60
# hz3top --openmetrics serves a workload's counters on /metrics; curl scrapes it (a real HTTP
# client over real TCP) around two runs of known operation counts under the real libhz3:
#   HTTP: 200 with Content-Type application/openmetrics-text; version=1.0.0; 404 elsewhere,
#     405 for POST, GET / a pointer to /metrics; the default address is 127.0.0.1:9464 (skipped
#     when that port is taken);
#   negotiation: Accept: text/plain;version=0.0.4 gets the Prometheus text format (its content
#     type), which `promtool check metrics` accepts without a lint complaint;
#   format: every line is a # TYPE/# UNIT/# HELP line or a sample of the family declared just
#     before, counters end in _total (or _created), label values quoted, one # EOF, last; and the
#     Prometheus project's own strict OpenMetrics parser (python3-prometheus-client) accepts it;
#   values: misses outside the arena = K after the first run and 2K after the second (exact:
#     huge blocks), large tag_set >= N per run, every counter non-decreasing between scrapes and
#     every _created unchanged.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing openmetrics
command -v curl >/dev/null || { fail openmetrics "curl not installed (scripts/deps.sh test)"; exit 0; }

N=20 M=20000 K=3
start_workload om || { fail openmetrics/workload "did not start: $(cat "$T/om.err")"; exit 0; }
"$HZ3TOP" -p "$WL_PID" --no-perf --openmetrics 127.0.0.1:0 0.2 >"$T/om.out" 2>"$T/om.log" &
TOP=$!
for _ in $(seq 100); do grep -q 'serving OpenMetrics' "$T/om.log" && break; sleep 0.05; done
addr=$(sed -n 's|.*serving OpenMetrics on http://\(.*\)/metrics$|\1|p' "$T/om.log")
if [ -z "$addr" ]; then
  if grep -q 'failed to load BPF' "$T/om.log"; then skip openmetrics "BPF cannot load here"; exit 0; fi
  fail openmetrics/listen "no address announced: $(head -3 "$T/om.log")"; exit 0
fi
wait_attached "$WL_PID" 10 || { fail openmetrics/attach "probes not attached: $(head -3 "$T/om.log")"; exit 0; }

scrape() {  # scrape N: headers to $T/hN, body to $T/mN
  curl -sS --max-time 5 -D "$T/h$1" -o "$T/m$1" "http://$addr/metrics" 2>"$T/curl$1"
}
# scrape_until N MISSES: scrapes until a report after the run is served (its outside-miss count
# reaches MISSES), 5 s at most; the checks below then judge the last scrape either way.
scrape_until() {
  local i
  for i in $(seq 50); do
    scrape "$1" || return 1
    grep -q "^hz3_ptag_misses_total{.*kind=\"outside\"} $2\$" "$T/m$1" && return 0
    sleep 0.1
  done
}
wl "run $N $M $K" || { fail openmetrics/run "workload answered '$WL_REPLY'"; exit 0; }
scrape_until 1 "$K" || { fail openmetrics/scrape "curl: $(cat "$T/curl1")"; exit 0; }
wl "run $N $M $K" || { fail openmetrics/run2 "workload answered '$WL_REPLY'"; exit 0; }
scrape_until 2 "$((2 * K))" || { fail openmetrics/scrape2 "curl: $(cat "$T/curl2")"; exit 0; }
curl -sS --max-time 5 -H 'Accept: text/plain;version=0.0.4' -D "$T/hp" -o "$T/mp" \
  "http://$addr/metrics" 2>"$T/curlp"
curl -sS --max-time 5 -D "$T/hroot" -o "$T/root" "http://$addr/" 2>/dev/null
code404=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://$addr/nope")
code405=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST "http://$addr/metrics")
[ -s "$T/om.out" ] && fail openmetrics/quiet "printed to stdout without --plain/--json" ||
  pass openmetrics/quiet
# Default address: 127.0.0.1:9464, unless something else holds that port.
"$HZ3TOP" -p "$WL_PID" --no-perf --openmetrics -d 1 0.5 >/dev/null 2>"$T/def.log"
if grep -q 'Address already in use' "$T/def.log"; then
  skip openmetrics/default_addr "port 9464 is in use here"
elif grep -q 'serving OpenMetrics on http://127.0.0.1:9464/metrics' "$T/def.log"; then
  pass openmetrics/default_addr
else
  fail openmetrics/default_addr "$(head -2 "$T/def.log")"
fi
wl exit
wait_pid "$TOP" 10 || fail openmetrics/exit "hz3top did not exit after its target"
workload_exited openmetrics/workload_exit

check "openmetrics/http_status" grep -q '^HTTP/1.1 200' "$T/h1"
check "openmetrics/content_type" grep -qi \
  '^content-type: application/openmetrics-text; version=1.0.0; charset=utf-8' "$T/h1"
[ "$code404" = 404 ] && [ "$code405" = 405 ] && pass openmetrics/errors ||
  fail openmetrics/errors "GET /nope gave $code404, POST gave $code405"
grep -q '^HTTP/1.1 200' "$T/hroot" && grep -q 'metrics are on /metrics' "$T/root" &&
  pass openmetrics/root || fail openmetrics/root "GET / gave $(head -1 "$T/hroot") $(head -c 100 "$T/root")"
check "openmetrics/negotiated_content_type" grep -qi \
  '^content-type: text/plain; version=0.0.4; charset=utf-8' "$T/hp"
if command -v promtool >/dev/null; then
  out=$(promtool check metrics <"$T/mp" 2>&1)
  rc=$?
  [ $rc -eq 0 ] && [ -z "$out" ] && grep -q '^hz3_ptag_hits_total{' "$T/mp" &&
    pass "openmetrics/promtool ($(grep -c '^# TYPE' "$T/mp") metrics)" ||
    fail openmetrics/promtool "rc $rc: $(echo "$out" | head -3 | tr '\n' '|')"
else
  skip openmetrics/promtool "promtool not installed (Debian prometheus; scripts/deps.sh test)"
fi

python3 - "$T/m1" "$T/m2" "$N" "$K" <<'PY'
import re, sys
N, K = int(sys.argv[3]), int(sys.argv[4])
name_re = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
label_re = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample_re = re.compile(r'^(%s)(\{%s(?:,%s)*\})? (\S+)$' % (name_re, label_re, label_re))
def parse(path):
    text = open(path).read()
    problems, samples, family, ftype = [], {}, None, None
    lines = text.split('\n')
    if lines[-1] != '' or lines[-2] != '# EOF':
        problems.append('does not end with "# EOF\\n"')
    body = lines[:-2]
    if '# EOF' in body:
        problems.append('# EOF before the end')
    seen = set()
    for ln in body:
        m = re.match(r'^# (TYPE|UNIT|HELP) (%s)(?: (.*))?$' % name_re, ln)
        if m:
            if m.group(1) == 'TYPE':
                family, ftype = m.group(2), m.group(3)
                if family in seen: problems.append('family %s declared twice' % family)
                seen.add(family)
                if ftype not in ('counter', 'gauge', 'info', 'unknown'):
                    problems.append('bad type in ' + ln)
            elif m.group(2) != family:
                problems.append('metadata outside its family: ' + ln)
            elif m.group(1) == 'UNIT' and not family.endswith('_' + m.group(3)):
                problems.append('unit not a suffix: ' + ln)
            continue
        m = sample_re.match(ln)
        if not m:
            problems.append('malformed line: %r' % ln)
            continue
        name, labels, value = m.group(1), m.group(2) or '', m.group(3)
        suffixes = {'counter': ('_total', '_created'), 'info': ('_info',)}.get(ftype, ('',))
        if name not in [family + x for x in suffixes]:
            problems.append('sample %s outside family %s (%s)' % (name, family, ftype))
        try:
            float(value)
        except ValueError:
            problems.append('bad value: ' + ln)
        samples[(name, labels)] = (ftype, float(value))
    return text, problems, samples
t1, p1, s1 = parse(sys.argv[1])
t2, p2, s2 = parse(sys.argv[2])
probs = p1 + p2
print(('PASS: %s (%d samples)' % ('openmetrics/format', len(s2))) if not probs else
      'FAIL: openmetrics/format: ' + '; '.join(probs[:5]))
created = lambda k: k[0].endswith('_created')
back = [k for k, (t, v) in s1.items() if t == 'counter' and not created(k) and k in s2 and s2[k][1] < v]
gone = [k for k, (t, v) in s1.items() if t == 'counter' and k not in s2]
moved = [k for k, (t, v) in s1.items() if created(k) and k in s2 and s2[k][1] != v]
print('PASS: openmetrics/monotonic' if not back and not gone and not moved else
      'FAIL: openmetrics/monotonic: went back %s, vanished %s, _created moved %s' %
      (back[:3], gone[:3], moved[:3]))
def value(s, name, **labels):
    for (n, l), (t, v) in s.items():
        if n == name and all('%s="%s"' % kv in l for kv in labels.items()):
            return v
    return None
o1 = value(s1, 'hz3_ptag_misses_total', kind='outside')
o2 = value(s2, 'hz3_ptag_misses_total', kind='outside')
print('PASS: openmetrics/misses (%s then %s)' % (o1, o2) if (o1, o2) == (K, 2 * K) else
      'FAIL: openmetrics/misses: outside misses %s then %s, expected %d then %d' % (o1, o2, K, 2 * K))
t1v, t2v = value(s1, 'hz3_tag_sets_total'), value(s2, 'hz3_tag_sets_total')
ok = t1v is not None and t1v >= N and t2v >= t1v + N
print(('PASS: %s (%s then %s)' if ok else 'FAIL: %s: tag sets %s then %s') %
      ('openmetrics/tag_sets', t1v, t2v))
info = [l for (n, l) in s2 if n == 'hz3_process_info']
print('PASS: openmetrics/labels' if info and 'comm="hz3top_workload"' in info[0] else
      'FAIL: openmetrics/labels: process info %s' % info)
PY
rc=$?
[ $rc -eq 0 ] || fail openmetrics/checker "the exposition checker exited with status $rc (traceback above)"

# The Prometheus client library's OpenMetrics parser is strict about the whole exposition.
if /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null; then
  out=$(/usr/bin/python3 - "$T/m2" <<'PY' 2>&1
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
fams = list(text_string_to_metric_families(open(sys.argv[1]).read()))
print('%d families' % len(fams))
PY
  ) && pass "openmetrics/prometheus_parser ($out)" || fail openmetrics/prometheus_parser "$(echo "$out" | tail -1)"
else
  skip openmetrics/prometheus_parser "python3-prometheus-client not installed (scripts/deps.sh test)"
fi

check "openmetrics/bad_addr" bash -c "'$HZ3TOP' -p 1 --openmetrics nonsense 2>/dev/null; rc=\$?; [ \$rc -ne 0 ] && [ \$rc -lt 128 ]"
