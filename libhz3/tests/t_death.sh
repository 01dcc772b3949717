#!/usr/bin/env bash
# Invalid-pointer and double-free death tests (death_test.cc) against every variant; each misuse
# runs in a child that must print exactly one `hz3: …` line naming the pointer and die of SIGABRT.
# Small-block double frees are only promised by the check and hardened variants; hardened adds
# its own cases (--hardened: overflows, write after free, guard pages). Budget: ~2 s per variant.
# timeout: 120
. "$(dirname "$0")/lib.sh"
need_bin death "$HZ3_TBIN/death_test" || exit 0
for v in release check noprobes noptag hardened; do
  lib=$(variant_lib "$v")
  need_lib "death/$v" "$lib" || continue
  extra=()
  [ "$v" = check ] && extra=(--check)
  [ "$v" = hardened ] && extra=(--hardened)
  run_group "death/$v" "$lib" "$HZ3_TBIN/death_test" "$v" --hz3 "${extra[@]}"
done
