// Shared harness of the hz3 benchmark workloads (bench/*.cc): command-line options, the seeded
// LCG, the clock, RSS readings and the one result line every workload prints. It is not an
// allocator and links against none: each workload calls plain malloc/free, and the allocator
// under test is chosen from outside with LD_PRELOAD (bench/run.py, bench/triage.py).
//
// Result line (one per run, parsed by the runner; keys are stable):
//   RESULT bench=<name> threads=<n> ops=<n> seconds=<s> ops_per_s=<x> cpu_ns_per_op=<x>
//          peak_rss_kb=<n> exit_rss_kb=<n> check=<n> allocator=<path of the object that serves
//          malloc> …
#pragma once

#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace hz3::bench {

// The SSOT generator: r = r * 1664525 + 1013904223 (mod 2^32). One value chooses both the slot and
// the size, exactly as the original hz3's SSOT does, so runs are comparable across allocators and
// commits.
struct Lcg {
  uint32_t r;
  explicit Lcg(uint32_t seed) : r(seed) {}
  uint32_t next() {
    r = r * 1664525u + 1013904223u;
    return r;
  }
};

inline constexpr uint32_t DEFAULT_SEED = 0x12345678u;

inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// CPU time of every thread of the process, finished ones included (the kernel folds an exited
// thread's time into the process clock).
inline uint64_t cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// Wall and CPU time of a workload's timed region. Wall time gives ops/s; CPU time per operation
// is the steadier number on a shared machine, where a descheduled thread stretches the wall clock
// of a multi-threaded run without costing the allocator anything.
struct Stopwatch {
  uint64_t wall0 = 0, cpu0 = 0, wall = 0, cpu = 0;
  void start() {
    wall0 = now_ns();
    cpu0 = cpu_ns();
  }
  void stop() {
    wall = now_ns() - wall0;
    cpu = cpu_ns() - cpu0;
  }
};

[[noreturn]] inline void die(const char* what, const char* detail) {
  std::fprintf(stderr, "bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  std::exit(2);
}

// A "--key value" / "--key=value" parser. Every option must be declared by a get_* call before
// finish(), so a mistyped option is an error instead of a silently ignored default.
class Options {
 public:
  // `common`: the workload also takes the options of struct Common (all but bench_fastpath).
  Options(int argc, char** argv, const char* usage, bool common = true)
      : usage_(usage), common_(common) {
    for (int i = 1; i < argc; i++) {
      std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        print_usage(stdout);
        std::exit(0);
      }
      if (a.rfind("--", 0) != 0) bad("unexpected argument", a);
      a = a.substr(2);
      auto eq = a.find('=');
      if (eq != std::string::npos) {
        items_.push_back({a.substr(0, eq), a.substr(eq + 1), false});
      } else {
        if (i + 1 >= argc) bad("missing value for option", "--" + a);
        items_.push_back({a, argv[++i], false});
      }
    }
  }

  long long get_int(const char* key, long long def, long long lo, long long hi) {
    const std::string* v = find(key);
    if (!v) return def;
    char* end = nullptr;
    errno = 0;
    // Accept 20000000, 20e6, 2e7: long runs are easier to type in scientific form.
    double d = std::strtod(v->c_str(), &end);
    if (errno || end == v->c_str() || *end != '\0' || d != (long long)d)
      bad("option needs an integer", std::string("--") + key + " " + *v);
    long long x = (long long)d;
    if (x < lo || x > hi)
      bad("option out of range", std::string("--") + key + " " + *v + " (allowed " +
                                     std::to_string(lo) + ".." + std::to_string(hi) + ")");
    return x;
  }

  std::string get_str(const char* key, const char* def) {
    const std::string* v = find(key);
    return v ? *v : std::string(def);
  }

  void finish() {
    for (auto& it : items_)
      if (!it.used) bad("unknown option", "--" + it.key);
  }

  [[noreturn]] void bad(const char* what, const std::string& detail) {
    std::fprintf(stderr, "bench: %s: %s\n", what, detail.c_str());
    print_usage(stderr);
    std::exit(2);
  }

 private:
  struct Item {
    std::string key, value;
    bool used;
  };
  const std::string* find(const char* key) {
    const std::string* hit = nullptr;
    for (auto& it : items_)
      if (it.key == key) {
        it.used = true;
        hit = &it.value;  // the last occurrence wins, as in most CLIs
      }
    return hit;
  }
  void print_usage(FILE* f) {
    std::fprintf(f, "%s", usage_);
    if (common_)
      std::fprintf(
          f,
          "  common: --seed N (LCG seed, default 0x12345678), --ready-file PATH and\n"
          "          --go-file PATH (write pid, wait for GO: lets a tracer attach first)\n");
  }
  const char* usage_;
  bool common_;
  std::vector<Item> items_;
};

