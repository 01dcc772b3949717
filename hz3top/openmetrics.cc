// OpenMetrics rendering and the HTTP server behind openmetrics.h.
#include "openmetrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>

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

struct Exposition {
  std::string out;
  // One family: its metadata, then `samples` appends its lines (contiguous, as the format wants).
  void family(const char* name, const char* type, const char* unit, const char* help,
              const std::function<void()>& samples) {
    out += std::string("# TYPE ") + name + " " + type + "\n";
    if (unit && *unit) out += std::string("# UNIT ") + name + " " + unit + "\n";
    out += std::string("# HELP ") + name + " " + help + "\n";
    samples();
  }
  void sample(const std::string& name, const std::string& labels, const std::string& value) {
    out += name + labels + " " + value + "\n";
  }
};

}  // namespace

std::string openmetrics_escape(const std::string& v) {
  std::string s;
  for (char c : v) {
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

std::string render_openmetrics(const Report* r, uint64_t reports) {
  Exposition e;
  static const std::vector<ProcView> none;
  const std::vector<ProcView>& procs = r ? r->procs : none;
  auto per_proc = [&](const char* name, const std::function<std::string(const ProcView&)>& value) {
    return [&procs, name, value, &e] {
      for (const ProcView& p : procs) e.sample(name, proc_labels(p), value(p));
    };
  };
  e.family("hz3top_reports", "counter", "", "Reports hz3top has computed since it started.",
           [&] { e.sample("hz3top_reports_total", "", num(reports)); });
  e.family("hz3top_interval_seconds", "gauge", "seconds",
           "Measured length of hz3top's last interval; the rate gauges are over it.", [&] {
             if (r) e.sample("hz3top_interval_seconds", "", num(r->dt));
           });
  e.family("hz3_process", "info", "", "A process hz3top watches, with the libhz3 it maps.", [&] {
    for (const ProcView& p : procs)
      e.sample("hz3_process_info",
               proc_labels(p, "lib=\"" + openmetrics_escape(p.lib) + "\",alive=\"" +
                                  (p.alive ? "1" : "0") + "\""),
               "1");
  });
  e.family("hz3_ptag_hits", "counter", "",
           "Page-tag lookups (free, realloc, malloc_usable_size) that found an hz3 block, since "
           "hz3top attached (hz3:hits).",
           per_proc("hz3_ptag_hits_total", [](const ProcView& p) { return num(p.total.hits); }));
  e.family("hz3_ptag_misses", "counter", "",
           "Page-tag lookups that found no hz3 block, by kind: outside the arena (foreign "
           "pointers, huge blocks), untagged page, other (hz3:lookup_miss).",
           [&] {
             for (const ProcView& p : procs) {
               e.sample("hz3_ptag_misses_total", proc_labels(p, "kind=\"outside\""),
                        num(p.total.miss_outside));
               e.sample("hz3_ptag_misses_total", proc_labels(p, "kind=\"untagged\""),
                        num(p.total.miss_untagged));
               e.sample("hz3_ptag_misses_total", proc_labels(p, "kind=\"other\""),
                        num(p.total.miss_other));
             }
           });
  e.family("hz3_decode_failures", "counter", "",
           "Tags that did not decode (hz3:decode_fail): heap corruption; the process aborts.",
           per_proc("hz3_decode_failures_total",
                    [](const ProcView& p) { return num(p.total.decode_fail); }));
  e.family("hz3_tag_sets", "counter", "", "Spans tagged in the page-tag map (hz3:tag_set).",
           per_proc("hz3_tag_sets_total", [](const ProcView& p) { return num(p.total.tag_set); }));
  e.family(
      "hz3_tag_clears", "counter", "", "Spans untagged (hz3:tag_clear).",
      per_proc("hz3_tag_clears_total", [](const ProcView& p) { return num(p.total.tag_clear); }));
  e.family("hz3_tag_set_pages", "counter", "pages", "Pages tagged (sum of tag_set npages).",
           per_proc("hz3_tag_set_pages_total",
                    [](const ProcView& p) { return num(p.total.set_pages); }));
  e.family("hz3_tag_clear_pages", "counter", "pages", "Pages untagged (sum of tag_clear npages).",
           per_proc("hz3_tag_clear_pages_total",
                    [](const ProcView& p) { return num(p.total.clear_pages); }));
  e.family("hz3_ptag_hit_rate", "gauge", "", "Hits per second over hz3top's last interval.",
           per_proc("hz3_ptag_hit_rate", [](const ProcView& p) { return num(p.hit_rate); }));
  e.family("hz3_ptag_miss_rate", "gauge", "", "Misses per second over the last interval.",
           per_proc("hz3_ptag_miss_rate", [](const ProcView& p) { return num(p.miss_rate); }));
  e.family("hz3_decode_failure_rate", "gauge", "",
           "Decode failures per second over the last interval.",
           per_proc("hz3_decode_failure_rate",
                    [](const ProcView& p) { return num(p.decode_fail_rate); }));
  e.family("hz3_tag_set_rate", "gauge", "", "Spans tagged per second over the last interval.",
           per_proc("hz3_tag_set_rate", [](const ProcView& p) { return num(p.tag_set_rate); }));
  e.family("hz3_tag_clear_rate", "gauge", "", "Spans untagged per second over the last interval.",
           per_proc("hz3_tag_clear_rate", [](const ProcView& p) { return num(p.tag_clear_rate); }));
  e.family("hz3_ptag_hit_ratio", "gauge", "ratio",
           "Hits / lookups over the last interval (absent without lookups).", [&] {
             for (const ProcView& p : procs)
               if (p.hit_ratio) e.sample("hz3_ptag_hit_ratio", proc_labels(p), num(*p.hit_ratio));
           });
  e.family("hz3_live_pages", "gauge", "pages",
           "Pages of live hz3 spans (tag-map census; churn since attach without one).",
           per_proc("hz3_live_pages", [](const ProcView& p) { return num(p.live_pages); }));
  e.family("hz3_live_bytes", "gauge", "bytes", "Bytes of live hz3 spans, as hz3_live_pages.",
           per_proc("hz3_live_bytes", [](const ProcView& p) { return num(p.live_bytes); }));
  e.family("hz3_bin_live_bytes", "gauge", "bytes",
           "Bytes of live spans by size-class bin (bin=\"large\" for large allocations).", [&] {
             for (const ProcView& p : procs)
               for (const BinRow& b : p.bins) {
                 if (!b.live_bytes && !b.sets) continue;
                 std::string bin =
                     b.bin == HZ3_TAG_BIN_LARGE ? std::string("large") : std::to_string(b.bin);
                 e.sample("hz3_bin_live_bytes", proc_labels(p, "bin=\"" + bin + "\""),
                          num(b.live_bytes));
               }
           });
  e.family("hz3_census", "gauge", "",
           "1 when live memory comes from a tag-map census, 0 when from probe churn.",
           per_proc("hz3_census", [](const ProcView& p) { return num(uint64_t(p.census_ok)); }));
  e.out += "# EOF\n";
  return e.out;
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
  std::string status = "200 OK", type = OPENMETRICS_CONTENT_TYPE, body, extra;
  if (method != "GET" && method != "HEAD") {
    status = "405 Method Not Allowed";
    type = "text/plain; charset=utf-8";
    body = "only GET and HEAD\n";
    extra = "Allow: GET, HEAD\r\n";
  } else if (target == "/metrics") {
    body = body_;
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
