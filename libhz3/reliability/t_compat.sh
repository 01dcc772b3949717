#!/usr/bin/env bash
# Real services nobody here wrote, each run twice: on glibc (the reference) and with libhz3
# preloaded under maps_watch, which proves from /proc/PID/maps and hz3_arena_desc that the
# program's processes were served by libhz3. Per case one line compares exit status, a checksum
# of the program's (normalised) output, wall time, CPU time and peak RSS (largest process), then
# a PASS/FAIL line; a summary line ends the run. A case fails when the exit status or checksum
# differs, the reference itself fails, libhz3 is not proven mapped in the program, or the run is
# grossly worse (more than 3x the wall time, or more than 2x + 64 MiB the peak RSS).
#   python3    the interpreter's own regression tests (python3 -m test), every object on malloc
#   postgres   PostgreSQL server on 127.0.0.1 (initdb, start, stop by the test) under pgbench,
#              its own load generator, with a fixed random seed; checksum = table sums + queries
#   clang      clang++ -O2 compiling project sources; checksum = the object files
#   git        fast-import of a generated history, log -p, blame, repack --threads=2, fsck, clone
#   zstd       zstd -T2 compressing and decompressing generated data (multi-threaded)
#   sqlite3    (full only) an in-process database building, indexing and querying 300k rows
# REL_COMPAT=fast (make test, 50-90 s on 2 cores) or full (make test-compat, ~5 min);
# REL_COMPAT_KEEP=1 keeps every output and log under /tmp/hz3-compat.*; REL_COMPAT_CASES="git zstd"
# runs only those cases.
# Wall-time ratios are noisy on a shared 2-core machine; CPU time is the steadier figure.
# timeout: 300
. "$(dirname "$0")/../tests/lib.sh"
mode=${REL_COMPAT:-fast}
need_bin compat "$HZ3_TBIN/maps_watch" || exit 0
need_lib compat "$HZ3_LIB" || exit 0
if [ ! -x /usr/bin/time ]; then
  skip compat "GNU time (/usr/bin/time, Debian package time) not installed"
  exit 0
fi

