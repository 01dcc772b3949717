#!/usr/bin/env bash
# API conformance (api_test.cc) against every library variant, one result group per variant:
# api/release/…, api/check/…, api/noprobes/…, api/noptag/…, api/hardened/…, api/magall/…
# Budget: ~10 s per variant.
# timeout: 240
. "$(dirname "$0")/lib.sh"
need_bin api "$HZ3_TBIN/api_test" || exit 0
for v in release check noprobes noptag hardened magall; do
  lib=$(variant_lib "$v")
  need_lib "api/$v" "$lib" || continue
  run_group "api/$v" "$lib" "$HZ3_TBIN/api_test" "$v" --hz3
done
