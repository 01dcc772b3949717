#!/usr/bin/env bash
# timeout: 90
# hz3top heap profiles a workload with known allocation sites (hz3top/tests/heap_sites.cc: a
# leaking one, half-freed, big blocks, a churning one, one behind the zmalloc wrapper, one
# inlined, one in a shared library), built without frame pointers, preloaded with the real
# libhz3, with real eBPF on libhz3's otel_memory probes.
#  - JSON: each site function is named (the first frame outside libhz3 and allocation wrappers),
#    in the right file and source line, with allocated and live bytes and live objects within 4
#    standard deviations of the truth the workload prints. The standard deviation is the larger
#    of the one at the base mean (for n blocks of s bytes sampled with p = 1 - exp(-s / 512 KiB)
#    and weight s / p the variance is n s^2 (1 - p) / p, docs/heap-profiling.md "Accuracy") and
#    the one hz3top estimates from the samples' own weights (live_sd, alloc_sd): the pacing may
#    raise the mean, and then a site has fewer samples than at the base mean, each weighing more;
#    the churn site has nothing live; stacks were unwound
#    with DWARF CFI through the library without frame pointers up to main; the wrapper and the
#    inlined function are frames of their own; error bars are 1/sqrt(samples); live growth per
#    interval is seen while the workload allocates and is 0 after; ages of live samples are
#    within the run; every stack is listed with sums that add up to its site's; libc's frames
#    get source lines from its separate debug info by build id (libc6-dbg), where installed.
#  - --pprof: the gzipped profile decodes against pprof's profile.proto (Debian's
#    golang-github-google-pprof-dev, compiled with protoc, read with python3-protobuf), has the
#    four sample types, totals equal to the JSON report's, the leaking functions as leaves, and
#    the executable's build id; `go tool pprof -top` (golang-go) names the leaking function.
#  - --folded: root-first stacks whose values add up to the live bytes.
#  - --all --unwind fp: the workload is found without -p, and frame pointers alone lose the
#    library's caller (the reason for DWARF unwinding).
#  - The interactive view (through tmux): draws, sorts, shows a site's stacks, quits cleanly.
#  - Errors: no -p, a process without libhz3, a noprobes libhz3 (one line each, exit 2 or 1).
set -u
source "$HZ3_TOP/scripts/testlib.sh"
source "$HZ3_TOP/hz3top/tests/lib.sh"
SITES=${HZ3_TBIN:-build/tests}/hz3top_heap_sites
PROTO=/usr/share/gocode/src/github.com/google/pprof/proto/profile.proto
if ! is_root; then skip heap "needs root (BPF)"; exit 0; fi
[ -x "$HZ3TOP" ] && [ -x "$SITES" ] || { fail heap "hz3top or hz3top_heap_sites not built (make all)"; exit 0; }
[ -f "$HZ3_LIB" ] || { fail heap "no library at $HZ3_LIB"; exit 0; }

