#!/usr/bin/env bash
# What the hardened variant promises besides its death cases (t_death.sh): block addresses that
# differ from run to run (two processes' first 100 malloc(32) offsets from the first block; the
# release build, which hands blocks out in address order, is the control that shows the
# comparison can see two equal runs), and guard pages whose VMAs follow the live large blocks
# (a churn of 10,000 large blocks with 64 alive: at most 2 VMAs per live block above the start,
# and back to the start once they are freed). About 2 s.
# timeout: 60
. "$(dirname "$0")/lib.sh"
need_bin hardened "$HZ3_TBIN/hardened_test" || exit 0
prog=$HZ3_TBIN/hardened_test

if need_lib hardened/addresses_release_control "$HZ3_LIB"; then
  a=$(LD_PRELOAD=$HZ3_LIB "$prog" addresses 100 32)
  b=$(LD_PRELOAD=$HZ3_LIB "$prog" addresses 100 32)
  if [ -n "$a" ] && [ "$a" = "$b" ]; then
    pass hardened/addresses_release_control
  else
    fail hardened/addresses_release_control "release runs differ or are empty: '${a:0:60}' vs '${b:0:60}'"
  fi
fi

if need_lib hardened/addresses_random "$HZ3_LIB_HARDENED"; then
  a=$(LD_PRELOAD=$HZ3_LIB_HARDENED "$prog" addresses 100 32)
  b=$(LD_PRELOAD=$HZ3_LIB_HARDENED "$prog" addresses 100 32)
  n=$(echo "$a" | wc -w)
  if [ "$n" -ne 100 ]; then
    fail hardened/addresses_random "expected 100 offsets, got $n"
  elif [ "$a" = "$b" ]; then
    fail hardened/addresses_random "two runs handed out the same sequence: ${a:0:80}…"
  else
    pass hardened/addresses_random
  fi
fi

if need_lib hardened/guard_vmas_bounded "$HZ3_LIB_HARDENED"; then
  out=$(LD_PRELOAD=$HZ3_LIB_HARDENED "$prog" vma-churn 10000 64)
  echo "hardened vma-churn 10000 blocks, 64 live: $out"
  eval "$(echo "$out" | tr ' ' '\n' | grep -E '^(before|peak|after)=[0-9]+$')"
  if [ -z "${before:-}" ] || [ -z "${peak:-}" ] || [ -z "${after:-}" ]; then
    fail hardened/guard_vmas_bounded "no counts in '$out'"
  elif [ "$peak" -le "$before" ]; then
    fail hardened/guard_vmas_bounded "no guard VMA ever appeared ($out): guards missing?"
  elif [ "$peak" -gt $((before + 2 * 64 + 16)) ] || [ "$after" -gt $((before + 4)) ]; then
    fail hardened/guard_vmas_bounded "VMAs not bounded by the live blocks: $out"
  else
    pass hardened/guard_vmas_bounded
  fi
fi
