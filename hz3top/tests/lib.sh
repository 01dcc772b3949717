# Sourced by hz3top's t_*.sh tests (after scripts/testlib.sh): start the known-count workload
# under real libhz3, talk to it, wait for hz3top to attach. Not a test itself. The checks of
# hz3top's reports are pytest files (test_*.py, with hz3top_json.py) run through pytest_checks.

HZ3TOP=${HZ3_BIN:-build/bin}/hz3top
WORKLOAD=${HZ3_TBIN:-build/tests}/hz3top_workload
T=$(mktemp -d /tmp/hz3top-test.XXXXXX)
export HZ3_T=$T  # where the pytest checks (test_*.py, hz3top_json.py) find the script's files
WL_PIDS=()
cleanup_all() {
  local p
  for p in "${WL_PIDS[@]}"; do { kill -9 "$p" && wait "$p"; } 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup_all EXIT

# Prints SKIP and exits when this test cannot run here; the reason says why.
require_tracing() {
  local name=$1
  if ! is_root; then skip "$name" "needs root (BPF and perf_event_open)"; exit 0; fi
  if [ ! -x "$HZ3TOP" ] || [ ! -x "$WORKLOAD" ]; then
    fail "$name" "hz3top or the workload is not built (make all)"; exit 0
  fi
  if [ ! -f "${LIB:-$HZ3_LIB}" ]; then fail "$name" "no library at ${LIB:-$HZ3_LIB} (make variants)"; exit 0; fi
}

# start_workload NAME [LIB]: runs the workload preloaded with LIB (default $HZ3_LIB); sets
# WL_PID, WL_IN (fd to send commands) and WL_OUT (fd to read answers). Waits for "ready".
start_workload() {
  local name=$1 lib=${2:-$HZ3_LIB}
  mkfifo "$T/$name.in" "$T/$name.out"
  LD_PRELOAD=$lib "$WORKLOAD" <"$T/$name.in" >"$T/$name.out" 2>"$T/$name.err" &
  WL_PID=$!
  WL_PIDS+=("$WL_PID")
  exec {WL_IN}>"$T/$name.in"
  exec {WL_OUT}<"$T/$name.out"
  local line
  read -r -t 20 -u "$WL_OUT" line && [ "$line" = ready ]
}

# wl CMD: sends a command and waits (20 s at most) for its "ok" answer, which goes to $WL_REPLY.
wl() {
  echo "$1" >&"$WL_IN"
  WL_REPLY=
  read -r -t 20 -u "$WL_OUT" WL_REPLY && [ "${WL_REPLY#ok }" != "$WL_REPLY" ]
}

# semaphores PID: the five semaphore values as "name=value" words, from hz3top --list-probes
# (which reads /proc/PID/mem at the addresses in the library's .note.stapsdt).
semaphores() {
  "$HZ3TOP" --list-probes -p "$1" 2>/dev/null |
    sed -n 's/^ *hz3:\([a-z_]*\) .* value=\([0-9a-z-]*\)$/\1=\2/p' | tr '\n' ' '
}

# wait_attached PID [SECONDS]: until every hz3 semaphore of PID is non-zero (a tracer attached).
wait_attached() {
  local pid=$1 deadline=$(( $(date +%s) + ${2:-10} )) s
  while [ "$(date +%s)" -le "$deadline" ]; do
    s=$(semaphores "$pid")
    if [ -n "$s" ] && ! echo "$s" | grep -qE '=(0|unreadable|-)( |$)'; then return 0; fi
    sleep 0.05
  done
  return 1
}

# wait_pid PID SECONDS: waits for a child to exit; returns its status, or 124 on timeout.
wait_pid() {
  local pid=$1 deadline=$(( $(date +%s) + $2 ))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$(date +%s)" -gt "$deadline" ]; then return 124; fi
    # A finished child stays a zombie until waited for; kill -0 still succeeds on it.
    if [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; then break; fi
    sleep 0.05
  done
  wait "$pid"
}

# workload_exited NAME [PID]: after `wl exit`, waits (10 s at most) for the workload (default
# $WL_PID) and FAILs NAME unless it exited 0: the workload runs on libhz3, so a crash at its exit
# is a failure of the allocator that the tracer's own results would not show. Status 1 on FAIL.
workload_exited() {
  local pid=${2:-$WL_PID} rc
  wait_pid "$pid" 10
  rc=$?
  if [ $rc -eq 0 ]; then return 0; fi
  if [ $rc -eq 124 ]; then fail "$1" "the workload (pid $pid) did not exit within 10 s of 'exit'"
  elif [ $rc -gt 128 ]; then fail "$1" "the workload (pid $pid) was killed by signal $((rc - 128)): $(tail -2 "$T"/*.err 2>/dev/null | tr '\n' ' ' | cut -c1-200)"
  else fail "$1" "the workload (pid $pid) exited with status $rc"; fi
  return 1
}