# run_sites NAME HZ3TOP-ARGS...: one workload run traced by `hz3top heap ARGS --json 0.3`;
# leaves $T/NAME.truth and $T/NAME.json. False (after a FAIL or SKIP line) when it did not run.
run_sites() {
  local name=$1 wl top rc
  shift
  mkdir -p "$T/$name"
  LD_PRELOAD=$HZ3_LIB "$SITES" "$T/$name/go" "$T/$name/stop" >"$T/$name.truth" 2>"$T/$name.err" &
  wl=$!
  WL_PIDS+=("$wl")
  # Attach only once the workload runs (a fork of this shell does not map libhz3 yet).
  for _ in $(seq 100); do grep -q libhz3 "/proc/$wl/maps" 2>/dev/null && break; sleep 0.05; done
  local args=("$@")
  [ "${args[0]}" = "-p" ] && args[1]=$wl
  "$HZ3TOP" heap "${args[@]}" --json 0.3 >"$T/$name.json" 2>"$T/$name.top.err" &
  top=$!
  # The first report comes one interval after the probes are attached.
  for _ in $(seq 100); do [ -s "$T/$name.json" ] && break; kill -0 $top 2>/dev/null || break; sleep 0.05; done
  if [ ! -s "$T/$name.json" ]; then
    kill $top 2>/dev/null
    if grep -q 'failed to load BPF' "$T/$name.top.err"; then
      skip heap "BPF cannot load here: $(head -1 "$T/$name.top.err")"; return 1
    fi
    fail heap/$name/attach "no report within 5 s: $(head -3 "$T/$name.top.err")"; return 1
  fi
  touch "$T/$name/go"
  for _ in $(seq 300); do [ -s "$T/$name.truth" ] && break; sleep 0.05; done
  [ -s "$T/$name.truth" ] || { fail heap/$name/workload "no truth line within 15 s: $(cat "$T/$name.err")"; kill $top; return 1; }
  sleep 1  # at least two reports after the workload finished allocating
  touch "$T/$name/stop"
  if [ "${args[0]}" = "--all" ]; then
    # --all waits for more processes: stop it once the workload is gone.
    for _ in $(seq 100); do kill -0 $wl 2>/dev/null || break; sleep 0.05; done
    sleep 0.5
    kill -INT $top
  fi
  wait_pid "$top" 10
  rc=$?
  [ $rc -eq 0 ] && pass heap/$name/exit || fail heap/$name/exit "hz3top heap exited $rc: $(head -3 "$T/$name.top.err")"
  echo "$wl" >"$T/$name.pid"
}

run_sites main -p PID --pprof "$T/heap.pb.gz" --folded "$T/heap.folded" || exit 0

# Separate debug info by build id: libc's (Debian's libc6-dbg) gives its frames source lines.
LIBC=$(ldd "$SITES" | sed -n 's/.*libc.so.6 => \([^ ]*\).*/\1/p')
LIBC_ID=$(readelf -n "$LIBC" 2>/dev/null | sed -n 's/.*Build ID: //p')
LIBC_DEBUG=/usr/lib/debug/.build-id/${LIBC_ID:0:2}/${LIBC_ID:2}.debug
[ -n "$LIBC_ID" ] && [ -f "$LIBC_DEBUG" ] || LIBC_DEBUG=
python3 - "$T/main.truth" "$T/main.json" "$LIBC_DEBUG" <<'PY'
import json, math, sys
truth = dict(kv.split('=') for kv in open(sys.argv[1]).read().split()[1:])
truth = {k: int(v) for k, v in truth.items()}
reports = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
last = reports[-1]
MEAN = 512 * 1024
def out(ok, name, why):
    print(('PASS: %s (%s)' if ok else 'FAIL: %s: %s') % (name, why))
def short(func):
    return func.split('(anonymous namespace)::')[-1].split('(')[0]
out(last['final'] and len(last['procs']) == 1, 'heap/final', 'last report final, one process')
proc = last['procs'][0]
print('  samples %d, live samples %d, free_unknown %d, dropped %d+%d; workload ran %.0f ms traced' % (
    last['samples'], proc['live_samples'], last['free_unknown'], last['alloc_dropped'],
    last['free_dropped'], truth['run_us'] / 1e3))
by_func = {}
for s in proc['sites']:
    by_func.setdefault(short(s['func']), s)
