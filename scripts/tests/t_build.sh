#!/usr/bin/env bash
# Build portability, in throwaway build folders:
#   build/probes_without_kernel_btf  the BPF programs and skeletons build from UAPI headers with
#       /sys/kernel/btf hidden (a private mount namespace with an empty tmpfs over it, as root)
#       and a bpftool that refuses `btf` commands; PROBES_BTF points at a missing file.
#   build/clang_lib, build/clang_lib_serves_api_test  `make CC=clang CXX=clang++ lib` builds the
#       release library, and the API test program (built by gcc in the main build) passes with it
#       preloaded. The whole tree with clang is `make test-clang` (README).
#   build/lists_only_unit  HZ3_CPPFLAGS=-DHZ3_MAGAZINES=0 (every class cached in a list) builds
#       the library and its unit tests with the same flags, and the unit tests pass.
# timeout: 400
set -u
top=${HZ3_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/scripts/testlib.sh"
cd "$top"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# cases_pass NAME LOG CMD…: runs a test program (output to LOG) and passes NAME when it exits 0
# with some PASS lines and no FAIL line.
cases_pass() {
  local name=$1 log=$2 rc np nf
  shift 2
  "$@" > "$log" 2>&1
  rc=$?
  np=$(grep -c '^PASS' "$log")
  nf=$(grep -c '^FAIL' "$log")
  if [ $rc -eq 0 ] && [ "$nf" -eq 0 ] && [ "$np" -gt 0 ]; then
    pass "$name ($np cases)"
  else
    fail "$name" "status $rc, $nf FAIL lines: $(grep -m2 '^FAIL' "$log" | tr '\n' ' ')"
  fi
}

# --- BPF without the kernel's BTF -----------------------------------------------------------
real_bpftool=$(command -v bpftool)
cat > "$tmp/bpftool" << EOF
#!/bin/sh
case "\$1" in btf) echo "bpftool \$*: refused by t_build.sh" >&2; exit 1 ;; esac
exec "$real_bpftool" "\$@"
EOF
chmod +x "$tmp/bpftool"
probes_make=(make -s --no-print-directory BUILD="$tmp/probes" BPFTOOL="$tmp/bpftool"
  PROBES_BTF="$tmp/missing-btf" probes)
if is_root && command -v unshare > /dev/null && [ -d /sys/kernel/btf ]; then
  hidden="/sys/kernel/btf hidden"
  unshare -m sh -c 'mount -t tmpfs none /sys/kernel/btf && test ! -e /sys/kernel/btf/vmlinux &&
    exec "$@"' sh "${probes_make[@]}" > "$tmp/probes.log" 2>&1
  rc=$?
else
  hidden="/sys/kernel/btf not hidden (needs root and unshare)"
  "${probes_make[@]}" > "$tmp/probes.log" 2>&1
  rc=$?
fi
if [ $rc -eq 0 ] && [ -s "$tmp/probes/obj/probes/hz3.skel.h" ] &&
  [ -s "$tmp/probes/obj/probes/heap.skel.h" ]; then
  pass "build/probes_without_kernel_btf ($hidden)"
else
  fail build/probes_without_kernel_btf "exit $rc ($hidden): $(tail -4 "$tmp/probes.log" | tr '\n' ' ')"
fi

# --- a compile-time variant through HZ3_CPPFLAGS: library and unit tests alike -------------
# The unit tests compile the allocator's headers themselves: built without the library's -D flags
# they would disagree with it about its layout (which classes are magazines) and fail on garbage.
lo=$tmp/lists
if make -s --no-print-directory -j2 BUILD="$lo" HZ3_CPPFLAGS=-DHZ3_MAGAZINES=0 \
  "$lo/tests/unit_test_release" > "$tmp/lists.log" 2>&1; then
  cases_pass build/lists_only_unit "$tmp/lists_unit.log" timeout 300 "$lo/tests/unit_test_release"
else
  fail build/lists_only_unit "$(grep -m3 -E 'error' "$tmp/lists.log" | tr '\n' ' ')"
fi

# --- the library with clang -----------------------------------------------------------------
if ! command -v clang++ > /dev/null; then
  skip build/clang_lib "clang++ not installed (scripts/deps.sh test installs clang)"
  exit 0
fi
cl=$tmp/clang
if make -s --no-print-directory -j2 BUILD="$cl" CC=clang CXX=clang++ lib > "$tmp/clang.log" 2>&1 &&
  [ -s "$cl/lib/libhz3.so" ]; then
  pass build/clang_lib
else
  fail build/clang_lib "$(grep -m3 -E 'error|warning' "$tmp/clang.log" | tr '\n' ' ')"
  exit 0
fi
if grep -q 'warning' "$tmp/clang.log"; then
  fail build/clang_lib_no_warnings "$(grep -m3 warning "$tmp/clang.log" | tr '\n' ' ')"
else
  pass build/clang_lib_no_warnings
fi
api=${HZ3_TBIN:-$top/build/tests}/api_test
if [ ! -x "$api" ]; then
  skip build/clang_lib_serves_api_test "$api not built (make all)"
  exit 0
fi
cases_pass build/clang_lib_serves_api_test "$tmp/api.log" \
  env LD_PRELOAD="$cl/lib/libhz3.so" timeout 120 "$api" clang --hz3