tmp=$(mktemp -d /tmp/hz3-compat.XXXXXX)
chmod 755 "$tmp"  # the postgres server runs as the postgres user
cleanup() {
  # A server left behind by an interrupted case: stop it by the pid it recorded, nothing else.
  local f pid
  for f in "$tmp"/*/*/pg/data/postmaster.pid; do
    [ -f "$f" ] || continue
    pid=$(head -1 "$f")
    [ -n "$pid" ] && kill -9 "$pid" 2> /dev/null
  done
  if [ -n "${REL_COMPAT_KEEP:-}" ]; then echo "compat: outputs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

lib=$HZ3_LIB
export top mode
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null LC_ALL=C TZ=UTC

# ---- the cases: each runs in its own empty folder ($1), prints what is compared --------------

# python3 -m test, verbose.
py=/usr/bin/python3
"$py" -c 'import test.regrtest, test.test_list' 2> /dev/null || py=$(command -v python3)
if [ "$mode" = full ]; then
  py_tests="test_dict test_list test_set test_json test_re test_bytes test_unicode test_userstring
    test_collections test_itertools test_functools test_sort test_heapq test_deque test_tuple
    test_int test_long test_float test_decimal test_fractions test_statistics test_random
    test_pickle test_copy test_enum test_dataclasses test_ast test_compile test_grammar
    test_generators test_weakref test_gc test_memoryview test_array test_struct test_codecs
    test_difflib test_csv test_zlib test_lzma test_hashlib test_threading
    test_queue test_textwrap test_string test_bisect test_operator test_math"
  py_jobs=-j2
else
  py_tests="test_dict test_list test_set test_json test_re"
  py_jobs=
fi
export py py_tests py_jobs
case_python3() {
  cd "$1" || return 99
  # shellcheck disable=SC2086
  PYTHONMALLOC=malloc PYTHONHASHSEED=0 "$py" -m test $py_jobs -v $py_tests > raw.txt 2>&1
  local rc=$?
  # Compared: each test module's count and verdict and any failing test by name, sorted (-j2
  # finishes modules in any order). Not the verbose chatter: some tests print random or
  # timing-dependent text.
  grep -E '^(Ran [0-9]+ tests?|OK$|OK \(|FAILED \(|[0-9]+ tests? (OK|failed|skipped))|\.\.\. (FAIL|ERROR)$' \
    raw.txt | sed -E 's/ in [0-9.]+s$//' | LC_ALL=C sort
  return $rc
}

# PostgreSQL under pgbench. The server binds 127.0.0.1 on a free port, is started and stopped
# here and killed if anything goes wrong; pgbench's fixed seed makes the balance sums exact.
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -1)
if [ "$mode" = full ]; then pg_scale=10 pg_clients=8 pg_tx=2500; else pg_scale=2 pg_clients=4 pg_tx=400; fi
export pgbin pg_scale pg_clients pg_tx
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi
}
export -f as_pg
case_postgres() {
  local d=$1/pg port spid rc=0 i
  mkdir -p "$d" && [ "$(id -u)" -eq 0 ] && chown postgres: "$d"
  as_pg "$pgbin/initdb" -D "$d/data" -A trust -U postgres --no-sync -E UTF8 --locale=C \
    > "$1/initdb.log" 2>&1 || { echo "initdb failed"; return 10; }
  port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local server=("$pgbin/postgres" -D "$d/data" -c listen_addresses=127.0.0.1 -p "$port" -k "$d"
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=20)
  # Started directly (setpriv execs it), so $! is the postmaster and the signals below reach it.
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid=postgres --regid=postgres --init-groups -- "${server[@]}" > "$1/server.log" 2>&1 &
  else
    "${server[@]}" > "$1/server.log" 2>&1 &
  fi
  spid=$!
  trap 'kill -9 $spid 2> /dev/null' EXIT
  for i in $(seq 150); do
    "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
    kill -0 $spid 2> /dev/null || { echo "server exited at start"; return 11; }
    sleep 0.1
  done
  local pg=(-h 127.0.0.1 -p "$port" -U postgres)
  "$pgbin/pgbench" "${pg[@]}" -i -q -s "$pg_scale" postgres > "$1/init.log" 2>&1 || rc=12
  "$pgbin/pgbench" "${pg[@]}" -c "$pg_clients" -j 2 -t "$pg_tx" --random-seed=7 postgres \
    > "$1/bench.log" 2>&1 || rc=13
  grep -E '^number of transactions actually processed' "$1/bench.log"
  "$pgbin/psql" "${pg[@]}" -X -At postgres > "$1/query.out" 2>&1 << 'EOF' || rc=14
select sum(abalance) from pgbench_accounts;
select count(*), sum(delta) from pgbench_history;
select sum(bbalance) from pgbench_branches;
select sum(tbalance) from pgbench_tellers;
select bid, count(*), sum(abalance), max(filler) from pgbench_accounts group by bid order by bid;
select md5(string_agg(aid::text || ':' || abalance, ',' order by abalance, aid)) from pgbench_accounts;
create table words as select i, md5(i::text) as w from generate_series(1, 200000) i;
create index on words (w);
select count(distinct substr(w, 1, 3)), min(w), max(w) from words;
select md5(string_agg(w, '' order by w)) from words where w like 'a%';
EOF
  cat "$1/query.out"
  kill -INT $spid  # fast shutdown
  for i in $(seq 200); do kill -0 $spid 2> /dev/null || break; sleep 0.1; done
  wait $spid || rc=15
  trap - EXIT
  return $rc
}

# clang++ -O2 on project sources; the object files are the output.
if [ "$mode" = full ]; then
  cc_files="libhz3/src/heap.cc libhz3/src/arena.cc libhz3/src/malloc.cc libhz3/src/large.cc
    libhz3/tests/stress_test.cc libhz3/tests/api_test.cc libhz3/tests/maps_watch.cc
    bench/ssot.cc bench/larson.cc libhz3/reliability/fuzz_diff.cc libhz3/reliability/stress.cc"
else
  cc_files="libhz3/src/heap.cc libhz3/tests/stress_test.cc"