libs = {'heap_lib_leak': 'libhz3top_heap_lib.so'}
for name in ('site_keep_half', 'site_big_blocks', 'site_churn', 'site_wrapped', 'make_node',
             'heap_lib_leak'):
    s = by_func.get(name)
    if not s:
        out(False, 'heap/%s' % name, 'no site named %s; sites: %s' % (
            name, [x['site'] for x in proc['sites']][:8]))
        continue
    want_lib = libs.get(name, 'hz3top_heap_sites')
    out(s['lib'] == want_lib, 'heap/%s/lib' % name, 'in %s' % s['lib'])
    size = truth[name + '_size']
    p = 1 - math.exp(-size / MEAN)
    for what in ('alloc', 'live'):
        true = truth['%s_%s' % (name, what)]
        est = s['%s_bytes' % what]
        n = true // size if true else 0
        sd = max(math.sqrt(n * size * size * (1 - p) / p), s['%s_sd' % what])
        if true == 0:
            # Every sampled block of the churn site was freed while the tracer watched.
            ok, why = est == 0, 'estimate %d for nothing live' % est
        else:
            ok = abs(est - true) <= 4 * sd
            why = 'estimate %d vs truth %d (%+.1f %%, 4 sd = %.1f %%, %d samples)' % (
                est, true, 100.0 * (est - true) / true, 400.0 * sd / true,
                s['%s_samples' % what])
        out(ok, 'heap/%s/%s' % (name, what), why)
    if truth[name + '_live']:
        n = truth[name + '_live'] // size
        sd = max(math.sqrt(n * (1 - p) / p), s['live_sd'] / size)
        est = s['live_objects']
        out(abs(est - n) <= 4 * sd, 'heap/%s/objects' % name,
            'estimate %d live objects vs truth %d (4 sd = %.0f)' % (est, n, 4 * sd))
        err = s['live_bytes'] / math.sqrt(s['live_samples']) if s['live_samples'] else 0
        out(abs(s['live_err'] - err) <= 1, 'heap/%s/error_bar' % name,
            'live_err %d = live / sqrt(%d samples)' % (s['live_err'], s['live_samples']))
        out(0 < s['age_mean'] <= s['age_max'] <= last['elapsed'] + 0.05 and s['age_mean'] >= 0.5,
            'heap/%s/age' % name, 'mean %.2f s, max %.2f s, attached %.2f s' % (
                s['age_mean'], s['age_max'], last['elapsed']))
    st = s['stack']
    funcs = [short(f['func']) for f in st]
    ok = len(st) >= 3 and st[0]['hz3'] and st[0]['lib'].startswith('libhz3') and 'main' in funcs
    out(ok, 'heap/%s/stack' % name, ' <- '.join(funcs[:12]))
    out(all(x['unwind'] == 'dwarf' for x in s['stacks']), 'heap/%s/dwarf' % name,
        'unwound with %s' % sorted({x['unwind'] for x in s['stacks']}))
    tot = sum(x['live_bytes'] for x in s['stacks'])
    out(abs(tot - s['live_bytes']) <= len(s['stacks']), 'heap/%s/stacks' % name,
        '%d stacks listed, live bytes %d = site %d' % (len(s['stacks']), tot, s['live_bytes']))

def frame_index(st, name):
    return next((i for i, f in enumerate(st) if short(f['func']) == name), -1)
# Source lines: the malloc call of site_keep_half, the zmalloc call of site_wrapped.
for name, line in (('site_keep_half', truth['site_keep_half_line']),
                   ('site_wrapped', truth['site_wrapped_line'])):
    s = by_func.get(name)
    if s:
        out(s['file'].endswith('heap_sites.cc') and s['line'] == line, 'heap/%s/line' % name,
            '%s:%d, malloc call at line %d' % (s['file'], s['line'], line))
s = by_func.get('site_wrapped')
if s:
    st = s['stack']
    z = frame_index(st, 'zmalloc')
    out(z >= 0 and st[z]['wrapper'] and z < frame_index(st, 'site_wrapped'), 'heap/wrapper',
        'zmalloc kept in the stack as a wrapper, the site is its caller')
s = by_func.get('make_node')
if s:
    st = s['stack']
    i = frame_index(st, 'make_node')
    ok = i >= 0 and st[i]['inlined'] and st[i]['line'] == truth['make_node_line'] and \
        short(st[i + 1]['func']) == 'site_inlined' and st[i + 1]['line'] == truth['site_inlined_line'] \
        and st[i + 1]['addr'] == st[i]['addr']
    out(ok, 'heap/inlined', 'make_node [inlined] at line %s, called from site_inlined at line %s' % (
        st[i]['line'] if i >= 0 else '?', st[i + 1]['line'] if 0 <= i < len(st) - 1 else '?'))
s = by_func.get('heap_lib_leak')
if s:
    st = s['stack']
    order = [frame_index(st, n) for n in ('heap_lib_leak', 'heap_lib_outer', 'site_lib', 'main')]
    out(all(x >= 0 for x in order) and order == sorted(order), 'heap/nofp_library',
        'heap_lib_leak <- heap_lib_outer <- site_lib <- main at frames %s' % order)
