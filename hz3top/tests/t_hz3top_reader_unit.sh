#!/usr/bin/env bash
# timeout: 30
# Unit tests of hz3top's arena reader on a fake arena in its own memory
# (hz3top/tests/reader_unit.cc); no root needed.
set -u
source "$HZ3_TOP/scripts/testlib.sh"
bin=$HZ3_TBIN/hz3top_reader_unit
if [ ! -x "$bin" ]; then fail hz3top_reader_unit "$bin not built (make all)"; exit 0; fi
"$bin"
