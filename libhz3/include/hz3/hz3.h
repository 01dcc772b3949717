/* hz3 — public C interface of libhz3.
 *
 * libhz3 replaces malloc: link it or LD_PRELOAD it and the standard functions (malloc, free,
 * calloc, realloc, reallocarray, posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 * malloc_usable_size, malloc_trim, mallinfo, mallinfo2, malloc_stats, malloc_info, mallopt
 * (docs/stats.md), glibc's aliases __libc_malloc, __libc_free, __libc_calloc,
 * __libc_realloc, __libc_memalign, __libc_valloc, __libc_pvalloc, and every C++ operator
 * new/delete) are served by hz3. This header adds only what the standard headers do not
 * declare: the arena descriptor that tracers (hz3top) read from
 * a live process, and the tag encoding they need to interpret it. It is not an allocation API of
 * its own. */
#ifndef HZ3_HZ3_H
#define HZ3_HZ3_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HZ3_PAGE_SHIFT 12
#define HZ3_PAGE_SIZE (1u << HZ3_PAGE_SHIFT)

/* Page tag: (owner_field << 16) | bin_field; 0 means "not ours". */
#define HZ3_TAG_OWNER(tag) ((uint32_t)(tag) >> 16)
#define HZ3_TAG_BIN(tag) ((uint32_t)(tag)&0x7FFFu)
#define HZ3_TAG_BIN_LARGE 0x7FFFu   /* first page of a large allocation */
#define HZ3_TAG_OWNER_LARGE 0xFFFFu /* owner field of a large allocation */
#define HZ3_TAG_OWNER_MAX 0xFFFEu   /* owner_field = heap id + 1 <= this */

#define HZ3_DESC_MAGIC 0x414E455241335A48ull /* "HZ3ARENA" little-endian */
#define HZ3_DESC_VERSION 1u

/* Published once the arena is reserved; fields never change afterwards except hwm_pages. */
struct hz3_arena_desc {
  uint64_t magic;      /* HZ3_DESC_MAGIC once initialised, 0 before */
  uint32_t version;    /* HZ3_DESC_VERSION */
  uint32_t page_shift; /* HZ3_PAGE_SHIFT */
  uint64_t base;       /* first byte of the arena */
  uint64_t size;       /* bytes reserved */
  uint64_t tags;       /* address of uint32_t tags[size >> page_shift] */
  uint64_t hwm_pages;  /* pages ever handed out; tags at and beyond are 0 */
  uint64_t class_size; /* address of uint32_t class_size[nclasses + 1]; [0] unused */
  uint32_t nclasses;   /* bins 1 … nclasses are small/medium size classes */
  uint32_t max_heaps;  /* owner ids are < max_heaps */
};

extern struct hz3_arena_desc hz3_arena_desc;

#ifdef __cplusplus
}
#endif
#endif /* HZ3_HZ3_H */