fi
export cc_files
case_clang() {
  local f o rc=0
  for f in $cc_files; do
    [ -f "$top/$f" ] || continue
    o=$1/$(echo "$f" | tr / _).o
    clang++ -std=c++20 -O2 -fsized-deallocation -fconstexpr-steps=100000000 -pthread \
      -I"$top/libhz3/include" -I"$top/libhz3/src" -I"$top/libhz3/tests" -c "$top/$f" -o "$o" \
      2>> "$1/cc.err" || rc=$?
    echo "$f $(md5sum < "$o" 2> /dev/null | cut -c1-32)"
  done
  return $rc
}

# git on a generated history: files change a few lines per commit, so deltas and blame have
# real work. Author dates are fixed, so every object id is reproducible.
if [ "$mode" = full ]; then git_commits=6000; else git_commits=1200; fi
export git_commits
gen_history() {
  awk -v N="$git_commits" 'BEGIN {
    F = 300; x = 7
    for (c = 1; c <= N; c++) {
      printf "commit refs/heads/main\nmark :%d\ncommitter Hz3 Test <t@example.com> %d +0000\n", c, 1600000000 + c * 60
      msg = sprintf("change %d", c)
      printf "data %d\n%s\n", length(msg), msg
      if (c > 1) printf "from :%d\n", c - 1
      k = 1 + c % 4
      for (j = 0; j < k; j++) {
        x = (x * 1103515245 + 12345) % 2147483648
        f = x % F; ver[f]++
        body = ""
        n = 60 + f % 90
        for (i = 0; i < n; i++) {
          # most lines depend on the file only; every 9th changes with the version
          v = (i % 9 == 0) ? ver[f] : 0
          body = body sprintf("%d/%d: line %d of file %d %s\n", f, v, i, f, substr("lorem ipsum dolor sit amet consectetur", 1 + (i * f) % 20, 12))
        }
        printf "M 100644 inline dir%d/file%d.txt\ndata %d\n%s\n", f % 17, f, length(body), body
      }
    }
  }'
}
export -f gen_history
case_git() {
  cd "$1" || return 99
  local g=(git -C repo.git) rc=0
  git init -q --bare -b main repo.git || return 20
  gen_history | "${g[@]}" fast-import --quiet || rc=21
  "${g[@]}" log --stat --format='%H %s' main | md5sum
  "${g[@]}" log -p -n 400 main | md5sum
  "${g[@]}" repack -adf --window=50 --depth=50 --threads=2 -q || rc=22
  "${g[@]}" fsck --full --no-progress 2>&1 || rc=23
  "${g[@]}" cat-file --batch-all-objects --batch-check | md5sum
  "${g[@]}" blame -s main -- dir3/file3.txt | md5sum
  "${g[@]}" diff --stat main~300 main | tail -1
  git clone -q repo.git work || rc=24
  git -C work grep -c 'line 17 of' | md5sum
  git -C work log --format=%H -1
  return $rc
}

# zstd -T2: compression at two levels and decompression of 60 MB of generated text.
if [ "$mode" = full ]; then zstd_mb=120; else zstd_mb=30; fi
export zstd_mb
case_zstd() {
  cd "$1" || return 99
  local rc=0
  awk -v L=$((zstd_mb * 14000)) 'BEGIN { x = 1
    for (i = 0; i < L; i++) {
      x = (x * 1103515245 + 12345) % 2147483648
      printf "%010d %s row-%d %x\n", x % 1000000, substr("abcdefghijklmnopqrstuvwxyz0123456789", x % 36 + 1, 1 + x % 24), i, x
    } }' > data
  md5sum < data
  zstd -T2 -q -6 --long=25 -c data > data.zst || rc=30
  md5sum < data.zst
  zstd -T2 -q -d -c data.zst | md5sum || rc=31
  zstd -T2 -q -15 -c data > data15.zst || rc=32
  md5sum < data15.zst
  zstd -T2 -q -d -c data15.zst | md5sum || rc=33
  return $rc
}

