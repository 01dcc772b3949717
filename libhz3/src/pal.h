// Platform layer: the only file that talks to the kernel about memory and time. A static-only
// class so every OS choice is in one place and says why. Not an allocator: it hands out whole
// mappings and pages, and knows nothing of classes or tags.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hz3 {

struct Pal {
  // Reserves address space that costs no memory until committed (PROT_NONE, MAP_NORESERVE), so
  // a 64 GiB arena is free until used and still fails cleanly under `ulimit -v`.
  static void* reserve(size_t bytes);
  // The same at exactly `addr` (MAP_FIXED_NOREPLACE): nullptr when anything is mapped in the
  // range, when it does not fit (`ulimit -v`), or when the kernel placed it elsewhere (kernels
  // before 4.17 take the flag for a hint; that mapping is undone).
  static void* reserve_at(uintptr_t addr, size_t bytes);
  // Makes reserved pages usable. mprotect of adjacent ranges merges into one VMA, so growing
  // the committed prefix in large steps keeps /proc/PID/maps short.
  static bool commit(void* p, size_t bytes);
  // Makes pages inaccessible (guard pages of the hardened variant); commit() undoes it. A guard
  // inside the committed range splits its VMA in three, so guards live only as long as blocks.
  static bool protect_none(void* p, size_t bytes);
  // Gives pages back to the OS at once. MADV_DONTNEED rather than MADV_FREE: RSS drops now
  // (operators and tests read RSS), and the pages read back as zero, which calloc exploits.
  // False when the kernel refused part of the range (EINVAL over an mlock'ed page, where it
  // also stops): then some pages keep their old bytes and the range must be treated as dirty.
  [[nodiscard]] static bool decommit(void* p, size_t bytes);
  // Read-write anonymous memory for metadata and huge blocks; nullptr on failure.
  static void* map(size_t bytes);
  // Metadata arrays touched sparsely (tag map, page map): RW but not accounted (MAP_NORESERVE).
  static void* map_sparse(size_t bytes);
  static void* map_sparse_at(uintptr_t addr, size_t bytes);  // at exactly addr, as reserve_at
  static void unmap(void* p, size_t bytes);
  // Grows or shrinks a huge mapping, moving it when needed (mremap MREMAP_MAYMOVE).
  static void* remap(void* p, size_t old_bytes, size_t new_bytes);
  // Names an anonymous range in /proc/PID/maps ("[anon:NAME]") where the kernel supports it.
  static void name(void* p, size_t bytes, const char* name);
  // Monotonic milliseconds from the vDSO's coarse clock: cheap enough for slow paths.
  static uint64_t now_ms();
  // The calling thread's CPU time in microseconds (CLOCK_THREAD_CPUTIME_ID: a system call).
  static uint64_t thread_cpu_us();
  // write(2) to stderr, retried on EINTR; never allocates.
  static void write_stderr(const char* s, size_t n);
  // Starts a detached thread named `name` with every signal blocked (so the application's
  // signals are never delivered to it), on the given stack when there is one (glibc then maps
  // nothing for it: no address space is taken from a process at its `ulimit -v`); false when
  // the thread could not be created.
  static bool spawn(void* (*fn)(void*), const char* name, void* stack, size_t stack_bytes);
  // Sleeps while *word == expected, at most timeout_ms (0: no limit), or until futex_wake.
  static void futex_wait(const uint32_t* word, uint32_t expected, uint64_t timeout_ms);
  static void futex_wake(const uint32_t* word);
};

}  // namespace hz3
