#!/usr/bin/env bash
# timeout: 60
# A real Prometheus server scrapes hz3top --openmetrics, configured as docs/openmetrics.md says:
# the target must be healthy (Prometheus parsed the exposition, which it asks for as OpenMetrics
# in its Accept header) and a query must return the workload's exact count of misses outside
# the arena (K), with the pid and comm labels. Prometheus is in scripts/deps.sh's test packages
# (Debian's prometheus); where it is missing anyway, the test is skipped. The checks of the API's
# answers are test_hz3top_prometheus.py's, run through pytest_checks.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing prometheus
PROM=$(command -v prometheus) || { skip prometheus "prometheus not installed (scripts/deps.sh test)"; exit 0; }

N=10 M=10000 K=3
start_workload prom || { fail prometheus/workload "did not start: $(cat "$T/prom.err")"; exit 0; }
"$HZ3TOP" -p "$WL_PID" --no-perf --openmetrics 127.0.0.1:0 0.2 >/dev/null 2>"$T/om.log" &
for _ in $(seq 100); do grep -q 'serving OpenMetrics' "$T/om.log" && break; sleep 0.05; done
addr=$(sed -n 's|.*serving OpenMetrics on http://\(.*\)/metrics$|\1|p' "$T/om.log")
[ -n "$addr" ] || { fail prometheus/listen "hz3top announced no address: $(head -3 "$T/om.log")"; exit 0; }
wl "run $N $M $K" || { fail prometheus/run "workload answered '$WL_REPLY'"; exit 0; }

# A free port for Prometheus's own web server (bound, read, released).
web=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$T/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: hz3
    static_configs:
      - targets: ['$addr']
YML
"$PROM" --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
  --web.listen-address="127.0.0.1:$web" >"$T/prom.log" 2>&1 &
WL_PIDS+=("$!")

api() { curl -s --max-time 2 -G "http://127.0.0.1:$web/api/v1/$1" ${2:+--data-urlencode "$2"}; }
for _ in $(seq 150); do
  api query 'query=hz3_ptag_misses_total{kind="outside"}' >"$T/query.json"
  grep -q '"result":\[{' "$T/query.json" && break
  sleep 0.1
done
api targets >"$T/targets.json"
pytest_checks test_hz3top_prometheus.py target_up query -- HZ3_K=$K HZ3_WL_PID="$WL_PID"
wl exit
