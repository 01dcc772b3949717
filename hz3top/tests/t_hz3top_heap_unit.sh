#!/usr/bin/env bash
# timeout: 30
# Unit tests of the heap view's encoders, wrapper list, unwind choice, renderers and symbolizer
# (hz3top/tests/heap_unit.cc); no root needed.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
bin=$HZ3_TBIN/hz3top_heap_unit
if [ ! -x "$bin" ]; then fail hz3top_heap_unit "$bin not built (make all)"; exit 0; fi
"$bin"