s = by_func.get('site_keep_half')
libc = [f for f in (s['stack'] if s else []) if f['lib'] == 'libc.so.6' and f['func']]
if not sys.argv[3]:
    print('SKIP: heap/debuginfo: no separate debug info for libc under /usr/lib/debug/.build-id '
          '(Debian libc6-dbg, scripts/deps.sh test)')
else:
    out(bool(libc) and all(f['file'] and f['line'] > 0 for f in libc), 'heap/debuginfo',
        'libc frames with source lines from %s: %s' % (sys.argv[3], [
            '%s %s:%d' % (f['func'], f['file'], f['line']) for f in libc]))
# Growth: live bytes of the leaking site rose in some interval, and not in the last one.
deltas = [x['procs'][0]['sites'] for x in reports]
rise = max((t['live_delta'] for sites in deltas for t in sites
            if short(t['func']) == 'site_wrapped'), default=0)
s = by_func.get('site_wrapped')
out(rise > 0 and s and s['live_delta'] == 0, 'heap/growth',
    'site_wrapped grew by %d B in one interval, %d B in the last' % (rise, s['live_delta'] if s else -1))
if s:
    g = s['live_bytes'] / last['elapsed']
    out(abs(s['growth_rate'] - g) <= 1e-6 * g + 1, 'heap/growth_rate',
        '%.0f B/s since attach' % s['growth_rate'])
peak = max((t['alloc_rate'] for sites in deltas for t in sites if 'site_churn' in t['func']), default=0)
out(peak > 0, 'heap/rate', 'peak site_churn allocation rate %.0f B/s' % peak)
json.dump({'live': proc['live_bytes'], 'alloc': proc['alloc_bytes'],
           'live_objects': proc['live_objects'], 'alloc_objects': proc['alloc_objects'],
           'samples': sum(len(t['stacks']) for t in proc['sites'])}, open(sys.argv[2] + '.totals', 'w'))
PY
rc=$?
[ $rc -eq 0 ] || fail heap/checker "the report checker exited with status $rc (traceback above)"

# pprof: decode against the schema.
BUILD_ID=$(readelf -n "$SITES" | sed -n 's/.*Build ID: //p')
# python3-protobuf is Debian's: /usr/bin/python3 has it even where another python3 is first in PATH.
PBPY=python3
python3 -c 'import google.protobuf' 2>/dev/null || PBPY=/usr/bin/python3
if [ ! -s "$T/heap.pb.gz" ]; then
  fail heap/pprof "no profile written: $(head -3 "$T/main.top.err")"
elif [ ! -f "$PROTO" ] || ! command -v protoc >/dev/null || ! $PBPY -c 'import google.protobuf' 2>/dev/null; then
  skip heap/pprof "needs $PROTO, protoc and python3-protobuf (scripts/deps.sh test)"
else
  mkdir -p "$T/pb" && protoc -I"$(dirname "$PROTO")" --python_out="$T/pb" "$PROTO"
  PYTHONPATH=$T/pb $PBPY - "$T/heap.pb.gz" "$T/main.json.totals" "$BUILD_ID" <<'PY'
import gzip, json, sys
import profile_pb2
p = profile_pb2.Profile()
p.ParseFromString(gzip.open(sys.argv[1]).read())
tot = json.load(open(sys.argv[2]))
def out(ok, name, why):
    print(('PASS: %s (%s)' if ok else 'FAIL: %s: %s') % (name, why))
S = p.string_table
types = [(S[t.type], S[t.unit]) for t in p.sample_type]
out(types == [('inuse_space', 'bytes'), ('inuse_objects', 'count'), ('alloc_space', 'bytes'),
              ('alloc_objects', 'count')] and S[p.default_sample_type] == 'inuse_space',
    'heap/pprof/types', types)
