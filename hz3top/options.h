// hz3top's command line: what the user asked for, parsed by CLI11. The only look at the system
// here is the thread id -> process lookup of -p (/proc/ID/status); whether the pid exists, maps
// libhz3, or the event is known is checked later, in session.cc.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace hz3top {

// Shared by `hz3top` and `hz3top heap`: -v, --version, the positional [interval [count]] (range
// errors in words: "interval must be > 0"), parsing with a one-line error naming `prog` (returns
// -1 to go on, else the exit status), and the pids of -p: each thread id resolved to its process,
// then de-duplicated (a pid given twice would be attached twice and every event counted twice).
void add_report_options(CLI::App& app, bool* verbose, double* interval, long* count);
int parse_cli(CLI::App& app, int argc, char** argv, const char* prog);
void add_unique_pids(const std::vector<int>& given, std::vector<pid_t>* pids);
// The -p option: one pid per -p, or a comma list (-p 1,2), repeatable.
void add_pid_option(CLI::App& app, std::vector<int>* pids, const char* help);
// hz3top's version (the project's, libhz3/libhz3.pc.in), as --version prints it.
const char* hz3top_version();

enum class OutputMode { TUI, PLAIN, JSON };

struct Options {
  std::vector<pid_t> pids;
  bool all = false;
  double interval = 1.0;  // seconds between reports
  long count = 0;         // reports to print; 0 = until stopped
  double duration = 0;    // seconds to run; 0 = until stopped
  bool once = false;
  OutputMode mode = OutputMode::TUI;
  bool mode_forced = false;  // --plain or --json given (else TUI only on a terminal)
  bool verbose = false;
  std::string event = "cache-misses";
  bool event_given = false;
  std::string sample_event = "cpu-clock";
  int sample_hz = 999;
  bool perf = true;
  bool list_probes = false;
  bool legacy_attach = false;  // one uprobe per site even where uprobe_multi links exist
  bool follow = false;         // -f: also watch the children the targets fork, each its own row
  std::string lib;             // --all --lib PATH: only the processes that map this library file
  std::string openmetrics;     // --openmetrics[=HOST:PORT]: serve /metrics there; empty: off
};

// Parses argv. Returns -1 when the program should go on, else the exit status (0 after --help,
// 2 after a usage error, with the message already printed).
int parse_options(int argc, char** argv, Options* o);

}  // namespace hz3top
