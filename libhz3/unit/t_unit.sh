#!/usr/bin/env bash
# Internal unit tests, once per variant (each links that variant's libhz3.a). A unit binary that
# dies or exits non-zero after its PASS lines is a FAIL of unit/VARIANT (exit_verdict).
# timeout: 300
. "$HZ3_TOP/scripts/testlib.sh"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for v in release check noprobes noptag hardened magall; do
  bin=$HZ3_TBIN/unit_test_$v
  if [ ! -x "$bin" ]; then fail "unit/$v" "$bin not built"; continue; fi
  "$bin" 2>&1 | sed "s|: unit/|: unit/$v/|" | tee "$log"
  exit_verdict "unit/$v" "${PIPESTATUS[0]}" "$log"
done
exit 0
