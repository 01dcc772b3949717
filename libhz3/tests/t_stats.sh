#!/usr/bin/env bash
# hz3's statistics (stats_test.cc, docs/stats.md) against every library variant: mallinfo2,
# mallinfo, malloc_stats, malloc_info and mallopt report hz3's own ledger, which adds up.
# Results: stats/release/…, stats/check/…, … Budget: ~1 s per variant.
# timeout: 120
. "$(dirname "$0")/lib.sh"
need_bin stats "$HZ3_TBIN/stats_test" || exit 0
for v in release check noprobes noptag; do
  lib=$(variant_lib "$v")
  need_lib "stats/$v" "$lib" || continue
  run_group "stats/$v" "$lib" "$HZ3_TBIN/stats_test" "stats/$v" --hz3
done
