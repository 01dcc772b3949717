#!/usr/bin/env bash
# The heap-misuse suite (libhz3/reliability/misuse/) against hz3 release, check and hardened, and
# glibc: every case
# that release catches today is still caught, with the one-line `hz3: …` diagnostic and SIGABRT
# where hz3 checks the pointer itself; check catches everything release does, every double free,
# invalid free, realloc and malloc_usable_size of a freed block of every size class, and at least
# as many cases as release. The classifier is tested too: glibc must be reported as catching an
# immediate small double free ("free(): double free detected in tcache 2"), and the control case
# (no misuse) must survive under all three. hardened must catch more cases than glibc, every
# 1-byte overflow, and everything check catches of the double/invalid-free families. `make misuse` measures the whole table with every
# allocator (docs/reliability-misuse.md). The checks of the tables are test_misuse.py's, run
# through pytest_checks. Budget: ~5 s.
# timeout: 60
. "$(dirname "$0")/../tests/lib.sh"
need_lib misuse/release "$HZ3_LIB" || exit 0
need_lib misuse/check "$HZ3_LIB_CHECK" || exit 0
need_lib misuse/hardened "$HZ3_LIB_HARDENED" || exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
runner=$top/libhz3/reliability/misuse/run.py

python3 "$runner" --out "$tmp" --timeout 10 --json "$tmp/hz3.json" \
  "release=$HZ3_LIB" "check=$HZ3_LIB_CHECK" "hardened=$HZ3_LIB_HARDENED" > "$tmp/hz3.out" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  fail misuse/runner "run.py exited with $rc: $(tail -3 "$tmp/hz3.out" | tr '\n' ' ')"
  exit 0
fi
python3 "$runner" --out "$tmp" --timeout 10 --json "$tmp/glibc.json" glibc > "$tmp/glibc.out" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  fail misuse/runner_glibc "run.py exited with $rc: $(tail -3 "$tmp/glibc.out" | tr '\n' ' ')"
  exit 0
fi

pytest_checks test_misuse.py -- HZ3_MISUSE_HZ3="$tmp/hz3.json" HZ3_MISUSE_GLIBC="$tmp/glibc.json"
