/* heap_events.h — the types shared by probes/heap.bpf.c (heap profiling from libhz3's
 * otel_memory:alloc/free USDT probes) and hz3top's heap view that reads its ring buffer and
 * counters. Event layouts and limits only; the probe contract is docs/probes.md ("Heap
 * sampling").
 *
 * Included from BPF C (after <linux/types.h>) and from C++ (after <linux/types.h>): __u* types and
 * explicit padding, so both compilers lay the structs out alike. */
#ifndef HZ3_HEAP_EVENTS_H
#define HZ3_HEAP_EVENTS_H

/* clang-format off */

/* Frame-pointer frames kept per sample (bpf_get_stack; the kernel's limit is 127). */
#define HZ3_HEAP_STACK_DEPTH 64
/* User stack copied per sample for DWARF unwinding in user space: whole pages from the page that
 * holds the stack pointer upwards, so every read has a constant size and offset. 4 pages give at
 * least 12 KiB above the stack pointer (perf's --call-graph dwarf copies 8 KiB by default). */
#define HZ3_HEAP_STACK_PAGE 4096
#define HZ3_HEAP_STACK_PAGES 4
#define HZ3_HEAP_STACK_COPY (HZ3_HEAP_STACK_PAGE * HZ3_HEAP_STACK_PAGES)
/* Registers copied per sample, in the x86-64 DWARF numbering: rax rdx rcx rbx rsi rdi rbp rsp
 * r8..r15, then rip (the return-address column, 16). */
#define HZ3_HEAP_NREGS 17
/* Ring buffer between the programs and hz3top (bytes; a power of two). ~900 samples. */
#define HZ3_HEAP_RINGBUF (16 * 1024 * 1024)

enum hz3_heap_event_type {
	HZ3_HEAP_EV_ALLOC = 1,
	HZ3_HEAP_EV_FREE = 2,
};

/* Slots of the per-CPU heap_counts array. */
enum hz3_heap_counter {
	HZ3_HEAP_C_ALLOC = 0,        /* otel_memory:alloc firings seen */
	HZ3_HEAP_C_FREE,             /* otel_memory:free firings seen */
	HZ3_HEAP_C_ALLOC_DROPPED,    /* alloc events the ring buffer had no room for */
	HZ3_HEAP_C_FREE_DROPPED,     /* free events the ring buffer had no room for */
	HZ3_HEAP_C_STACK_COPY_FAILED,/* samples whose user stack could not be read at all */
	HZ3_HEAP_C_NR
};

/* otel_memory:alloc: one sampled allocation with what its stack needs. */
struct hz3_heap_alloc_event {
	__u32 type;              /* HZ3_HEAP_EV_ALLOC */
	__u32 tgid;
	__u32 tid;
	__u32 nips;              /* frame-pointer frames in ips[] */
	__u64 ptr;
	__u64 size;              /* usable size of the block */
	__u64 weight;            /* weighted_bytes: the bytes this sample stands for */
	__u64 ts;                /* CLOCK_MONOTONIC, ns */
	__u64 regs[HZ3_HEAP_NREGS];
	__u64 stack_base;        /* user address of stack[0] (the page of the stack pointer) */
	__u64 stack_len;         /* bytes of stack[] that were read */
	__u64 ips[HZ3_HEAP_STACK_DEPTH];
	__u8 stack[HZ3_HEAP_STACK_COPY];
};

/* otel_memory:free of a sampled block. */
struct hz3_heap_free_event {
	__u32 type;              /* HZ3_HEAP_EV_FREE */
	__u32 tgid;
	__u64 ptr;
	__u64 ts;
};

/* clang-format on */
#endif /* HZ3_HEAP_EVENTS_H */
