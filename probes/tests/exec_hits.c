// probes/tests/t_hits_at_exec.sh: waits for argv[3] to exist (the tracer attached), does argv[1]
// malloc+free pairs of 64 B (fewer than a report chunk, so no slow path reports them), then
// execs argv[2] through the exec function named by argv[4] (execve, execv, execvp, execl, ...;
// "exit": returns from main instead; "syscall": the execve system call itself, past libhz3's
// wrappers, the negative control), with an empty environment where the function takes one and
// LD_PRELOAD removed for the others: the new image has no libhz3, so only this image's hits
// are counted.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: exec_hits N PROGRAM STARTFILE FUNCTION\n");
    return 2;
  }
  int n = atoi(argv[1]);
  const char* prog = argv[2];
  const char* fn = argv[4];
  struct stat st;
  struct timespec ms = {0, 1000000};
  while (stat(argv[3], &st) != 0) nanosleep(&ms, 0);
  for (int i = 0; i < n; i++) {
    void* volatile p = malloc(64);
    free(p);
  }
  if (!strcmp(fn, "exit")) return 0;  // the control: exit reports pending hits without wrappers
  char* args[] = {(char*)prog, NULL};
  char* env[] = {NULL};
  unsetenv("LD_PRELOAD");  // execv, execvp, execl, execlp pass this environment on
  if (!strcmp(fn, "syscall")) syscall(SYS_execve, prog, args, env);
  else if (!strcmp(fn, "execve")) execve(prog, args, env);
  else if (!strcmp(fn, "execv")) execv(prog, args);
  else if (!strcmp(fn, "execvp")) execvp(prog, args);
  else if (!strcmp(fn, "execvpe")) execvpe(prog, args, env);
  else if (!strcmp(fn, "execl")) execl(prog, prog, (char*)NULL);
  else if (!strcmp(fn, "execlp")) execlp(prog, prog, (char*)NULL);
  else if (!strcmp(fn, "execle")) execle(prog, prog, (char*)NULL, env);
  else if (!strcmp(fn, "fexecve")) {
    int fd = open(prog, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) fexecve(fd, args, env);
  }
  perror("exec");
  return 3;
}
