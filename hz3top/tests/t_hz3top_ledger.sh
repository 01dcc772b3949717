#!/usr/bin/env bash
# timeout: 240
# The ledger's split of the objects out of spans (descriptor version 4), against malloc_stats()
# in the idle workload, in every library variant and in one built with -DHZ3_MAGAZINES=0 (every
# class cached in a list; built here into $HZ3_BUILD/lists, incrementally):
#   ledger/L/split        64 B and 8 KiB blocks in the main thread's cache (a list and a
#                         magazine), 300 of its 64 B blocks freed by a thread named hz3wl-xfree
#                         (256 delivered to the main heap's inbox in two batches, 44 left in that
#                         thread's remote bucket), malloc_stats in the main thread: every ledger
#                         line equal, app_small + remote_pending = malloc_stats' application
#                         line, caches and inboxes equal in bytes and objects, 44 remote and 256
#                         inbox blocks exactly, held by hz3wl-xfree (ledger_check.py);
#   ledger/L/plain        the plain format's final "# ledger" line says the same;
#   ledger/L/openmetrics  /metrics has the split lines (no line="small_used"), adding up to
#                         line="arena", app_small as in the JSON report (release and lists only);
#   ledger/L/busy_adds_up while the workload allocates and frees 16 B-32 KiB blocks, every
#                         report's split adds up to small_used and the ledger to the arena (what
#                         changed while read is in unwalked; release and lists only).
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing ledger

ok_line() { case $1 in ok | "ok ("*) return 0 ;; *) return 1 ;; esac; }

LISTS=$HZ3_BUILD/lists/lib/libhz3.so
if ! make -s --no-print-directory -j2 BUILD="$HZ3_BUILD/lists" HZ3_CPPFLAGS=-DHZ3_MAGAZINES=0 \
  "$LISTS" >"$T/lists.log" 2>&1; then
  fail ledger/lists/build "$(grep -m3 error "$T/lists.log" | tr '\n' ' ')"
  LISTS=
fi