// A field of /proc/self/status in KiB (VmHWM = peak RSS, VmRSS = current RSS); -1 if unreadable.
// Read with open/read into a stack buffer so the reading itself does not allocate.
inline long status_kb(const char* field) {
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[8192];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  size_t len = std::strlen(field);
  for (char* line = buf; *line;) {
    if (std::strncmp(line, field, len) == 0 && line[len] == ':')
      return std::strtol(line + len + 1, nullptr, 10);
    char* nl = std::strchr(line, '\n');
    if (!nl) break;
    line = nl + 1;
  }
  return -1;
}

// Times (seconds, non-decreasing, e.g. "0,1,2,5") at which a workload samples VmRSS after its
// work stops: --rss-at of bench_largechurn and bench_idle. Empty string: no samples.
inline std::vector<double> parse_times(Options& o, const char* key, const std::string& v) {
  std::vector<double> out;
  size_t i = 0;
  while (i < v.size()) {
    size_t j = v.find(',', i);
    if (j == std::string::npos) j = v.size();
    std::string item = v.substr(i, j - i);
    char* end = nullptr;
    errno = 0;
    double d = std::strtod(item.c_str(), &end);
    if (item.empty() || errno || *end != '\0' || !(d >= 0 && d <= 3600) ||
        (!out.empty() && d < out.back()))
      o.bad("option needs non-decreasing seconds 0..3600, comma-separated",
            std::string("--") + key + " " + v);
    out.push_back(d);
    i = j + 1;
  }
  return out;
}

inline void sleep_until_ns(uint64_t deadline) {
  for (uint64_t t = now_ns(); t < deadline; t = now_ns()) {
    uint64_t d = deadline - t;
    timespec ts{time_t(d / 1000000000ull), long(d % 1000000000ull)};
    nanosleep(&ts, nullptr);
  }
}

// VmRSS sampled at t0 + each of `times`, printed as the RESULT fields
//   rss_after_s=0,1,2,5 rss_after_kb=<n>,<n>,<n>,<n>
// (one value per time, same order); bench/run.py tabulates them. Nothing is allocated between
// the first sample and the last (the buffer is reserved first, status_kb reads into the stack),
// so the sampling itself cannot change what it measures. `last_kb`: the last sample; `max_kb`:
// the largest (VmHWM can miss it: an madvise that drops RSS between two reads, by an allocator's
// background thread, need not update the kernel's high-water mark).
inline std::string rss_timeline(uint64_t t0, const std::vector<double>& times,
                                long* last_kb = nullptr, long* max_kb = nullptr) {
  if (times.empty()) return "";
  std::vector<long> kb;
  kb.reserve(times.size());
  for (double t : times) {
    sleep_until_ns(t0 + uint64_t(t * 1e9));
    kb.push_back(status_kb("VmRSS"));
  }
  if (last_kb) *last_kb = kb.back();
  if (max_kb)
    for (long k : kb) *max_kb = k > *max_kb ? k : *max_kb;
  std::string s = "rss_after_s=", v = " rss_after_kb=";
  for (size_t i = 0; i < times.size(); i++) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s%g", i ? "," : "", times[i]);
    s += buf;
    std::snprintf(buf, sizeof buf, "%s%ld", i ? "," : "", kb[i]);
    v += buf;
  }
  return s + v;
}

