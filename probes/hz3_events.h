/* hz3_events.h — the types shared by the hz3 BPF programs (probes/hz3.bpf.c) and the user space
 * that reads their maps (hz3top). It defines the map keys, the counter slots and the limits; it is
 * not the probe contract itself (that is docs/probes.md) and holds no code.
 *
 * Included from BPF C (after <linux/types.h>) and from C++ (after <linux/types.h>), so it uses only
 * the __u* types both sides have, and fixed-size fields with explicit padding so that both
 * compilers lay the structs out the same way. */
#ifndef HZ3_EVENTS_H
#define HZ3_EVENTS_H

/* Kernel style, like the BPF C that includes it; `make format` is for the C++ tree. */
/* clang-format off */

/* Raw tag fields of a large allocation (docs/probes.md, "Tag encoding"): the values of
 * HZ3_TAG_BIN_LARGE and HZ3_TAG_OWNER_LARGE in libhz3/include/hz3/hz3.h, which BPF C cannot
 * include (it needs <stdint.h>); hz3top/model.h checks at compile time that they agree. */
#define HZ3_EV_BIN_LARGE 0x7FFF
#define HZ3_EV_OWNER_LARGE 0xFFFF

/* Map sizes. A process is one entry of proc_counts; a (process, bin, owner) triple one entry of
 * bin_counts; a live large allocation seen since attach one entry of large_live. */
#define HZ3_MAX_PROCS 1024
#define HZ3_MAX_BIN_KEYS 16384
#define HZ3_MAX_LARGE_LIVE 65536

/* Slots of struct hz3_proc_counts: one per probe, plus derived sums the probes make exact. */
enum hz3_counter {
	HZ3_C_HITS = 0,          /* sum of hz3:hits count */
	HZ3_C_HIT_REPORTS,       /* number of hz3:hits firings (batches) */
	HZ3_C_MISS_OUTSIDE,      /* hz3:lookup_miss kind 0: outside the arena */
	HZ3_C_MISS_UNTAGGED,     /* hz3:lookup_miss kind 1: in the arena, tag 0 */
	HZ3_C_MISS_OTHER,        /* hz3:lookup_miss with a kind this version does not know */
	HZ3_C_DECODE_FAIL,       /* hz3:decode_fail */
	/* The four tag slots hold only the events bin_counts had no room for; the process totals
	 * are these plus the sums over its bin_counts entries (the reader adds them up). */
	HZ3_C_TAG_SET,           /* hz3:tag_set firings */
	HZ3_C_TAG_CLEAR,         /* hz3:tag_clear firings */
	HZ3_C_TAG_SET_PAGES,     /* sum of tag_set npages */
	HZ3_C_TAG_CLEAR_PAGES,   /* sum of tag_clear npages */
	HZ3_C_DROPPED,           /* events not broken down by bin (or large not sized): a map was full */
	HZ3_C_NR
};

/* proc_counts value (per-CPU): indexed by enum hz3_counter. */
struct hz3_proc_counts {
	__u64 c[HZ3_C_NR];
};

/* bin_counts key: one (process, bin, owner) triple; bin and owner are the raw tag fields. */
struct hz3_bin_key {
	__u32 tgid;
	__u16 bin;
	__u16 owner;
};

/* bin_counts value (per-CPU). */
struct hz3_bin_counts {
	__u64 sets;
	__u64 clears;
	__u64 set_pages;
	__u64 clear_pages;
};

/* large_live key: the head page of a large allocation tagged while the tracer was attached; the
 * value is its npages, so a tracer can size large allocations the tag map only marks by head. */
struct hz3_large_key {
	__u32 tgid;
	__u32 pad;
	__u64 page_idx;
};

/* last_decode_fail value: the latest hz3:decode_fail of a process (it aborts right after). */
struct hz3_decode_fail {
	__u64 ptr;
	__u32 tag;
	__u32 pad;
	__u64 ktime_ns;
};

/* clang-format on */
#endif /* HZ3_EVENTS_H */
