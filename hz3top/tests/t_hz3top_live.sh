#!/usr/bin/env bash
# timeout: 90
# Live memory that an operator can trust, against the real libhz3 in a real process:
#   live/V/before_attach 100 x 1 MiB allocated before hz3top attached: the first (--once) report
#                        says >= 100 MiB live, every large block sized from libhz3's page map
#                        (descriptor version 2), none unsized; V = each library variant;
#   live/V/ledger        the ledger hz3top reads from outside equals the one malloc_stats()
#                        printed inside the idle process a moment before, line by line (with
#                        20000 small blocks and 2 huge ones held too);
#   live/heap_owners     the ledger names each heap's owner (descriptor version 3): the main
#                        thread's heap by the process's pid and name, a worker thread's (named
#                        hz3wl-worker, holding 5000 x 64 B) by its thread id and name;
#   live/exit            a watched process that exits holding 20 MiB: the final report says it
#                        exited and holds 0 bytes, ledger included;
#   live/exec            a watched process that execs (through a symlink: a new name) is reported
#                        as such, with the new name, and live memory of the new image only;
#   live/openmetrics_exit with --openmetrics, a process that exited with 20 MiB held is
#                        scraped at hz3_live_bytes 0 (its series stays for the scrape window);
#   live/openmetrics_ledger the ledger on /metrics: its arena lines add up to line="arena";
#   live/exec_without_libhz3 an exec of a program without libhz3 (no LD_PRELOAD): 0 live after;
#   live/exit_dropped    of two watched processes, the one that exited is reported once more,
#                        then no longer until the final report, which lists every process
#                        watched (so no exported series keeps its last value forever).
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing live

MIB=$((1 << 20))

# watch NAME: starts workload NAME and `hz3top --json 0.2` on it in the background (TOP is its
# pid; its output goes to $T/NAME.json and $T/NAME.top.err), then waits until it attached.
# Status 1, after a FAIL line, when either did not start.
watch() {
  local name=$1
  start_workload "$name" || { fail live/workload "did not start: $(cat "$T/$name.err")"; return 1; }
  "$HZ3TOP" -p "$WL_PID" --json 0.2 >"$T/$name.json" 2>"$T/$name.top.err" &
  TOP=$!
  wait_attached "$WL_PID" 10 ||
    { fail live/attach "semaphores not raised: $(head -3 "$T/$name.top.err")"; return 1; }
}
# unwatch NAME: the workload exits (checked as live/NAME_exit) and hz3top ends with its final
# report; rc is hz3top's exit status.
unwatch() {
  wl exit
  wait_pid "$TOP" 15
  rc=$?
  workload_exited "live/$1_exit"
}

