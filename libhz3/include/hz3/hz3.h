/* hz3 — public C interface of libhz3.
 *
 * libhz3 replaces malloc: link it or LD_PRELOAD it and the standard functions (malloc, free,
 * calloc, realloc, reallocarray, posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 * malloc_usable_size, malloc_trim, mallinfo, mallinfo2, malloc_stats, malloc_info, mallopt
 * (docs/stats.md), glibc's aliases __libc_malloc, __libc_free, __libc_calloc,
 * __libc_realloc, __libc_memalign, __libc_valloc, __libc_pvalloc, and every C++ operator
 * new/delete) are served by hz3. It also exports the exec family (execve, execv, execvp,
 * execvpe, execl, execlp, execle, fexecve), which report the calling thread's pending hz3:hits
 * and then exec as libc does (docs/probes.md). This header adds only what the standard headers do
 * not declare: the arena descriptor that tracers (hz3top) read from a live process, and the tag
 * encoding they need to interpret it. It is not an allocation API of its own. */
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
#define HZ3_DESC_VERSION 4u

/* Run states as the page map's records store them (hz3_span_layout.off_state, one byte). */
#define HZ3_SPAN_FREE_DIRTY 0u    /* free run of the page heap, resident */
#define HZ3_SPAN_FREE_RELEASED 1u /* free run given back to the OS */
#define HZ3_SPAN_SMALL 2u         /* span of one small/medium class */
#define HZ3_SPAN_LARGE 3u         /* one large block (npages counts a guard page if any) */

/* Where the fields of a run record (the Span the page map points to) lie: byte offsets into a
 * record of `size` bytes. Every run of pages below hwm_pages has its record in map[] at its
 * first page (small spans: at every page; free runs and large blocks: at the first and last),
 * so a reader walks the map from page 0, reading each record and skipping its npages. */
struct hz3_span_layout {
  uint16_t size;              /* sizeof the record */
  uint16_t off_start;         /* uint64_t: address of the run's first page */
  uint16_t off_npages;        /* uint32_t: pages in the run */
  uint16_t off_tag;           /* uint32_t: the tag of its pages (small), 0 for free runs */
  uint16_t off_state;         /* uint8_t: HZ3_SPAN_* */
  uint16_t off_used;          /* uint32_t: small spans: objects outside the span (held by the
                                 application, in a thread cache or in an inbox) */
  uint16_t large_guard_pages; /* pages of a large run that are not the block's */
  uint16_t reserved_;
};

/* Where the fields of a heap (an entry of the heap registry) lie: byte offsets into a heap of
 * `size` bytes. Heap ids are registry indices; a small span's owner field is its heap's id + 1. */
struct hz3_heap_layout {
  uint16_t size;          /* sizeof the heap */
  uint16_t off_id;        /* uint32_t: the heap's id */
  uint16_t off_owner_tid; /* int32_t: thread id of the thread that took the heap last (at its
                             start; the forking thread's in a fork child); 0 for heap 0 */
  uint16_t off_state;     /* uint32_t: 1 while a thread owns the heap, 0 while none does
                             (always for heap 0, the shared heap of threads past max_heaps and
                             of calls without a cache) */
};

/* How a thread cache holds one size class (version 4): entry `bin` of the array at
 * hz3_arena_desc.class_cache. */
#define HZ3_CACHE_LIST 0u     /* a list from head[bin] (and parked[bin]), linked through word 0 */
#define HZ3_CACHE_MAGAZINE 1u /* an array: mag_slots[mag_base … mag_top[bin]) */
struct hz3_class_cache {
  uint32_t kind;       /* HZ3_CACHE_LIST or HZ3_CACHE_MAGAZINE */
  uint32_t mag_base;   /* a magazine's first slot in mag_slots; 0 for a list */
  uint32_t max_blocks; /* the most blocks one cache holds in one list of the class (head[] or
                          parked[]) or in its magazine: a longer walk reads a list that changes */
  uint32_t reserved_;
};

/* Where the fields of a thread cache, of its remote-free buckets and the cache fields of a heap
 * lie (version 4): byte offsets into a thread cache of `size` bytes, into one of the
 * `remote_buckets` buckets (`remote_size` bytes each, from off_remote on), and into a heap (the
 * record of hz3_heap_layout). Arrays are indexed by bin (0 … nclasses). */
