// OpenMetrics rendering and the HTTP server behind openmetrics.h.
#include "openmetrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>

#include "output.h"

namespace hz3top {

namespace {

std::string num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
std::string num(uint64_t v) { return std::to_string(v); }

std::string proc_labels(const ProcView& p, const std::string& extra = "") {
  std::string s =
      "{pid=\"" + std::to_string(p.pid) + "\",comm=\"" + openmetrics_escape(p.comm) + "\"";
  if (!extra.empty()) s += "," + extra;
  return s + "}";
}

// One exposition in either format. The two differ only in metadata: OpenMetrics names a family
// without its _total suffix, has # UNIT, info families, _created samples and # EOF; the
// Prometheus text format (0.0.4) names the metric itself in # TYPE, has no UNIT and no info
// type (an info family is a gauge named …_info there), and no _created.
struct Exposition {
  MetricsFormat format;
  std::string out;
  bool om() const { return format == MetricsFormat::OPENMETRICS; }
  // One family: its metadata, then `samples` appends its lines (contiguous, as both formats want).
  void family(const char* name, const char* type, const char* unit, const char* help,
              const std::function<void()>& samples) {
    std::string n = name, t = type;
    if (om()) {
      out += "# TYPE " + n + " " + t + "\n";
      if (unit && *unit) out += "# UNIT " + n + " " + unit + "\n";
      out += "# HELP " + n + " " + help + "\n";
    } else {
      if (t == "counter") n += "_total";
      if (t == "info") n += "_info", t = "gauge";
      out += "# HELP " + n + " " + help + "\n";
      out += "# TYPE " + n + " " + t + "\n";
    }
    samples();
  }
  void sample(const std::string& name, const std::string& labels, const std::string& value) {
    out += name + labels + " " + value + "\n";
  }
  // A counter's sample with, in OpenMetrics, its _created sample (unix time it counts from).
  void counter(const std::string& base, const std::string& labels, uint64_t value, double created) {
    sample(base + "_total", labels, num(value));
    if (om() && created > 0) sample(base + "_created", labels, num(created));
  }
};

}  // namespace

std::string openmetrics_escape(const std::string& v) {
  std::string s;
  for (char c : valid_utf8(v)) {
    if (c == '\\')
      s += "\\\\";
    else if (c == '"')
      s += "\\\"";
    else if (c == '\n')
      s += "\\n";
    else
      s += c;
  }
  return s;
}

std::string render_metrics(const Report* r, uint64_t reports, double started, MetricsFormat f) {
  Exposition e{f, {}};
  static const std::vector<ProcView> none;
  const std::vector<ProcView>& procs = r ? r->procs : none;
  // A per-process counter family: one sample (and _created) per process.
  auto counter = [&](const char* name, const char* unit, const char* help,
                     uint64_t (*value)(const ProcView&)) {
    e.family(name, "counter", unit, help, [&] {
      for (const ProcView& p : procs) e.counter(name, proc_labels(p), value(p), p.created);
    });
  };
  auto gauge = [&](const char* name, const char* unit, const char* help,
                   const std::function<void(const ProcView&)>& samples) {
    e.family(name, "gauge", unit, help, [&] {
      for (const ProcView& p : procs) samples(p);
    });
  };

  e.family("hz3top_reports", "counter", "", "Reports hz3top has computed since it started.",
           [&] { e.counter("hz3top_reports", "", reports, started); });
  e.family("hz3top_interval_seconds", "gauge", "seconds",
           "Measured length of hz3top's last interval (the interval of hz3_ptag_hit_ratio).", [&] {
             if (r) e.sample("hz3top_interval_seconds", "", num(r->dt));
           });
  e.family("hz3_process", "info", "", "A process hz3top watches, with the libhz3 it maps.", [&] {
    for (const ProcView& p : procs)
      e.sample("hz3_process_info", proc_labels(p, "lib=\"" + openmetrics_escape(p.lib) + "\""),
               "1");
  });
  gauge("hz3_process_alive", "", "1 while the process runs, 0 in the report after it exited.",
        [&](const ProcView& p) {
          e.sample("hz3_process_alive", proc_labels(p), num(uint64_t(p.alive)));
        });
  counter("hz3_ptag_hits", "",
          "Page-tag lookups (free, realloc, malloc_usable_size) that found an hz3 block, since "
          "hz3top attached (hz3:hits, reported in batches of 8192 per thread).",
          [](const ProcView& p) { return p.total.hits; });
  e.family("hz3_ptag_misses", "counter", "",
           "Page-tag lookups that found no hz3 block, by kind: outside the arena (foreign "
           "pointers, huge blocks), untagged page, other (hz3:lookup_miss).",
           [&] {
             for (const ProcView& p : procs) {
               e.counter("hz3_ptag_misses", proc_labels(p, "kind=\"outside\""),
                         p.total.miss_outside, p.created);
               e.counter("hz3_ptag_misses", proc_labels(p, "kind=\"untagged\""),
                         p.total.miss_untagged, p.created);
               e.counter("hz3_ptag_misses", proc_labels(p, "kind=\"other\""), p.total.miss_other,
                         p.created);
             }
           });
  counter("hz3_decode_failures", "",
          "Tags that did not decode (hz3:decode_fail): heap corruption; the process aborts.",
          [](const ProcView& p) { return p.total.decode_fail; });
  counter("hz3_tag_sets", "", "Spans tagged in the page-tag map (hz3:tag_set).",
          [](const ProcView& p) { return p.total.tag_set; });
  counter("hz3_tag_clears", "", "Spans untagged (hz3:tag_clear).",
          [](const ProcView& p) { return p.total.tag_clear; });
  counter("hz3_tag_set_bytes", "bytes", "Bytes of the spans tagged (tag_set npages x 4 KiB).",
          [](const ProcView& p) { return p.total.set_pages << HZ3_PAGE_SHIFT; });
  counter("hz3_tag_clear_bytes", "bytes", "Bytes of the spans untagged (tag_clear npages x 4 KiB).",
          [](const ProcView& p) { return p.total.clear_pages << HZ3_PAGE_SHIFT; });
  gauge("hz3_ptag_hit_ratio", "ratio",
        "Hits / lookups over hz3top's last interval (absent without lookups).",
        [&](const ProcView& p) {
          if (p.hit_ratio) e.sample("hz3_ptag_hit_ratio", proc_labels(p), num(*p.hit_ratio));
        });
  gauge("hz3_live_bytes", "bytes",
        "Bytes of live hz3 spans (tag-map census; churn since attach without one).",
        [&](const ProcView& p) { e.sample("hz3_live_bytes", proc_labels(p), num(p.live_bytes)); });
  gauge("hz3_bin_live_bytes", "bytes",
        "Bytes of live spans by size-class bin (bin=\"large\" for large allocations).",
        [&](const ProcView& p) {
          for (const BinRow& b : p.bins) {
            if (!b.live_bytes && !b.sets) continue;
            std::string bin =
                b.bin == HZ3_TAG_BIN_LARGE ? std::string("large") : std::to_string(b.bin);
            e.sample("hz3_bin_live_bytes", proc_labels(p, "bin=\"" + bin + "\""),
                     num(b.live_bytes));
          }
        });
  gauge("hz3_census", "",
        "1 when live memory comes from a tag-map census, 0 when from probe churn.",
        [&](const ProcView& p) {
          e.sample("hz3_census", proc_labels(p), num(uint64_t(p.census_ok)));
        });
  gauge("hz3_ledger_bytes", "bytes",
        "The allocator's ledger, as malloc_stats() (docs/hz3top.md, The ledger): arena lines "
        "add up to line=\"arena\"; the objects out of spans are line=\"app_small\", "
        "\"remote_pending\", \"thread_caches\" and \"inboxes\" (line=\"small_used\" instead "
        "when the library's descriptor is older than version 4); absent when it is older than "
        "version 2.",
        [&](const ProcView& p) {
          if (!p.ledger_ok) return;
          const Ledger& g = p.ledger;
          std::vector<std::pair<const char*, uint64_t>> lines;
          if (g.split)
            lines = {{"app_small", g.app_small},
                     {"remote_pending", g.remote_pending},
                     {"thread_caches", g.thread_caches},
                     {"inboxes", g.inboxes}};
          else
            lines = {{"small_used", g.small_used}};
          lines.insert(lines.end(), {
                                        {"app_large", g.app_large},
                                        {"span_free", g.span_free},
                                        {"span_waste", g.span_waste},
                                        {"pageheap_dirty", g.pageheap_dirty},
                                        {"pageheap_released", g.pageheap_released},
                                        {"unwalked", g.unwalked},
                                        {"arena", g.arena},
                                        {"huge", g.huge},
                                    });
          for (auto& [line, bytes] : lines)
            e.sample("hz3_ledger_bytes", proc_labels(p, std::string("line=\"") + line + "\""),
                     num(bytes));
        });
  // perf: the counted event is a label (it is fixed once a process is added: the fallback to
  // page faults happens when its events are opened).
  std::string event = r ? openmetrics_escape(r->perf_event) : "";
  e.family("hz3_perf_events", "counter", "",
           "Occurrences of the counted perf event (cache misses, or page faults without a PMU) "
           "in the process since hz3top opened it.",
           [&] {
             for (const ProcView& p : procs)
               if (p.perf.counting)
                 e.counter("hz3_perf_events", proc_labels(p, "event=\"" + event + "\""),
                           p.perf.count, p.created);
           });
  e.family(
      "hz3_perf_samples", "counter", "",
      "Perf samples of the process by where the instruction pointer was: alloc (libhz3's "
      "code), user (the rest of user space), kernel.",
      [&] {
        for (const ProcView& p : procs) {
          if (!p.perf.sampling) continue;
          e.counter("hz3_perf_samples", proc_labels(p, "where=\"alloc\""), p.perf.alloc, p.created);
          e.counter("hz3_perf_samples", proc_labels(p, "where=\"user\""), p.perf.user, p.created);
          e.counter("hz3_perf_samples", proc_labels(p, "where=\"kernel\""), p.perf.kernel,
                    p.created);
        }
      });
  counter("hz3top_perf_samples_lost", "",
          "Perf samples of the process that hz3top's ring buffers dropped.",
          [](const ProcView& p) { return p.perf.lost; });
  counter("hz3top_events_dropped", "",
          "Probe events hz3top could not break down by bin or size (a BPF map was full).",
          [](const ProcView& p) { return p.total.dropped; });
  if (e.om()) e.out += "# EOF\n";
  return e.out;
}

std::string render_openmetrics(const Report* r, uint64_t reports) {
  return render_metrics(r, reports, 0, MetricsFormat::OPENMETRICS);
}

MetricsFormat negotiate_format(const std::string& accept) {
  // Prometheus asks for OpenMetrics first and text/plain as a fallback; a client that names
  // text/plain but not OpenMetrics (promtool, older scrapers) wants the text format.
  std::string a;
  for (char c : accept) a += char(tolower(static_cast<unsigned char>(c)));
  if (a.find("application/openmetrics-text") == std::string::npos &&
      a.find("text/plain") != std::string::npos)
    return MetricsFormat::PROMETHEUS;
  return MetricsFormat::OPENMETRICS;
}

bool parse_listen_addr(const std::string& s, std::string* host, int* port, std::string* err) {
  size_t colon = s.rfind(':');
  std::string h, p;
  if (colon != std::string::npos) {
    h = s.substr(0, colon);
    p = s.substr(colon + 1);
  }
  bool bracketed = h.size() >= 2 && h.front() == '[' && h.back() == ']';
  if (bracketed) h = h.substr(1, h.size() - 2);
  char* end = nullptr;
  long v = p.empty() ? -1 : strtol(p.c_str(), &end, 10);
  // An IPv6 address without brackets ("::1:9464") is ambiguous: refuse it.
  bool bare_ipv6 = !bracketed && h.find(':') != std::string::npos;
  if (colon == std::string::npos || bare_ipv6 || (bracketed && h.empty()) || v < 0 || v > 65535 ||
      (end && *end)) {
    *err = "--openmetrics takes HOST:PORT (e.g. " + std::string(OPENMETRICS_DEFAULT_ADDR) +
           ", localhost:9464, [::1]:9464, or :9464 for every interface), not '" + s + "'";
    return false;
  }
  *host = h;
  *port = int(v);
  return true;
}

MetricsServer::~MetricsServer() {
  if (fd_ >= 0) close(fd_);
}

bool MetricsServer::listen(const std::string& addr_port, std::string* err) {
  std::string host;
  int port = 0;
  if (!parse_listen_addr(addr_port, &host, &port, err)) return false;
  // Addresses and names alike ("localhost"); an empty host is every interface (AI_PASSIVE).
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res)) {
    *err = "failed to resolve listen address '" + host + "': " + gai_strerror(rc);
    return false;
  }
  std::string why = "no address";
  for (addrinfo* ai = res; ai && fd_ < 0; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      why = std::string("failed to create socket: ") + strerror(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 16) != 0) {
      why = strerror(errno);
      close(fd);
      continue;
    }
    fd_ = fd;
  }
  freeaddrinfo(res);
  if (fd_ < 0) {
    *err = "failed to listen on " + addr_port + ": " + why;
    return false;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    char buf[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET) {
      auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &in4->sin_addr, buf, sizeof buf);
      bound_ = std::string(buf) + ":" + std::to_string(ntohs(in4->sin_port));
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
      bound_ = "[" + std::string(buf) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
  }
  return true;
}

