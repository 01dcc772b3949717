#!/usr/bin/env bash
# timeout: 60
# Hits from a quiet thread reach the tracer on a time bound: a process doing one 64 B
# malloc+free per millisecond (~1,000 hits a second, far from the 8,192 of a batch and from the
# 1,024 frees between two bound checks of the class) must report its hits through hz3:hits at
# least every ~1 s while bpftrace is attached (docs/probes.md, "hits"). Without the time bound,
# nothing would arrive for minutes.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing hits_time_bound
require_bpftrace hits_time_bound
cc -O1 -o "$T/quiet" "$HZ3_TOP/probes/tests/quiet_hits.c" ||
  { fail hits_time_bound "cannot compile probes/tests/quiet_hits.c"; exit 0; }

L=$HZ3_LIB
LD_PRELOAD=$L "$T/quiet" 12 &
pid=$!
sleep 0.3
timeout 9 bpftrace -B line -p "$pid" -e "
usdt:$L:hz3:hits { @hits += arg0; @reports++; }
interval:ms:500 { printf(\"tick %d %d\\n\", @reports, @hits); }
" >"$T/bt.out" 2>"$T/bt.err"
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
# Ticks are every 0.5 s over ~9 s of attachment; the first chunked report can take up to one
# bound-check interval (1,024 frees, ~1.1 s here) after attach.
ticks=$(grep -c '^tick ' "$T/bt.out")
last=$(grep '^tick ' "$T/bt.out" | tail -1)
reports=$(echo "$last" | awk '{print $2}')
hits=$(echo "$last" | awk '{print $3}')
# The longest run of ticks without a new report, in ticks (0.5 s each).
gap=$(grep '^tick ' "$T/bt.out" | awk 'BEGIN {g = 0; run = 0; prev = -1}
  { if ($2 == prev) { run++ } else { run = 0 }; prev = $2; if ($2 > 0 && run > g) g = run }
  END { print g }')
if [ "$ticks" -lt 10 ]; then
  fail hits_time_bound "bpftrace printed $ticks ticks: $(grep -v 'MEMLOCK' "$T/bt.err" | head -2)"
elif [ "${reports:-0}" -ge 5 ] && [ "${hits:-0}" -ge 4000 ] && [ "$gap" -le 4 ]; then
  pass "hits_time_bound ($reports reports, $hits hits in $ticks half-second ticks, longest gap $((gap / 2)).$((gap % 2 * 5)) s)"
else
  fail hits_time_bound "$reports reports, $hits hits in $ticks half-second ticks (longest gap $gap ticks); want >= 5 reports, >= 4000 hits, gaps <= 2 s"
fi
