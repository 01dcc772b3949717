// CLI11 definition of hz3top's options (see docs/hz3top.md for the manual).
#include "options.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "openmetrics.h"
#include "output.h"
#include "proc.h"

namespace hz3top {

#ifndef HZ3TOP_VERSION
#define HZ3TOP_VERSION "unknown"
#endif

const char* hz3top_version() { return "hz3top " HZ3TOP_VERSION; }

// A number > 0, said in words when it is not ("interval must be > 0, not '0'"): CLI11's own
// PositiveNumber names its range as two 300-digit limits.
CLI::Validator greater_than_zero(const std::string& what) {
  return CLI::Validator(
      [what](std::string& s) -> std::string {
        char* end = nullptr;
        double v = strtod(s.c_str(), &end);
        if (end == s.c_str() || *end || !std::isfinite(v) || !(v > 0))
          return what + " must be > 0, not '" + s + "'";
        return "";
      },
      "> 0");
}

void add_report_options(CLI::App& app, bool* verbose, double* interval, long* count) {
  app.add_flag("-v,--verbose", *verbose, "print libbpf's log");
  app.set_version_flag("--version", hz3top_version());
  app.add_option("interval", *interval, "seconds between reports (default 1)")
      ->check(greater_than_zero("interval"));
  app.add_option("count", *count, "number of reports (default: until stopped)")
      ->check(greater_than_zero("count"));
}

int parse_cli(CLI::App& app, int argc, char** argv, const char* prog) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ValidationError& e) {
    // CLI11 prefixes the option's name and a separator; the validator's words say it all.
    std::string what = e.what();
    if (size_t c = what.find(": "); c != std::string::npos && what.find(" must be ") != what.npos)
      what = what.substr(c + 2);
    return usage_error(prog, what);
  } catch (const CLI::ParseError& e) {
    return usage_error(prog, e.what());
  }
  return -1;
}

void add_pid_option(CLI::App& app, std::vector<int>* pids, const char* help) {
  // One pid (or one comma list) per -p: otherwise CLI11 would take the positional interval as
  // another pid.
  app.add_option("-p,--pid", *pids, help)->allow_extra_args(false)->delimiter(',');
}

void add_unique_pids(const std::vector<int>& given, std::vector<pid_t>* pids) {
  for (int given_id : given) {
    pid_t p = given_id > 0 ? process_of(pid_t(given_id)) : pid_t(given_id);
    if (std::find(pids->begin(), pids->end(), p) == pids->end()) pids->push_back(p);
  }
}

int parse_options(int argc, char** argv, Options* o) {
  CLI::App app{
      "hz3top: live view of the hz3 allocator inside running processes, from its USDT probes\n"
      "(counted by eBPF), its page-tag map and perf events. Needs root or CAP_BPF+CAP_PERFMON, "
      "and CAP_SYS_PTRACE for other users' processes (measured on kernel 6.18; hz3top heap: "
      "CAP_SYS_ADMIN).",
      "hz3top"};
  app.footer(
      "Examples:\n"
      "  sudo hz3top -p $(pidof redis-server)         interactive view, 1 s interval\n"
      "  sudo hz3top -p 1234 -p 5678 --plain 5         a line per process every 5 s\n"
      "  sudo hz3top --all --json 1 10 > hz3.jsonl     ten JSON reports of every libhz3 process\n"
      "  sudo hz3top --all --openmetrics               serve http://127.0.0.1:9464/metrics\n"
      "  sudo hz3top heap -p 1234                      heap profile by site (hz3top heap --help)\n"
      "Manual: docs/hz3top.md");
  std::vector<int> pids;
  bool plain = false, json = false, no_perf = false;
  std::string sample_event = o->sample_event;
  add_pid_option(app, &pids,
                 "process to watch (a thread id means its process); repeat or give a comma list "
                 "for several");
  app.add_flag("-f,--follow", o->follow,
               "with -p: also watch the processes the targets fork (and theirs), each its own row");
  app.add_flag("-a,--all", o->all, "watch every process that maps libhz3");
  app.add_option("--lib", o->lib, "with --all: only the processes that map this library file");
  app.add_option("-d,--duration", o->duration, "stop after SECONDS")
      ->check(greater_than_zero("-d"));
  app.add_flag("--once", o->once, "print one report after one interval, then exit");
  app.add_flag("--plain", plain,
               "print one line per process per interval (default off a terminal)");
  app.add_flag("--json", json, "print one JSON object per interval");
  app.add_option("-e,--event", o->event, "perf event to count per thousand frees")
      ->default_str(o->event);
  app.add_option("--sample-event", sample_event,
                 "perf event to sample instruction pointers on ('none': do not sample)")
      ->default_str(sample_event);
  app.add_option("--sample-hz", o->sample_hz, "sampling frequency")
      ->check(CLI::Range(1, 100000))
      ->default_str(std::to_string(o->sample_hz));
  app.add_flag("--no-perf", no_perf, "open no perf events");
  app.add_flag("--list-probes", o->list_probes,
               "list the hz3 probes of each process with their semaphore values, then exit");
  app.add_flag("--legacy-attach", o->legacy_attach,
               "attach one uprobe per probe site (libbpf's USDT support) even where the kernel "
               "has uprobe_multi links; slower to detach");
  std::string openmetrics;
  app.add_option("--openmetrics", openmetrics,
                 "serve counters and rates as OpenMetrics on http://HOST:PORT/metrics (default " +
                     std::string(OPENMETRICS_DEFAULT_ADDR) +
                     "; HOST an address or a name such as localhost; :PORT alone: every "
                     "interface); prints nothing else unless --plain or --json")
      ->expected(0, 1)
      ->type_name("[=HOST:PORT]");
  add_report_options(app, &o->verbose, &o->interval, &o->count);
  if (int rc = parse_cli(app, argc, argv, "hz3top"); rc >= 0) return rc;
  add_unique_pids(pids, &o->pids);
  o->event_given = app.count("--event") > 0;
  if (app.count("--openmetrics")) {
    o->openmetrics = openmetrics.empty() ? OPENMETRICS_DEFAULT_ADDR : openmetrics;
    std::string host, err;
    int port = 0;
    if (!parse_listen_addr(o->openmetrics, &host, &port, &err)) return usage_error("hz3top", err);
  }
  o->perf = !no_perf;
  o->sample_event = sample_event == "none" ? "" : sample_event;
  if (plain && json) return usage_error("hz3top", "--plain and --json exclude each other");
  if (o->pids.empty() == !o->all)
    return usage_error("hz3top", o->all ? "-p and --all exclude each other"
                                        : "say which processes: -p PID or --all");
  if (!o->lib.empty() && !o->all) return usage_error("hz3top", "--lib goes with --all");
  if (o->follow && o->all)
    return usage_error("hz3top", "-f goes with -p (--all sees every process)");
  if (json) o->mode = OutputMode::JSON;
  if (plain) o->mode = OutputMode::PLAIN;
  o->mode_forced = plain || json;
  // A dashboard needs a terminal; in a pipe or CI log a line per interval is what is readable.
  if (!o->mode_forced && !(isatty(STDOUT_FILENO) && isatty(STDIN_FILENO)))
    o->mode = OutputMode::PLAIN;
  // A metrics exporter runs as a service: no dashboard, and lines only when asked for.
  if (!o->openmetrics.empty() && o->mode == OutputMode::TUI) o->mode = OutputMode::PLAIN;
  if (o->once) o->count = 1;
  return -1;
}

}  // namespace hz3top