# sqlite3: an in-process database (full only).
case_sqlite3() {
  cd "$1" || return 99
  sqlite3 db.sqlite << 'EOF'
pragma journal_mode = off;
create table t(i integer primary key, a integer, b text);
with recursive r(i) as (select 1 union all select i + 1 from r where i < 300000)
insert into t select i, (i * 7919) % 100003, printf('%08d-%s', (i * 104729) % 99991, substr('abcdefghij', 1 + i % 10)) from r;
create index t_a on t(a);
create index t_b on t(b);
select count(*), sum(a), min(b), max(b) from t;
select a % 97, count(*), sum(i) from t group by a % 97 order by 1 limit 20;
select group_concat(b, ',') from (select b from t where a < 300 order by b);
select count(*) from t x join t y on x.a = y.a where x.i < y.i;
EOF
}
export -f case_python3 case_postgres case_clang case_git case_zstd case_sqlite3

# ---- running and comparing ---------------------------------------------------------------------

# timing FILE: "wall cpu maxrss_kib" from GNU time's last line ("%e %U %S %M").
timing() { tail -1 "$1" | awk '{ printf "%s %.2f %s", $1, $2 + $3, $4 }'; }

# proof REPORT COMM_REGEX MIN_THREADS: "N M" (processes served, most threads seen), or a reason.
proof() {
  awk -v c="$2" -v min="$3" '
    NR == 1 { if ($0 !~ /desc_symbol=1/) nodesc = 1; next }
    {
      delete f
      for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      if (f["comm"] !~ c) next
      seen++
      if (f["lib"] == 1 && f["desc"] == 1 && f["arena"] == 1 && f["hwm_pages"] + 0 > 0) {
        served++
        if (f["threads"] + 0 > th) th = f["threads"] + 0
      }
    }
    END {
      if (nodesc) print "hz3_arena_desc not exported by the library"
      else if (!seen) print "no process matching " c " was sampled"
      else if (!served) print seen " processes matching " c " sampled, none served by libhz3"
      else if (th < min) print "at most " th " threads seen in a served " c " (want " min ")"
      else print served " " th
    }' "$1"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

cases=0 same=0 failed=0 log_wall=0 log_cpu=0 log_rss=0 measured=0
# run NAME FUNCTION COMM_REGEX MIN_THREADS (only the cases named in REL_COMPAT_CASES, if set)
run() {
  local name=$1 fn=$2 comm=$3 min=$4 d=$tmp/$1 r0 r1 why= w
  [ -z "${REL_COMPAT_CASES:-}" ] || [[ " $REL_COMPAT_CASES " == *" $name "* ]] || return 0
  mkdir -p "$d/ref" "$d/hz3"
  chmod 755 "$d" "$d/ref" "$d/hz3"
  cases=$((cases + 1))
  /usr/bin/time -f '%e %U %S %M' -o "$d/ref.time" bash -c "$fn \"\$1\"" _ "$d/ref" \
    > "$d/ref.out" 2> "$d/ref.err"
  r0=$?
  "$HZ3_TBIN/maps_watch" --preload "$lib" --report "$d/watch" --interval-ms 100 -- \
    /usr/bin/time -f '%e %U %S %M' -o "$d/hz3.time" bash -c "$fn \"\$1\"" _ "$d/hz3" \
    > "$d/hz3.out" 2> "$d/hz3.err"
  r1=$?
  local sum0 sum1 t0 t1 pr
  sum0=$(md5sum < "$d/ref.out" | cut -c1-12)
  sum1=$(md5sum < "$d/hz3.out" | cut -c1-12)
  read -r w0 c0 m0 <<< "$(timing "$d/ref.time")"
  read -r w1 c1 m1 <<< "$(timing "$d/hz3.time")"
  pr=$(proof "$d/watch" "$comm" "$min")
  local wr cr mr
  wr=$(ratio "$w1" "$w0") cr=$(ratio "$c1" "$c0") mr=$(ratio "$m1" "$m0")
  printf 'compat %-9s exit %s/%s  output %s %s  time %5.2fs/%5.2fs = %sx  cpu %sx  maxrss %s/%s MiB = %sx  served: %s\n' \
    "$name" "$r0" "$r1" "$sum1" "$([ "$sum0" = "$sum1" ] && echo same || echo "DIFFERS from $sum0")" \
    "$w1" "$w0" "$wr" "$cr" "$((m1 / 1024))" "$((m0 / 1024))" "$mr" \
    "$(case $pr in [0-9]*) set -- $pr; echo "$1 processes, up to $2 threads" ;; *) echo "NO" ;; esac)"
  if [ "$r0" -ne 0 ]; then
    why="reference run (glibc) exited with $r0: $(tail -c 300 "$d/ref.err" "$d/ref.out" 2> /dev/null | tr '\n' ' ')"
  elif [ "$r1" -ne 0 ]; then
    why="run with libhz3 exited with $r1: $(tail -c 300 "$d/hz3.err" 2> /dev/null | tr '\n' ' ')"
  elif [ "$sum0" != "$sum1" ]; then
    why="output differs from the glibc run: $(diff "$d/ref.out" "$d/hz3.out" | head -4 | tr '\n' ' ')"
  elif ! [[ $pr =~ ^[0-9] ]]; then
    why="not proven served by libhz3: $pr"
  elif awk -v a="$w1" -v b="$w0" 'BEGIN { exit !(a > 3 * b + 1) }'; then
    why="wall time ${w1}s is over 3x the glibc run's ${w0}s"
  elif [ "$m1" -gt $((2 * m0 + 65536)) ]; then
    why="peak RSS $((m1 / 1024)) MiB is over 2x + 64 MiB the glibc run's $((m0 / 1024)) MiB"
  fi
  if [ -n "$why" ]; then
    fail "compat/$name" "$why"
    failed=$((failed + 1))
  else
    pass "compat/$name"
    same=$((same + 1))
  fi
  if [ "$r0" -eq 0 ] && [ "$r1" -eq 0 ]; then
    measured=$((measured + 1))
    read -r log_wall log_cpu log_rss <<< "$(awk -v lw="$log_wall" -v lc="$log_cpu" -v lr="$log_rss" \
      -v w="$wr" -v c="$cr" -v m="$mr" 'BEGIN { if (w <= 0) w = 1; if (c <= 0) c = 1; if (m <= 0) m = 1
        printf "%f %f %f", lw + log(w), lc + log(c), lr + log(m) }')"
  fi
}

