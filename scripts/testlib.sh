# Sourced by test scripts (<component>/tests/t_*.sh). Result lines are what the runner counts.
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: ${2:-}"; }
skip() { echo "SKIP: $1: $2"; }
# check NAME CMD…: PASS when CMD exits 0, FAIL (with its last output lines) otherwise.
check() {
  local name=$1; shift
  local out; out=$("$@" 2>&1); local rc=$?
  if [ $rc -eq 0 ]; then pass "$name"; else fail "$name" "exit $rc: $(echo "$out" | tail -3 | tr '\n' ' ')"; fi
}
is_root() { [ "$(id -u)" -eq 0 ]; }