# ---- 100 x 1 MiB before attach, and the ledger against malloc_stats, in every variant ----
pre_attach() {
  local v=$1 lib=$2 rc r
  start_workload "pre-$v" "$lib" || { fail "live/$v/workload" "did not start: $(cat "$T/pre-$v.err")"; return; }
  wl "hold 100" && wl "small 20000" && wl "huge 2" && wl stats ||
    { fail "live/$v/workload" "workload answered '$WL_REPLY'"; return; }
  "$HZ3TOP" -p "$WL_PID" --json --once 0.2 >"$T/pre-$v.json" 2>"$T/pre-$v.top.err"
  rc=$?
  if [ $rc -ne 0 ] && grep -q 'failed to load BPF' "$T/pre-$v.top.err"; then
    skip live "BPF cannot load here: $(head -1 "$T/pre-$v.top.err")"; exit 0
  fi
  r=$(json_check "$T/pre-$v.json" <<PY
p = proc(last)
large = bin_row(p, 32767)
expect(large.get('live_bytes', 0) >= 100 * $MIB, f"live large {large.get('live_bytes', 0)} < 100 MiB")
# Besides the 100 blocks: the 8 MiB array of "small"'s pointers, the scavenger's stack and, in
# the hardened variant, a guard page per block.
expect(large.get('live_bytes', 0) < 112 * $MIB, f"live large {large.get('live_bytes', 0)} >= 112 MiB")
expect(p['large_unsized'] == 0, f"large_unsized {p['large_unsized']}")
expect(p['live_bytes'] >= 100 * $MIB, f"live {p['live_bytes']}")
note(f"live {p['live_bytes'] / $MIB:.1f} MiB, large {large.get('live_bytes', 0) / $MIB:.1f} MiB")
PY
)
  [ $rc -eq 0 ] && is_ok "$r" && pass "live/$v/before_attach $r" ||
    fail "live/$v/before_attach" "rc $rc: $r $(head -2 "$T/pre-$v.top.err")"

  # malloc_stats lines: "<mark> <bytes> (<MiB> MiB)  <label>".
  r=$(python3 - "$T/pre-$v.err" "$T/pre-$v.json" <<'PY'
import json, re, sys
stats = {}
for l in open(sys.argv[1]):
    m = re.match(r'^[ +=]\s+(\d+) \(\s*[\d.]+ MiB\)  (.*)$', l.rstrip('\n'))
    if m: stats[m.group(2)] = int(m.group(1))
def line(prefix):
    v = [b for k, b in stats.items() if k.startswith(prefix)]
    return v[0] if v else None
rep = [json.loads(l) for l in open(sys.argv[2]) if l.strip()][-1]['procs'][0]
g = rep.get('ledger')
problems = []
if not g:
    print('no ledger in the report'); sys.exit(0)
want = {
    'small_used': (line('in use by application: small/medium'), line('in thread caches'), line('in remote-free inboxes')),
    'app_large': (line('in use by application: large'),),
    'span_free': (line('free in spans'),),
    'span_waste': (line('span tails'),),
    'pageheap': (line('page heap: free, dirty'), line('page heap: free, released')),
    'arena': (line('arena pages handed out'),),
    'huge': (line('huge blocks'),),
}
if any(x is None for v in want.values() for x in v):
    print(f'malloc_stats lines missing: {stats}'); sys.exit(0)
got = {'small_used': g['small_used'], 'app_large': g['app_large'], 'span_free': g['span_free'],
       'span_waste': g['span_waste'], 'pageheap': g['pageheap_dirty'] + g['pageheap_released'],
       'arena': g['arena'], 'huge': g['huge']}
for k, parts in want.items():
    if got[k] != sum(parts): problems.append(f'{k} {got[k]} != malloc_stats {sum(parts)}')
if g['unwalked']: problems.append(f"unwalked {g['unwalked']}")
if g['huge_blocks'] != 2: problems.append(f"huge_blocks {g['huge_blocks']}")
if not g['heaps']: problems.append('no heaps')
print('; '.join(problems) if problems else f"ok (app_total {g['app_total']}, arena {g['arena']}, huge {g['huge']}, {len(g['heaps'])} heaps)")
PY
)
  is_ok "$r" && pass "live/$v/ledger $r" || fail "live/$v/ledger" "$r"
  wl release
  wl exit
  workload_exited "live/$v/exit"
}
pre_attach release "$HZ3_LIB"
for v in check noptag hardened; do
  var=HZ3_LIB_${v^^}
  if [ -f "${!var}" ]; then pre_attach "$v" "${!var}"; else skip "live/$v" "no library at ${!var} (make variants)"; fi
done

