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
# The exposition checks are test_hz3top_openmetrics.py's, run through pytest_checks.
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

pytest_checks test_hz3top_openmetrics.py format monotonic misses tag_sets labels prometheus_parser \
  -- HZ3_N=$N HZ3_K=$K

check "openmetrics/bad_addr" bash -c "'$HZ3TOP' -p 1 --openmetrics nonsense 2>/dev/null; rc=\$?; [ \$rc -ne 0 ] && [ \$rc -lt 128 ]"
