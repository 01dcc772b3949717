#!/usr/bin/env bash
# timeout: 90
# Live memory that an operator can trust, against the real libhz3 in a real process (the checks
# are test_hz3top_live.py's, run through pytest_checks on what this script collected):
#   live/V/before_attach 100 x 1 MiB allocated before hz3top attached: the first (--once) report
#                        says >= 100 MiB live, every large block sized from libhz3's page map
#                        (descriptor version 2), none unsized; V = each library variant;
#   live/V/ledger        the ledger hz3top reads from outside equals the one malloc_stats()
#                        printed inside the idle process a moment before, line by line (with
#                        20000 small blocks and 2 huge ones held too);
#   live/heap_owners     the ledger names each heap's owner (descriptor version 3): the main
#                        thread's heap by the process's pid and name, a worker thread's (named
#                        hz3wl-worker, holding 5000 x 64 B) by its thread id and name;
#   live/exit            a watched process that exits holding 20 MiB: the final report says it
#                        exited and holds 0 bytes, ledger included;
#   live/exec            a watched process that execs (through a symlink: a new name) is reported
#                        as such, with the new name, and live memory of the new image only;
#   live/openmetrics_exit with --openmetrics, a process that exited with 20 MiB held is
#                        scraped at hz3_live_bytes 0 (its series stays for the scrape window);
#   live/openmetrics_ledger the ledger on /metrics: its arena lines add up to line="arena";
#   live/exec_without_libhz3 an exec of a program without libhz3 (no LD_PRELOAD): 0 live after;
#   live/exit_dropped    of two watched processes, the one that exited is reported once more,
#                        then no longer until the final report, which lists every process
#                        watched (so no exported series keeps its last value forever).
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing live

# watch NAME: starts workload NAME and `hz3top --json 0.2` on it in the background (TOP is its
# pid; its output goes to $T/NAME.json and $T/NAME.top.err), then waits until it attached.
# Status 1, after a FAIL line, when either did not start.
watch() {
  local name=$1
  start_workload "$name" || { fail live/workload "did not start: $(cat "$T/$name.err")"; return 1; }
  "$HZ3TOP" -p "$WL_PID" --json 0.2 >"$T/$name.json" 2>"$T/$name.top.err" &
  TOP=$!
  wait_attached "$WL_PID" 10 ||
    { fail live/attach "semaphores not raised: $(head -3 "$T/$name.top.err")"; return 1; }
}
# unwatch NAME: the workload exits (checked as live/NAME_exit) and hz3top ends with its final
# report; rc is hz3top's exit status.
unwatch() {
  wl exit
  wait_pid "$TOP" 15
  rc=$?
  workload_exited "live/$1_exit"
}

# ---- 100 x 1 MiB before attach, and the ledger against malloc_stats, in every variant ----
pre_attach() {
  local v=$1 lib=$2 rc
  start_workload "pre-$v" "$lib" || { fail "live/$v/workload" "did not start: $(cat "$T/pre-$v.err")"; return; }
  wl "hold 100" && wl "small 20000" && wl "huge 2" && wl stats ||
    { fail "live/$v/workload" "workload answered '$WL_REPLY'"; return; }
  "$HZ3TOP" -p "$WL_PID" --json --once 0.2 >"$T/pre-$v.json" 2>"$T/pre-$v.top.err"
  rc=$?
  if [ $rc -ne 0 ] && grep -q 'failed to load BPF' "$T/pre-$v.top.err"; then
    skip live "BPF cannot load here: $(head -1 "$T/pre-$v.top.err")"; exit 0
  fi
  pytest_checks test_hz3top_live.py before_attach ledger -- HZ3_V="$v" HZ3_RC=$rc
  wl release
  wl exit
  workload_exited "live/$v/exit"
}
pre_attach release "$HZ3_LIB"
for v in check noptag hardened; do
  var=HZ3_LIB_${v^^}
  if [ -f "${!var}" ]; then pre_attach "$v" "${!var}"; else skip "live/$v" "no library at ${!var} (make variants)"; fi
done

