// The exec family as libhz3 API entry points: each reports the calling thread's pending hits
// (hz3:hits, docs/probes.md) and then does what libc's function does. After a successful exec no
// code of the old image runs, so hits not reported before it are lost; other threads' pending
// hits are lost that way still (they are not running this code). Not an allocator path: nothing
// here allocates, and a failed exec leaves the thread as it was (the hits are only reported
// earlier than they would have been). execve, execv and fexecve go to the kernel; execvp and
// execvpe to libc's definitions through dlsym(RTLD_NEXT), or, in a fully static program
// (-static with libhz3.a) where dlsym finds nothing, to a PATH search of their own that does
// not run scripts without a #! line through /bin/sh as libc's does.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "heap.h"

namespace {

// libc's definition of `name` (the next one after libhz3 in lookup order). dlsym does not
// allocate on this path; nullptr in a static program, where RTLD_NEXT has nothing to find.
template <typename F>
F next_fn(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

// argv of the execl* forms: arg0, the variadic arguments up to a null pointer, and (for execle)
// the envp after it. The count comes first so the array can live on the stack, as in libc.
#define HZ3_COLLECT_ARGS(arg0, last, argv)   \
  size_t argc_ = 1;                          \
  {                                          \
    va_list ap;                              \
    va_start(ap, last);                      \
    while (va_arg(ap, const char*)) argc_++; \
    va_end(ap);                              \
  }                                          \
  const char* argv[argc_ + 1];               \
  argv[0] = arg0;                            \
  va_list ap;                                \
  va_start(ap, last);                        \
  for (size_t i = 1; i <= argc_; i++) argv[i] = va_arg(ap, const char*)

using ExecV = int (*)(const char*, char* const[]);
using ExecVE = int (*)(const char*, char* const[], char* const[]);

int sys_execve(const char* path, char* const argv[], char* const envp[]) {
  return int(syscall(SYS_execve, path, argv, envp));
}

// execvpe without libc's: each directory of PATH (default "/bin:/usr/bin") in turn; a file
// that exists but cannot be run is remembered (EACCES), as POSIX asks.
int path_execvpe(const char* file, char* const argv[], char* const envp[]) {
  if (!*file) {
    errno = ENOENT;
    return -1;
  }
  if (strchr(file, '/')) return sys_execve(file, argv, envp);
  const char* path = getenv("PATH");
  if (!path) path = "/bin:/usr/bin";
  size_t flen = strlen(file);
  bool denied = false;
  char buf[PATH_MAX];
  for (const char* p = path;; p++) {
    const char* end = strchrnul(p, ':');
    size_t dlen = size_t(end - p);
    if (dlen + 1 + flen < sizeof buf) {
      memcpy(buf, p, dlen);
      size_t k = dlen;
      if (dlen) buf[k++] = '/';  // an empty entry is the current directory
      memcpy(buf + k, file, flen + 1);
      sys_execve(buf, argv, envp);
      if (errno == EACCES)
        denied = true;
      else if (errno != ENOENT && errno != ENOTDIR)
        return -1;
    }
    if (!*end) break;
    p = end;
  }
  errno = denied ? EACCES : ENOENT;
  return -1;
}

}  // namespace

#define HZ3_API extern "C" __attribute__((visibility("default")))

HZ3_API int execve(const char* path, char* const argv[], char* const envp[]) {
  hz3::flush_hits_at_exit();
  return sys_execve(path, argv, envp);
}

HZ3_API int execv(const char* path, char* const argv[]) {
  hz3::flush_hits_at_exit();
  return sys_execve(path, argv, environ);
}

HZ3_API int execvp(const char* file, char* const argv[]) {
  hz3::flush_hits_at_exit();
  static ExecV real = next_fn<ExecV>("execvp");
  return real ? real(file, argv) : path_execvpe(file, argv, environ);
}

HZ3_API int execvpe(const char* file, char* const argv[], char* const envp[]) {
  hz3::flush_hits_at_exit();
  static ExecVE real = next_fn<ExecVE>("execvpe");
  return real ? real(file, argv, envp) : path_execvpe(file, argv, envp);
}

// As libc: execveat on the descriptor itself, else its /proc/self/fd path (kernels before 3.19).
HZ3_API int fexecve(int fd, char* const argv[], char* const envp[]) {
  hz3::flush_hits_at_exit();
  if (fd < 0) {
    errno = EINVAL;
    return -1;
  }
  syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
  if (errno != ENOSYS) return -1;
  char path[32];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  return sys_execve(path, argv, envp);
}

HZ3_API int execl(const char* path, const char* arg, ...) {
  HZ3_COLLECT_ARGS(arg, arg, argv);
  va_end(ap);
  return execv(path, const_cast<char* const*>(argv));
}

HZ3_API int execlp(const char* file, const char* arg, ...) {
  HZ3_COLLECT_ARGS(arg, arg, argv);
  va_end(ap);
  return execvp(file, const_cast<char* const*>(argv));
}

HZ3_API int execle(const char* path, const char* arg, ...) {
  HZ3_COLLECT_ARGS(arg, arg, argv);
  char* const* envp = va_arg(ap, char* const*);
  va_end(ap);
  return execve(path, const_cast<char* const*>(argv), envp);
}
