#!/usr/bin/env bash
# The arena's placement (fixed_arena.cc): in every variant the arena takes the fixed layout
# (4 TiB, tags at 4 GiB) in a plain run, under `ulimit -v` 200 MiB (a smaller arena, same place)
# and in the 1 GiB-arena build; when the program already has a page where the arena or its tags
# would go, hz3 falls back to the kernel's placement and still serves every class, realloc,
# cross-thread frees, and aborts on a free of the program's own page in the fixed range.
# Budget: ~5 s.
# timeout: 120
. "$(dirname "$0")/lib.sh"
need_bin fixed_arena "$HZ3_TBIN/fixed_arena" "$HZ3_TBIN/fixed_arena_block_base" \
  "$HZ3_TBIN/fixed_arena_block_tags" || exit 0
for v in release check noprobes noptag hardened; do
  lib=$(variant_lib $v)
  need_lib "fixed_arena/$v" "$lib" || continue
  run_group "fixed_arena/$v" "$lib" "$HZ3_TBIN/fixed_arena" "$v" fixed
  (ulimit -v $((200 * 1024)) &&
    run_group "fixed_arena/$v-vlimit" "$lib" "$HZ3_TBIN/fixed_arena" "$v-vlimit" fixed)
  run_group "fixed_arena/$v-block-base" "$lib" "$HZ3_TBIN/fixed_arena_block_base" \
    "$v-block-base" dynamic
  run_group "fixed_arena/$v-block-tags" "$lib" "$HZ3_TBIN/fixed_arena_block_tags" \
    "$v-block-tags" dynamic
done
arena1g=$build_dir/reliability/arena1g/libhz3.so
if need_lib fixed_arena/arena1g "$arena1g"; then
  run_group fixed_arena/arena1g "$arena1g" "$HZ3_TBIN/fixed_arena" arena1g fixed
fi
