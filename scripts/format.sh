#!/usr/bin/env bash
# clang-format over the C++ tree, with the clang-format release the tree is formatted with.
#   scripts/format.sh check [FILE…]   exit 1 and name every file that needs reformatting
#   scripts/format.sh fix [FILE…]     reformat in place
# Without FILEs: every tracked *.cc, *.h and *.hpp except the BPF programs (*.bpf.*), which
# are kernel-style C (see probes/hz3_events.h). `make format-check` and `make format` call this;
# scripts/tests/t_format.sh runs the check in `make test`.
# Another clang-format release breaks lines differently, so a different major version is refused
# (exit 2) rather than reporting a tree that is clean under version 14 as violating.
set -u
want_major=14
mode=${1:-}
case "$mode" in
  check | fix) shift ;;
  *) echo "usage: $0 check|fix [FILE…]" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
  for c in clang-format-$want_major clang-format; do
    command -v "$c" > /dev/null && { cf=$c; break; }
  done
fi
if [ -z "$cf" ] || ! command -v "$cf" > /dev/null; then
  echo "format: ${cf:-clang-format-$want_major} not found (scripts/deps.sh test installs clang-format-$want_major)" >&2
  exit 2
fi
ver=$("$cf" --version 2>/dev/null | sed -n 's/.*clang-format version \([0-9][0-9]*\)\..*/\1/p')
if [ "$ver" != "$want_major" ]; then
  echo "format: $cf is version ${ver:-unknown}; the tree is formatted with clang-format $want_major" >&2
  exit 2
fi

if [ $# -gt 0 ]; then
  files=("$@")
else
  if ! list=$(git ls-files '*.cc' '*.h' '*.hpp' 2>/dev/null); then
    echo "format: not a git checkout: pass the files to check" >&2
    exit 2
  fi
  files=()
  while IFS= read -r f; do
    case "$f" in *.bpf.*) continue ;; esac
    [ -f "$f" ] && files+=("$f")
  done <<< "$list"
fi
[ ${#files[@]} -gt 0 ] || { echo "format: no files" >&2; exit 2; }

if [ "$mode" = fix ]; then
  exec "$cf" -i --style=file "${files[@]}"
fi

bad=()
for f in "${files[@]}"; do
  # clang-format prints one "file:line:col: error: code should be clang-formatted" per change.
  n=$("$cf" --dry-run --style=file "$f" 2>&1 | grep -c 'code should be clang-formatted')
  [ "$n" -gt 0 ] && bad+=("$f ($n)")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "format-check: ${#bad[@]} of ${#files[@]} files need clang-format $want_major (violations):"
  printf '  %s\n' "${bad[@]}"
  echo "format-check: run 'make format' (or scripts/format.sh fix FILE…) and commit the result"
  exit 1
fi
echo "format-check: ${#files[@]} files clean (clang-format $want_major)"
