/* heap_events.h — the types shared by probes/heap.bpf.c (heap profiling from libhz3's
 * otel_memory:alloc/free USDT probes) and hz3top's heap view that reads its maps. Map keys,
 * values and limits only; the probe contract is docs/probes.md ("Heap sampling").
 *
 * Included from BPF C (after <linux/types.h>) and from C++ (after <linux/types.h>): __u* types and
 * explicit padding, so both compilers lay the structs out alike. */
#ifndef HZ3_HEAP_EVENTS_H
#define HZ3_HEAP_EVENTS_H

/* clang-format off */

/* Live sampled blocks tracked at once (all processes). At the 512 KiB mean interval this covers
 * ~32 GiB of live heap; beyond it new samples are counted in their site's allocation totals
 * but not as live (HZ3_HEAP_C_LIVE_DROPPED says how many). */
#define HZ3_HEAP_MAX_LIVE 65536
/* Distinct (process, stack) sites and distinct stacks. */
#define HZ3_HEAP_MAX_SITES 16384
#define HZ3_HEAP_MAX_STACKS 16384
/* Frames kept per stack (the kernel's limit is 127). */
#define HZ3_HEAP_STACK_DEPTH 64

/* Slots of the per-CPU heap_counts array. */
enum hz3_heap_counter {
	HZ3_HEAP_C_ALLOC = 0,        /* otel_memory:alloc firings seen */
	HZ3_HEAP_C_FREE,             /* otel_memory:free of a block we saw sampled */
	HZ3_HEAP_C_FREE_UNKNOWN,     /* otel_memory:free of a block sampled before attach */
	HZ3_HEAP_C_LIVE_DROPPED,     /* samples not tracked as live: heap_live full */
	HZ3_HEAP_C_SITE_DROPPED,     /* samples with no site entry: heap_sites full */
	HZ3_HEAP_C_STACK_LOST,       /* samples whose stack could not be stored (id < 0) */
	HZ3_HEAP_C_NR
};

/* heap_live key: one sampled block of one process. */
struct hz3_heap_live_key {
	__u32 tgid;
	__u32 pad;
	__u64 ptr;
};

/* heap_live value: what the free must undo. */
struct hz3_heap_live {
	__s64 stack_id;          /* into heap_stacks; negative: stack lost */
	__u64 weight;            /* weighted_bytes of the sample */
	__u64 size;              /* usable size of the block */
};

/* heap_sites key: a (process, allocation stack) pair. */
struct hz3_heap_site_key {
	__u32 tgid;
	__s32 stack_id;          /* negative: stack lost (all such samples share one site) */
};

/* heap_sites value; updated with atomic adds (a block is freed on any CPU). */
struct hz3_heap_site {
	__u64 alloc_weight;      /* sum of weighted_bytes of samples seen */
	__u64 alloc_samples;
	__u64 free_weight;       /* sum of weighted_bytes of those samples freed since */
	__u64 free_samples;
	__u64 alloc_size;        /* sum of the sampled blocks' usable sizes (not weighted) */
};

/* clang-format on */
#endif /* HZ3_HEAP_EVENTS_H */
