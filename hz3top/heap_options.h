// `hz3top heap`'s command line, parsed by CLI11 (docs/heap-profiling.md, "Command line").
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace hz3top {

struct HeapOptions {
  std::vector<pid_t> pids;
  bool all = false;  // every process that maps a libhz3* file, now and later
  std::string lib;   // --all --lib PATH: only processes that map this file
  double interval = 1.0;
  long count = 0;
  double duration = 0;
  bool json = false;
  bool plain = false;  // text reports even on a terminal
  bool verbose = false;
  size_t top = 10;
  std::string pprof;                  // write a gzipped profile.proto here at every report
  std::string folded;                 // write folded stacks here at every report
  bool folded_alloc = false;          // folded values: allocated bytes instead of live bytes
  std::vector<std::string> wrappers;  // more allocation wrappers to look through
  std::string unwind = "auto";        // auto, dwarf or fp
};

// Returns -1 when the program should go on, else the exit status (0 after --help, 2 after a
// usage error, with the message already printed).
int parse_heap_options(int argc, char** argv, HeapOptions* o);

}  // namespace hz3top
