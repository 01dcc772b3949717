#!/usr/bin/env bash
# Internal unit tests, once per variant (each links that variant's libhz3.a).
# timeout: 120
. "$HZ3_TOP/scripts/testlib.sh"
for v in release check noprobes noptag hardened; do
  bin=$HZ3_TBIN/unit_test_$v
  if [ ! -x "$bin" ]; then fail "unit/$v" "$bin not built"; continue; fi
  "$bin" | sed "s|: unit/|: unit/$v/|"
done
