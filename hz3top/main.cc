// hz3top: live view of the hz3 allocator inside running processes (docs/hz3top.md). One shape,
// as in libbpf-tools: parse -> open/load -> attach -> loop -> cleanup. The loop is here for the
// plain and JSON outputs; the interactive one lives in tui.cc.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>

#include "format.h"
#include "heap_view.h"
#include "openmetrics.h"
#include "options.h"
#include "session.h"
#include "tui.h"

namespace hz3top {
namespace {

std::atomic<bool> g_stop{false};

void on_stop_signal(int) { g_stop.store(true); }

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  // A closed pipe (hz3top --json | head) ends the run through the write error instead.
  signal(SIGPIPE, SIG_IGN);
}

void print_notes(Session& s) {
  for (const std::string& n : s.take_notes()) fprintf(stderr, "hz3top: note: %s\n", n.c_str());
}

// Returns false when stdout is gone (a closed pipe): nobody is reading, stop.
bool emit(const Options& o, const Report& r) {
  // With --openmetrics the scraper is the reader; stdout only with --plain or --json.
  if (!o.openmetrics.empty() && !o.mode_forced) return true;
  std::string text = o.mode == OutputMode::JSON ? render_json(r) + "\n" : plain_lines(r);
  return fwrite(text.data(), 1, text.size(), stdout) == text.size() && fflush(stdout) == 0;
}

int run_lines(Session& s, const Options& o, MetricsServer* metrics) {
  uint64_t reports = 0;
  const double started = wall_seconds();
  if (metrics) metrics->set_report(nullptr, reports, started);
  if (o.mode == OutputMode::PLAIN && (o.openmetrics.empty() || o.mode_forced)) {
    fputs(plain_header(s.perf_event()).c_str(), stdout);
    fflush(stdout);
  }
  const double start = monotonic_seconds();
  double next = start + o.interval;
  for (long n = 1;; n++) {
    bool last = o.count && n >= o.count;
    bool exited = false;
    // Between reports: drain perf buffers and watch for exits every 100 ms, so a target's
    // exit or Ctrl-C is reported within 0.1 s.
    for (;;) {
      s.tick();
      print_notes(s);
      double now = monotonic_seconds();
      if (g_stop.load() || s.all_exited()) {
        exited = true;
        break;
      }
      if (o.duration > 0 && now >= start + o.duration) {
        exited = true;
        break;
      }
      if (now >= next) break;
      double wait = std::min(0.1, next - now);
      // The metrics server answers scrapes while we wait.
      if (metrics)
        metrics->serve(int(wait * 1e3) + 1);
      else
        usleep(useconds_t(wait * 1e6));
    }
    Report r = s.sample(last || exited);
    print_notes(s);
    if (metrics) metrics->set_report(&r, ++reports, started);
    if (!emit(o, r)) return 0;
    if (last || exited) return 0;
    next += o.interval;
  }
}

// One perf counting fd per target thread: a few busy services exceed the usual soft limit of
// 1024 open files, so take the hard limit, as perf does.
void raise_fd_limit() {
  rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

int run(int argc, char** argv) {
  // `hz3top heap …` is a view of its own, with its own probes and options (heap.h).
  if (argc > 1 && strcmp(argv[1], "heap") == 0) {
    install_stop_handlers();
    return run_heap(argc - 1, argv + 1, g_stop);
  }
  Options opt;
  if (int rc = parse_options(argc, argv, &opt); rc >= 0) return rc;
  install_stop_handlers();
  raise_fd_limit();

  Session session(opt);
  std::string err;
  if (!session.start(&err)) {
    fprintf(stderr, "hz3top: %s\n", err.c_str());
    return 1;
  }
  if (opt.list_probes) {
    std::string out;
    if (!session.list_probes(&out, &err)) {
      fprintf(stderr, "hz3top: %s\n", err.c_str());
      return 1;
    }
    fputs(out.c_str(), stdout);
    return 0;
  }
  if (opt.verbose)
    fprintf(stderr, "hz3top: attached %zu probe links (%s) in %.1f ms\n", session.probe_links(),
            session.multi_links() ? "uprobe_multi" : "one uprobe per site",
            session.attach_seconds() * 1e3);
  print_notes(session);

  std::unique_ptr<MetricsServer> metrics;
  if (!opt.openmetrics.empty()) {
    metrics = std::make_unique<MetricsServer>();
    if (!metrics->listen(opt.openmetrics, &err)) {
      fprintf(stderr, "hz3top: %s\n", err.c_str());
      return 1;
    }
    fprintf(stderr, "hz3top: serving OpenMetrics on http://%s/metrics\n", metrics->bound().c_str());
  }
  int rc = opt.mode == OutputMode::TUI ? run_tui(session, opt, g_stop)
                                       : run_lines(session, opt, metrics.get());
  double t0 = monotonic_seconds();
  session.stop();
  if (opt.verbose)
    fprintf(stderr, "hz3top: detached in %.1f ms\n", (monotonic_seconds() - t0) * 1e3);
  return rc;
}

}  // namespace
}  // namespace hz3top

int main(int argc, char** argv) { return hz3top::run(argc, argv); }
