// USDT probe sites of libhz3 (provider "hz3"; the contract is docs/probes.md). Each site is
// guarded by its USDT semaphore, which the kernel raises while a tracer is attached, so a
// detached site costs a load and a not-taken branch and no probe sits on the malloc/free fast
// path. VARIANT=noprobes (HZ3_PROBES=0) compiles them out. Not a counter library: hz3 keeps no
// in-process counters; tracers count.
#pragma once

#include "config.h"

#if HZ3_PROBES
#define _SDT_HAS_SEMAPHORES 1
#define SDT_USE_VARIADIC 1
#include <sys/sdt.h>

#define HZ3_SEMAPHORE(name) hz3_##name##_semaphore
extern "C" {
extern volatile unsigned short hz3_tag_set_semaphore;
extern volatile unsigned short hz3_tag_clear_semaphore;
extern volatile unsigned short hz3_lookup_miss_semaphore;
extern volatile unsigned short hz3_decode_fail_semaphore;
extern volatile unsigned short hz3_hits_semaphore;
extern volatile unsigned short otel_memory_alloc_semaphore;
extern volatile unsigned short otel_memory_free_semaphore;
}
// The kernel raises and lowers a semaphore at any instant: read it as an atomic (one plain load).
#define HZ3_PROBE_ENABLED(name) \
  HZ3_UNLIKELY(__atomic_load_n(&HZ3_SEMAPHORE(name), __ATOMIC_RELAXED) != 0)
// A probe of another provider (otel_memory: the OpenTelemetry memory-profiling contract).
#define HZ3_PROBE_PROVIDER(provider, name, ...)                                               \
  do {                                                                                        \
    if (HZ3_UNLIKELY(__atomic_load_n(&provider##_##name##_semaphore, __ATOMIC_RELAXED) != 0)) \
      STAP_PROBEV(provider, name, __VA_ARGS__);                                               \
  } while (0)
#define HZ3_PROBE(name, ...)                                          \
  do {                                                                \
    if (HZ3_PROBE_ENABLED(name)) STAP_PROBEV(hz3, name, __VA_ARGS__); \
  } while (0)
#else
#define HZ3_PROBE_ENABLED(name) false
#define HZ3_PROBE(name, ...) \
  do {                       \
  } while (0)
#define HZ3_PROBE_PROVIDER(provider, name, ...) \
  do {                                          \
  } while (0)
#endif