struct hz3_cache_layout {
  uint32_t size;            /* sizeof the thread cache */
  uint32_t off_state;       /* uint32_t: 1 while the cache owns a heap (LIVE) */
  uint32_t off_heap;        /* uint64_t: address of the heap it owns */
  uint32_t off_head;        /* uint64_t head[]: first block of each list class's cache, or 0 */
  uint32_t off_parked;      /* uint64_t parked[]: blocks set aside while heap sampling, a list */
  uint32_t off_mag_top;     /* uint64_t mag_top[]: a magazine holds mag_top - mag_base blocks */
  uint32_t off_mag_slots;   /* uint64_t mag_slots[]: the magazines' blocks */
  uint32_t off_remote;      /* the remote-free buckets: blocks this thread freed for other heaps,
                               not yet delivered to their inboxes */
  uint32_t remote_buckets;  /* buckets in the array */
  uint32_t remote_size;     /* sizeof one bucket */
  uint32_t off_rb_head;     /* uint64_t: first block of the bucket's chain, 0 when unused */
  uint32_t off_rb_tag;      /* uint32_t: the page tag of every block in it (owner, bin); 0 unused */
  uint32_t off_rb_count;    /* uint32_t: blocks in the chain */
  uint32_t off_owner_cache; /* heap, uint64_t: address of its owner's thread cache while a thread
                               owns it, else 0 */
  uint32_t off_inbox;       /* heap, uint64_t inbox[]: blocks other threads delivered, a list
                               through word 0, or 0 */
  uint32_t off_inbox_objs;  /* heap, uint32_t inbox_objs[]: approximate length of each inbox */
};

/* Published once the arena is reserved. Fields never change afterwards except those marked
 * "moves", which are written with relaxed stores at page-heap or huge-block events (never on
 * the malloc/free fast paths); a reader copies the descriptor and gets a racy but bounded
 * snapshot. Version 2 adds map … span; version 3 adds heaps … heap; version 4 adds class_cache
 * and cache; the first 64 bytes are version 1's. */
struct hz3_arena_desc {
  uint64_t magic;      /* HZ3_DESC_MAGIC once initialised, 0 before */
  uint32_t version;    /* HZ3_DESC_VERSION */
  uint32_t page_shift; /* HZ3_PAGE_SHIFT */
  uint64_t base;       /* first byte of the arena */
  uint64_t size;       /* bytes reserved */
  uint64_t tags;       /* address of uint32_t tags[size >> page_shift] */
  uint64_t hwm_pages;  /* moves: pages ever handed out; tags at and beyond are 0 */
  uint64_t class_size; /* address of uint32_t class_size[nclasses + 1]; [0] unused */
  uint32_t nclasses;   /* bins 1 … nclasses are small/medium size classes */
  uint32_t max_heaps;  /* owner ids are < max_heaps */
  /* version 2 */
  uint64_t map;             /* address of the page map: uint64_t map[size >> page_shift], each
                               the address of a run record or 0 */
  uint64_t class_objs;      /* address of uint32_t class_objs[nclasses + 1]: objects per span */
  uint64_t committed_pages; /* moves: arena pages made read-write */
  uint64_t huge_bytes;      /* moves: bytes mapped for huge blocks (outside the arena) */
  uint64_t huge_blocks;     /* moves: huge blocks live */
  struct hz3_span_layout span;
  /* version 3 */
  uint64_t heaps;      /* address of the heap registry: uint64_t heaps[max_heaps], the address of
                          each heap created (index = id); 0 until heap 0 exists */
  uint64_t heap_count; /* address of uint32_t: heaps created (moves: only grows) */
  struct hz3_heap_layout heap;
  /* version 4, published with heaps (0 until then) */
  uint64_t class_cache; /* address of struct hz3_class_cache[nclasses + 1]; [0] unused */
  struct hz3_cache_layout cache;
};

extern struct hz3_arena_desc hz3_arena_desc;

#ifdef __cplusplus
}
#endif
#endif /* HZ3_HZ3_H */
