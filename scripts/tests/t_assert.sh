#!/usr/bin/env bash
# The three assertion levels of libhz3/src/util.h (cheap HZ3_ASSERT, HZ3_ASSERT_INTERNAL,
# HZ3_ASSERT_EXPENSIVE): scripts/tests/assert_levels.cc is built at each HZ3_ASSERT_LEVEL and at
# the defaults of the release (HZ3_CHECK=0) and check (HZ3_CHECK=1) variants, linked against the
# release libhz3.a for hz3::fatal. An assertion at or below the level must abort with
# "hz3: assertion failed at <file>:<line>: <condition>"; one above it must not run its condition.
# timeout: 180
set -u
top=${HZ3_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/scripts/testlib.sh"
build=${HZ3_BUILD:-$top/build}
lib=$build/lib/libhz3.a
cxx=${CXX:-g++}
src=$top/scripts/tests/assert_levels.cc
if [ ! -f "$lib" ]; then
  skip assert/levels "$lib not built (make lib)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

line_of() { grep -n "$1(fails())" "$src" | cut -d: -f1; }
declare -A macro=([cheap]=HZ3_ASSERT [internal]=HZ3_ASSERT_INTERNAL [expensive]=HZ3_ASSERT_EXPENSIVE)
declare -A rank=([cheap]=1 [internal]=2 [expensive]=3)

# config NAME WANT_LEVEL DEFINES…: build, check the level the build chose, run every kind.
config() {
  local name=$1 want=$2; shift 2
  local bin=$tmp/assert_$name
  if ! "$cxx" -std=c++20 -O1 -Wall -Werror -I"$top/libhz3/src" -I"$top/libhz3/include" "$@" \
      "$src" -o "$bin" "$lib" -lpthread > "$tmp/$name.cc.log" 2>&1; then
    fail "assert/$name/builds" "$(head -3 "$tmp/$name.cc.log" | tr '\n' ' ')"
    return
  fi
  local got; got=$("$bin" level)
  if [ "$got" = "level $want" ]; then pass "assert/$name/level_$want"; else fail "assert/$name/level_$want" "prints '$got'"; fi
  local kind out rc
  for kind in cheap internal expensive; do
    out=$("$bin" "$kind" 2>&1); rc=$?
    if [ "${rank[$kind]}" -le "$want" ]; then
      local expect="hz3: assertion failed at $src:$(line_of "${macro[$kind]}"): fails()"
      if [ $rc -eq 134 ] && [ "$out" = "$expect" ]; then
        pass "assert/$name/$kind/aborts_with_file_and_line"
      else
        fail "assert/$name/$kind/aborts_with_file_and_line" "status $rc, output '$out', want 134 and '$expect'"
      fi
    else
      if [ $rc -eq 0 ] && [ "$out" = "compiled out, evaluated 0" ]; then
        pass "assert/$name/$kind/compiled_out"
      else
        fail "assert/$name/$kind/compiled_out" "status $rc, output '$out'"
      fi
    fi
  done
}

config release 0
config check 2 -DHZ3_CHECK=1
config level1 1 -DHZ3_ASSERT_LEVEL=1
config level3 3 -DHZ3_CHECK=1 -DHZ3_ASSERT_LEVEL=3
