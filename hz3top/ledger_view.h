// The allocator's ledger of one process (tag_census.h's Ledger, read from outside through the
// arena descriptor) as the reports show it: JSON (docs/hz3top.md, key "ledger") and the lines of
// the interactive detail view, in malloc_stats()' order (docs/stats.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model.h"
#include "output.h"

namespace hz3top {

// null when the ledger could not be read (descriptor version 1, no tag map, a failed walk).
Json ledger_json(const ProcView& v);

// The plain format's "# ledger pid=… comm=… LINE=BYTES …\n" line (the keys of ledger_json, in
// malloc_stats()' order; app_small … inboxes with a version 4 descriptor, else small_used); ""
// when the ledger could not be read.
std::string ledger_plain(const ProcView& v);

struct LedgerLine {
  char mark;  // ' ' first line, '+' adds up to the next '=' line
  uint64_t bytes;
  std::string label;
};
std::vector<LedgerLine> ledger_lines(const Ledger& g);

// "heap 3 tid 1234 worker", "heap 0 (shared)", "heap 5 (orphan)"; "heap 3" alone when the
// descriptor does not name owners (version 2).
std::string heap_owner_label(uint32_t owner, const OwnerLedger& h);

}  // namespace hz3top
