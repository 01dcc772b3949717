#!/usr/bin/env bash
# Reproducers of allocator bugs found by the reliability work (regress.cc), against release, check
# and hardened: a case FAILs while its bug is present. docs/reliability.md describes each bug.
# Budget: ~10 s.
# timeout: 120
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/rel.sh"
need_bin regress "$HZ3_TBIN/rel_regress" || exit 0
need_lib regress "$HZ3_LIB" || exit 0
while read -r label lib; do
  run_group "regress/$label" "$lib" "$HZ3_TBIN/rel_regress" "regress/$label"
done < <(preload_variants)