# check_lib NAME LIB [full]: the idle checks, and with "full" the OpenMetrics and busy ones.
check_lib() {
  local l=$1 lib=$2 full=${3:-} r xtid
  start_workload "$l" "$lib" || { fail "ledger/$l/workload" "did not start: $(cat "$T/$l.err")"; return; }
  if ! { wl "alloc 100 8192" && wl "freesome 10" && wl "alloc 60 1024" && wl "alloc 2500 64" &&
    wl "freesome 400" && wl "xfree 300" && xtid=${WL_REPLY#ok xfree } && wl stats; }; then
    fail "ledger/$l/workload" "workload answered '$WL_REPLY'"; return
  fi
  "$HZ3TOP" -p "$WL_PID" --json --once --no-perf 0.2 >"$T/$l.json" 2>"$T/$l.top.err"
  if grep -q 'failed to load BPF' "$T/$l.top.err"; then
    skip ledger "BPF cannot load here: $(head -1 "$T/$l.top.err")"; exit 0
  fi
  r=$(python3 "$HZ3_TOP/hz3top/tests/ledger_check.py" "$T/$l.err" "$T/$l.json" --split \
    --remote-objs 44 --inbox-objs 256 --holder-tid "$xtid" 2>&1)
  ok_line "$r" && pass "ledger/$l/split $r" || fail "ledger/$l/split" "$r $(head -2 "$T/$l.top.err")"

  "$HZ3TOP" -p "$WL_PID" --plain --once --no-perf 0.2 >"$T/$l.plain" 2>/dev/null
  r=$(python3 - "$T/$l.plain" "$T/$l.json" "$WL_PID" <<'PY' 2>&1
import json, re, sys
led = [l for l in open(sys.argv[1]) if l.startswith('# ledger pid=' + sys.argv[3] + ' ')]
g = [json.loads(l) for l in open(sys.argv[2]) if l.strip()][-1]['procs'][0]['ledger']
if len(led) != 1:
    print(f'{len(led)} "# ledger" lines'); sys.exit(0)
kv = dict(re.findall(r' ([a-z_]+)=(\d+)', led[0]))
keys = ['app_small', 'remote_pending', 'thread_caches', 'inboxes', 'app_large', 'span_free',
        'span_waste', 'pageheap_dirty', 'pageheap_released', 'unwalked', 'arena', 'huge']
bad = [f'{k}={kv.get(k)} (json {g[k]})' for k in keys if kv.get(k) != str(g[k])]
if 'small_used' in kv: bad.append('small_used beside the split')
print('; '.join(bad) if bad else 'ok')
PY
)
  ok_line "$r" && pass "ledger/$l/plain" || fail "ledger/$l/plain" "$r"

  if [ "$full" = full ] && command -v curl >/dev/null; then
    "$HZ3TOP" -p "$WL_PID" --no-perf --openmetrics=127.0.0.1:0 0.2 >/dev/null 2>"$T/$l.om.err" &
    local om=$! url= i
    WL_PIDS+=("$om")
    for i in $(seq 100); do
      url=$(sed -n 's/.*serving OpenMetrics on \(http:[^ ]*\).*/\1/p' "$T/$l.om.err")
      [ -n "$url" ] && break; sleep 0.05
    done
    for i in $(seq 50); do  # until the first report is served
      curl -s "$url" >"$T/$l.om" && grep -q '^hz3_ledger_bytes' "$T/$l.om" && break; sleep 0.1
    done
    kill -INT "$om"; wait_pid "$om" 10
    r=$(python3 - "$T/$l.om" "$WL_PID" "$T/$l.json" <<'PY' 2>&1
import json, re, sys
g = {}
for l in open(sys.argv[1]):
    m = re.match(r'^hz3_ledger_bytes\{(.*)\} (\S+)$', l)
    if m and f'pid="{sys.argv[2]}"' in m.group(1):
        g[re.search(r'line="([a-z_]+)"', m.group(1)).group(1)] = float(m.group(2))
j = [json.loads(l) for l in open(sys.argv[3]) if l.strip()][-1]['procs'][0]['ledger']
parts = sum(v for k, v in g.items() if k not in ('arena', 'huge'))
split = ('app_small', 'remote_pending', 'thread_caches', 'inboxes')
if not g: print('no hz3_ledger_bytes samples')
elif 'small_used' in g or any(k not in g for k in split): print(f'not split: {sorted(g)}')
elif parts != g['arena']: print(f'lines {parts} != arena {g["arena"]}')
elif g['app_small'] != j['app_small'] or g['remote_pending'] != j['remote_pending']:
    print(f'app_small {g["app_small"]}, remote_pending {g["remote_pending"]}, json {j["app_small"]}, {j["remote_pending"]}')
else: print('ok')
PY
)
    ok_line "$r" && pass "ledger/$l/openmetrics" || fail "ledger/$l/openmetrics" "$r"
  fi

  if [ "$full" = full ]; then
    "$HZ3TOP" -p "$WL_PID" --json --no-perf 0.1 >"$T/$l.busy.json" 2>/dev/null &
    local top=$!
    WL_PIDS+=("$top")
    wait_attached "$WL_PID" 10
    wl "spin 1500"
    kill -INT "$top"
    wait_pid "$top" 10
    r=$(python3 - "$T/$l.busy.json" <<'PY' 2>&1
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bad = [] if len(lines) >= 5 else [f'{len(lines)} reports']
for i, l in enumerate(lines):
    g = l['procs'][0]['ledger']
    if not g: bad.append(f'report {i}: no ledger'); break
    split = g['app_small'] + g['remote_pending'] + g['thread_caches'] + g['inboxes']
    total = (g['small_used'] + g['app_large'] + g['span_free'] + g['span_waste'] +
             g['pageheap_dirty'] + g['pageheap_released'] + g['unwalked'])
    if split != g['small_used']: bad.append(f"report {i}: split {split} != small_used {g['small_used']}")
    if total != g['arena']: bad.append(f"report {i}: lines {total} != arena {g['arena']}")
most = max([(l['procs'][0]['ledger'] or {}).get('unwalked', 0) for l in lines] or [0])
print('; '.join(bad) if bad else f'ok ({len(lines)} reports, unwalked at most {most})')
PY
)
    ok_line "$r" && pass "ledger/$l/busy_adds_up $r" || fail "ledger/$l/busy_adds_up" "$r"
  fi
  wl exit
  workload_exited "ledger/$l/exit"
}

check_lib release "$HZ3_LIB" full
for v in check noptag hardened; do
  var=HZ3_LIB_${v^^}
  if [ -f "${!var}" ]; then check_lib "$v" "${!var}"; else skip "ledger/$v" "no library at ${!var} (make variants)"; fi
done
[ -n "$LISTS" ] && check_lib lists "$LISTS" full
