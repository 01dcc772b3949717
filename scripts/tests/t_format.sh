#!/usr/bin/env bash
# The formatting rule in make test: the tracked C++ tree is clean under clang-format 14
# (scripts/format.sh check, what `make format-check` runs), and the check itself fails, naming
# the file, on a file that violates the format (a copy of a tracked source with its spacing
# broken, placed in the tree so the project's .clang-format applies to it).
# timeout: 120
set -u
top=${HZ3_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/scripts/testlib.sh"
cd "$top"

if ! command -v clang-format-14 > /dev/null && ! command -v clang-format > /dev/null; then
  skip format/tree_clean "clang-format not installed (scripts/deps.sh test installs clang-format-14)"
  exit 0
fi
if ! git rev-parse --git-dir > /dev/null 2>&1; then
  skip format/tree_clean "not a git checkout: the checked files are the tracked ones"
  exit 0
fi

out=$(bash scripts/format.sh check 2>&1)
rc=$?
if [ $rc -eq 0 ]; then
  pass format/tree_clean
else
  fail format/tree_clean "exit $rc: $(echo "$out" | head -6 | tr '\n' ' ')"
fi

# A violation: the same code with a run of blanks and a brace moved. The check must exit 1 and
# print the file's name.
dir=$(mktemp -d "$top/.format-test.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cp libhz3/src/util.h "$dir/clean.h"
sed -e 's/^namespace hz3 {$/namespace   hz3\n{/' libhz3/src/util.h > "$dir/broken.h"
if cmp -s "$dir/clean.h" "$dir/broken.h"; then
  fail format/violation_detected "could not build a violating file from libhz3/src/util.h"
  exit 0
fi
out=$(bash scripts/format.sh check "$dir/clean.h" "$dir/broken.h" 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "broken.h" && ! echo "$out" | grep -q "clean.h"; then
  pass format/violation_detected
else
  fail format/violation_detected "exit $rc (want 1 naming broken.h only): $(echo "$out" | head -4 | tr '\n' ' ')"
fi