# ---- heaps named by their owner threads ----
if start_workload owners && wl "small 1000" && wl "worker 5000"; then
  wtid=${WL_REPLY#ok worker }
  "$HZ3TOP" -p "$WL_PID" --json --once --no-perf 0.2 >"$T/owners.json" 2>"$T/owners.err"
  pytest_checks test_hz3top_live.py heap_owners -- HZ3_WL_PID="$WL_PID" HZ3_WTID="$wtid"
  wl exit
  workload_exited live/heap_owners
else
  fail live/heap_owners "workload answered '$WL_REPLY'"
fi

# ---- exit: 0 live in the final report ----
watch ex || exit 0
wl "hold 20"
sleep 0.5
unwatch ex
pytest_checks test_hz3top_live.py exit -- HZ3_RC=$rc

# ---- exec: new name, new image's memory ----
ln -s "$(readlink -f "$WORKLOAD")" "$T/wl-after-exec"
watch exe || exit 0
wl "hold 30"
sleep 0.6
echo "exec $T/wl-after-exec" >&"$WL_IN"
read -r -t 20 -u "$WL_OUT" line
[ "$line" = ready ] || fail live/exec "no ready after exec: '$line' $(tail -2 "$T/exe.err")"
wl "hold 5"
sleep 0.8
unwatch exe
pytest_checks test_hz3top_live.py exec -- HZ3_RC=$rc

# ---- exec of a program without libhz3: 0 live from then on ----
watch bare || exit 0
wl "hold 10"
sleep 0.6
echo "bareexec $T/wl-after-exec" >&"$WL_IN"
read -r -t 20 -u "$WL_OUT" line
sleep 0.8
unwatch bare
pytest_checks test_hz3top_live.py exec_without_libhz3 -- HZ3_RC=$rc HZ3_READY="$line"

# ---- two targets, one exits: reported once more, then dropped ----
start_workload a || { fail live/workload "did not start"; exit 0; }
A=$WL_PID A_IN=$WL_IN A_OUT=$WL_OUT
start_workload b || { fail live/workload "did not start"; exit 0; }
B=$WL_PID
"$HZ3TOP" -p "$A" -p "$B" --json 0.2 >"$T/two.json" 2>"$T/two.top.err" &
TOP=$!
wait_attached "$B" 10 || { fail live/attach "semaphores not raised: $(head -3 "$T/two.top.err")"; exit 0; }
wl exit  # b
workload_exited live/b_exit "$B"
sleep 1
WL_IN=$A_IN WL_OUT=$A_OUT
wl exit
wait_pid "$TOP" 15
workload_exited live/a_exit "$A"
pytest_checks test_hz3top_live.py exit_dropped -- HZ3_B="$B"

# ---- OpenMetrics: the exited process is scraped at 0 ----
if command -v curl >/dev/null; then
  start_workload oa || { fail live/workload "did not start"; exit 0; }
  A=$WL_PID A_IN=$WL_IN A_OUT=$WL_OUT
  start_workload ob || { fail live/workload "did not start"; exit 0; }
  B=$WL_PID
  "$HZ3TOP" -p "$A" -p "$B" --plain --openmetrics=127.0.0.1:0 0.2 >/dev/null 2>"$T/om.err" &
  TOP=$!
  WL_PIDS+=("$TOP")
  wait_attached "$B" 10 || { fail live/attach "semaphores not raised: $(head -3 "$T/om.err")"; exit 0; }
  url=
  for _ in $(seq 100); do
    url=$(sed -n 's/.*serving OpenMetrics on \(http:[^ ]*\).*/\1/p' "$T/om.err")
    [ -n "$url" ] && break; sleep 0.05
  done
  wl "hold 20"
  sleep 0.6
  curl -s "$url" >"$T/om-held.txt"
  held=$(sed -n "s/^hz3_live_bytes{.*pid=\"$B\".*} \([0-9.e+]*\)$/\1/p" "$T/om-held.txt")
  pytest_checks test_hz3top_live.py openmetrics_ledger -- HZ3_B="$B"
  wl exit  # b
  workload_exited live/ob_exit "$B"
  sleep 0.6  # three reports after the exit: past "reported once", inside the scrape window
  after=$(curl -s "$url" | sed -n "s/^hz3_live_bytes{.*pid=\"$B\".*} \([0-9.e+]*\)$/\1/p")
  pytest_checks test_hz3top_live.py openmetrics_exit -- HZ3_B="$B" HZ3_HELD="$held" HZ3_AFTER="$after"
  WL_IN=$A_IN WL_OUT=$A_OUT
  wl exit
  wait_pid "$TOP" 15
  workload_exited live/oa_exit "$A"
else
  skip live/openmetrics_exit "no curl"
fi
