#!/usr/bin/env bash
# Installs the Debian packages hz3 needs, only those missing (idempotent). Usage:
#   scripts/deps.sh test|demo|bench
# As root it runs apt-get itself; otherwise it prints the one command that would.
set -euo pipefail
mode=${1:-test}

build=(g++ make clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libpfm4-dev libcli11-dev
       systemtap-sdt-dev libncurses-dev pkg-config libdw-dev nlohmann-json3-dev)
tools=(valgrind linux-perf procps python3 git)
peers=(libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4)
case "$mode" in
  # clang-format-14: the release the C++ tree is formatted with (scripts/format.sh refuses others).
  test)  want=("${build[@]}" "${tools[@]}" "${peers[@]}" clang-format-14 tmux xz-utils bpftrace python3-matplotlib curl
                python3-prometheus-client prometheus
                libclang-rt-14-dev postgresql zstd time sqlite3 libpython3.11-testsuite
                python3-protobuf protobuf-compiler golang-github-google-pprof-dev golang-go libc6-dbg
                python3-pytest) ;;
  demo)  want=("${build[@]}" "${tools[@]}" "${peers[@]}" redis-server redis-tools) ;;
  bench) want=("${build[@]}" "${tools[@]}" "${peers[@]}" python3-matplotlib) ;;
  *) echo "usage: $0 test|demo|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "hz3: missing Debian packages: ${missing[*]}" >&2
  echo "hz3: install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "hz3: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