sums = [sum(s.value[i] for s in p.sample) for i in range(4)]
want = [tot['live'], tot['live_objects'], tot['alloc'], tot['alloc_objects']]
n = len(p.sample)
out(n == tot['samples'] and all(abs(a - b) <= n for a, b in zip(sums, want)), 'heap/pprof/totals',
    '%d samples; inuse_space %d, inuse_objects %d, alloc_space %d, alloc_objects %d vs JSON %s' % (
        n, *sums, want))
funcs = {f.id: S[f.name] for f in p.function}
locs = {l.id: l for l in p.location}
leaves = {}
for s in p.sample:
    leaf = locs[s.location_id[0]]
    name = funcs[leaf.line[0].function_id]
    leaves[name] = leaves.get(name, 0) + s.value[0]
top = sorted(leaves.items(), key=lambda kv: -kv[1])
print('  inuse_space by leaf: ' + ', '.join('%s %d' % kv for kv in top[:6]))
named = [k for k, v in top if v > 0]
out(any('site_keep_half' in k for k in named) and any(k == 'heap_lib_leak' for k in named)
    and any(k.startswith('zmalloc') for k in named), 'heap/pprof/leaf',
    'site_keep_half, heap_lib_leak and zmalloc are leaves holding live bytes')
maps = {S[m.filename]: S[m.build_id] for m in p.mapping}
exe = [b for f, b in maps.items() if f.endswith('/hz3top_heap_sites')]
out(exe == [sys.argv[3]], 'heap/pprof/build_id', 'executable mapping build id %s, readelf %s' % (
    exe, sys.argv[3]))
PY
  [ $? -eq 0 ] || fail heap/pprof/checker "the pprof checker failed (traceback above)"
fi
if command -v go >/dev/null; then
  top=$(HOME=$T GOCACHE=$T/gocache GOFLAGS=-mod=mod timeout 60 go tool pprof -top -sample_index=inuse_space "$T/heap.pb.gz" 2>&1)
  echo "$top" | sed -n '1,14p' | sed 's/^/  /'
  echo "$top" | grep -q 'site_keep_half' && echo "$top" | grep -q 'heap_lib_leak' &&
    pass "heap/go_pprof (go tool pprof -top names site_keep_half and heap_lib_leak)" ||
    fail heap/go_pprof "go tool pprof -top: $(echo "$top" | head -5)"
else
  skip heap/go_pprof "no go toolchain (Debian golang-go, scripts/deps.sh test) to run go tool pprof"
fi

# Folded stacks.
python3 - "$T/heap.folded" "$T/main.json.totals" <<'PY'
import json, sys
tot = json.load(open(sys.argv[2]))
lines = [l.rstrip('\n') for l in open(sys.argv[1]) if l.strip()]
vals = [int(l.rsplit(' ', 1)[1]) for l in lines]
ok = abs(sum(vals) - tot['live']) <= len(lines)
print(('PASS: %s (%s)' if ok else 'FAIL: %s: %s') % ('heap/folded/total',
      '%d stacks, %d B vs live %d B' % (len(lines), sum(vals), tot['live'])))
keep = [l for l in lines if 'site_keep_half' in l]
ok = bool(keep) and all(l.split(';')[0] == 'hz3top_heap_sit' and ';main;' in l and
                        l.index(';main;') < l.index('site_keep_half') for l in keep)
print(('PASS: %s (%s)' if ok else 'FAIL: %s: %s') % ('heap/folded/stack', keep[:1]))
PY

# --all and frame pointers alone: found without -p; the library's caller is lost.
# --lib keeps it to this build's library: other libhz3 processes on the machine are not touched.
if run_sites all --all --lib "$HZ3_LIB" --unwind fp; then
  python3 - "$T/all.json" "$(cat "$T/all.pid")" <<'PY'
import json, sys
reports = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
pid = int(sys.argv[2])
def out(ok, name, why):
    print(('PASS: %s (%s)' if ok else 'FAIL: %s: %s') % (name, why))
procs = [p for r in reports for p in r['procs'] if p['pid'] == pid]
out(bool(procs) and procs[-1]['alloc_samples'] > 0, 'heap/all',
    'pid %d found by --all with %d samples' % (pid, procs[-1]['alloc_samples'] if procs else 0))
