#!/usr/bin/env bash
# timeout: 60
# Bad input gives one line on stderr that says what to do, and a non-zero exit status: no
# privileges, a pid that does not exist, a process without libhz3, an unknown perf event, no
# target at all.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"

# expect_error NAME PATTERN CMD…: CMD must fail, print exactly one stderr line matching PATTERN
# and nothing on stdout.
expect_error() {
  local name=$1 pattern=$2; shift 2
  "$@" >"$T/out" 2>"$T/err" </dev/null
  local rc=$? lines
  lines=$(wc -l <"$T/err")
  if [ "$rc" -eq 0 ]; then fail "$name" "exit status 0"; return; fi
  if [ "$rc" -gt 128 ]; then fail "$name" "killed by signal $((rc - 128)), not an error exit"; return; fi
  if [ "$lines" -ne 1 ]; then fail "$name" "$lines stderr lines: $(head -3 "$T/err" | tr '\n' '|')"; return; fi
  if ! grep -qE -- "$pattern" "$T/err"; then fail "$name" "message '$(cat "$T/err")' lacks /$pattern/"; return; fi
  if [ -s "$T/out" ]; then fail "$name" "wrote to stdout: $(head -c 200 "$T/out")"; return; fi
  pass "$name ($(cat "$T/err"))"
}

if [ ! -x "$HZ3TOP" ]; then fail hz3top_errors "$HZ3TOP not built"; exit 0; fi

# Privileges are checked before anything is loaded: libbpf's own EPERM message would blame
# RLIMIT_MEMLOCK. nobody may not be able to reach a build under /root; copy the binary.
if is_root && command -v setpriv >/dev/null; then
  install -m 755 "$HZ3TOP" "$T/hz3top"
  chmod 755 "$T"
  expect_error errors/no_privileges 'needs root or CAP_BPF\+CAP_PERFMON.*sudo' \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$T/hz3top" -p $$
else
  skip errors/no_privileges "needs root and setpriv to drop to an unprivileged user"
fi

# A pid beyond pid_max cannot exist.
expect_error errors/no_such_pid 'no process with pid 2147483646.*pidof' "$HZ3TOP" -p 2147483646 --plain

sleep 30 &
sleeper=$!
WL_PIDS+=("$sleeper")
if is_root; then
  expect_error errors/no_libhz3 "process $sleeper \(sleep\) does not use libhz3.*LD_PRELOAD" \
    "$HZ3TOP" -p "$sleeper" --plain
else
  skip errors/no_libhz3 "needs root (the privilege check comes first)"
fi

expect_error errors/unknown_event "unknown perf event 'no-such-event'.*perf list" \
  "$HZ3TOP" -p "$sleeper" --event no-such-event --plain
expect_error errors/no_target 'say which processes: -p PID or --all' "$HZ3TOP" --plain
expect_error errors/pid_and_all 'exclude each other' "$HZ3TOP" -p 1 --all
expect_error errors/lib_without_all '--lib goes with --all' "$HZ3TOP" -p 1 --lib /nonexistent

# Range errors in words, not CLI11's 300-digit range limits.
expect_error errors/interval_zero "^hz3top: interval must be > 0, not '0' \(see hz3top --help\)$" \
  "$HZ3TOP" -p 1 0
expect_error errors/count_zero "^hz3top: count must be > 0, not '0'" "$HZ3TOP" -p 1 1 0
expect_error errors/duration_negative "^hz3top: -d must be > 0, not '-2'" "$HZ3TOP" -p 1 -d -2
expect_error errors/heap_interval_zero "^hz3top heap: interval must be > 0" "$HZ3TOP" heap -p 1 0
expect_error errors/openmetrics_bad_addr "takes HOST:PORT" "$HZ3TOP" -p 1 --openmetrics=9464
expect_error errors/follow_with_all "-f goes with -p" "$HZ3TOP" --all -f
