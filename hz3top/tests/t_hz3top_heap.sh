#!/usr/bin/env bash
# timeout: 90
# hz3top heap profiles a workload with known allocation sites (hz3top/tests/heap_sites.cc: a
# leaking one, half-freed, big blocks, a churning one, one behind the zmalloc wrapper, one
# inlined, one in a shared library), built without frame pointers, preloaded with the real
# libhz3, with real eBPF on libhz3's otel_memory probes.
#  - JSON: each site function is named (the first frame outside libhz3 and allocation wrappers),
#    in the right file and source line, with allocated and live bytes and live objects within 4
#    standard deviations of the truth the workload prints: the larger of the base mean's (for n
#    blocks of s bytes sampled with p = 1 - exp(-s / 512 KiB) and weight s / p the variance is
#    n s^2 (1 - p) / p, docs/heap-profiling.md "Accuracy") and the one from the samples' weights
#    (live_err, alloc_err, per byte, scaled to the truth), as the pacing may have raised the mean;
#    the churn site has nothing live; stacks were unwound with DWARF CFI through the library
#    without frame pointers up to main; the wrapper and the inlined function are frames of their
#    own; error bars are sqrt(sum of w (w - s)) over the live samples, never under
#    (1 - p)^0.5 live / sqrt(samples); live growth per
#    interval is seen while the workload allocates and is 0 after; ages of live samples are
#    within the run; every stack is listed with sums that add up to its site's; libc's frames
#    get source lines from its separate debug info by build id (libc6-dbg), where installed.
#  - --pprof: the gzipped profile decodes against pprof's profile.proto (Debian's
#    golang-github-google-pprof-dev, compiled with protoc, read with python3-protobuf), has the
#    four sample types, the period (space/bytes: the sampling mean most samples were drawn with,
#    512 KiB times a power of two), totals equal to the JSON report's, the leaking functions as
#    leaves, and the executable's build id; `go tool pprof -top` (golang-go) names the leaking function.
#  - --folded: root-first stacks whose values add up to the live bytes.
#  - --all --unwind fp: the workload is found without -p, and frame pointers alone lose the
#    library's caller (the reason for DWARF unwinding).
#  - The interactive view (through tmux): draws, sorts, shows a site's stacks, quits cleanly.
#  - Errors: no -p, a process without libhz3, a noprobes libhz3 (one line each, exit 2 or 1).
# The report checks are test_hz3top_heap.py's, run through pytest_checks.
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
pytest_checks test_hz3top_heap.py final lib estimate objects error_bar age stack dwarf stacks line wrapper \
  inlined nofp_library debuginfo growth growth_rate rate -- HZ3_LIBC_DEBUG="$LIBC_DEBUG"

# pprof: decode against the schema.
BUILD_ID=$(readelf -n "$SITES" | sed -n 's/.*Build ID: //p')
# python3-protobuf is Debian's, for /usr/bin/python3: the python run_pytest uses.
if [ ! -s "$T/heap.pb.gz" ]; then
  fail heap/pprof "no profile written: $(head -3 "$T/main.top.err")"
elif [ ! -f "$PROTO" ] || ! command -v protoc >/dev/null || ! /usr/bin/python3 -c 'import google.protobuf' 2>/dev/null; then
  skip heap/pprof "needs $PROTO, protoc and python3-protobuf (scripts/deps.sh test)"
else
  mkdir -p "$T/pb" && protoc -I"$(dirname "$PROTO")" --python_out="$T/pb" "$PROTO"
  pytest_checks test_hz3top_heap.py pprof_types pprof_period pprof_totals pprof_leaf pprof_build_id -- HZ3_BUILD_ID="$BUILD_ID"
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
pytest_checks test_hz3top_heap.py folded_total folded_stack

# --all and frame pointers alone: found without -p; the library's caller is lost.
# --lib keeps it to this build's library: other libhz3 processes on the machine are not touched.
if run_sites all --all --lib "$HZ3_LIB" --unwind fp; then
  pytest_checks test_hz3top_heap.py all unwind_fp -- HZ3_PID="$(cat "$T/all.pid")"
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
