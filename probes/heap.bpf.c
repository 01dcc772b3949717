// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* heap.bpf.c — the kernel side of `hz3top heap`: two BPF programs on libhz3's otel_memory USDT
 * probes (docs/probes.md, "Heap sampling"). otel_memory:alloc records the user stack of the
 * sampled allocation, adds its weight to that site's totals and remembers the block in a bounded
 * live map; otel_memory:free looks the block up and credits its site's frees. User space reads
 * the site totals (live = allocated - freed, by weight) and symbolizes the stacks.
 *
 * It streams nothing: sampled allocations are rare (one per 512 KiB allocated, on average), and
 * per-site sums are all the view needs. It is separate from hz3.bpf.c so that the counting view
 * does not pay for a stack map and the heap view does not attach the hz3 probes. */
/* UAPI headers, not the kernel's BTF: the programs use no kernel type (libbpf reads USDT
 * arguments from struct pt_regs at offsets it computes in user space), so any build host's
 * Linux headers build them. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <stdbool.h>

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "heap_events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, HZ3_HEAP_MAX_STACKS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, HZ3_HEAP_STACK_DEPTH * sizeof(__u64));
} heap_stacks SEC(".maps");

/* Not per-CPU: a block sampled on one CPU is freed on any. No preallocation: an idle tracer
 * does not pin memory for the whole bound. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HZ3_HEAP_MAX_LIVE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hz3_heap_live_key);
	__type(value, struct hz3_heap_live);
} heap_live SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HZ3_HEAP_MAX_SITES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hz3_heap_site_key);
	__type(value, struct hz3_heap_site);
} heap_sites SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HZ3_HEAP_C_NR);
	__type(key, __u32);
	__type(value, __u64);
} heap_counts SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&heap_counts, &slot);

	if (v)
		(*v)++;
}

static __always_inline struct hz3_heap_site *site(struct hz3_heap_site_key *key)
{
	static const struct hz3_heap_site zero;
	struct hz3_heap_site *s = bpf_map_lookup_elem(&heap_sites, key);

	if (s)
		return s;
	bpf_map_update_elem(&heap_sites, key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&heap_sites, key);
}

SEC("usdt")
int BPF_USDT(otel_alloc, __u64 ptr, __u64 size, __u64 weight)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	long id = bpf_get_stackid(ctx, &heap_stacks, BPF_F_USER_STACK);
	struct hz3_heap_site_key sk = { .tgid = tgid, .stack_id = id < 0 ? -1 : (__s32)id };
	struct hz3_heap_live_key lk = { .tgid = tgid, .ptr = ptr };
	struct hz3_heap_live lv = { .stack_id = sk.stack_id, .weight = weight, .size = size };
	struct hz3_heap_site *s;

	count(HZ3_HEAP_C_ALLOC);
	if (id < 0)
		count(HZ3_HEAP_C_STACK_LOST);
	s = site(&sk);
	if (!s) {
		count(HZ3_HEAP_C_SITE_DROPPED);
		return 0;
	}
	__sync_fetch_and_add(&s->alloc_weight, weight);
	__sync_fetch_and_add(&s->alloc_samples, 1);
	__sync_fetch_and_add(&s->alloc_size, size);
	/* A block not tracked as live is never credited as freed: its site overstates live bytes
	 * by its weight, and HZ3_HEAP_C_LIVE_DROPPED says so. */
	if (bpf_map_update_elem(&heap_live, &lk, &lv, BPF_ANY))
		count(HZ3_HEAP_C_LIVE_DROPPED);
	return 0;
}

SEC("usdt")
int BPF_USDT(otel_free, __u64 ptr)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct hz3_heap_live_key lk = { .tgid = tgid, .ptr = ptr };
	struct hz3_heap_live *lv = bpf_map_lookup_elem(&heap_live, &lk);
	struct hz3_heap_site_key sk = { .tgid = tgid };
	struct hz3_heap_site *s;
	__u64 weight;

	/* Sampled before we attached: its alloc was never counted, so neither is its free. */
	if (!lv) {
		count(HZ3_HEAP_C_FREE_UNKNOWN);
		return 0;
	}
	sk.stack_id = (__s32)lv->stack_id;
	weight = lv->weight;
	bpf_map_delete_elem(&heap_live, &lk);
	count(HZ3_HEAP_C_FREE);
	s = bpf_map_lookup_elem(&heap_sites, &sk);
	if (s) {
		__sync_fetch_and_add(&s->free_weight, weight);
		__sync_fetch_and_add(&s->free_samples, 1);
	}
	return 0;
}
