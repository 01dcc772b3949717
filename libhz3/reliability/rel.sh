# Sourced by libhz3/reliability/t_*.sh, after libhz3/tests/lib.sh: where this component's builds
# live, and the label of the library a script is about to test.
rel_out=${HZ3_REL_OUT:-$build_dir/reliability}

# lib_label LIB: "check" when LIB is the check build (also under `make test-check`, where every
# path leads there), "hardened" for the hardened build, else "release". Result names carry it, so
# a check run is never reported as a release one.
lib_label() {
  if [ -f "$HZ3_LIB_CHECK" ] && [ "$(readlink -f "$1")" = "$(readlink -f "$HZ3_LIB_CHECK")" ]; then
    echo check
  elif [ -f "$HZ3_LIB_HARDENED" ] &&
    [ "$(readlink -f "$1")" = "$(readlink -f "$HZ3_LIB_HARDENED")" ]; then
    echo hardened
  else
    echo release
  fi
}

# preload_variants: "LABEL LIB" per line for release, check and hardened, each library once.
preload_variants() {
  local seen= l lib
  for lib in "$HZ3_LIB" "$HZ3_LIB_CHECK" "$HZ3_LIB_HARDENED"; do
    [ -f "$lib" ] || continue
    l=$(readlink -f "$lib")
    case " $seen " in *" $l "*) continue ;; esac
    seen="$seen $l"
    echo "$(lib_label "$lib") $lib"
  done
}
