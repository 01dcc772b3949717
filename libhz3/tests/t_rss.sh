#!/usr/bin/env bash
# RSS return (rss_test.cc), release variant: 1 GiB of small, medium, thread-exit and cross-thread
# frees must come back to within 64 MiB of the baseline within 2 s, with no further allocator
# call. Needs ~1.2 GiB of free memory; skipped when the machine has less. Budget: ~15 s.
# timeout: 120
. "$(dirname "$0")/lib.sh"
need_bin rss "$HZ3_TBIN/rss_test" || exit 0
need_lib rss/release "$HZ3_LIB" || exit 0
avail_kib=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
if [ "${avail_kib:-0}" -lt $((1536 * 1024)) ]; then
  skip rss/release "only $((avail_kib / 1024)) MiB available, the test needs ~1.5 GiB"
  exit 0
fi
run_group rss/release "$HZ3_LIB" "$HZ3_TBIN/rss_test" release
