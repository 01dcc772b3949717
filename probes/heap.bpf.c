// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* heap.bpf.c — the kernel side of `hz3top heap`: two BPF programs on libhz3's otel_memory USDT
 * probes (docs/probes.md, "Heap sampling"). otel_memory:alloc sends one event per sampled
 * allocation to user space through a ring buffer: the block, its weight, a time stamp, the
 * frame-pointer stack, the registers at the probe and a copy of the top of the user stack, so
 * that hz3top can unwind code without frame pointers with DWARF CFI. otel_memory:free sends the
 * freed pointer. hz3top keeps the live samples and the per-stack sums itself.
 *
 * Both events are rare (one sample per 512 KiB allocated on average, and one free per sample),
 * so streaming them costs little; they wake hz3top only when the ring buffer is half full (it
 * drains it every 20 ms), and with --unwind fp the stack is not copied. It is separate from hz3.bpf.c so that the counting view does
 * not pay for it and the heap view does not attach the hz3 probes. */
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
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, HZ3_HEAP_RINGBUF);
} heap_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HZ3_HEAP_C_NR);
	__type(key, __u32);
	__type(value, __u64);
} heap_counts SEC(".maps");

/* Set by hz3top before load: false with --unwind fp, which needs no copy of the stack. */
const volatile bool copy_stack = true;

/* Submits without waking hz3top (it drains the ring buffer every 20 ms or so), unless the ring
 * buffer is half full: a wakeup per sample would cost the traced thread a wakeup of the reader. */
static __always_inline void submit(void *e)
{
	__u64 queued = bpf_ringbuf_query(&heap_events, BPF_RB_AVAIL_DATA);

	bpf_ringbuf_submit(e, queued >= HZ3_HEAP_RINGBUF / 2 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&heap_counts, &slot);

	if (v)
		(*v)++;
}

SEC("usdt")
int BPF_USDT(otel_alloc, __u64 ptr, __u64 size, __u64 weight)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct hz3_heap_alloc_event *e;
	__u64 base;
	long n;
	int i;

	count(HZ3_HEAP_C_ALLOC);
	e = bpf_ringbuf_reserve(&heap_events, sizeof(*e), 0);
	if (!e) {
		count(HZ3_HEAP_C_ALLOC_DROPPED);
		return 0;
	}
	e->type = HZ3_HEAP_EV_ALLOC;
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->ptr = ptr;
	e->size = size;
	e->weight = weight;
	e->ts = bpf_ktime_get_ns();
	e->regs[0] = ctx->rax;
	e->regs[1] = ctx->rdx;
	e->regs[2] = ctx->rcx;
	e->regs[3] = ctx->rbx;
	e->regs[4] = ctx->rsi;
	e->regs[5] = ctx->rdi;
	e->regs[6] = ctx->rbp;
	e->regs[7] = ctx->rsp;
	e->regs[8] = ctx->r8;
	e->regs[9] = ctx->r9;
	e->regs[10] = ctx->r10;
	e->regs[11] = ctx->r11;
	e->regs[12] = ctx->r12;
	e->regs[13] = ctx->r13;
	e->regs[14] = ctx->r14;
	e->regs[15] = ctx->r15;
	e->regs[16] = ctx->rip;
	n = bpf_get_stack(ctx, e->ips, sizeof(e->ips), BPF_F_USER_STACK);
	e->nips = n > 0 ? (__u32)(n / sizeof(__u64)) : 0;
	e->stack_len = 0;
	if (!copy_stack) {
		e->stack_base = 0;
		submit(e);
		return 0;
	}
	/* Whole pages from the one holding the stack pointer, until one is not mapped (the top of
	 * the stack): constant sizes and offsets keep the verifier simple. */
	base = ctx->rsp & ~(__u64)(HZ3_HEAP_STACK_PAGE - 1);
	e->stack_base = base;
	e->stack_len = 0;
#pragma unroll
	for (i = 0; i < HZ3_HEAP_STACK_PAGES; i++) {
		if (bpf_probe_read_user(e->stack + i * HZ3_HEAP_STACK_PAGE, HZ3_HEAP_STACK_PAGE,
					(const void *)(base + i * HZ3_HEAP_STACK_PAGE)))
			break;
		e->stack_len = (i + 1) * HZ3_HEAP_STACK_PAGE;
	}
	if (!e->stack_len)
		count(HZ3_HEAP_C_STACK_COPY_FAILED);
	submit(e);
	return 0;
}

SEC("usdt")
int BPF_USDT(otel_free, __u64 ptr)
{
	struct hz3_heap_free_event *e;

	count(HZ3_HEAP_C_FREE);
	e = bpf_ringbuf_reserve(&heap_events, sizeof(*e), 0);
	if (!e) {
		count(HZ3_HEAP_C_FREE_DROPPED);
		return 0;
	}
	e->type = HZ3_HEAP_EV_FREE;
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->ptr = ptr;
	e->ts = bpf_ktime_get_ns();
	submit(e);
	return 0;
}
