#!/usr/bin/env bash
# The test folders' rules that a grep can check (README.md, "Layout"):
#   no_python_heredocs  no test script (t_*.sh, lib.sh, testlib.sh) feeds Python to python3 on
#                       stdin or with -c to check something: such checks are pytest files run
#                       through pytest_checks (a one-line probe such as `python3 -c 'import x'` is
#                       not a check; t_pytest_lines.sh writes pytest files, and this script plants
#                       violations, on purpose);
#   one_assertion_style no C++ test source defines EXPECT/ASSERT macros of its own: they use
#                       libhz3/tests/check.h's CHECK macros.
# Each rule is also run on a planted violation, which it must report.
# timeout: 30
set -u
top=${HZ3_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/scripts/testlib.sh"
cd "$top" || exit 1

# heredocs FILE…: the lines (comments aside) that give python3 (or $PY) a heredoc, open a heredoc
# ended by PY (Python for a helper that runs it), or run a multi-line python3 -c (a -c whose quote
# does not close on its line).
heredocs() {
  grep -nE "(python3|\\\$PY)( [^<|;]*)?<<|<< *['\"]?PY\\b|python3 -c '[^']*$|python3 -c \"[^\"]*$" "$@" 2>/dev/null |
    grep -vE '^([^:]*:)?[0-9]+: *#'
}
scripts=$(ls libhz3/*/t_*.sh libhz3/tests/lib.sh probes/tests/t_*.sh hz3top/tests/t_*.sh hz3top/tests/lib.sh \
  bench/tests/t_*.sh scripts/tests/t_*.sh scripts/testlib.sh | grep -vE '^scripts/tests/t_(pytest_lines|test_rules).sh$')
found=$(heredocs $scripts)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#!/bin/sh\npython3 - "$f" <<'"'"'PY'"'"'\nprint(1)\nPY\nx=$(python3 -c '"'"'\nimport sys\n'"'"')\n' > "$tmp/t_planted.sh"
planted=$(heredocs "$tmp/t_planted.sh" | wc -l)
if [ -z "$found" ] && [ "$planted" -eq 2 ]; then
  pass "test_rules/no_python_heredocs ($(echo "$scripts" | wc -w) scripts)"
else
  fail test_rules/no_python_heredocs "$(echo "$found" | head -3 | tr '\n' '|') (planted violations seen: $planted of 2)"
fi

# own_macros FILE…: C++ test sources that define EXPECT*/ASSERT* macros of their own.
own_macros() {
  grep -lE '^#define (EXPECT|ASSERT)[A-Z_]*\(' "$@" 2>/dev/null
}
srcs=$(git ls-files 'libhz3/tests/*.cc' 'libhz3/unit/*.cc' 'libhz3/reliability/*.cc' 'hz3top/tests/*.cc' \
  'probes/tests/*.c' 'scripts/tests/*.cc' 'libhz3/tests/*.h' 'hz3top/tests/*.h' | grep -v '^libhz3/tests/check.h$')
bad=$(own_macros $srcs)
printf '#define EXPECT(c) do { if (!(c)) g_ok = false; } while (0)\n' > "$tmp/planted.cc"
if [ -z "$bad" ] && [ -n "$(own_macros "$tmp/planted.cc")" ]; then
  pass "test_rules/one_assertion_style ($(echo "$srcs" | wc -w) sources)"
else
  fail test_rules/one_assertion_style "not on libhz3/tests/check.h: $(echo "$bad" | tr '\n' ' ')"
fi
