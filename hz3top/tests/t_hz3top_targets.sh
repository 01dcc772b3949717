#!/usr/bin/env bash
# timeout: 90
# How hz3top finds its targets, against real libhz3:
#   replaced_library  the workload's libhz3 file is deleted and a new one written at the same
#                     path (a rebuild): hz3top attaches through /proc/PID/map_files, says so,
#                     and still counts exactly;
#   two_pids          -p A -p B reports both processes and their sum (attached the legacy
#                     way, one uprobe per site, so that path counts exactly too);
#   all               --all finds every process that maps libhz3 by itself (restricted with
#                     --lib to this test's private copy of the library, so that other
#                     processes on the machine that use libhz3 are not traced meanwhile);
#   noprobes          a process on VARIANT=noprobes libhz3: one note, live pages from the tag
#                     map, exit 0.
# The report checks are test_hz3top_targets.py's, run through pytest_checks.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing targets

# ---- replaced_library ----
cp "$HZ3_LIB" "$T/libhz3.so"
start_workload old "$T/libhz3.so" || { fail targets/replaced_library "workload did not start"; exit 0; }
A=$WL_PID A_IN=$WL_IN A_OUT=$WL_OUT
rm "$T/libhz3.so" && cp "$HZ3_LIB" "$T/libhz3.so"  # same path, new inode
"$HZ3TOP" -p "$A" --json 0.3 >"$T/rep.json" 2>"$T/rep.err" &
top=$!
if ! wait_attached "$A" 10; then
  grep -q 'failed to load BPF' "$T/rep.err" && { skip targets "BPF cannot load: $(head -1 "$T/rep.err")"; exit 0; }
  fail targets/replaced_library "never attached: $(head -2 "$T/rep.err")"
else
  wl "run 7 0 0"
  wl exit
  wait_pid $top 15
  workload_exited targets/replaced_library_workload_exit
  pytest_checks test_hz3top_targets.py replaced_library -- HZ3_A="$A"
fi

# ---- two_pids and all ----
cp "$HZ3_LIB" "$T/libhz3-all.so"
start_workload a "$T/libhz3-all.so" || { fail targets/two_pids "workload a did not start"; exit 0; }
A=$WL_PID A_IN=$WL_IN A_OUT=$WL_OUT
start_workload b "$T/libhz3-all.so" || { fail targets/two_pids "workload b did not start"; exit 0; }
B=$WL_PID B_IN=$WL_IN B_OUT=$WL_OUT
"$HZ3TOP" -p "$A" -p "$B" --legacy-attach --json 0.3 >"$T/two.json" 2>"$T/two.err" &
top=$!
"$HZ3TOP" --all --lib "$T/libhz3-all.so" --json 0.3 >"$T/all.json" 2>"$T/all.err" &
all=$!
wait_attached "$A" 10 && wait_attached "$B" 10 || fail targets/two_pids "never attached: $(head -2 "$T/two.err")"
sleep 0.5  # --all attaches after its own scan
WL_IN=$A_IN WL_OUT=$A_OUT wl "run 3 0 0"
WL_IN=$B_IN WL_OUT=$B_OUT wl "run 5 0 0"
sleep 0.7
kill -INT $all
WL_IN=$A_IN WL_OUT=$A_OUT wl exit
WL_IN=$B_IN WL_OUT=$B_OUT wl exit
wait_pid $top 15
top_rc=$?
wait_pid $all 15
workload_exited targets/two_pids_workload_a_exit "$A"
workload_exited targets/two_pids_workload_b_exit "$B"
pytest_checks test_hz3top_targets.py two_pids all -- HZ3_A="$A" HZ3_B="$B" HZ3_RC=$top_rc

# ---- noprobes ----
if [ ! -f "$HZ3_LIB_NOPROBES" ]; then
  fail targets/noprobes "no library at $HZ3_LIB_NOPROBES (make variants)"
else
  start_workload np "$HZ3_LIB_NOPROBES" || { fail targets/noprobes "workload did not start"; exit 0; }
  wl "hold 3"
  "$HZ3TOP" -p "$WL_PID" --json --once 0.3 >"$T/np.json" 2>"$T/np.err"
  rc=$?
  pytest_checks test_hz3top_targets.py noprobes -- HZ3_RC=$rc
  wl exit
  workload_exited targets/noprobes_workload_exit
fi
