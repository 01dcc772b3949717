// Storage for the USDT semaphores (one per probe, in the .probes section where the kernel and
// libbpf expect them). The kernel raises a semaphore while a tracer is attached to its probe.
#include "probes.h"

#if HZ3_PROBES
extern "C" {
#define HZ3_DEFINE_SEMAPHORE(name) \
  __attribute__((section(".probes"), used)) volatile unsigned short hz3_##name##_semaphore = 0;
HZ3_DEFINE_SEMAPHORE(tag_set)
HZ3_DEFINE_SEMAPHORE(tag_clear)
HZ3_DEFINE_SEMAPHORE(lookup_miss)
HZ3_DEFINE_SEMAPHORE(decode_fail)
HZ3_DEFINE_SEMAPHORE(hits)
}
#endif
