#!/usr/bin/env bash
# timeout: 150
# Hits pending at exec reach the tracer: a process that does 20 malloc+free pairs (fewer than a
# traced report chunk of 32, so no slow path reports them) and then execs a program without
# libhz3 must report those 20 hits through hz3:hits before the exec, through each exec function
# libhz3 wraps (execve execv execvp execvpe execl execlp execle fexecve; docs/probes.md). Without
# the wrappers, no code of the old image runs after the exec and the hits never arrive. First a
# control that exits instead (exit already reports pending hits): it shows the tracer counts;
# then the execve system call made directly, past the wrappers: its hits must be lost, which
# shows the check can fail.
# A case whose bpftrace says it could not attach (seen under load) runs once more.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing hits_at_exec
require_bpftrace hits_at_exec
cc -O1 -o "$T/exec_hits" "$HZ3_TOP/probes/tests/exec_hits.c" ||
  { fail hits_at_exec "cannot compile probes/tests/exec_hits.c"; exit 0; }
L=$HZ3_LIB N=20
true_bin=/usr/bin/true

# one_case FN: the workload through FN under bpftrace; sets rc (its exit status) and hits.
one_case() {
  local fn=$1 pid bt _
  rm -f "$T/go"
  LD_PRELOAD=$L "$T/exec_hits" $N "$true_bin" "$T/go" "$fn" 2>"$T/$fn.err" &
  pid=$!
  # bpftrace resolves the library in the process's maps: wait until the loader has mapped it.
  for _ in $(seq 200); do
    grep -q libhz3 "/proc/$pid/maps" 2>/dev/null && break
    sleep 0.01
  done
  timeout 30 bpftrace -B line -p "$pid" -e "
usdt:$L:hz3:hits { @hits += arg0; }
END { printf(\"hits %d\\n\", @hits); }
" >"$T/$fn.bt" 2>"$T/$fn.bterr" &
  bt=$!
  # Attached once the hits semaphore is set; then the workload may start.
  for _ in $(seq 200); do
    semaphores "$pid" | grep -qE '(^| )hits=[1-9]' && break
    sleep 0.05
  done
  touch "$T/go"
  wait "$pid"
  rc=$?
  wait "$bt"
  hits=$(sed -n 's/^hits \([0-9]*\)$/\1/p' "$T/$fn.bt")
}

for fn in exit syscall execve execv execvp execvpe execl execlp execle fexecve; do
  one_case "$fn"
  # A load burst can make bpftrace's attach fail (it says so, in one of two ways: the attach, or
  # reading the process's probe notes before it); that is not the allocator's doing.
  if grep -qE 'Error (attaching|initializing context for) probe' "$T/$fn.bterr"; then
    one_case "$fn"
  fi
  if [ $rc -ne 0 ]; then
    fail "hits_at_exec/$fn" "exit status $rc: $(head -2 "$T/$fn.err")"
  elif [ "$fn" = syscall ]; then  # past the wrappers: the hits must be lost, or nothing is tested
    if [ -n "$hits" ] && [ "$hits" -lt $N ]; then
      pass "hits_at_exec/unwrapped_exec_loses_hits ($hits of $N reported)"
    else
      fail "hits_at_exec/unwrapped_exec_loses_hits" "${hits:-no} hits reported, want < $N"
    fi
  elif [ "${hits:-0}" -ge $N ]; then
    pass "hits_at_exec/$fn ($hits hits reported of $N)"
  else
    fail "hits_at_exec/$fn" "${hits:-no} hits reported, want >= $N: $(grep -v MEMLOCK "$T/$fn.bterr" | head -2)"
  fi
done
