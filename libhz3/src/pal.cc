// Linux implementation of the platform layer (see pal.h for the contract of each call).
#include "pal.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

namespace hz3 {

void* Pal::reserve(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

namespace {
void* map_exactly(uintptr_t addr, size_t bytes, int prot, int flags) {
  int saved = errno;  // a refused placement is not an error of the caller's call
  void* want = reinterpret_cast<void*>(addr);
  void* p = mmap(want, bytes, prot, flags | MAP_FIXED_NOREPLACE, -1, 0);
  if (p != MAP_FAILED && p != want) munmap(p, bytes);
  errno = saved;
  return p == want ? p : nullptr;
}
}  // namespace

void* Pal::reserve_at(uintptr_t addr, size_t bytes) {
  return map_exactly(addr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
}

void* Pal::map_sparse_at(uintptr_t addr, size_t bytes) {
  return map_exactly(addr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
}

bool Pal::commit(void* p, size_t bytes) { return mprotect(p, bytes, PROT_READ | PROT_WRITE) == 0; }

bool Pal::protect_none(void* p, size_t bytes) {
  int saved = errno;  // best effort: without the guard the block still works
  bool ok = mprotect(p, bytes, PROT_NONE) == 0;
  errno = saved;
  return ok;
}

bool Pal::decommit(void* p, size_t bytes) {
  int saved = errno;  // free() must not clobber errno
  bool ok = madvise(p, bytes, MADV_DONTNEED) == 0;
  errno = saved;
  return ok;
}

void* Pal::map(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void* Pal::map_sparse(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void Pal::unmap(void* p, size_t bytes) {
  int saved = errno;
  munmap(p, bytes);
  errno = saved;
}

void* Pal::remap(void* p, size_t old_bytes, size_t new_bytes) {
  void* q = mremap(p, old_bytes, new_bytes, MREMAP_MAYMOVE);
  return q == MAP_FAILED ? nullptr : q;
}

void Pal::name(void* p, size_t bytes, const char* name) {
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif
  int saved = errno;  // best effort: kernels without CONFIG_ANON_VMA_NAME say EINVAL
  prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, bytes, (unsigned long)name);
  errno = saved;
}

uint64_t Pal::now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

uint64_t Pal::thread_cpu_us() {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000;
}

void Pal::write_stderr(const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = write(2, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= size_t(w);
  }
}

bool Pal::spawn(void* (*fn)(void*), const char* name, void* stack, size_t stack_bytes) {
  int saved = errno;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);  // the new thread inherits the full mask
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (stack)
    pthread_attr_setstack(&attr, stack, stack_bytes);
  else
    pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t t;
  bool ok = pthread_create(&t, &attr, fn, nullptr) == 0;
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (ok) pthread_setname_np(t, name);
  errno = saved;
  return ok;
}

void Pal::futex_wait(const uint32_t* word, uint32_t expected, uint64_t timeout_ms) {
  int saved = errno;
  struct timespec ts = {time_t(timeout_ms / 1000), long(timeout_ms % 1000) * 1000000};
  syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, timeout_ms ? &ts : nullptr, nullptr, 0);
  errno = saved;
}

void Pal::futex_wake(const uint32_t* word) {
  int saved = errno;
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  errno = saved;
}

// Builds "hz3: <fn>: <what> 0x<hex>\n" in a stack buffer: the heap may be the broken thing.
void fatal_pointer(const char* fn, const char* what, const void* p) {
  char buf[160];
  size_t n = 0;
  auto put = [&](const char* s) {
    while (*s && n < sizeof buf - 20) buf[n++] = *s++;
  };
  put("hz3: ");
  put(fn);
  put(": ");
  put(what);
  put(" 0x");
  uintptr_t v = uintptr_t(p);
  char hex[17];
  int k = 0;
  do {
    hex[k++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  while (k) buf[n++] = hex[--k];
  buf[n++] = '\n';
  Pal::write_stderr(buf, n);
  abort();
}

void fatal(const char* msg) {
  Pal::write_stderr("hz3: ", 5);
  size_t n = 0;
  while (msg[n]) n++;
  Pal::write_stderr(msg, n);
  Pal::write_stderr("\n", 1);
  abort();
}

}  // namespace hz3
