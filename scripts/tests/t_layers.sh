#!/usr/bin/env bash
# The layer rule of libhz3/src (libhz3/src/README.md): scripts/check_layers.py passes on the
# tree and prints its include graph (into the log), and fails, naming the file, on copies of the
# folder with an upward include (large.cc including heap.h), an include cycle (pal.h and
# addr_map.h including each other) and a file in no layer.
# timeout: 60
set -u
top=${HZ3_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/scripts/testlib.sh"
cd "$top"
py=/usr/bin/python3

out=$($py scripts/check_layers.py libhz3/src 2>&1)
rc=$?
echo "$out"
if [ $rc -eq 0 ] && echo "$out" | grep -q '^  heap     heap.cc '; then
  pass layers/libhz3_src
else
  fail layers/libhz3_src "exit $rc: $(echo "$out" | grep violation | head -4 | tr '\n' ' ')"
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# broken NAME WANT EDIT…: a copy of libhz3/src changed by the shell command EDIT (run inside the
# copy) must make the check exit 1 with a violation line matching WANT.
broken() {
  local name=$1 want=$2; shift 2
  rm -rf "$dir/src" && cp -r libhz3/src "$dir/src"
  (cd "$dir/src" && eval "$*")
  local o; o=$($py scripts/check_layers.py "$dir/src" 2>&1)
  local r=$?
  if [ $r -eq 1 ] && echo "$o" | grep '^violation: ' | grep -qE "$want"; then
    pass "layers/$name"
  else
    fail "layers/$name" "exit $r (want 1 and a violation matching '$want'): $(echo "$o" | grep violation | head -3 | tr '\n' ' ')"
  fi
}
broken upward_detected '^violation: large.cc:[0-9]+: includes heap.h upward \(large -> heap\)' \
  "sed -i 's|#include \"arena.h\"|#include \"arena.h\"\n#include \"heap.h\"|' large.cc"
broken cycle_detected 'include cycle: (addr_map.h -> pal.h -> addr_map.h|pal.h -> addr_map.h -> pal.h)' \
  "sed -i 's|#include <cstdint>|#include <cstdint>\n\n#include \"addr_map.h\"|' pal.h"
broken unlisted_detected '^violation: extra.h: in no layer' "echo '#pragma once' > extra.h"
