// Large and huge blocks.
//   large  (> 64 KiB, or alignment above a page): a run of whole pages from the page heap; only
//          its first page is tagged (TAG_LARGE), since frees pass the start pointer. free is
//          still range check + one load, then the run's record from the page map.
//   huge   (>= HZ3_HUGE_MIB, or whenever the arena cannot serve): a private mmap outside the
//          arena, found again through an address-keyed hash table. Also the fallback that keeps
//          allocations working when the arena is exhausted or could not be reserved.
// Not the small/medium classes (heap.h).
#pragma once

#include <cstddef>

namespace hz3 {

// align is a power of two >= 16. *zeroed (optional) tells whether the block reads as zero.
// Call after global_init (process.h): before it the arena is not there and every block is huge.
void* large_alloc(size_t size, size_t align, bool* zeroed = nullptr);
void large_free(void* p, const char* fn);  // p must carry TAG_LARGE; aborts if not a block start
size_t large_usable(void* p, const char* fn);
// In-place resize when it can (true), else false and the caller copies.
bool large_resize_in_place(void* p, size_t new_size);

void* huge_alloc(size_t size, size_t align);
bool huge_free(void* p);                       // false: not a huge block
bool huge_usable(void* p, size_t* usable);     // false: not a huge block
void* huge_realloc(void* p, size_t new_size);  // p a huge block; nullptr when it cannot

// Statistics: huge blocks mapped, their bytes, and the bytes of the table that finds them.
void huge_totals(size_t* count, size_t* bytes, size_t* table_bytes);

void large_lock_for_fork();
void large_unlock_after_fork(bool child);

}  // namespace hz3