echo "compat: mode $mode, libhz3 = $lib"
if "$py" -c 'import test.regrtest, test.test_list' 2> /dev/null; then
  run python3 case_python3 '^python3' 1
else
  skip compat/python3 "no python3 with its test package (Debian: libpython3.11-testsuite)"
fi
if [ -x "$pgbin/postgres" ] && [ -x "$pgbin/pgbench" ] && { [ "$(id -u)" -ne 0 ] || id postgres > /dev/null 2>&1; }; then
  run postgres case_postgres '^postgres$' 1
else
  skip compat/postgres "PostgreSQL server and pgbench not installed (Debian: postgresql postgresql-contrib)"
fi
if command -v clang++ > /dev/null; then
  run clang case_clang '^clang' 1
else
  skip compat/clang "clang++ not installed"
fi
if command -v git > /dev/null; then
  run git case_git '^git$' 1
else
  skip compat/git "git not installed"
fi
if command -v zstd > /dev/null; then
  run zstd case_zstd '^zstd$' 3
else
  skip compat/zstd "zstd not installed"
fi
if [ "$mode" = full ]; then
  if command -v sqlite3 > /dev/null; then
    run sqlite3 case_sqlite3 '^sqlite3$' 1
  else
    skip compat/sqlite3 "sqlite3 not installed"
  fi
fi
awk -v n="$cases" -v s="$same" -v f="$failed" -v m="$measured" -v lw="$log_wall" -v lc="$log_cpu" \
  -v lr="$log_rss" 'BEGIN {
    if (m == 0) m = 1
    printf "compat summary: %d cases, %d same as glibc, %d failed; geometric mean libhz3/glibc: time %.2fx, cpu %.2fx, maxrss %.2fx\n",
      n, s, f, exp(lw / m), exp(lc / m), exp(lr / m) }'
