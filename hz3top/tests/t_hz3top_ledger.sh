#!/usr/bin/env bash
# timeout: 240
# The ledger's split of the objects out of spans (descriptor version 4), against malloc_stats()
# in the idle workload, in every library variant and in one built with -DHZ3_MAGAZINES=0 (every
# class cached in a list; built here into $HZ3_BUILD/lists, incrementally). The checks are
# test_hz3top_ledger.py's, run through pytest_checks on what this script collected:
#   ledger/L/split        64 B and 8 KiB blocks in the main thread's cache (a list and a
#                         magazine), 300 of its 64 B blocks freed by a thread named hz3wl-xfree
#                         (256 delivered to the main heap's inbox in two batches, 44 left in that
#                         thread's remote bucket), malloc_stats in the main thread: every ledger
#                         line equal, app_small + remote_pending = malloc_stats' application
#                         line, caches and inboxes equal in bytes and objects, 44 remote and 256
#                         inbox blocks exactly, held by hz3wl-xfree;
#   ledger/L/plain        the plain format's final "# ledger" line says the same;
#   ledger/L/openmetrics  /metrics has the split lines (no line="small_used"), adding up to
#                         line="arena", app_small as in the JSON report (release and lists only);
#   ledger/L/busy_adds_up while the workload allocates and frees 16 B-32 KiB blocks, every
#                         report's split adds up to small_used and the ledger to the arena (what
#                         changed while read is in unwalked; release and lists only).
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing ledger

LISTS=$HZ3_BUILD/lists/lib/libhz3.so
if ! make -s --no-print-directory -j2 BUILD="$HZ3_BUILD/lists" HZ3_CPPFLAGS=-DHZ3_MAGAZINES=0 \
  "$LISTS" >"$T/lists.log" 2>&1; then
  fail ledger/lists/build "$(grep -m3 error "$T/lists.log" | tr '\n' ' ')"
  LISTS=
fi

# check_lib NAME LIB [full]: the idle checks, and with "full" the OpenMetrics and busy ones.
check_lib() {
  local l=$1 lib=$2 full=${3:-} xtid
  start_workload "$l" "$lib" || { fail "ledger/$l/workload" "did not start: $(cat "$T/$l.err")"; return; }
  if ! { wl "alloc 100 8192" && wl "freesome 10" && wl "alloc 60 1024" && wl "alloc 2500 64" &&
    wl "freesome 400" && wl "xfree 300" && xtid=${WL_REPLY#ok xfree } && wl stats; }; then
    fail "ledger/$l/workload" "workload answered '$WL_REPLY'"; return
  fi
  "$HZ3TOP" -p "$WL_PID" --json --once --no-perf 0.2 >"$T/$l.json" 2>"$T/$l.top.err"
  if grep -q 'failed to load BPF' "$T/$l.top.err"; then
    skip ledger "BPF cannot load here: $(head -1 "$T/$l.top.err")"; exit 0
  fi
  "$HZ3TOP" -p "$WL_PID" --plain --once --no-perf 0.2 >"$T/$l.plain" 2>/dev/null
  pytest_checks test_hz3top_ledger.py split plain -- HZ3_L="$l" HZ3_WL_PID="$WL_PID" HZ3_XTID="$xtid" \
    HZ3_REMOTE_OBJS=44 HZ3_INBOX_OBJS=256

  if [ "$full" = full ] && command -v curl >/dev/null; then
    "$HZ3TOP" -p "$WL_PID" --no-perf --openmetrics=127.0.0.1:0 0.2 >/dev/null 2>"$T/$l.om.err" &
    local om=$! url= i
    WL_PIDS+=("$om")
    for i in $(seq 100); do
      url=$(sed -n 's/.*serving OpenMetrics on \(http:[^ ]*\).*/\1/p' "$T/$l.om.err")
      [ -n "$url" ] && break; sleep 0.05
    done
    for i in $(seq 50); do  # until the first report is served
      curl -s "$url" >"$T/$l.om" && grep -q '^hz3_ledger_bytes' "$T/$l.om" && break; sleep 0.1
    done
    kill -INT "$om"; wait_pid "$om" 10
    pytest_checks test_hz3top_ledger.py openmetrics -- HZ3_L="$l" HZ3_WL_PID="$WL_PID"
  fi

  if [ "$full" = full ]; then
    "$HZ3TOP" -p "$WL_PID" --json --no-perf 0.1 >"$T/$l.busy.json" 2>/dev/null &
    local top=$!
    WL_PIDS+=("$top")
    wait_attached "$WL_PID" 10
    wl "spin 1500"
    kill -INT "$top"
    wait_pid "$top" 10
    pytest_checks test_hz3top_ledger.py busy_adds_up -- HZ3_L="$l"
  fi
  wl exit
  workload_exited "ledger/$l/exit"
}

check_lib release "$HZ3_LIB" full
for v in check noptag hardened magall; do
  var=HZ3_LIB_${v^^}
  if [ -f "${!var}" ]; then check_lib "$v" "${!var}"; else skip "ledger/$v" "no library at ${!var} (make variants)"; fi
done
[ -n "$LISTS" ] && check_lib lists "$LISTS" full
