// CLI11 parsing behind heap_options.h.
#include "heap_options.h"

#include <CLI/CLI.hpp>
#include <cstdio>

#include "options.h"

namespace hz3top {

int parse_heap_options(int argc, char** argv, HeapOptions* o) {
  CLI::App app{
      "hz3top heap: allocation sites by estimated live bytes, growth and allocation rate, from\n"
      "libhz3's sampled otel_memory:alloc/free USDT probes (stacks unwound with DWARF CFI or "
      "frame\n"
      "pointers, symbolized with libdw). Needs root or CAP_SYS_ADMIN (measured on kernel 6.18:\n"
      "CAP_BPF+CAP_PERFMON+CAP_SYS_PTRACE is refused, the uprobe PMU asks for CAP_SYS_ADMIN).",
      "hz3top heap"};
  app.footer(
      "Examples:\n"
      "  sudo hz3top heap -p $(pidof redis-server)        top 10 sites every second\n"
      "  sudo hz3top heap -p 1234 --json 5 3 > heap.jsonl  three JSON reports, 5 s apart\n"
      "  sudo hz3top heap -p 1234 -d 60 --pprof heap.pb.gz && go tool pprof -top heap.pb.gz\n"
      "  sudo hz3top heap --all -d 30 --folded heap.folded && flamegraph.pl heap.folded > h.svg\n"
      "Manual: docs/heap-profiling.md");
  std::vector<int> pids;
  bool once = false;
  auto pid_opt = app.add_option("-p,--pid", pids, "process to profile (repeat for several)")
                     ->allow_extra_args(false);
  auto all_opt =
      app.add_flag("-a,--all", o->all, "every process that maps libhz3, including later ones");
  pid_opt->excludes(all_opt);
  app.add_option("--lib", o->lib, "with --all: only processes that map this libhz3 file")
      ->needs(all_opt)
      ->check(CLI::ExistingFile);
  app.add_flag("--json", o->json, "print one JSON object per interval, with every stack");
  app.add_flag("--plain", o->plain,
               "print text reports even on a terminal (default there: the interactive view)");
  app.add_option("-n,--top", o->top, "sites per table (0: all; JSON lists all by default)");
  app.add_option("-d,--duration", o->duration, "stop after SECONDS")->check(CLI::PositiveNumber);
  app.add_flag("--once", once, "print one report after one interval, then exit");
  app.add_option("--pprof", o->pprof,
                 "write a gzipped pprof profile (inuse/alloc space and objects) to FILE at every "
                 "report");
  app.add_option("--folded", o->folded,
                 "write folded stacks (root first, 'a;b;c BYTES', live bytes) to FILE at every "
                 "report, for flamegraph.pl and speedscope");
  app.add_flag("--folded-alloc", o->folded_alloc,
               "--folded counts allocated bytes since attach instead of live bytes");
  app.add_option("--wrapper", o->wrappers,
                 "a function to look through when naming the site (an allocation wrapper; "
                 "'prefix*' for a family); repeat for several");
  app.add_option("--unwind", o->unwind,
                 "how stacks are unwound: auto (DWARF CFI from a copy of the stack, frame pointers "
                 "where that gets less far), dwarf, fp")
      ->check(CLI::IsMember({"auto", "dwarf", "fp"}));
  add_report_options(app, &o->verbose, &o->interval, &o->count);
  if (int rc = parse_cli(app, argc, argv, "hz3top heap"); rc >= 0) return rc;
  if (pids.empty() && !o->all) {
    fprintf(stderr, "hz3top heap: --pid is required (or --all); see hz3top heap --help\n");
    return 2;
  }
  add_unique_pids(pids, &o->pids);
  if (app.count("--top") == 0 && o->json) o->top = 0;
  if (once) o->count = 1;
  return -1;
}

}  // namespace hz3top
