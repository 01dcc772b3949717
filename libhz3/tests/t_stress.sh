#!/usr/bin/env bash
# Multi-threaded stress (stress_test.cc) against release, check and hardened: cross-thread frees
# through queues, 160 threads alive at once, 5000 short-lived threads, late TLS destructors, fork
# from a multi-threaded process. Budget: ~15 s per variant (check is slower).
# timeout: 300
. "$(dirname "$0")/lib.sh"
need_bin stress "$HZ3_TBIN/stress_test" || exit 0
for v in release check hardened; do
  lib=$(variant_lib "$v")
  need_lib "stress/$v" "$lib" || continue
  run_group "stress/$v" "$lib" "$HZ3_TBIN/stress_test" "$v"
done
