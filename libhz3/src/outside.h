// Small and medium classes outside the arena: the fallback for when the arena is exhausted (or
// could not be reserved, e.g. under a tight `ulimit -v`). Objects are carved from chunks of
// CHUNK_BYTES mmap'ed outside the arena, one size class per chunk, so a 64-byte block costs 64
// bytes of address space, not a page of its own. A chunk is found again from any of its objects
// by its aligned base, in an address-keyed table. Everything here runs under one lock and
// nothing is cached per thread: it is a fallback that must be correct and compact, not fast.
// Not the arena's spans (heap.h) nor huge blocks (large.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace hz3 {

// One object of class cls (from a chunk, or as a huge block when no chunk can be mapped), or
// nullptr with errno = ENOMEM.
void* outside_alloc(uint32_t cls);
// False when p lies in no outside chunk. Aborts on a pointer inside a chunk that is not an
// object start handed out by it.
bool outside_free(void* p);
// False when p lies in no outside chunk; aborts (naming fn) like outside_free.
bool outside_usable(void* p, size_t* usable, const char* fn);

struct OutsideStats {
  size_t chunks, mapped_bytes, used_bytes;
};
OutsideStats outside_stats();

void outside_lock_for_fork();
void outside_unlock_after_fork(bool child);

}  // namespace hz3
