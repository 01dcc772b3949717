#!/usr/bin/env bash
# timeout: 60
# hz3top heap --json profiles a workload with three known allocation sites, each in its own
# function (hz3top/tests/heap_sites.cc), preloaded with the real libhz3, with real eBPF on
# libhz3's otel_memory probes. The last report must name each site function (the first frame
# outside libhz3, symbolized from the executable's .symtab) and estimate its allocated and live
# bytes within 4 standard deviations of the truth the workload prints. For n blocks of s bytes
# sampled with p = 1 - exp(-s / 512 KiB) and weight s / p, the estimate's variance is
# n s^2 (1 - p) / p (docs/heap-profiling.md, "Accuracy"). Also: the churn site (every block
# freed) shows no live bytes, the stack of a site starts with libhz3's frames and reaches main,
# and allocation rates are reported for the interval in which the workload ran. Errors: no -p,
# a process without libhz3, a noprobes libhz3 (one line each, exit 2 or 1).
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
SITES=${HZ3_TBIN:-build/tests}/hz3top_heap_sites
if ! is_root; then skip heap "needs root (BPF)"; exit 0; fi
[ -x "$HZ3TOP" ] && [ -x "$SITES" ] || { fail heap "hz3top or hz3top_heap_sites not built (make all)"; exit 0; }
[ -f "$HZ3_LIB" ] || { fail heap "no library at $HZ3_LIB"; exit 0; }

LD_PRELOAD=$HZ3_LIB "$SITES" "$T/go" "$T/stop" >"$T/truth" 2>"$T/sites.err" &
WL=$!
WL_PIDS+=("$WL")
# Attach only once the workload runs (a fork of this shell does not map libhz3 yet).
for _ in $(seq 100); do grep -q libhz3 "/proc/$WL/maps" 2>/dev/null && break; sleep 0.05; done
"$HZ3TOP" heap -p "$WL" --json 0.3 >"$T/heap.json" 2>"$T/heap.err" &
TOP=$!
# The first report comes one interval after the probes are attached.
for _ in $(seq 100); do [ -s "$T/heap.json" ] && break; kill -0 $TOP 2>/dev/null || break; sleep 0.05; done
if [ ! -s "$T/heap.json" ]; then
  if grep -q 'failed to load BPF' "$T/heap.err"; then
    skip heap "BPF cannot load here: $(head -1 "$T/heap.err")"; exit 0
  fi
  fail heap/attach "no report within 5 s: $(head -3 "$T/heap.err")"; exit 0
fi
touch "$T/go"
for _ in $(seq 300); do [ -s "$T/truth" ] && break; sleep 0.05; done
[ -s "$T/truth" ] || { fail heap/workload "no truth line within 15 s: $(cat "$T/sites.err")"; exit 0; }
sleep 0.8  # at least two reports after the workload finished allocating
touch "$T/stop"
wait_pid "$TOP" 10
rc=$?
[ $rc -eq 0 ] && pass heap/exit || fail heap/exit "hz3top heap exited $rc after its target: $(head -3 "$T/heap.err")"

python3 - "$T/truth" "$T/heap.json" <<'PY'
import json, math, sys
truth = dict(kv.split('=') for kv in open(sys.argv[1]).read().split()[1:])
truth = {k: int(v) for k, v in truth.items()}
reports = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
last = reports[-1]
MEAN = 512 * 1024
def out(ok, name, why):
    print(('PASS: %s (%s)' if ok else 'FAIL: %s: %s') % (name, why))
out(last['final'] and len(last['procs']) == 1, 'heap/final', 'last report final, one process')
proc = last['procs'][0]
print('  samples %d, live samples %d, free_unknown %d, dropped %d; workload ran %.0f ms traced' % (
    last['samples'], proc['live_samples'], last['free_unknown'], last['live_dropped'],
    truth['run_us'] / 1e3))
by_func = {}
for s in proc['sites']:
    if s['func']:
        by_func.setdefault(s['func'].split('::')[-1].split('(')[0], s)
for name in ('site_keep_half', 'site_big_blocks', 'site_churn'):
    s = by_func.get(name)
    if not s:
        out(False, 'heap/%s' % name, 'no site named %s; sites: %s' % (
            name, [x['site'] for x in proc['sites']][:6]))
        continue
    out(s['lib'] == 'hz3top_heap_sites', 'heap/%s/lib' % name, 'in %s' % s['lib'])
    size = truth[name + '_size']
    p = 1 - math.exp(-size / MEAN)
    for what in ('alloc', 'live'):
        true = truth['%s_%s' % (name, what)]
        est = s['%s_bytes' % what]
        n = true // size if true else 0
        sd = math.sqrt(n * size * size * (1 - p) / p)
        if true == 0:
            # Every sampled block of the churn site was freed while the tracer watched.
            ok, why = est == 0, 'estimate %d for nothing live' % est
        else:
            ok = abs(est - true) <= 4 * sd
            why = 'estimate %d vs truth %d (%+.1f %%, 4 sd = %.1f %%)' % (
                est, true, 100.0 * (est - true) / true, 400.0 * sd / true)
        out(ok, 'heap/%s/%s' % (name, what), why)
    st = s['stack']
    ok = len(st) >= 3 and st[0]['hz3'] and st[0]['lib'].startswith('libhz3') and \
        any(f['func'] == 'main' for f in st)
    out(ok, 'heap/%s/stack' % name, ' <- '.join((f['func'] or '?') for f in st[:8]))
rates = [x['procs'][0]['sites'] for x in reports]
peak = max((s['alloc_rate'] for sites in rates for s in sites if 'site_churn' in s['func']), default=0)
out(peak > 0, 'heap/rate', 'peak site_churn allocation rate %.0f B/s' % peak)
PY
rc=$?
[ $rc -eq 0 ] || fail heap/checker "the report checker exited with status $rc (traceback above)"

# Errors: one line, non-zero exit, and no attach.
out=$("$HZ3TOP" heap 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q -- '--pid is required' && pass heap/usage ||
  fail heap/usage "exit $rc: $out"
sleep 5 &
plain=$!
WL_PIDS+=("$plain")
out=$("$HZ3TOP" heap -p "$plain" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q 'does not use libhz3' && pass heap/no_libhz3 ||
  fail heap/no_libhz3 "exit $rc: $out"
if [ -f "${HZ3_LIB_NOPROBES:-}" ]; then
  LD_PRELOAD=$HZ3_LIB_NOPROBES sleep 5 &
  np=$!
  WL_PIDS+=("$np")
  for _ in $(seq 100); do grep -q libhz3 "/proc/$np/maps" 2>/dev/null && break; sleep 0.05; done
  out=$("$HZ3TOP" heap -p "$np" 2>&1); rc=$?
  [ $rc -eq 1 ] && echo "$out" | grep -q 'has no otel_memory probes' && pass heap/noprobes ||
    fail heap/noprobes "exit $rc: $out"
else
  fail heap/noprobes "no library at ${HZ3_LIB_NOPROBES:-} (make variants)"
fi
