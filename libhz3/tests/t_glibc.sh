#!/usr/bin/env bash
# glibc compatibility, line by line: glibc_diff prints one normalised line per behaviour
# ("name: result"); it runs once on glibc (no preload, the reference: glibc 2.36 on Debian 12)
# and once under each variant, and every line must read the same. One result per behaviour and
# variant: glibc/release/memalign(24, 100), … Budget: ~2 s per variant.
# timeout: 120
. "$(dirname "$0")/lib.sh"
need_bin glibc "$HZ3_TBIN/glibc_diff" || exit 0
ref=$(mktemp) got=$(mktemp)
trap 'rm -f "$ref" "$got"' EXIT
"$HZ3_TBIN/glibc_diff" > "$ref" 2>/dev/null
if [ ! -s "$ref" ] || grep -q ': crashed' "$ref"; then
  fail glibc "the reference run on glibc did not complete: $(grep ': crashed' "$ref" | head -1)"
  exit 0
fi
for v in release check noprobes noptag; do
  lib=$(variant_lib "$v")
  need_lib "glibc/$v" "$lib" || continue
  LD_PRELOAD=$lib "$HZ3_TBIN/glibc_diff" > "$got" 2>/dev/null
  while IFS= read -r line; do
    name=${line%%: *}
    want=${line#*: }
    have=$(awk -v n="$name: " 'index($0, n) == 1 { print substr($0, length(n) + 1); exit }' "$got")
    if [ "$have" = "$want" ]; then
      pass "glibc/$v/$name"
    else
      fail "glibc/$v/$name" "hz3 \"${have:-no line}\", glibc \"$want\""
    fi
  done < "$ref"
done
