#!/usr/bin/env bash
# Heap sampling through the otel_memory USDT probes, counted by real eBPF (bpftrace): the
# weighted bytes of sampled allocations estimate what a workload with known sites allocated and
# still holds. Mean interval 512 KiB; each bound below is >= 4 standard deviations of the
# estimator for that site's sample count, so a failure means a bias, not bad luck.
# timeout: 120
. "$HZ3_TOP/scripts/testlib.sh"
prog=$HZ3_TBIN/sample_sites
is_root || { skip sampling/estimates "needs root to load BPF (run make test as root)"; exit 0; }
command -v bpftrace >/dev/null || { skip sampling/estimates "bpftrace not installed"; exit 0; }
[ -x "$prog" ] || { fail sampling/estimates "$prog not built"; exit 0; }
lib=$(readlink -f "$HZ3_LIB")
tmp=$(mktemp -d); trap 'kill $bt 2>/dev/null; rm -rf "$tmp"' EXIT
cat > "$tmp/otel.bt" <<BT
usdt:$lib:otel_memory:alloc { @w[arg0] = arg2; @sz[arg0] = arg1; @alloc[arg1] = sum(arg2); @n = count(); }
usdt:$lib:otel_memory:free /@w[arg0]/ { @freed[@sz[arg0]] = sum(@w[arg0]); delete(@w[arg0]); delete(@sz[arg0]); }
BT
bpftrace "$tmp/otel.bt" > "$tmp/bt.out" 2>&1 &
bt=$!
for _ in $(seq 100); do grep -q '^Attaching' "$tmp/bt.out" && break; sleep 0.1; done
sleep 0.5
LD_PRELOAD=$lib "$prog" "$tmp/go" > "$tmp/truth" &
wl=$!
touch "$tmp/go"
wait $wl || { fail sampling/estimates "workload exited $?"; exit 0; }
kill -INT $bt; wait $bt 2>/dev/null
python3 - "$tmp/truth" "$tmp/bt.out" <<'PY'
import re, sys
truth = dict(kv.split('=') for kv in open(sys.argv[1]).read().split()[1:])
out = open(sys.argv[2]).read()
def m(name):
    return {int(k): int(v) for k, v in re.findall(r'@%s\[(\d+)\]: (-?\d+)' % name, out)}
alloc, freed = m('alloc'), m('freed')
n = re.search(r'@n: (\d+)', out)
if not n:
    print('FAIL: sampling/estimates: no samples seen; bpftrace said: ' + out[-300:].replace('\n', ' '))
    sys.exit(0)
print('  samples: %s' % n.group(1))
sites = {'A': (512, 0.20), 'B': (262144, 0.30), 'C': (64, 0.20)}
for site, (size, tol) in sites.items():
    for what in ('alloc', 'live'):
        true = int(truth['%s_%s' % (site, what)])
        est = alloc.get(size, 0) - (freed.get(size, 0) if what == 'live' else 0)
        name = 'sampling/%s_%s' % (site, what)
        if true == 0:
            ok = abs(est) <= 0.05 * int(truth['%s_alloc' % site])
            err = 'estimate %d for nothing live' % est
        else:
            ok = abs(est - true) <= tol * true
            err = 'estimate %d vs truth %d (%.1f %%, bound %d %%)' % (est, true, 100.0 * (est - true) / true, tol * 100)
        print(('PASS: %s (%s)' if ok else 'FAIL: %s: %s') % (name, err))
PY
rc=$?
[ $rc -eq 0 ] || fail sampling/checker "the estimate checker exited with status $rc (traceback above)"