# ---- heaps named by their owner threads ----
if start_workload owners && wl "small 1000" && wl "worker 5000"; then
  wtid=${WL_REPLY#ok worker }
  "$HZ3TOP" -p "$WL_PID" --json --once --no-perf 0.2 >"$T/owners.json" 2>"$T/owners.err"
  r=$(json_check "$T/owners.json" <<PY
heaps = (proc(last).get('ledger') or {}).get('heaps', [])
main = [h for h in heaps if h.get('tid') == $WL_PID]
work = [h for h in heaps if h.get('tid') == $wtid]
expect(len(main) == 1 and main[0].get('thread') == 'hz3top_workload'
       and main[0].get('owner') == 'thread', f"main thread's heap: {main} in {heaps}")
expect(len(work) == 1 and work[0].get('thread') == 'hz3wl-worker'
       and work[0].get('owner') == 'thread' and work[0]['used'] >= 5000 * 64,
       f"worker's heap (tid $wtid): {work} in {heaps}")
if main and work: note(f"heap {main[0]['heap']} tid $WL_PID, heap {work[0]['heap']} tid $wtid")
PY
)
  is_ok "$r" && pass "live/heap_owners $r" || fail live/heap_owners "$r $(head -2 "$T/owners.err")"
  wl exit
  workload_exited live/heap_owners
else
  fail live/heap_owners "workload answered '$WL_REPLY'"
fi

# ---- exit: 0 live in the final report ----
watch ex || exit 0
wl "hold 20"
sleep 0.5
unwatch ex
r=$(json_check "$T/ex.json" <<PY
held = [l for l in lines if proc(l)['live_bytes'] >= 20 * $MIB]
expect(held, 'no report with the 20 MiB held')
p = proc(last)
expect(last['final'] is True and p['alive'] is False, 'final report does not say the process exited')
expect(p['live_bytes'] == 0, f"live {p['live_bytes']} after exit")
expect(p['ledger'] is not None and p['ledger']['app_total'] == 0, f"ledger after exit {p['ledger']}")
PY
)
[ $rc -eq 0 ] && is_ok "$r" && pass live/exit || fail live/exit "rc $rc: $r"

# ---- exec: new name, new image's memory ----
ln -s "$(readlink -f "$WORKLOAD")" "$T/wl-after-exec"
watch exe || exit 0
wl "hold 30"
sleep 0.6
echo "exec $T/wl-after-exec" >&"$WL_IN"
read -r -t 20 -u "$WL_OUT" line
[ "$line" = ready ] || fail live/exec "no ready after exec: '$line' $(tail -2 "$T/exe.err")"
wl "hold 5"
sleep 0.8
unwatch exe
r=$(json_check "$T/exe.json" <<PY
before = [l for l in lines if proc(l)['comm'] == 'hz3top_workload' and proc(l)['live_bytes'] >= 30 * $MIB]
expect(before, 'no report with the 30 MiB held before exec')
execd = [l for l in lines if proc(l).get('exec')]
expect(len(execd) == 1, f"{len(execd)} reports say exec")
after = [l for l in lines if proc(l)['comm'] == 'wl-after-exec' and proc(l)['alive']]
expect(after, 'no report with the new name')
if after:
    lb = [proc(l)['live_bytes'] for l in after]
    expect(max(lb) >= 5 * $MIB and max(lb) < 12 * $MIB, f"live after exec {lb}, want the 5 MiB of the new image")
PY
)
notes=$(grep -c "exec'd wl-after-exec" "$T/exe.top.err")
[ $rc -eq 0 ] && is_ok "$r" && [ "$notes" -eq 1 ] && pass live/exec ||
  fail live/exec "rc $rc, $notes notes: $r $(head -3 "$T/exe.top.err")"

# ---- exec of a program without libhz3: 0 live from then on ----
watch bare || exit 0
wl "hold 10"
sleep 0.6
echo "bareexec $T/wl-after-exec" >&"$WL_IN"
read -r -t 20 -u "$WL_OUT" line
sleep 0.8
unwatch bare
r=$(json_check "$T/bare.json" <<PY
expect([l for l in lines if proc(l)['live_bytes'] >= 10 * $MIB], 'no report with the 10 MiB held')
after = [l for l in lines if proc(l)['comm'] == 'wl-after-exec']
expect(after, 'no report with the new name')
expect(all(proc(l)['live_bytes'] == 0 for l in after), f"live after exec {[proc(l)['live_bytes'] for l in after]}")
PY
)
[ "$line" = ready ] && [ $rc -eq 0 ] && is_ok "$r" && grep -q "exec'd wl-after-exec without libhz3" "$T/bare.top.err" &&
  pass live/exec_without_libhz3 || fail live/exec_without_libhz3 "ready='$line' rc $rc: $r $(grep exec "$T/bare.top.err" | head -2)"

# ---- two targets, one exits: reported once more, then dropped ----
start_workload a || { fail live/workload "did not start"; exit 0; }
A=$WL_PID A_IN=$WL_IN A_OUT=$WL_OUT
start_workload b || { fail live/workload "did not start"; exit 0; }
B=$WL_PID
"$HZ3TOP" -p "$A" -p "$B" --json 0.2 >"$T/two.json" 2>"$T/two.top.err" &
TOP=$!
wait_attached "$B" 10 || { fail live/attach "semaphores not raised: $(head -3 "$T/two.top.err")"; exit 0; }
wl exit  # b
workload_exited live/b_exit "$B"
sleep 1
WL_IN=$A_IN WL_OUT=$A_OUT
wl exit
wait_pid "$TOP" 15
workload_exited live/a_exit "$A"
r=$(json_check "$T/two.json" <<PY
def find(l, pid):
    r = [p for p in l['procs'] if p['pid'] == pid]
    return r[0] if r else None
body = lines[:-1]  # the final report lists every process watched, with its totals
dead = [i for i, l in enumerate(body) if find(l, $B) and not find(l, $B)['alive']]
expect(len(dead) == 1, f"{len(dead)} reports before the final one show $B exited")
if dead:
    expect(find(body[dead[0]], $B)['live_bytes'] == 0, 'exited process not at 0')
    expect(all(find(l, $B) is None for l in body[dead[0] + 1:]), 'exited process reported again')
    expect(len(body) > dead[0] + 2, 'too few reports after the exit')
fb = find(last, $B)
expect(last['final'] and fb is not None and fb['live_bytes'] == 0 and not fb['alive'],
       'final report does not list the exited process at 0')
PY
)
is_ok "$r" && pass live/exit_dropped || fail live/exit_dropped "$r"

# ---- OpenMetrics: the exited process is scraped at 0 ----
if command -v curl >/dev/null; then
  start_workload oa || { fail live/workload "did not start"; exit 0; }
  A=$WL_PID A_IN=$WL_IN A_OUT=$WL_OUT
  start_workload ob || { fail live/workload "did not start"; exit 0; }
  B=$WL_PID
  "$HZ3TOP" -p "$A" -p "$B" --plain --openmetrics=127.0.0.1:0 0.2 >/dev/null 2>"$T/om.err" &
  TOP=$!
  WL_PIDS+=("$TOP")
  wait_attached "$B" 10 || { fail live/attach "semaphores not raised: $(head -3 "$T/om.err")"; exit 0; }
  url=
  for _ in $(seq 100); do
    url=$(sed -n 's/.*serving OpenMetrics on \(http:[^ ]*\).*/\1/p' "$T/om.err")
    [ -n "$url" ] && break; sleep 0.05
  done
  wl "hold 20"
  sleep 0.6
  curl -s "$url" >"$T/om-held.txt"
  held=$(sed -n "s/^hz3_live_bytes{.*pid=\"$B\".*} \([0-9.e+]*\)$/\1/p" "$T/om-held.txt")
  r=$(python3 - "$T/om-held.txt" "$B" <<'PY'
import re, sys
pid = sys.argv[2]
g = {}
for l in open(sys.argv[1]):
    m = re.match(r'^hz3_ledger_bytes\{(.*)\} (\S+)$', l)
    if m and f'pid="{pid}"' in m.group(1):
        g[re.search(r'line="([a-z_]+)"', m.group(1)).group(1)] = float(m.group(2))
parts = sum(v for k, v in g.items() if k not in ('arena', 'huge'))
if not g: print('no hz3_ledger_bytes samples')
elif parts != g['arena'] or g['app_large'] < 20 * 2**20: print(f'ledger {g}')
else: print(f"ok (arena {g['arena']:.0f}, large {g['app_large']:.0f})")
PY
)
  is_ok "$r" && pass "live/openmetrics_ledger $r" || fail live/openmetrics_ledger "$r"
  wl exit  # b
  workload_exited live/ob_exit "$B"
  sleep 0.6  # three reports after the exit: past "reported once", inside the scrape window
  after=$(curl -s "$url" | sed -n "s/^hz3_live_bytes{.*pid=\"$B\".*} \([0-9.e+]*\)$/\1/p")
  if python3 -c "import sys; h, a = float(sys.argv[1] or 0), sys.argv[2]; sys.exit(0 if h >= 20 * 2**20 and a != '' and float(a) == 0 else 1)" "$held" "$after"; then
    pass "live/openmetrics_exit (held $held, after exit $after)"
  else
    fail live/openmetrics_exit "hz3_live_bytes of $B: held '$held', after exit '$after'"
  fi
  WL_IN=$A_IN WL_OUT=$A_OUT
  wl exit
  wait_pid "$TOP" 15
  workload_exited live/oa_exit "$A"
else
  skip live/openmetrics_exit "no curl"
fi
