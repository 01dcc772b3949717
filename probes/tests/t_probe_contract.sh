#!/usr/bin/env bash
# timeout: 30
# The probe contract of docs/probes.md, checked on the built libraries and BPF object:
#   - release libhz3 has exactly the five hz3 probes, every site with a semaphore named
#     hz3_<probe>_semaphore, and argument counts and sizes as documented (unsigned, so no
#     negative sizes): tag_set/tag_clear u64,u32,u32,u32; lookup_miss u64,u32;
#     decode_fail u64,u32; hits u64; no argument is a segment (TLS) operand;
#   - the noprobes variant has no hz3 probe at all;
#   - the BPF object has one program per probe;
#   - otel_memory (hz3top heap): alloc u64,u64,u64 and free u64, each behind a semaphore, and
#     heap.bpf.o has their two programs.
set -u
source "$HZ3_TOP/scripts/testlib.sh"

if [ ! -f "$HZ3_LIB" ]; then fail probe_contract "no library at $HZ3_LIB (make variants)"; exit 0; fi

# One line per site: "name sem=0x… args=8@%rdi 4@$0".
sites=$(readelf -nW "$HZ3_LIB" | awk '
  /Provider:/ { prov = $NF }
  /Name:/ { name = $NF }
  /Location:/ { sem = $NF }
  /Arguments:/ { if (prov == "hz3") { $1 = ""; print name, sem, $0 } }')
if [ -z "$sites" ]; then fail probe_contract "no hz3 probes in $HZ3_LIB"; exit 0; fi

names=$(echo "$sites" | awk '{print $1}' | sort -u | tr '\n' ' ')
[ "$names" = "decode_fail hits lookup_miss tag_clear tag_set " ] &&
  pass "probe_contract/names ($(echo "$sites" | wc -l) sites)" || fail probe_contract/names "found: $names"

bad=
while read -r name sem args; do
  sizes=$(echo "$args" | tr ' ' '\n' | sed -n 's/^\(-\{0,1\}[0-9]*\)@.*/\1/p' | tr '\n' ',')
  case $name in
    tag_set | tag_clear) want=8,4,4,4, ;;
    lookup_miss | decode_fail) want=8,4, ;;
    hits) want=8, ;;
  esac
  [ "$sizes" = "$want" ] || bad="$bad $name($sizes want $want)"
  # Operands tracers can read: a register, a constant or base+offset memory, never a segment
  # (TLS) operand like 8@%fs:1104(%rax), which libbpf's USDT support and hz3top reject.
  case $args in *%fs:* | *%gs:*) bad="$bad $name(segment operand: $args)" ;; esac
  # The semaphore must be the exported hz3_<name>_semaphore.
  sym=$(readelf -sW --dyn-syms "$HZ3_LIB" | awk -v n="hz3_${name}_semaphore" '$NF == n { print $2; exit }')
  if [ -z "$sym" ] || [ $((16#${sym})) -ne $((sem)) ]; then bad="$bad $name(semaphore $sem, symbol ${sym:-missing})"; fi
done <<<"$sites"
[ -z "$bad" ] && pass probe_contract/arguments_and_semaphores || fail probe_contract/arguments_and_semaphores "$bad"

if [ ! -f "$HZ3_LIB_NOPROBES" ]; then
  fail probe_contract/noprobes "no library at $HZ3_LIB_NOPROBES (make variants)"
elif readelf -nW "$HZ3_LIB_NOPROBES" | grep -q 'Provider: hz3'; then
  fail probe_contract/noprobes "VARIANT=noprobes still has hz3 probes"
else
  pass probe_contract/noprobes
fi

obj=$HZ3_BUILD/obj/probes/hz3.bpf.o
progs=$(readelf -sW "$obj" 2>/dev/null | awk '$4 == "FUNC" && $8 ~ /^hz3_/ { print $8 }' | sort | tr '\n' ' ')
[ "$progs" = "hz3_decode_fail hz3_hits hz3_lookup_miss hz3_tag_clear hz3_tag_set " ] &&
  pass probe_contract/bpf_programs || fail probe_contract/bpf_programs "programs in $obj: '$progs'"

# hz3top heap's side of the otel_memory contract: the programs, and the argument sizes they read
# (alloc: three 8-byte values, free: one), each site behind a semaphore.
heap_obj=$HZ3_BUILD/obj/probes/heap.bpf.o
progs=$(readelf -sW "$heap_obj" 2>/dev/null | awk '$4 == "FUNC" && $8 ~ /^otel_/ { print $8 }' | sort | tr '\n' ' ')
[ "$progs" = "otel_alloc otel_free " ] &&
  pass probe_contract/heap_bpf_programs || fail probe_contract/heap_bpf_programs "programs in $heap_obj: '$progs'"
otel=$(readelf -nW "$HZ3_LIB" 2>/dev/null | awk '
  /Provider: otel_memory/ { p = 1; next }
  p && /Name:/ { name = $2 }
  p && /Semaphore:/ { sem = ($NF != "0x0000000000000000") }
  p && /Arguments:/ { $1 = ""; sub(/^ /, ""); gsub(/@[^ ]*/, ""); print name ":" $0 ":" sem; p = 0 }' | sort | tr '\n' ' ')
[ "$otel" = "alloc:8 8 8:1 free:8:1 " ] &&
  pass probe_contract/otel_memory || fail probe_contract/otel_memory "otel_memory sites in $HZ3_LIB: '$otel'"
