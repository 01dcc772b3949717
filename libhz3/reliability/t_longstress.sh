#!/usr/bin/env bash
# Long stress (stress.cc): many threads trading blocks of every size through shared slots,
# realloc chains, thread churn, fork at 1/3 and 2/3 of the run, every block checked, and RSS
# sampled against the live bytes (bounded and not growing). make test runs an 8 s smoke against
# release; `make stress` runs STRESS_SECONDS (default 180) against release, check and hardened
# (those built) with more threads and slots. Budget in make test: ~12 s.
# timeout: 120
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/rel.sh"
need_bin longstress "$HZ3_TBIN/rel_stress" || exit 0
need_lib longstress "$HZ3_LIB" || exit 0
secs=${REL_STRESS_SECONDS:-8}
args=(--seconds "$secs")
[ -n "${REL_STRESS_SECONDS:-}" ] && args+=(--threads 24 --slots 4096)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
while read -r label lib; do
  [ -n "${REL_STRESS_SECONDS:-}" ] || [ "$label" = "$(lib_label "$HZ3_LIB")" ] || continue
  LD_PRELOAD=$lib timeout -k 5 $((secs * 3 + 60)) "$HZ3_TBIN/rel_stress" "longstress/$label" \
    "${args[@]}" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    fail "longstress/$label" "timed out after $((secs * 3 + 60)) s"
  else
    exit_verdict "longstress/$label" "$rc" "$log"
  fi
done < <(preload_variants)