if procs:
    p = procs[-1]
    st = [f['func'] for s in p['sites'] for x in s['stacks'] for f in x['frames']
          if 'heap_lib_leak' in s['func']]
    out(p['dwarf_stacks'] == 0 and p['fp_stacks'] > 0 and not any('heap_lib_outer' in f for f in st),
        'heap/unwind_fp', '%d frame-pointer stacks; without DWARF heap_lib_outer is %s' % (
            p['fp_stacks'], 'missing' if not any('heap_lib_outer' in f for f in st) else 'present'))
PY
fi

# The interactive view, through tmux: the table with its footer on the alternate screen, a sort
# key that cycles, a site's stacks on Enter, q restores the terminal and exits 0.
if command -v tmux >/dev/null; then
  SOCK=hz3top-heap-$$
  tm() { tmux -L "$SOCK" "$@"; }
  tm -f /dev/null new-session -d -s keep -x 200 -y 50 "sleep 120" && tm set-option -g remain-on-exit on
  mkdir -p "$T/tui"
  LD_PRELOAD=$HZ3_LIB "$SITES" "$T/tui/go" "$T/tui/stop" >"$T/tui.truth" 2>/dev/null &
  wl=$!
  WL_PIDS+=("$wl")
  for _ in $(seq 100); do grep -q libhz3 "/proc/$wl/maps" 2>/dev/null && break; sleep 0.05; done
  tm new-window -d -n heap "TERM=xterm-256color exec $HZ3TOP heap -p $wl 0.3"
  screen() { tm capture-pane -p -t heap; }
  wait_for() { for _ in $(seq 100); do screen | grep -qE "$1" && return 0; sleep 0.1; done; return 1; }
  wait_for 'samples' && touch "$T/tui/go"
  if wait_for 'site_keep_half' && screen | grep -q '(q) quit | (s) sort: live' &&
     [ "$(tm display-message -p -t heap '#{alternate_on}')" = 1 ]; then
    pass "heap/tui/draws (alternate screen, sites, footer)"
  else
    fail heap/tui/draws "$(screen | head -5 | tr '\n' '|')"
  fi
  tm send-keys -t heap s
  wait_for 'sort: growth/s' && pass "heap/tui/sort (s cycles to growth/s)" ||
    fail heap/tui/sort "$(screen | tail -1)"
  tm send-keys -t heap Enter
  wait_for 'unwound by DWARF' && screen | grep -qE 'site +.*heap_sites' && screen | grep -q 'main' &&
    pass "heap/tui/stacks (Enter shows the selected site's stacks with source lines)" ||
    fail heap/tui/stacks "$(screen | head -6 | tr '\n' '|')"
  tm send-keys -t heap Escape
  wait_for 'sort: growth/s' || true
  tm send-keys -t heap q
  # pane_dead can be set a moment before the exit status is recorded: wait for both (under
  # load tmux sometimes records neither; a death by signal always names the signal).
  for _ in $(seq 100); do
    [ "$(tm display-message -p -t heap '#{pane_dead}')" = 1 ] &&
      [ -n "$(tm display-message -p -t heap '#{pane_dead_status}#{pane_dead_signal}')" ] && break
    sleep 0.1
  done
  st=$(tm display-message -p -t heap '#{pane_dead_status}')
  sig=$(tm display-message -p -t heap '#{pane_dead_signal}')
  [ "$(tm display-message -p -t heap '#{pane_dead}')" = 1 ] && [ -z "$sig" ] &&
    { [ "$st" = 0 ] || [ -z "$st" ]; } &&
    [ "$(tm display-message -p -t heap '#{alternate_on}')" = 0 ] &&
    pass "heap/tui/quit (q exits 0, terminal restored)" || fail heap/tui/quit "dead=$(tm display-message -p -t heap '#{pane_dead}') status=$st signal=$(tm display-message -p -t heap '#{pane_dead_signal}') screen: $(screen | grep -v '^ *$' | tail -3 | tr '\n' '|')"
  touch "$T/tui/stop"
  tm kill-server 2>/dev/null
else
  skip heap/tui "tmux is not installed (scripts/deps.sh test installs it)"
fi

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
