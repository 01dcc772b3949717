#!/usr/bin/env bash
# Capabilities hz3top needs, tried as the unprivileged user nobody with setpriv (inheritable and
# ambient capabilities) against a real workload preloaded with libhz3:
#   counting view (-p, --all, perf sampling): CAP_BPF + CAP_PERFMON; CAP_SYS_PTRACE in addition
#     to read the tag map of a process of another user;
#   hz3top heap: CAP_SYS_ADMIN.
# Checks the error message names the set and how to grant it, and that the named set works (the
# report checks are test_hz3top_caps.py's, run through pytest_checks).
set -u
. "$(dirname "$0")/../../scripts/testlib.sh"
. "$(dirname "$0")/lib.sh"
chmod 755 "$T"

if ! is_root; then skip caps "needs root to hand capabilities to nobody with setpriv"; exit 0; fi
if ! command -v setpriv >/dev/null; then skip caps "no setpriv (util-linux)"; exit 0; fi
require_tracing caps
lib=$(readlink -f "$HZ3_LIB")
hz3top=$(readlink -f "$HZ3TOP")
if ! setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$hz3top" -a -r "$lib"; then
  skip caps "nobody cannot reach $hz3top or $lib (a directory above them is not world-readable)"
  exit 0
fi

# as_nobody CAPS CMD…: runs CMD as nobody with exactly CAPS (e.g. +bpf,+perfmon; "" for none).
as_nobody() {
  local c=-all${1:+,$1}; shift
  setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps="$c" --ambient-caps="$c" "$@"
}

# start_wl NAME USER: the workload as USER (root or nobody); sets WL_PID and WL_IN.
start_wl() {
  local name=$1 user=$2 line
  mkfifo "$T/$name.in" "$T/$name.out"
  if [ "$user" = root ]; then
    LD_PRELOAD=$lib "$WORKLOAD" <"$T/$name.in" >"$T/$name.out" 2>/dev/null &
  else
    setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all env LD_PRELOAD="$lib" \
      "$WORKLOAD" <"$T/$name.in" >"$T/$name.out" 2>/dev/null &
  fi
  WL_PID=$!
  WL_PIDS+=("$WL_PID")
  exec {WL_IN}>"$T/$name.in"
  exec {WL_OUT}<"$T/$name.out"
  read -r -t 20 -u "$WL_OUT" line && [ "$line" = ready ]
}

# run_caps NAME CAPS ARGS…: hz3top ARGS as nobody with CAPS while the workload allocates for
# 1.5 s; output in $T/NAME.log, status in RC. WLPID in ARGS stands for the workload's pid.
run_caps() {
  local name=$1 caps=$2; shift 2
  (sleep 0.3; echo "spin 1500" >&"$WL_IN") &
  local drv=$!
  as_nobody "$caps" timeout 20 "$hz3top" "${@//WLPID/$WL_PID}" >"$T/$name.log" 2>&1
  RC=$?
  wait "$drv"
}

# A kernel that refuses what the documented set should allow (no uprobe_multi before 6.6, a
# BPF LSM): SKIP with the kernel's words instead of a FAIL of hz3top (test_hz3top_caps.py has the
# same pattern).
kernel_refused() {
  grep -qE 'failed to (load BPF programs|attach hz3:).*(Operation not permitted|Permission denied|Invalid argument)' "$T/$1.log"
}

start_wl own nobody || { fail caps "workload did not start"; exit 0; }

# 1. No capabilities: the message names the set and the setcap line.
run_caps none "" -p WLPID --once --no-perf 0.5
if [ $RC -eq 1 ] && grep -q 'needs root or CAP_BPF+CAP_PERFMON (missing CAP_BPF and CAP_PERFMON): run with sudo, or grant CAP_BPF and CAP_PERFMON (e.g. setcap cap_bpf,cap_perfmon+ep hz3top' "$T/none.log"; then
  pass caps/message_count
else
  fail caps/message_count "exit $RC: $(head -2 "$T/none.log" | tr '\n' ' ')"
fi
run_caps none_perfmon "+bpf" -p WLPID --once --no-perf 0.5
if [ $RC -eq 1 ] && grep -q '(missing CAP_PERFMON): run with sudo, or grant CAP_BPF and CAP_PERFMON' "$T/none_perfmon.log"; then
  pass caps/message_missing_one
else
  fail caps/message_missing_one "exit $RC: $(head -2 "$T/none_perfmon.log" | tr '\n' ' ')"
fi

# 2. CAP_BPF + CAP_PERFMON: the counting view, --all and perf sampling work on nobody's process.
for mode in count all perf; do
  case $mode in
    count) run_caps $mode "+bpf,+perfmon" -p WLPID --once --json --no-perf 1 ;;
    all) run_caps $mode "+bpf,+perfmon" --all --once --json --no-perf 1 ;;
    perf) run_caps $mode "+bpf,+perfmon" -p WLPID --once --json --sample-event cpu-clock 1 ;;
  esac
  pytest_checks test_hz3top_caps.py bpf_perfmon -- HZ3_MODE=$mode HZ3_RC=$RC HZ3_WL_PID="$WL_PID"
done

# 3. hz3top heap: CAP_BPF + CAP_PERFMON (+ CAP_SYS_PTRACE) is refused with a message naming
#    CAP_SYS_ADMIN; CAP_SYS_ADMIN alone works.
run_caps heap_no "+bpf,+perfmon,+sys_ptrace" heap -p WLPID --once --plain 1
if [ $RC -eq 1 ] && grep -q 'needs root or CAP_SYS_ADMIN .*: run with sudo, or grant CAP_SYS_ADMIN (e.g. setcap cap_sys_admin+ep hz3top)' "$T/heap_no.log"; then
  pass caps/message_heap
else
  fail caps/message_heap "exit $RC: $(head -2 "$T/heap_no.log" | tr '\n' ' ')"
fi
run_caps heap_admin "+sys_admin" heap -p WLPID --once --json 1
if [ $RC -ne 0 ] && kernel_refused heap_admin; then
  skip caps/heap_sys_admin "the kernel refused CAP_SYS_ADMIN: $(grep -m1 failed "$T/heap_admin.log")"
elif [ $RC -eq 0 ] && grep -q '"samples"' "$T/heap_admin.log" && ! grep -q '"samples":0[,}]' "$T/heap_admin.log"; then
  pass caps/heap_sys_admin
else
  fail caps/heap_sys_admin "exit $RC: $(head -c 300 "$T/heap_admin.log" | tr '\n' ' ')"
fi
echo exit >&"$WL_IN"

# 4. A process of another user (root): its tag map needs CAP_SYS_PTRACE as well.
start_wl other root || { fail caps "root workload did not start"; exit 0; }
run_caps other_noptrace "+bpf,+perfmon" -p WLPID --once --json --no-perf 1
run_caps other_ptrace "+bpf,+perfmon,+sys_ptrace" -p WLPID --once --json --no-perf 1
pytest_checks test_hz3top_caps.py other_user_sys_ptrace -- HZ3_RC=$RC HZ3_WL_PID="$WL_PID"
echo exit >&"$WL_IN"