// The file of the object whose malloc this process calls: proves which allocator LD_PRELOAD put in
// front, so the runner can refuse a run where the preload silently did not happen.
inline std::string malloc_owner() {
  void* sym = dlsym(RTLD_DEFAULT, "malloc");
  Dl_info info{};
  if (!sym || !dladdr(sym, &info) || !info.dli_fname) return "unknown";
  char real[4096];
  if (realpath(info.dli_fname, real)) return real;
  return info.dli_fname;
}

// Optional start handshake for tools that must attach before the timed loop (bench/triage.py
// starts hz3top on the pid): the workload writes its pid to --ready-file, then waits until
// --go-file exists. Both default to empty, which skips the handshake.
inline void handshake(const std::string& ready_file, const std::string& go_file) {
  if (!ready_file.empty()) {
    std::string tmp = ready_file + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "we");
    if (!f) die("failed to create ready file", std::strerror(errno));
    std::fprintf(f, "%d\n", int(getpid()));
    std::fclose(f);
    if (std::rename(tmp.c_str(), ready_file.c_str()) != 0)
      die("failed to publish ready file", std::strerror(errno));
  }
  if (!go_file.empty()) {
    uint64_t deadline = now_ns() + 60ull * 1000000000ull;
    while (access(go_file.c_str(), F_OK) != 0) {
      if (now_ns() > deadline) die("gave up waiting for go file", go_file.c_str());
      usleep(1000);
    }
  }
}

// Options every workload shares; declared in one place so their names never drift apart.
struct Common {
  std::string ready_file, go_file;
  uint32_t seed;
  explicit Common(Options& o)
      : ready_file(o.get_str("ready-file", "")),
        go_file(o.get_str("go-file", "")),
        seed(uint32_t(o.get_int("seed", DEFAULT_SEED, 0, 0xFFFFFFFFll))) {}
};

// A block's first byte carries a value derived from the LCG; reading it back at free time feeds
// `check`, so neither the compiler nor an allocator can skip touching the memory.
inline void touch(void* p, uint32_t v) { *static_cast<volatile uint8_t*>(p) = uint8_t(v); }
inline uint32_t peek(void* p) { return *static_cast<volatile uint8_t*>(p); }

// Prints the result line. `extra` holds workload-specific "key=value" pairs. exit_rss is read by
// the caller after it has freed everything it allocated: it shows what the allocator kept.
inline void report(const char* bench, const std::string& extra, unsigned threads, uint64_t ops,
                   const Stopwatch& sw, uint64_t check, long peak_rss_kb, long exit_rss_kb) {
  double s = sw.wall / 1e9;
  double rate = s > 0 ? ops / s : 0;
  double cpu_ns_per_op = ops ? double(sw.cpu) / double(ops) : 0;
  std::printf("%-12s %8.2f M ops/s  %llu ops in %.3f s  peak %ld KiB  exit %ld KiB\n", bench,
              rate / 1e6, (unsigned long long)ops, s, peak_rss_kb, exit_rss_kb);
  std::printf(
      "RESULT bench=%s threads=%u ops=%llu seconds=%.6f ops_per_s=%.0f cpu_ns_per_op=%.3f "
      "peak_rss_kb=%ld exit_rss_kb=%ld check=%llu allocator=%s%s%s\n",
      bench, threads, (unsigned long long)ops, s, rate, cpu_ns_per_op, peak_rss_kb, exit_rss_kb,
      (unsigned long long)check, malloc_owner().c_str(), extra.empty() ? "" : " ", extra.c_str());
  std::fflush(stdout);
}

}  // namespace hz3::bench