void MetricsServer::serve(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (fd_ < 0 || poll(&p, 1, timeout_ms) <= 0) return;
  for (;;) {
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;  // EAGAIN: no more waiting
    // One slow or silent client must not stall the report loop for long.
    timeval tv{1, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    handle(c);
    close(c);
  }
}

void MetricsServer::handle(int fd) {
  std::string req;
  char buf[2048];
  while (req.find("\r\n\r\n") == std::string::npos && req.find("\n\n") == std::string::npos) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    req.append(buf, size_t(n));
    if (req.size() > 16384) break;  // headers this large are not a scraper's
  }
  requests_++;
  std::string line = req.substr(0, req.find_first_of("\r\n"));
  std::string method = line.substr(0, line.find(' '));
  std::string target;
  if (size_t sp = line.find(' '); sp != std::string::npos)
    target = line.substr(sp + 1, line.find(' ', sp + 1) - sp - 1);
  target = target.substr(0, target.find('?'));
  // The Accept header picks the format of /metrics.
  std::string accept;
  for (size_t pos = req.find('\n'); pos != std::string::npos; pos = req.find('\n', pos + 1)) {
    static const char NAME[] = "accept:";
    if (strncasecmp(req.c_str() + pos + 1, NAME, sizeof NAME - 1) == 0) {
      size_t start = pos + sizeof NAME;
      accept = req.substr(start, req.find_first_of("\r\n", start) - start);
      break;
    }
  }
  MetricsFormat format = negotiate_format(accept);
  std::string status = "200 OK", body, extra;
  std::string type =
      format == MetricsFormat::PROMETHEUS ? PROMETHEUS_CONTENT_TYPE : OPENMETRICS_CONTENT_TYPE;
  if (method != "GET" && method != "HEAD") {
    status = "405 Method Not Allowed";
    type = "text/plain; charset=utf-8";
    body = "only GET and HEAD\n";
    extra = "Allow: GET, HEAD\r\n";
  } else if (target == "/metrics") {
    body = format == MetricsFormat::PROMETHEUS ? prometheus_body_ : body_;
  } else if (target == "/") {
    type = "text/plain; charset=utf-8";
    body = "hz3top: metrics are on /metrics\n";
  } else {
    status = "404 Not Found";
    type = "text/plain; charset=utf-8";
    body = "not found; metrics are on /metrics\n";
  }
  std::string head = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                     "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra +
                     "Connection: close\r\n\r\n";
  std::string resp = head + (method == "HEAD" ? "" : body);
  for (size_t off = 0; off < resp.size();) {
    ssize_t n = send(fd, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += size_t(n);
  }
}

}  // namespace hz3top
