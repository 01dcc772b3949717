#!/usr/bin/env bash
# `make install PREFIX=… DESTDIR=…` lays out the library, header and pkg-config file, and a
# program built only from that tree (pkg-config, dynamic and static) runs on hz3.
# timeout: 180
. "$HZ3_TOP/scripts/testlib.sh"
dest=$(mktemp -d); trap 'rm -rf "$dest"' EXIT
if ! make -C "$HZ3_TOP" --no-print-directory -s install PREFIX=/opt/hz3 DESTDIR="$dest" >"$dest/log" 2>&1; then
  fail install/make "$(tail -3 "$dest/log" | tr '\n' ' ')"; exit 0
fi
root=$dest/opt/hz3
for f in lib/libhz3.so lib/libhz3.a include/hz3/hz3.h lib/pkgconfig/libhz3.pc; do
  [ -f "$root/$f" ] || { fail install/layout "missing $f"; exit 0; }
done
pass install/layout
grep -q '^prefix=/opt/hz3$' "$root/lib/pkgconfig/libhz3.pc" && pass install/pc_prefix ||
  fail install/pc_prefix "libhz3.pc does not name PREFIX=/opt/hz3"
cat > "$dest/prog.c" <<'C'
#include <hz3/hz3.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
  char* p = malloc(100);
  uintptr_t b = hz3_arena_desc.base;
  int ours = hz3_arena_desc.magic == HZ3_DESC_MAGIC && (uintptr_t)p - b < hz3_arena_desc.size;
  free(p);
  puts(ours ? "served-by-hz3" : "not-hz3");
  return !ours;
}
C
# pkg-config reads the installed .pc, with its prefix redirected into DESTDIR.
pc() { PKG_CONFIG_PATH=$root/lib/pkgconfig pkg-config --define-variable=prefix="$root" "$@" libhz3; }
# served NAME PROGRAM: PASS when PROGRAM prints served-by-hz3 and exits 0 (a crash at exit after
# the right output is a FAIL too).
served() {
  local out rc
  out=$("$2" 2>"$dest/run.err"); rc=$?
  if [ $rc -eq 0 ] && [ "$out" = served-by-hz3 ]; then pass "$1"
  else fail "$1" "exit $rc, output '$out': $(tail -2 "$dest/run.err" | tr '\n' ' ')"; fi
}
if gcc "$dest/prog.c" -o "$dest/dyn" $(pc --cflags --libs) -Wl,-rpath,"$root/lib" 2>"$dest/err"; then
  served install/pkgconfig_dynamic "$dest/dyn"
else fail install/pkgconfig_dynamic "$(tail -2 "$dest/err" | tr '\n' ' ')"; fi
if gcc "$dest/prog.c" -o "$dest/static" $(pc --cflags) "$root/lib/libhz3.a" $(pc --static --libs-only-l | sed 's/-lhz3//') 2>"$dest/err"; then
  served install/static_link "$dest/static"
else fail install/static_link "$(tail -2 "$dest/err" | tr '\n' ' ')"; fi
