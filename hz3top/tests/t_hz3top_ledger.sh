#!/usr/bin/env bash
# timeout: 240
# The ledger's split of the objects out of spans (descriptor version 4), against malloc_stats()
# in the idle workload, in the release library and in one built with -DHZ3_MAGAZINES=0 (every
# class cached in a list; built here into $HZ3_BUILD/lists, incrementally):
#   ledger/L/split        64 B and 8 KiB blocks in the main thread's cache, 300 of its 64 B
#                         blocks freed by a thread named hz3wl-xfree (256 delivered to the main
#                         heap's inbox, 44 left in that thread's remote bucket), malloc_stats in
#                         the main thread: every ledger line equal, app_small + remote_pending =
#                         malloc_stats' application line, caches and inboxes equal in bytes and
#                         objects, 44 remote and 256 inbox blocks exactly, held by hz3wl-xfree;
#   ledger/L/plain        the plain format's final "# ledger" line says the same;
#   ledger/L/busy_adds_up while the workload allocates and frees small and medium blocks, every
#                         report's split adds up to small_used and the ledger to the arena (what
#                         changed while read is in unwalked).
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
require_tracing ledger

LISTS=$HZ3_BUILD/lists/lib/libhz3.so
if ! make -s --no-print-directory -j2 BUILD="$HZ3_BUILD/lists" HZ3_CPPFLAGS=-DHZ3_MAGAZINES=0 \
  "$LISTS" >"$T/lists.log" 2>&1; then
  fail ledger/lists/build "$(grep -m3 error "$T/lists.log" | tr '\n' ' ')"
  LISTS=
fi

scenario() {
  wl "alloc 100 8192" && wl "freesome 10" && wl "alloc 60 1024" && wl "alloc 2500 64" &&
    wl "freesome 400" && wl "xfree 300" && xtid=${WL_REPLY#ok xfree } && wl stats
}

check_lib() {
  local l=$1 lib=$2 r xtid
  start_workload "$l" "$lib" || { fail "ledger/$l/workload" "did not start: $(cat "$T/$l.err")"; return; }
  if ! scenario; then fail "ledger/$l/workload" "workload answered '$WL_REPLY'"; return; fi
  "$HZ3TOP" -p "$WL_PID" --json --once --no-perf 0.2 >"$T/$l.json" 2>"$T/$l.top.err"
  if grep -q 'failed to load BPF' "$T/$l.top.err"; then
    skip ledger "BPF cannot load here: $(head -1 "$T/$l.top.err")"; exit 0
  fi
  r=$(python3 "$HZ3_TOP/hz3top/tests/ledger_check.py" "$T/$l.err" "$T/$l.json" --split \
    --remote-objs 44 --inbox-objs 256 --holder-tid "$xtid" 2>&1)
  is_ok "$r" && pass "ledger/$l/split $r" || fail "ledger/$l/split" "$r $(head -2 "$T/$l.top.err")"

  "$HZ3TOP" -p "$WL_PID" --plain --once --no-perf 0.2 >"$T/$l.plain" 2>/dev/null
  r=$(python3 - "$T/$l.plain" "$T/$l.json" "$WL_PID" <<'PY'
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
  is_ok "$r" && pass "ledger/$l/plain" || fail "ledger/$l/plain" "$r"

  "$HZ3TOP" -p "$WL_PID" --json --no-perf 0.1 >"$T/$l.busy.json" 2>/dev/null &
  local top=$!
  WL_PIDS+=("$top")
  wait_attached "$WL_PID" 10
  wl "spin 1500"
  kill -INT "$top"
  wait_pid "$top" 10
  r=$(json_check "$T/$l.busy.json" <<'PY'
expect(len(lines) >= 5, f'{len(lines)} reports')
for i, l in enumerate(lines):
    g = proc(l)['ledger']
    if not g: expect(False, f'report {i}: no ledger'); break
    split = g['app_small'] + g['remote_pending'] + g['thread_caches'] + g['inboxes']
    total = (g['small_used'] + g['app_large'] + g['span_free'] + g['span_waste'] +
             g['pageheap_dirty'] + g['pageheap_released'] + g['unwalked'])
    expect(split == g['small_used'], f"report {i}: split {split} != small_used {g['small_used']}")
    expect(total == g['arena'], f"report {i}: lines {total} != arena {g['arena']}")
note(f"{len(lines)} reports, unwalked at most {max((proc(l)['ledger'] or {}).get('unwalked', 0) for l in lines)}")
PY
)
  is_ok "$r" && pass "ledger/$l/busy_adds_up $r" || fail "ledger/$l/busy_adds_up" "$r"
  wl exit
  workload_exited "ledger/$l/exit"
}

check_lib release "$HZ3_LIB"
[ -n "$LISTS" ] && check_lib lists "$LISTS"
