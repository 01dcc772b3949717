// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* hz3.bpf.c — the kernel side of hz3top: one BPF program per hz3 USDT probe (docs/probes.md),
 * each of which only counts. Counts live in per-CPU maps keyed by process (and by bin and owner
 * for tag churn), so a probe firing takes no lock and shares no cache line; user space sums the
 * CPUs and computes rates. It is not a tracer of individual events: nothing is streamed to user
 * space, because an attached probe already costs ~0.6 us and per-event output would add more.
 *
 * The skeleton (bpftool gen skeleton) is generated into the build folder and never committed. */
/* UAPI headers, not the kernel's BTF: the programs use no kernel type (libbpf reads USDT
 * arguments from struct pt_regs at offsets it computes in user space), so any build host's
 * Linux headers build them. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <stdbool.h>

/* Each attach of a probe to a process adds argument specs; -p with many pids or a library with
 * many inlined hits sites would exceed libbpf's default of 256. */
#define BPF_USDT_MAX_SPEC_CNT 1024

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "hz3_events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, HZ3_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct hz3_proc_counts);
} proc_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, HZ3_MAX_BIN_KEYS);
	__type(key, struct hz3_bin_key);
	__type(value, struct hz3_bin_counts);
} bin_counts SEC(".maps");

/* Not per-CPU: an allocation is set on one CPU and may be cleared on another. No preallocation,
 * so an idle tracer does not pin memory for 64 Ki entries. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HZ3_MAX_LARGE_LIVE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hz3_large_key);
	__type(value, __u64);
} large_live SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HZ3_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct hz3_decode_fail);
} last_decode_fail SEC(".maps");

static __always_inline __u32 current_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

/* The calling process's counters on this CPU, created on first use. NULL only when the map is
 * full (more than HZ3_MAX_PROCS processes traced at once); the event is then lost. */
static __always_inline struct hz3_proc_counts *proc(__u32 tgid)
{
	static const struct hz3_proc_counts zero;
	struct hz3_proc_counts *p = bpf_map_lookup_elem(&proc_counts, &tgid);

	if (p)
		return p;
	bpf_map_update_elem(&proc_counts, &tgid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&proc_counts, &tgid);
}

/* Tag churn is counted per (process, bin, owner) only; the process totals are the sums, made
 * in user space. One map update per event instead of two matters: on the VMs measured here a
 * map operation costs ~150 ns, and span churn can fire tens of thousands of events a second.
 * When bin_counts is full the event goes to the process's own slots instead (and DROPPED). */
static __always_inline void count_tag(__u32 tgid, __u32 bin, __u32 owner, __u32 npages, int set)
{
	static const struct hz3_bin_counts zero;
	struct hz3_bin_key key = { .tgid = tgid, .bin = bin, .owner = owner };
	struct hz3_bin_counts *b = bpf_map_lookup_elem(&bin_counts, &key);
	struct hz3_proc_counts *p;

	if (!b) {
		bpf_map_update_elem(&bin_counts, &key, &zero, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&bin_counts, &key);
	}
	if (b) {
		if (set) {
			b->sets++;
			b->set_pages += npages;
		} else {
			b->clears++;
			b->clear_pages += npages;
		}
		return;
	}
	p = proc(tgid);
	if (!p)
		return;
	p->c[HZ3_C_DROPPED]++;
	p->c[set ? HZ3_C_TAG_SET : HZ3_C_TAG_CLEAR]++;
	p->c[set ? HZ3_C_TAG_SET_PAGES : HZ3_C_TAG_CLEAR_PAGES] += npages;
}

SEC("usdt")
int BPF_USDT(hz3_hits, __u64 count)
{
	struct hz3_proc_counts *p = proc(current_tgid());

	if (!p)
		return 0;
	p->c[HZ3_C_HITS] += count;
	p->c[HZ3_C_HIT_REPORTS]++;
	return 0;
}

SEC("usdt")
int BPF_USDT(hz3_lookup_miss, __u64 ptr, __u32 kind)
{
	struct hz3_proc_counts *p = proc(current_tgid());

	if (!p)
		return 0;
	if (kind == 0)
		p->c[HZ3_C_MISS_OUTSIDE]++;
	else if (kind == 1)
		p->c[HZ3_C_MISS_UNTAGGED]++;
	else
		p->c[HZ3_C_MISS_OTHER]++;
	return 0;
}

SEC("usdt")
int BPF_USDT(hz3_decode_fail, __u64 ptr, __u32 tag)
{
	__u32 tgid = current_tgid();
	struct hz3_proc_counts *p = proc(tgid);
	struct hz3_decode_fail last = { .ptr = ptr, .tag = tag, .ktime_ns = bpf_ktime_get_ns() };

	if (p)
		p->c[HZ3_C_DECODE_FAIL]++;
	bpf_map_update_elem(&last_decode_fail, &tgid, &last, BPF_ANY);
	return 0;
}

SEC("usdt")
int BPF_USDT(hz3_tag_set, __u64 page_idx, __u32 npages, __u32 bin, __u32 owner)
{
	__u32 tgid = current_tgid();

	count_tag(tgid, bin, owner, npages, 1);
	if (bin == HZ3_EV_BIN_LARGE) {
		struct hz3_large_key key = { .tgid = tgid, .page_idx = page_idx };
		__u64 n = npages;

		if (bpf_map_update_elem(&large_live, &key, &n, BPF_ANY)) {
			struct hz3_proc_counts *p = proc(tgid);

			if (p)
				p->c[HZ3_C_DROPPED]++;
		}
	}
	return 0;
}

SEC("usdt")
int BPF_USDT(hz3_tag_clear, __u64 page_idx, __u32 npages, __u32 bin, __u32 owner)
{
	__u32 tgid = current_tgid();

	count_tag(tgid, bin, owner, npages, 0);
	if (bin == HZ3_EV_BIN_LARGE) {
		struct hz3_large_key key = { .tgid = tgid, .page_idx = page_idx };

		bpf_map_delete_elem(&large_live, &key);
	}
	return 0;
}

/* hz3top -f: the processes whose forks are followed. User space puts the -p targets in
 * `followed`; a process they fork (not a thread: the child's tgid differs) joins `followed`, so
 * its own children are followed too, and is reported in `forked` (child tgid -> parent tgid),
 * which user space drains to attach the probes to the child. Loaded only with -f. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HZ3_MAX_PROCS);
	__type(key, __u32);
	__type(value, __u32);
} followed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HZ3_MAX_PROCS);
	__type(key, __u32);
	__type(value, __u32);
} forked SEC(".maps");

/* The one kernel type used (by -f/--follow only), declared with the field it reads: CO-RE
 * (preserve_access_index) lets libbpf relocate the offset against the running kernel's BTF at
 * load time, so the build needs no vmlinux.h. */
struct task_struct {
	int tgid;
} __attribute__((preserve_access_index));

SEC("tp_btf/sched_process_fork")
int BPF_PROG(follow_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;

	if (ptgid == ctgid || !bpf_map_lookup_elem(&followed, &ptgid))
		return 0;
	bpf_map_update_elem(&followed, &ctgid, &ptgid, BPF_ANY);
	bpf_map_update_elem(&forked, &ctgid, &ptgid, BPF_ANY);
	return 0;
}
