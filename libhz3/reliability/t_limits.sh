#!/usr/bin/env bash
# Limits (limits.cc), release, check and hardened: allocation under `ulimit -v` at 2 GiB (the
# arena halves to fit) and 200 MiB (tight: large and small allocations until NULL/ENOMEM, then the
# process goes on, threads and fork included); 64-byte blocks until NULL under 2 GiB; arena
# exhaustion with a 1 GiB-arena build of the release library; a plugin dlopen'ed after start
# that allocates and frees. Budget: ~20 s.
# timeout: 180
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/rel.sh"
need_bin limits "$HZ3_TBIN/rel_limits" || exit 0
need_lib limits "$HZ3_LIB" || exit 0
prog=$HZ3_TBIN/rel_limits
while read -r label lib; do
  for mib in 2048 200; do
    (ulimit -v $((mib * 1024)) && run_group "limits/$label" "$lib" "$prog" "limits/$label" vlimit "$mib")
  done
  # 64-byte blocks under 2 GiB: glibc gets ~1.6 GiB; a page per block past the arena gave ~1 GiB.
  # hardened puts 64-byte requests in 80-byte slots (canary room): 4/5 of the bound.
  min=1400; [ "$label" = hardened ] && min=1120
  (ulimit -v $((2048 * 1024)) && run_group "limits/$label" "$lib" "$prog" "limits/$label" small_fill $min)
  if [ -f "$rel_out/librel_plugin.so" ]; then
    run_group "limits/$label" "$lib" "$prog" "limits/$label" dlopen_plugin "$rel_out/librel_plugin.so"
  else
    fail "limits/$label/dlopen_plugin" "${rel_out#"$top"/}/librel_plugin.so not built (run make)"
  fi
done < <(preload_variants)
arena1g=$rel_out/arena1g/libhz3.so
if need_lib limits/arena1g/arena_exhaust "$arena1g"; then
  run_group limits/arena1g "$arena1g" "$prog" limits/arena1g arena_exhaust
fi
